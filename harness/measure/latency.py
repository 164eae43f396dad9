"""Latency distributions as HDR histogram counts: what every percentile of a run is read from.

A `Dist` is sparse counts in the layout of harness.measure.histogram (hdrhistogram's buckets,
3 significant figures) plus, per bucket, the smallest and largest exact value recorded into it
(`Reps`, shared by every distribution of one operation in a run). A percentile is the bucket of
its nearest rank, reported as

* the exact value, when every value the run put in that bucket was the same (a known-answer
  test's 0.5 s is 0.5 s, not 0.500255 s);
* else the largest exact value seen in the bucket: never below the exact percentile, at most
  one bucket width (1/1024 of the value) above it.

Merging is exact (counts add), so a phase, a fault window, a 100 ms step or several load
processes are all the same operation on the same counts. The closed-loop coordinated-omission
correction (harness.measure.omission) is applied to counts, bucket by bucket, with the bucket's
representative value standing for its requests: what HdrHistogram's
`copyCorrectedForCoordinatedOmission` does. So a corrected ("felt") percentile is not bound to
be at or above exact: a bucket's representative adds a few more synthesized values than each
request's own latency would, some of them below the percentile, and the rank moves. Measured
over an hour at 10 000 requests/s (benchmarks/histogram_memory.py --run): one value of 48 read
below exact, by 0.016 % (a p95 as felt); the worst error either way 0.119 %.
"""

from __future__ import annotations

import math
from array import array
from typing import Iterable, Sequence

from harness.measure.histogram import Counts, index_of, merge_into, to_us, value_of
from harness.measure.omission import corrected, due_latency
from harness.model import Sample

Reps = dict[int, list[float]]       # bucket index → [smallest, largest] exact value recorded


def note(reps: Reps, index: int, value_s: float) -> None:
    r = reps.get(index)
    if r is None:
        reps[index] = [value_s, value_s]
    elif value_s < r[0]:
        r[0] = value_s
    elif value_s > r[1]:
        r[1] = value_s


def bucket(value_s: float) -> int:
    return index_of(to_us(value_s))


class Dist:
    """Counts of latencies (seconds) in HDR buckets, with the run's per-bucket exact values."""

    __slots__ = ("counts", "reps")

    def __init__(self, counts: Counts | None = None, reps: Reps | None = None):
        self.counts: Counts = counts if counts is not None else {}
        self.reps: Reps = reps if reps is not None else {}

    def add(self, value_s: float, n: int = 1) -> None:
        i = bucket(value_s)
        self.counts[i] = self.counts.get(i, 0) + n
        note(self.reps, i, value_s)

    def merge(self, counts: Counts) -> "Dist":
        merge_into(self.counts, counts)
        return self

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def value(self, index: int) -> float:
        r = self.reps.get(index)
        if r is None:
            return value_of(index) / 1_000_000
        return r[0] if r[0] == r[1] else r[1]

    def percentiles(self, qs: Sequence[float]) -> list[float | None]:
        """Nearest-rank percentiles (seconds); None over nothing (unknown, never 0)."""
        total = self.total
        if total == 0:
            return [None for _ in qs]
        for q in qs:
            if not 0.0 <= q <= 100.0:
                raise ValueError(f"percentile {q} outside [0, 100]")
        # the same rank as harness.measure.timeline.percentile (rounded against float noise)
        ranks = sorted((min(max(math.ceil(round(q * total / 100.0, 9)), 1), total), k) for k, q in enumerate(qs))
        out: list[float | None] = [None] * len(qs)
        seen = r = 0
        for index in sorted(self.counts):
            seen += self.counts[index]
            while r < len(ranks) and seen >= ranks[r][0]:
                out[ranks[r][1]] = self.value(index)
                r += 1
            if r == len(ranks):
                break
        return out

    def corrected(self, interval_s: float | None, correction: "Correction | None" = None) -> "Dist":
        """The closed-loop correction applied to these counts (a new Dist). `correction`: a
        cache shared by the many distributions of one run (its steps, phases)."""
        if interval_s is None or interval_s <= 0:
            return self
        c = correction if correction is not None and correction.interval_s == interval_s \
            else Correction(interval_s)
        out = Dist(reps=c.reps)
        counts = out.counts
        for index, n in self.counts.items():
            dests, mults = c.expand(index, self.value(index))
            for dest, mult in zip(dests, mults):
                counts[dest] = counts.get(dest, 0) + n * mult
        return out


class Correction:
    """The expected-interval correction of one value, bucketed once and reused: a run's 36,000
    steps hold the same buckets over and over. The corrected values' exact extremes per bucket
    go to one shared `reps` (a superset for any one distribution: still never below exact)."""

    __slots__ = ("interval_s", "reps", "_cache")

    def __init__(self, interval_s: float):
        self.interval_s = interval_s
        self.reps: Reps = {}
        self._cache: dict[float, tuple[array, array]] = {}

    def expand(self, index: int, value_s: float) -> tuple[array, array]:
        """(destination buckets, how many of the corrected values land in each) for one value.
        Kept as two arrays: a 2 s value at a 6 ms interval expands to ~330 buckets, and as
        tuples of pairs the cache of an hour's slow tail held ~100 MB (the peak of evaluate)."""
        got = self._cache.get(value_s)
        if got is None:
            by: dict[int, int] = {}
            for v in corrected(value_s, self.interval_s):
                i = bucket(v)
                by[i] = by.get(i, 0) + 1
                note(self.reps, i, v)
            got = self._cache[value_s] = (array("i", by.keys()), array("I", by.values()))
        return got


def felt_dist(samples: Iterable[Sample], interval_s: float | None) -> tuple[Dist, Dist]:
    """(felt, raw) distributions of the successes among `samples`: felt counts open-loop
    requests from their due time and, closed loop, corrects by `interval_s`."""
    raw, due = Dist(), Dist()
    any_due = False
    for s in samples:
        if not s.ok:
            continue
        w = s.weight
        raw.add(s.latency_s, w)
        if s.due_t is not None:
            any_due = True
        due.add(due_latency(s), w)
    if any_due:
        return due, raw
    return raw.corrected(interval_s), raw
