"""A run's requests in bounded memory: per-step HDR histograms and counts, raw samples where they
are needed, stand-ins where they are not.

The load generator's samples arrive here (harness.run.orchestrator feeds each poll) instead of
accumulating in lists: an hour at 10,000 requests/s is 36 million samples, several GB as
objects. What is kept, per STEP_S step (by request start, as every metric cuts time):

* per operation and per load process (`src`): requests, successes, and the successes' latency
  counts in HDR buckets (harness.measure.latency), raw and, for open-loop load, counted from
  the due time. Packed once the step closes (`close_after_s` after it: a sample is delivered
  when its request completes). Every percentile of the run (overall, per operation, per phase or
  fault window, per step of the report's plot) is read from these counts; several load
  processes' counts are merged exactly (they add) when the run ends.
* the raw samples of every step, up to `raw_cap` samples in all. Beyond the cap, *quiet* steps
  are evicted oldest first: a step is quiet when every request in it succeeded and some
  success *completed* in it, and it is more than `margin_s` away from any step that was not
  quiet (a failure, a step in which nothing completed: a hang; a step without requests) and
  from any `mark` (a phase or fault boundary the orchestrator announces). An outage or a stall
  of two steps (200 ms) or more always holds a step that is not quiet. So the requests around every failure, hole and boundary stay raw:
  outage edges (the last success before, the first after), stalls, error windows, time to
  recover (whose windows are `recovery_window_s <= margin_s` wide) and phase cuts are computed
  from exactly the samples of today's raw path.
* an evicted step is represented by stand-ins (`Sample.weight` > 1) per operation: the first
  success, with its weight being the step's successes, completing at the step's widest internal
  gap, and the success that ends that gap, completing at the step's last completion. Counts,
  availability and the outage across and inside the step stay exact (the widest gap is the
  step's own, never smaller than the run's); a stall inside evicted steps (under 200 ms, else
  they would not be quiet) reads from the stand-ins: up to a step and a request latency
  instead of its true, smaller value. In a phase with a real stall or outage that one is the
  longest; in a healthy phase of a long run the longest stall is that approximation.
* the steps around failures, holes and marks may hold more than `raw_cap` (that is what
  failures cost), up to `hard_cap`. Beyond it (a long run failing or slow throughout) the oldest
  of those are evicted too, down to `raw_cap`, keeping their failures raw up to FAILURE_CAP:
  `info().capped` says so and results.json carries it (never silent).

* evicted steps are folded by blocks of BLOCK_STEPS (5 s): their latency counts merged into
  one (exact for any cut on a block's edge, and every mark keeps its steps raw, so phases and
  fault windows never cut a block); the report's per-step p50/p99 inside a block is the
  block's, its per-step counts stay exact.

Memory is then independent of the run's length at a steady rate, except for what failures and
the histograms of their steps cost (benchmarks/histogram_memory.py measures it).
"""

from __future__ import annotations

import bisect
import math
from math import floor
from collections import Counter, deque
from dataclasses import dataclass
from typing import Iterable, Sequence

from harness.measure.histogram import Counts, merge_into, pack, unpack
from harness.measure.latency import Correction, Dist, Reps, bucket, note
from harness.measure.omission import due_latency
from harness.measure.timeline import STEP_S, Step
from harness.model import Sample

RAW_CAP = 100_000           # raw samples kept before quiet steps are evicted; tests stay below it
HARD_CAP = 500_000          # raw samples kept at most, failures' surroundings included (~100 MB)
MARGIN_S = 5.0              # raw kept this far around anything not quiet (>= a recovery window)
MARK_STEPS = 1              # ... and this many steps either side of a mark
# Evicted steps are folded by blocks of this many (5 s): their latency counts merged into one.
# At 1/1024 resolution a 100 ms step of 1,000 requests has nearly one bucket per request (a
# packed step ~3 kB an operation), so an hour at 10,000/s kept 6.7 kB a step and peaked at
# 442 MB; a block shares its buckets. Phase cuts never fall inside a block (marks keep their
# steps raw); the report's per-step p50/p99 there shows the block's.
BLOCK_STEPS = 50
CLOSE_AFTER_S = 5.0         # default; the orchestrator passes request_timeout + delivery slack
FAILURE_CAP = 200_000       # failures kept raw when non-quiet steps had to be evicted

