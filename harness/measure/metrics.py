"""Metrics of one phase, for every request and per operation: counts, availability, latency,
throughput, the longest outage and the longest stall.

Definitions (the reference is docs/results-schema.md, "How the numbers are defined"):

* A sample belongs to the phase in which it *started* (`Sample.t` in `[start, end)`; the overall
  phase `[t0, t_end]` includes t_end).
* availability = successes / requests; None over 0 requests (unknown, never 0 or 1).
* latency percentiles are nearest-rank over *successful* requests only, from HDR histogram
  counts of our own samples (harness.measure.latency; not Locust's rounded histogram): exact
  when a bucket holds one value, else at most 1/1024 above; as users felt them: counted from
  when each request was due (harness.measure.omission); `raw_latency_*` are the same without
  that correction. None when there were no successes. In a run the counts are the per-step
  histograms of harness.measure.store; a phase given as samples alone is counted on the spot.
* counts are weighted (`Sample.weight`: a stand-in of a long run's quiet step counts for the
  requests it holds).
* throughput = requests sent (started) in the phase / phase length.
* longest outage: the longest interval in which nothing succeeded, measured from the moment the
  system was last seen answering (the latest *completion*, t + latency, of any success so far) to
  the *start* of the next successful request. Using completion on the left edge removes the bias of
  one request latency that start-to-start gaps carry (a request in flight when a link goes down
  fails, so the last success before the hole started one latency before it). The gaps from t0 to
  the first success and from the last completion to t_end count too; with no success at all the
  outage is the whole interval.
* longest stall: harness.measure.stalls.
* per operation: the same over the requests of that name (`Sample.name`), with the operation's
  own expected interval for the closed-loop correction.

Faults (error windows, time to recover) are in harness.measure.recovery.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

from harness.measure.latency import Dist, felt_dist
from harness.measure.stalls import Stall, longest_stall
from harness.model import Sample

# (operation or None, expected interval) → (felt, raw) latency of a phase's successes
LatencyOf = Callable[[str | None, float | None], tuple[Dist, Dist]]


@dataclass(frozen=True)
class Outage:
    duration_s: float
    start_s: float              # offsets relative to t0
    end_s: float


@dataclass(frozen=True)
class PhaseMetrics:
    name: str                   # "overall", "baseline", "fault:<name>", "recovery"
    start_s: float              # offsets relative to t0
    end_s: float
    requests: int
    successes: int
    failures: int
    availability: float | None
    error_rate: float | None
    latency_p50_s: float | None
    latency_p95_s: float | None
    latency_p99_s: float | None
    latency_max_s: float | None
    throughput_rps: float | None
    errors: tuple[tuple[str, int], ...]     # failure class → count, most frequent first
    longest_outage: Outage | None
    longest_stall: Stall | None = None
    raw_latency_p50_s: float | None = None  # as measured, without the coordinated-omission correction
    raw_latency_p99_s: float | None = None
    operation: str | None = None            # None: every request; else only this request name
    operations: tuple["PhaseMetrics", ...] = ()     # per operation (empty on an operation's own)

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    def for_operation(self, operation: str) -> "PhaseMetrics | None":
        """This phase's metrics over one operation's requests; None if the run sent none."""
        for o in self.operations:
            if o.operation == operation:
                return o
        return None


def phase_metrics(name: str, samples: Sequence[Sample], start: float, end: float, t0: float,
                  interval_s: float | None = None, operation: str | None = None,
                  latency: tuple[Dist, Dist] | None = None) -> PhaseMetrics:
    """Metrics of the samples that started in the phase [start, end) (already selected).

    `interval_s`: a closed-loop user's expected interval between these requests, for the
    coordinated-omission correction (None: nothing to correct, or open-loop samples).
    `latency`: (felt, raw) distributions of their successes (a run's store); default: counted
    from `samples`."""
    requests = sum(s.weight for s in samples)
    successes = sum(s.weight for s in samples if s.ok)
    felt_d, raw_d = latency if latency is not None else felt_dist(samples, interval_s)
    f50, f95, f99, fmax = felt_d.percentiles((50, 95, 99, 100))
    r50, r99 = raw_d.percentiles((50, 99))
    failures = requests - successes
    length = end - start
    errors: Counter[str] = Counter()
    for s in samples:
        if not s.ok:
            errors[s.error or "error"] += s.weight
    return PhaseMetrics(
        name=name,
        start_s=start - t0,
        end_s=end - t0,
        requests=requests,
        successes=successes,
        failures=failures,
        availability=successes / requests if requests else None,
        error_rate=failures / requests if requests else None,
        latency_p50_s=f50,
        latency_p95_s=f95,
        latency_p99_s=f99,
        latency_max_s=fmax,
        throughput_rps=requests / length if length > 0 else None,
        errors=tuple(sorted(errors.items(), key=lambda kv: (-kv[1], kv[0]))),
        longest_outage=longest_outage(samples, start, end, t0),
        longest_stall=longest_stall(samples, start, end, t0),
        raw_latency_p50_s=r50,
        raw_latency_p99_s=r99,
        operation=operation,
    )


def phase_with_operations(name: str, samples: Sequence[Sample], start: float, end: float, t0: float,
                          operations: Sequence[str], intervals: Mapping[str | None, float | None],
                          latency_of: LatencyOf | None = None) -> PhaseMetrics:
    """A phase's metrics over every request, with one entry per operation in `operations` (an
    operation that sent nothing in this phase is listed with 0 requests: unknown, not good).
    `intervals[None]` is the expected interval of all requests, `intervals[op]` an operation's.
    `latency_of(op, interval)`: the phase's latency from the run's histograms."""
    by_op: dict[str, list[Sample]] = {op: [] for op in operations}
    for s in samples:
        by_op.setdefault(s.name, []).append(s)

    def lat(op: str | None) -> tuple[Dist, Dist] | None:
        return None if latency_of is None else latency_of(op, intervals.get(op))

    ops = tuple(phase_metrics(name, by_op[op], start, end, t0, intervals.get(op), operation=op,
                              latency=lat(op)) for op in operations)
    whole = phase_metrics(name, samples, start, end, t0, intervals.get(None), latency=lat(None))
    return dataclasses.replace(whole, operations=ops)


def longest_outage(samples: Sequence[Sample], start: float, end: float, t0: float | None = None) -> Outage | None:
    """The longest interval in [start, end] with no success (see module docstring).

    Samples must be those that started in [start, end]; offsets are relative to `t0`
    (default `start`). None when the interval is empty or no request was sent in it: an
    outage measured over nothing is unknown, not "the whole span" (all requests failing is).
    """
    if end <= start or not samples:
        return None
    origin = start if t0 is None else t0
    best = (0.0, start, start)
    seen_until = start          # latest moment the system was last seen answering
    for s in sorted((s for s in samples if s.ok), key=lambda s: s.t):
        gap = s.t - seen_until
        if gap > best[0]:
            best = (gap, seen_until, s.t)
        seen_until = max(seen_until, min(s.t + s.latency_s, end))
    tail = end - seen_until
    if tail > best[0]:
        best = (tail, seen_until, end)
    return Outage(duration_s=best[0], start_s=best[1] - origin, end_s=best[2] - origin)
