"""Samples ordered in time, with the cuts every metric needs.

A `Timeline` holds a run's samples sorted by start time (`Sample.t`) plus prefix sums, so the
number of requests and successes in any interval is two binary searches away. Counts are
weighted (`Sample.weight`): on a long run the samples are harness.measure.store's, where a
quiet step is two stand-ins carrying its counts. `steps` here is the raw path; a run's report
timeline comes from the store's histograms. Intervals are
half-open, `[start, end)`, on the same monotonic clock as `Sample.t`.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from typing import Sequence

from harness.measure.omission import felt_latencies
from harness.model import Sample

STEP_S = 0.1    # the downsampled timeline's resolution (reports, compare)


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile: the smallest value with at least q% of values <= it.

    `sorted_values` must be ascending. Over nothing the answer is unknown (None), never 0.
    p100 is the maximum; p0 is the minimum.
    """
    n = len(sorted_values)
    if n == 0:
        return None
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile {q} outside [0, 100]")
    # ceil(q/100 * n), rounded first so float noise (990.0000000001) cannot push p99 of 1000
    # values to rank 991.
    rank = math.ceil(round(q * n / 100.0, 9))
    rank = min(max(rank, 1), n)
    return sorted_values[rank - 1]


@dataclass(frozen=True)
class Step:
    """One STEP_S bucket of the downsampled timeline; `offset_s` is its start relative to t0."""

    offset_s: float
    ok: int
    failed: int
    p50_s: float | None         # over the step's successful requests, as users felt them
    p99_s: float | None         # (corrected for coordinated omission, harness.measure.omission)


class Timeline:
    """A run's samples sorted by start time, with O(log n) interval counts."""

    def __init__(self, samples: Sequence[Sample]):
        self.samples: tuple[Sample, ...] = tuple(sorted(samples, key=lambda s: s.t))
        self.times: list[float] = [s.t for s in self.samples]
        ok_prefix, n_prefix = [0], [0]
        for s in self.samples:          # weighted: a stand-in counts for the requests it holds
            ok_prefix.append(ok_prefix[-1] + (s.weight if s.ok else 0))
            n_prefix.append(n_prefix[-1] + s.weight)
        self._ok_prefix = ok_prefix
        self._n_prefix = n_prefix
        self.max_latency_s: float = max((s.latency_s for s in self.samples), default=0.0)

    def __len__(self) -> int:
        return len(self.samples)

    def _bounds(self, start: float, end: float) -> tuple[int, int]:
        return bisect.bisect_left(self.times, start), bisect.bisect_left(self.times, end)

    def between(self, start: float, end: float) -> tuple[Sample, ...]:
        """Samples that *started* in [start, end)."""
        i, j = self._bounds(start, end)
        return self.samples[i:j]

    def counts(self, start: float, end: float) -> tuple[int, int]:
        """(requests, successes) that started in [start, end)."""
        i, j = self._bounds(start, end)
        return self._n_prefix[j] - self._n_prefix[i], self._ok_prefix[j] - self._ok_prefix[i]

    def operations(self) -> tuple[str, ...]:
        """The request names seen, sorted."""
        return tuple(sorted({s.name for s in self.samples}))

    def only(self, operation: str) -> "Timeline":
        """The samples of one operation, as a Timeline of their own."""
        return Timeline([s for s in self.samples if s.name == operation])

    def steps(self, t0: float, t_end: float, step_s: float = STEP_S,
              interval_s: float | None = None) -> tuple[Step, ...]:
        """Downsample [t0, t_end] into buckets of `step_s`; the last bucket also takes t_end.
        `interval_s`: a closed-loop user's expected interval, for the latency correction."""
        out: list[Step] = []
        if t_end <= t0:
            return ()
        n = max(1, int(-(-(t_end - t0) // step_s)))
        for k in range(n):
            a = t0 + k * step_s
            b = t_end + 1e-9 if k == n - 1 else t0 + (k + 1) * step_s
            chunk = self.between(a, b)
            ok = sum(s.weight for s in chunk if s.ok)
            lat = sorted(felt_latencies(chunk, interval_s))
            out.append(Step(round(k * step_s, 6), ok, sum(s.weight for s in chunk) - ok,
                            percentile(lat, 50), percentile(lat, 99)))
        return tuple(out)