RAW, DUE = 0, 1             # latency kinds: as measured; from the due time (open loop)


@dataclass(frozen=True)
class StoreInfo:
    """How the run was kept (results.json "measurement"): what was exact and what was not."""

    requests: int
    raw_cap: int
    raw_requests: int               # kept as samples at the end
    evicted_steps: int              # quiet steps held as counts and stand-ins
    evicted_requests: int
    capped: bool                    # steps that were not quiet had to be evicted
    capped_steps: int = 0
    failures_merged: int = 0        # failures beyond FAILURE_CAP held as weighted stand-ins
    late: int = 0                   # samples that arrived after their step closed (still counted)
    sources: int = 1                # load processes whose histograms were merged
    cuts_in_evicted_steps: int = 0  # phase/fault boundaries inside an evicted step: cut by step


class StepLatency:
    """One load process's latency counts of successes, per step, operation and kind, packed.
    Merging two is exact: counts add (the test merges workers' and compares with one).

    A folded block (`fold`: BLOCK_STEPS evicted steps in a row) is kept under the key -(b + 1)
    as one set of counts; what is added later to one of its steps goes to the block."""

    def __init__(self) -> None:
        self.steps: dict[int, dict[tuple[str, int], bytes]] = {}
        self.folded: set[int] = set()           # block numbers

    def key(self, k: int) -> int:
        b = k // BLOCK_STEPS
        return -(b + 1) if b in self.folded else k

    def put(self, k: int, op: str, kind: int, counts: Counts) -> None:
        if counts:
            self.steps.setdefault(self.key(k), {})[(op, kind)] = pack(counts)

    def add(self, k: int, op: str, kind: int, counts: Counts) -> None:
        mine = self.get(k, op, kind)
        self.put(k, op, kind, merge_into(mine, counts))

    def get(self, k: int, op: str, kind: int) -> Counts:
        blob = self.steps.get(self.key(k), {}).get((op, kind))
        return unpack(blob) if blob else {}

    def fold(self, b: int) -> None:
        """Steps b*BLOCK_STEPS.. (all evicted) become one block: their counts add, exactly."""
        merged: dict[tuple[str, int], Counts] = {}
        for k in range(b * BLOCK_STEPS, (b + 1) * BLOCK_STEPS):
            for ok, blob in (self.steps.pop(k, None) or {}).items():
                merge_into(merged.setdefault(ok, {}), unpack(blob))
        self.folded.add(b)
        if merged:
            self.steps[-(b + 1)] = {ok: pack(c) for ok, c in merged.items()}

    def merge(self, other: "StepLatency") -> "StepLatency":
        for b in other.folded - self.folded:
            self.fold(b)
        for k, by in other.steps.items():
            for (op, kind), blob in by.items():
                kk = k if k >= 0 else (-k - 1) * BLOCK_STEPS     # a block: by its first step
                self.add(kk, op, kind, unpack(blob))
        return self

    def nbytes(self) -> int:
        return sum(len(b) + 80 for by in self.steps.values() for b in by.values())


class _Closed:
    __slots__ = ("raw", "ops", "quiet", "stand_ins")

    def __init__(self, raw: list[Sample], ops: dict[str, list[int]], quiet: bool):
        self.raw: list[Sample] | None = raw     # None once evicted
        self.ops = ops                          # op → [requests, successes]
        self.quiet = quiet
        self.stand_ins: list[Sample] = []


