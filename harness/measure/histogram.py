"""Latency per time step in HDR histograms: bounded memory, exact merges, percentiles within 0.1%.

The bucket layout, `pack`/`unpack` and the wire format here are what a run uses, through
harness.measure.store (per step, operation and load process) and harness.measure.latency
(percentiles with each bucket's exact extremes); `StepHistograms` below is the first,
stand-alone form (one histogram per step, no operations), kept for
benchmarks/histogram_memory.py's comparison.

A raw list of samples grows with every request (an hour at 10,000 requests/s is 36 million
`Sample`s, several GB), and percentiles from several load processes cannot be averaged. An HDR
histogram counts values in buckets whose width is a fixed fraction of the value, so

* its size depends on the range and precision, not on how many values it holds;
* two histograms with the same layout merge exactly: counts add, and the merged percentiles are
  those of the union of the values (what averaging percentiles gets wrong);
* every value it reports is within 10^-SIGNIFICANT_FIGURES (relatively) of a recorded value.

Why the `hdrhistogram` package (HdrHistogram_py, the HdrHistogram project's Python port): the
layout, the compact wire format (`encode`, zlib + LEB128, implemented in C), decoding and adding
are the library's, so a histogram shipped from another process or another tool in that format
merges exactly. Recording goes through the same bucket layout computed inline (the library's
`record_value` costs ~20 µs a value in pure Python, too much at 10,000 requests/s;
tests/unit/test_measure_histogram.py checks the inline index against the library's).

`StepHistograms` keeps, per STEP_S step of a run (by request *start*, as everywhere else): the
number of successes and failures and a histogram of the successes' latencies. Steps stay open
(sparse counts) while samples for them can still arrive (`close_after_s`: a sample is delivered
when the request completes, up to a request timeout after it started); then they are encoded
(a few hundred bytes) and their p50/p99 kept. Every BLOCK_STEPS closed steps are also merged
into a block, so a percentile over an hour merges ~360 blocks, not 36,000 steps.

Percentiles are nearest-rank (the smallest value with at least q% of values <= it), reported
as the highest value equivalent to the bucket: never lower than the exact value, at most
10^-SIGNIFICANT_FIGURES above it.
"""

from __future__ import annotations

import math
import zlib
from array import array
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Iterable, Sequence

from hdrh.histogram import HdrHistogram

LOWEST_US = 1                       # microsecond resolution at the bottom
HIGHEST_US = 600 * 1_000_000        # ten minutes: past any request timeout (<= 60 s); clamped beyond
SIGNIFICANT_FIGURES = 3             # bucket width <= 1/1024 of the value: percentiles within 0.1%
STEP_S = 0.1                        # the report timeline's resolution (harness.measure.timeline)
BLOCK_STEPS = 100                   # 10 s blocks of merged steps for long-range percentiles
CLOSE_AFTER_S = 5.0                 # default; callers pass request_timeout + delivery slack


def new_histogram() -> HdrHistogram:
    """An empty histogram in the one layout every histogram here shares (so merges are exact)."""
    return HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_FIGURES)


_LAYOUT = new_histogram()
_UNIT_MAG = _LAYOUT.unit_magnitude
_HALF_MAG = _LAYOUT.sub_bucket_half_count_magnitude
_HALF = _LAYOUT.sub_bucket_half_count
_MASK = _LAYOUT.sub_bucket_mask
_SHIFT = _UNIT_MAG + _HALF_MAG + 1
COUNTS_LEN = _LAYOUT.counts_len


def to_us(latency_s: float) -> int:
    """Seconds → whole microseconds, clamped to the histogram's range."""
    us = int(latency_s * 1_000_000 + 0.5)
    return LOWEST_US if us < LOWEST_US else HIGHEST_US if us > HIGHEST_US else us


def index_of(us: int) -> int:
    """The counts index of a value in microseconds: the library's layout (its `_counts_index_for`)
    with the leading-zero count done by `int.bit_length` instead of `bin()`."""
    bucket = (us | _MASK).bit_length() - _SHIFT
    sub = us >> (bucket + _UNIT_MAG)
    return ((bucket + 1) << _HALF_MAG) + sub - _HALF