class SampleStore:
    """The run's samples from `t0` on (see module docstring). `add` batches as they are polled,
    `mark` boundaries, `finish(t_end)`, then read."""

    def __init__(self, t0: float, *, step_s: float = STEP_S, close_after_s: float = CLOSE_AFTER_S,
                 raw_cap: int = RAW_CAP, hard_cap: int = HARD_CAP, margin_s: float = MARGIN_S,
                 failure_cap: int = FAILURE_CAP):
        self.t0 = t0
        self.step_s = step_s
        self.close_lag = max(1, int(math.ceil(close_after_s / step_s)))
        self.margin = max(1, int(math.ceil(margin_s / step_s)))
        self.raw_cap = raw_cap
        self.hard_cap = max(hard_cap, raw_cap)
        self._completed: dict[int, int] = {}            # successes completed, by step of completion
        self.failure_cap = failure_cap
        self._open: dict[int, list[tuple[int, Sample]]] = {}
        self._closed: dict[int, _Closed] = {}
        self._lat: dict[int, StepLatency] = {}          # per load process
        self._sources: set[int] = set()
        self._merged: StepLatency | None = None
        self._reps: dict[tuple[str | None, int], Reps] = {}
        self._newest = -1
        self._newest_closed = -1
        self._last_nonempty = -1
        self._loud: list[int] = []                 # closed steps that were not quiet (sorted)
        self._marks: set[int] = set()
        self._folded: set[int] = set()                  # blocks of evicted steps (BLOCK_STEPS)
        self._retained: deque[int] = deque()            # closed steps still raw, oldest first
        self._raw_count = 0
        self._evicted = self._evicted_requests = self._capped_steps = 0
        self._failures_kept = self._failures_merged = 0
        self.requests = 0
        self.late = 0
        self.t_end: float | None = None
        self.operations: tuple[str, ...] = ()
        self._corrections: dict[tuple[str | None, float], Correction] = {}

    @classmethod
    def of(cls, samples: Iterable[Sample], t0: float, t_end: float, **kw) -> "SampleStore":
        """A finished store of samples already collected (tests, records built by hand)."""
        st = cls(t0, **kw)
        st.add(samples)
        st.finish(t_end)
        return st

    # ─── recording ───

    def add(self, samples: Iterable[Sample], src: int = 0) -> None:
        self._sources.add(src)
        t0, step_of = self.t0, self._step_of
        newest = self._newest
        for s in samples:
            if s.t < t0:
                continue                                # before load started: not the run's
            k = step_of(s.t)                            # on the same edges as every cut
            bucket_list = self._open.get(k)
            if bucket_list is None:
                if k in self._closed:
                    self._late(k, src, s)
                    continue
                bucket_list = self._open[k] = []
            bucket_list.append((src, s))
            if k > newest:
                newest = k
        if newest > self._newest:
            self._newest = newest
            self._close_before(newest - self.close_lag)

    def _step_of(self, t: float) -> int:
        """The step holding instant t: t0 + k * step <= t < t0 + (k + 1) * step, exactly."""
        k = floor((t - self.t0) / self.step_s)
        if t >= self.t0 + (k + 1) * self.step_s:
            return k + 1
        if t < self.t0 + k * self.step_s:
            return k - 1
        return k

    def mark(self, t: float) -> None:
        """A phase or fault boundary: the steps around it stay raw (exact cuts)."""
        self._marks.add(self._step_of(t))

    def finish(self, t_end: float) -> None:
        """The run is over at `t_end`: samples that started later are not the run's."""
        self.t_end = t_end
        last = self._step_of(t_end)
        for k in [k for k in self._open if k > last]:
            del self._open[k]
        if last in self._open:
            self._open[last] = [(src, s) for src, s in self._open[last] if s.t <= t_end]
        self._close_before(last + 1)
        self._evict(final=True)
        if len(self._lat) > 1:          # several load processes: their counts add, exactly
            merged = StepLatency()
            for lat in self._lat.values():
                merged.merge(lat)
            self._merged = merged
        else:
            self._merged = next(iter(self._lat.values()), StepLatency())
        ops = sorted({op for c in self._closed.values() for op in c.ops})
        self.operations = tuple(ops)
        for kind in (RAW, DUE):
            union: Reps = {}
            for op in ops:
                for i, (lo, hi) in self._reps.get((op, kind), {}).items():
                    note(union, i, lo)
                    note(union, i, hi)
            self._reps[(None, kind)] = union

    def _close_before(self, limit: int) -> None:
        for k in sorted(k for k in self._open if k < limit):
            self._close(k)
        self._evict()

    def _close(self, k: int) -> None:
        entries = self._open.pop(k)
        if not entries:
            return
        ops: dict[str, list[int]] = {}
        counts: dict[tuple[int, str, int], Counts] = {}
        quiet = True
        completed = self._completed
        for src, s in entries:
            o = ops.get(s.name)
            if o is None:
                o = ops[s.name] = [0, 0]
            o[0] += s.weight
            if not s.ok:
                quiet = False
                continue
            o[1] += s.weight
            j = self._step_of(s.t + s.latency_s)
            completed[j] = completed.get(j, 0) + 1
            self._count(counts, src, s)
        # every request that can complete in step k started in a step <= k: its count is final
        if not completed.pop(k, 0):
            quiet = False                               # nothing completed: a hang
        for j in [j for j in completed if j < k]:
            del completed[j]
        for (src, op, kind), c in counts.items():
            self._lat.setdefault(src, StepLatency()).put(k, op, kind, c)
        self.requests += len(entries)
        if k > self._last_nonempty + 1 and self._last_nonempty >= 0:
            quiet = False                               # after a step without requests
            self._loud.append(self._last_nonempty)      # ... and the step before it
        self._last_nonempty = max(self._last_nonempty, k)
        raw = [s for _, s in entries]
        self._closed[k] = _Closed(raw, ops, quiet)
        if not quiet:
            self._loud.append(k)
        self._retained.append(k)
        self._raw_count += len(raw)
        self._newest_closed = max(self._newest_closed, k)

    def _count(self, counts: dict, src: int, s: Sample) -> None:
        i = bucket(s.latency_s)
        c = counts.setdefault((src, s.name, RAW), {})
        c[i] = c.get(i, 0) + s.weight
        note(self._reps.setdefault((s.name, RAW), {}), i, s.latency_s)
        if s.due_t is not None:
            v = due_latency(s)
            j = bucket(v)
            d = counts.setdefault((src, s.name, DUE), {})
            d[j] = d.get(j, 0) + s.weight
            note(self._reps.setdefault((s.name, DUE), {}), j, v)

    def _late(self, k: int, src: int, s: Sample) -> None:
        """A sample for a step already closed (delivered later than close_after_s): counted."""
        self.late += 1
        self.requests += 1
        c = self._closed[k]
        o = c.ops.setdefault(s.name, [0, 0])
        o[0] += 1
        if s.ok:
            o[1] += 1
            counts: dict = {}
            self._count(counts, src, s)
            for (src_, op, kind), cc in counts.items():
                self._lat.setdefault(src_, StepLatency()).add(k, op, kind, cc)
        if c.raw is not None:
            c.raw.append(s)
            self._raw_count += 1
        else:
            c.stand_ins.append(s)       # exact for counts and edges: it is the request itself

    # ─── eviction ───

    def _near(self, k: int, marks_only: bool = False) -> bool:
        """Next to a mark, or (unless `marks_only`) within the margin of a step that was not quiet."""
        if any(abs(k - x) <= MARK_STEPS for x in self._marks):
            return True
        m = self.margin
        if marks_only:
            return False
        i = bisect.bisect_left(self._loud, k - m)       # closed in order: `_loud` is sorted
        return i < len(self._loud) and self._loud[i] <= k + m

    def _evict(self, final: bool = False) -> None:
        if self._raw_count <= self.raw_cap:
            return
        # a step is judged once every step within the margin after it has closed
        safe = self._newest_closed if final else self._newest_closed - self.margin
        kept: list[int] = []
        while self._raw_count > self.raw_cap and self._retained and self._retained[0] <= safe:
            k = self._retained.popleft()
            c = self._closed[k]
            if c.quiet and not self._near(k):
                self._to_stand_ins(k, c)
            else:
                kept.append(k)
        if self._raw_count > self.hard_cap:
            # Over the hard cap: the run is failing or slow for longer than it holds. Evict the
            # oldest steps that are not quiet too (info() says so), sparing those at a mark.
            spared: list[int] = []
            for k in kept:
                if self._raw_count <= self.raw_cap:
                    spared.append(k)
                elif self._near(k, marks_only=True):
                    spared.append(k)
                else:
                    self._to_stand_ins(k, self._closed[k])
                    self._capped_steps += 1
            kept = spared
        self._retained.extendleft(reversed(kept))

    def _to_stand_ins(self, k: int, c: _Closed) -> None:
        self._evicted += 1
        raw = c.raw or []
        self._raw_count -= len(raw)
        self._evicted_requests += len(raw)
        by_op: dict[str, list[Sample]] = {}
        for s in raw:
            by_op.setdefault(s.name, []).append(s)
        out: list[Sample] = []
        for op, ss in by_op.items():
            ok = sorted((s for s in ss if s.ok), key=lambda s: s.t)
            if ok:
                out.extend(_success_stand_ins(op, ok))
            failed = [s for s in ss if not s.ok]
            if failed:
                room = max(0, self.failure_cap - self._failures_kept)
                out.extend(failed[:room])
                self._failures_kept += min(room, len(failed))
                rest = failed[room:]
                if rest:
                    self._failures_merged += len(rest)
                    cls = Counter(s.error for s in rest).most_common(1)[0][0]
                    out.append(Sample(rest[0].t, max(s.latency_s for s in rest), False, op, cls,
                                      weight=len(rest)))
        c.stand_ins = out + c.stand_ins
        c.raw = None
        self._fold(k // BLOCK_STEPS)

    def _fold(self, b: int) -> None:
        ks = range(b * BLOCK_STEPS, (b + 1) * BLOCK_STEPS)
        closed = self._closed
        if b in self._folded or any(k not in closed or closed[k].raw is not None for k in ks):
            return
        self._folded.add(b)
        for lat in self._lat.values():
            lat.fold(b)

    # ─── reading (after finish) ───

    def samples(self) -> list[Sample]:
        """Every raw sample kept and the stand-ins of evicted steps, by start time."""
        out: list[Sample] = []
        for k in sorted(self._closed):
            c = self._closed[k]
            out.extend(c.raw if c.raw is not None else c.stand_ins)
        out.sort(key=lambda s: s.t)
        return out

    def info(self, cuts: Sequence[float] = ()) -> StoreInfo:
        in_evicted = 0
        for t in cuts:          # a cut on a step's edge is exact whatever the step holds
            k = self._step_of(t)
            c = self._closed.get(k)
            b = k // BLOCK_STEPS
            if b in self._folded and t != self.t0 + b * BLOCK_STEPS * self.step_s:
                in_evicted += 1                 # inside a folded block: cut by block
            elif c is not None and c.raw is None and t != self.t0 + k * self.step_s:
                in_evicted += 1
        return StoreInfo(requests=self.requests, raw_cap=self.raw_cap, raw_requests=self._raw_count,
                         evicted_steps=self._evicted, evicted_requests=self._evicted_requests,
                         capped=self._capped_steps > 0, capped_steps=self._capped_steps,
                         failures_merged=self._failures_merged, late=self.late,
                         sources=max(1, len(self._sources)), cuts_in_evicted_steps=in_evicted)

    def _dist(self, op: str | None, kind: int, keys: Iterable[int], spread: bool = False) -> Dist:
        """The counts of steps `keys`. A folded block is counted whole when its first step is
        among them (by start, as an evicted step is), or with `spread` for any of its steps."""
        lat = self._merged or StepLatency()
        ops = self.operations if op is None else (op,)
        d = Dist(reps=self._reps.get((op, kind), {}))
        seen: set[int] = set()
        for k in keys:
            key = lat.key(k)
            if key < 0:
                if key in seen or not (spread or k % BLOCK_STEPS == 0):
                    continue
                seen.add(key)
            for o in ops:
                blob = lat.steps.get(key, {}).get((o, kind))
                if blob:
                    merge_into(d.counts, unpack(blob))
        return d

    def _has_due(self, op: str | None) -> bool:
        return bool(self._reps.get((op, DUE)))

    def latency(self, op: str | None, start: float, end: float,
                interval_s: float | None = None) -> tuple[Dist, Dist]:
        """(felt, raw) latency of the successes that started in [start, end), `op` or all."""
        t0, step = self.t0, self.step_s
        first = self._step_of(start)
        if t0 + first * step < start:
            first += 1
        first = max(0, first)
        last = self._step_of(end)                   # steps [first, last) are fully inside
        edge = {self._step_of(start), last} - set(range(first, last))
        full = [k for k in range(first, last) if k in self._closed]
        raw, due = self._dist(op, RAW, full), self._dist(op, DUE, full)
        for k in edge:
            c = self._closed.get(k)
            if c is None:
                continue
            if c.raw is None:                   # evicted: the whole step, by its start
                if start <= t0 + k * step < end:
                    raw.merge(self._dist(op, RAW, (k,)).counts)
                    due.merge(self._dist(op, DUE, (k,)).counts)
                continue
            for s in c.raw:
                if s.ok and start <= s.t < end and (op is None or s.name == op):
                    i = bucket(s.latency_s)
                    raw.counts[i] = raw.counts.get(i, 0) + 1
                    if s.due_t is not None:
                        j = bucket(due_latency(s))
                        due.counts[j] = due.counts.get(j, 0) + 1
        if self._has_due(op):
            return due, raw
        return raw.corrected(interval_s, self._correction(op, interval_s)), raw

    def _correction(self, op: str | None, interval_s: float | None) -> Correction | None:
        if interval_s is None or interval_s <= 0:
            return None
        c = self._corrections.get((op, interval_s))
        if c is None:
            c = self._corrections[(op, interval_s)] = Correction(interval_s)
        return c

    def steps(self, op: str | None, t_end: float, interval_s: float | None = None) -> tuple[Step, ...]:
        """The report's timeline: STEP_S buckets from t0 to t_end, as Timeline.steps."""
        if t_end <= self.t0:
            return ()
        n = max(1, int(-(-(t_end - self.t0) // self.step_s)))
        due = self._has_due(op)
        lat = self._merged or StepLatency()
        blocks: dict[int, tuple] = {}           # a folded block's p50/p99, read once for its steps
        out = []
        for k in range(n):
            c = self._closed.get(k)
            ok = failed = 0
            if c is not None:
                for o, (req, good) in c.ops.items():
                    if op is None or o == op:
                        ok += good
                        failed += req - good
            keys = (k, n) if k == n - 1 else (k,)      # the last bucket also takes t_end
            key = lat.key(k)
            if key < 0 and k != n - 1 and key in blocks:
                p50, p99 = blocks[key]
            else:
                d = self._dist(op, DUE if due else RAW, keys, spread=True)
                if not due:
                    d = d.corrected(interval_s, self._correction(op, interval_s))
                p50, p99 = d.percentiles((50, 99))
                if key < 0:
                    blocks[key] = (p50, p99)
            out.append(Step(round(k * self.step_s, 6), ok, failed, p50, p99))
        return tuple(out)

    def nbytes(self) -> int:
        """Roughly what the histograms hold (the raw samples are counted in `info`)."""
        return sum(lat.nbytes() for lat in self._lat.values())


def _success_stand_ins(op: str, ok: Sequence[Sample]) -> list[Sample]:
    """Two successes standing for a step's (sorted by start): see the module docstring."""
    seen = ok[0].t + ok[0].latency_s
    best = (0.0, 0.0, 0.0)              # (gap, last completion before it, start ending it)
    for s in ok[1:]:
        if s.t - seen > best[0]:
            best = (s.t - seen, seen, s.t)
        seen = max(seen, s.t + s.latency_s)
    n = sum(s.weight for s in ok)
    fs = ok[0].t
    if best[0] <= 0.0 or n < 2:
        return [Sample(fs, seen - fs, True, op, weight=n)]
    return [Sample(fs, best[1] - fs, True, op, weight=n - 1),
            Sample(best[2], seen - best[2], True, op, weight=1)]