def value_of(index: int) -> int:
    """The highest value (µs) equivalent to a counts index: what a percentile reports."""
    return _LAYOUT.get_highest_equivalent_value(_LAYOUT.get_value_from_index(index))


Counts = dict[int, int]     # sparse: counts index → count


def percentiles_us(counts: Counts, qs: Sequence[float]) -> list[int | None]:
    """Nearest-rank percentiles (µs) of sparse counts; None over nothing."""
    total = sum(counts.values())
    if total == 0:
        return [None for _ in qs]
    ranks = sorted((min(max(math.ceil(round(q * total / 100.0, 9)), 1), total), i) for i, q in enumerate(qs))
    out: list[int | None] = [None] * len(qs)
    seen = 0
    r = 0
    for index in sorted(counts):
        seen += counts[index]
        while r < len(ranks) and seen >= ranks[r][0]:
            out[ranks[r][1]] = value_of(index)
            r += 1
        if r == len(ranks):
            break
    return out


def pack(counts: Counts) -> bytes:
    """Sparse counts → a compact blob for keeping in memory: index deltas (uint16: the layout
    has fewer than 65,536 buckets) and counts (uint32), zlib'd. A 100 ms step of 1,000
    requests takes a few hundred bytes; unpacking is all C (no walk over every bucket)."""
    idx = sorted(counts)
    deltas = array("H", [idx[0]] + [b - a for a, b in zip(idx, idx[1:])]) if idx else array("H")
    cnt = array("I", [counts[i] for i in idx])
    return zlib.compress(deltas.tobytes() + cnt.tobytes(), 1)


def unpack(blob: bytes) -> Counts:
    raw = zlib.decompress(blob)
    n = len(raw) // 6
    deltas, cnt = array("H"), array("I")
    deltas.frombytes(raw[:2 * n])
    cnt.frombytes(raw[2 * n:])
    return dict(zip(accumulate(deltas), cnt))


def encode(counts: Counts) -> bytes:
    """Sparse counts → the library's wire format (HdrHistogram V2, compressed, base64): what
    another process or another HdrHistogram tool can decode and add."""
    h = new_histogram()
    arr = h.counts
    for index, n in counts.items():
        arr[index] += n
    if counts:
        h.set_internal_tacking_values(min(counts), max(counts), sum(counts.values()))
    return h.encode()


def decode(blob: bytes | str) -> Counts:
    """The wire format → sparse counts (a histogram in our layout, from any process)."""
    h = HdrHistogram.decode(blob)
    if (h.unit_magnitude, h.sub_bucket_half_count_magnitude) != (_UNIT_MAG, _HALF_MAG):
        raise ValueError("histogram layout differs: cannot merge exactly")
    words = array("Q")
    words.frombytes(bytes(h.counts))       # one copy in C; indexing the ctypes array is slow
    return {i: n for i, n in enumerate(words[:COUNTS_LEN]) if n}


def merge_into(into: Counts, other: Counts) -> Counts:
    """Exact merge: counts add."""
    for index, n in other.items():
        into[index] = into.get(index, 0) + n
    return into


@dataclass
class _Open:
    ok: int = 0
    failed: int = 0
    counts: Counts = field(default_factory=dict)


@dataclass(frozen=True)
class ClosedStep:
    ok: int
    failed: int
    p50_us: int | None
    p99_us: int | None
    max_us: int | None
    blob: bytes | None              # pack()ed latency counts; None: no successful request in the step


@dataclass(frozen=True)
class StepSummary:
    """One step as the report timeline shows it (the shape of harness.measure.timeline.Step)."""

    offset_s: float
    ok: int
    failed: int
    p50_s: float | None
    p99_s: float | None


class StepHistograms:
    """Per-step counts and latency histograms of one run, from `t0` on (see module docstring)."""

    def __init__(self, t0: float, *, step_s: float = STEP_S, close_after_s: float = CLOSE_AFTER_S,
                 block_steps: int = BLOCK_STEPS):
        self.t0 = t0
        self.step_s = step_s
        self.close_lag = max(1, int(math.ceil(close_after_s / step_s)))
        self.block_steps = block_steps
        self._open: dict[int, _Open] = {}
        self._closed: dict[int, ClosedStep] = {}
        self._blocks: dict[int, bytes | None] = {}     # block → merged blob (None: no success)
        self._stale_blocks: set[int] = set()
        self._newest = -1
        self._next_block = 0                           # blocks below this one are built
        self.overall: Counts = {}                      # every success so far, bounded by COUNTS_LEN
        self.requests = 0
        self.late = 0                                  # samples that reopened a closed step

    # ─── recording ───

    def record(self, t: float, latency_s: float, ok: bool) -> None:
        k = int((t - self.t0) // self.step_s)
        if k < 0:
            k = 0
        step = self._open.get(k)
        if step is None:
            step = self._open[k] = self._reopen(k) if k in self._closed else _Open()
        self.requests += 1
        if ok:
            step.ok += 1
            i = index_of(to_us(latency_s))
            step.counts[i] = step.counts.get(i, 0) + 1
        else:
            step.failed += 1
        if k > self._newest:
            self._newest = k
            self._close_before(k - self.close_lag)

    def record_many(self, samples: Iterable) -> None:
        """Samples with `t`, `latency_s`, `ok` (harness.model.Sample)."""
        for s in samples:
            self.record(s.t, s.latency_s, s.ok)

    def _reopen(self, k: int) -> _Open:
        # A sample later than close_after_s: rare; correct at the price of a decode.
        self.late += 1
        c = self._closed.pop(k)
        self._stale_blocks.add(k // self.block_steps)
        self._subtract_overall(c)
        return _Open(c.ok, c.failed, unpack(c.blob) if c.blob else {})

    def _subtract_overall(self, c: ClosedStep) -> None:
        if c.blob:
            for i, n in unpack(c.blob).items():
                left = self.overall[i] - n
                if left:
                    self.overall[i] = left
                else:
                    del self.overall[i]

    def _close_before(self, limit: int) -> None:
        """Close the steps below `limit`; build the blocks that are then complete."""
        for k in [k for k in self._open if k < limit]:
            self._close(k)
        while (self._next_block + 1) * self.block_steps <= limit:
            self._build_block(self._next_block)
            self._next_block += 1
        for b in [b for b in self._stale_blocks if b < self._next_block and
                  not any(k // self.block_steps == b for k in self._open)]:
            self._build_block(b)

    def _close(self, k: int) -> None:
        step = self._open.pop(k)
        p50, p99, top = percentiles_us(step.counts, (50, 99, 100))
        self._closed[k] = ClosedStep(step.ok, step.failed, p50, p99, top,
                                     pack(step.counts) if step.counts else None)
        merge_into(self.overall, step.counts)

    def _build_block(self, b: int) -> None:
        counts: Counts = {}
        first = b * self.block_steps
        for k in range(first, first + self.block_steps):
            c = self._closed.get(k)
            if c is not None and c.blob:
                merge_into(counts, unpack(c.blob))
        self._blocks[b] = pack(counts) if counts else None
        self._stale_blocks.discard(b)

    def close_all(self) -> None:
        """The run is over: close every open step (nothing more will arrive)."""
        for k in sorted(self._open):
            self._close(k)
        for b in sorted({k // self.block_steps for k in self._closed}):
            if b not in self._blocks or b in self._stale_blocks:
                self._build_block(b)
        self._next_block = max(self._next_block, max(self._blocks, default=-1) + 1)

    # ─── merging other processes ───

    def merge(self, other: "StepHistograms") -> None:
        """Add another recorder of the same run (same t0 and step): exact, step by step."""
        if (other.t0, other.step_s) != (self.t0, self.step_s):
            raise ValueError("step histograms of different runs or steps cannot be merged")
        other.close_all()
        self.close_all()
        for k, c in other._closed.items():
            mine = self._closed.pop(k, None)
            counts = unpack(c.blob) if c.blob else {}
            ok, failed = c.ok, c.failed
            if mine is not None:
                merge_into(counts, unpack(mine.blob) if mine.blob else {})
                ok, failed = ok + mine.ok, failed + mine.failed
            p50, p99, top = percentiles_us(counts, (50, 99, 100))
            self._closed[k] = ClosedStep(ok, failed, p50, p99, top, pack(counts) if counts else None)
            self._stale_blocks.add(k // self.block_steps)
        merge_into(self.overall, other.overall)
        self.requests += other.requests
        self._newest = max(self._newest, other._newest)
        self.close_all()

    def to_wire(self) -> dict:
        """Everything recorded, for another process: per step counts and the library's format."""
        self.close_all()
        return {"t0": self.t0, "step_s": self.step_s, "requests": self.requests,
                "steps": {k: [c.ok, c.failed, encode(unpack(c.blob)).decode("ascii") if c.blob else None]
                          for k, c in self._closed.items()}}

    @classmethod
    def from_wire(cls, doc: dict, close_after_s: float = CLOSE_AFTER_S) -> "StepHistograms":
        sh = cls(doc["t0"], step_s=doc["step_s"], close_after_s=close_after_s)
        for k, (ok, failed, blob) in doc["steps"].items():
            counts = decode(blob) if blob else {}
            p50, p99, top = percentiles_us(counts, (50, 99, 100))
            sh._closed[int(k)] = ClosedStep(ok, failed, p50, p99, top, pack(counts) if counts else None)
            merge_into(sh.overall, counts)
            sh._newest = max(sh._newest, int(k))
        sh.requests = doc["requests"]
        sh.close_all()
        return sh

    # ─── reading ───

    def counts_between(self, start: float, end: float) -> Counts:
        """Merged latency counts of successes in the steps that start in [start, end)."""
        a = max(0, int(math.ceil((start - self.t0) / self.step_s - 1e-9)))
        b = int(math.ceil((end - self.t0) / self.step_s - 1e-9))
        out: Counts = {}
        k = a
        while k < b:
            blk = k // self.block_steps
            if k % self.block_steps == 0 and k + self.block_steps <= b and blk in self._blocks \
                    and blk not in self._stale_blocks:
                blob = self._blocks[blk]
                if blob:
                    merge_into(out, unpack(blob))
                k += self.block_steps
                continue
            c = self._closed.get(k)
            if c is not None and c.blob:
                merge_into(out, unpack(c.blob))
            elif k in self._open:
                merge_into(out, self._open[k].counts)
            k += 1
        return out

    def percentiles(self, start: float, end: float, qs: Sequence[float]) -> list[float | None]:
        """Nearest-rank percentiles (seconds) of the successes that started in the steps of
        [start, end)."""
        return [None if v is None else v / 1_000_000 for v in percentiles_us(self.counts_between(start, end), qs)]

    def steps(self, t_end: float) -> tuple[StepSummary, ...]:
        """The downsampled timeline from t0 to t_end (call close_all() first)."""
        n = max(0, int(math.ceil((t_end - self.t0) / self.step_s - 1e-9)))
        out = []
        for k in range(n):
            c = self._closed.get(k)
            if c is None:
                out.append(StepSummary(round(k * self.step_s, 6), 0, 0, None, None))
                continue
            out.append(StepSummary(round(k * self.step_s, 6), c.ok, c.failed,
                                   None if c.p50_us is None else c.p50_us / 1_000_000,
                                   None if c.p99_us is None else c.p99_us / 1_000_000))
        return tuple(out)

    def nbytes(self) -> int:
        """Roughly what the closed steps and blocks hold (their encoded histograms)."""
        return sum(len(c.blob or b"") + 120 for c in self._closed.values()) + \
            sum(len(b or b"") + 60 for b in self._blocks.values())


__all__ = ["StepHistograms", "StepSummary", "ClosedStep", "new_histogram", "to_us", "index_of", "value_of",
           "percentiles_us", "encode", "decode", "pack", "unpack", "merge_into", "SIGNIFICANT_FIGURES", "STEP_S"]
