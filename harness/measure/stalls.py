"""Stalls: how long users waited with nothing succeeding, whatever their requests did later.

An outage (harness.measure.metrics.longest_outage) ends when the next successful request
*starts*. That misses a hang: a container paused for 2 s behind a 5 s request timeout holds
every request it gets and then answers them all, late but successfully, so successes keep
starting inside the hole and the outage reads a few milliseconds. A stall ends only when a
request *completes* successfully:

    longest stall = the longest interval in which requests were in flight (or being tried)
                    and none completed successfully.

Measured between consecutive successful completions: from the last successful completion (or,
when nothing was in flight then, the start of the first request after it) to the next
successful completion. The edges count like the outage's: from the first request to the first
success, and from the last success to the end of the interval when requests were still sent
after it. A request that fails fast while a link is down is "being tried", so a 2 s link down
still measures 2 s; an interval with no request at all (no demand) is not a stall.

Definition also in docs/results-schema.md.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Sequence

from harness.model import Sample


@dataclass(frozen=True)
class Stall:
    duration_s: float
    start_s: float              # offsets relative to t0
    end_s: float


def longest_stall(samples: Sequence[Sample], start: float, end: float, t0: float | None = None) -> Stall | None:
    """The longest stall in [start, end] among `samples` (those that started in it).

    None when there is nothing to judge (an empty interval or no request): unknown, not 0.
    Completions after `end` are clipped to it (the interval is all we look at).
    """
    if end <= start or not samples:
        return None
    origin = start if t0 is None else t0
    # Every request's [start, completion], sorted by completion, with the earliest start among
    # the requests that complete at or after each position: "what was in flight after c".
    spans = sorted(((s.t, min(s.t + s.latency_s, end), s.ok) for s in samples), key=lambda x: x[1])
    ends = [e for _, e, _ in spans]
    first_start_after = [0.0] * (len(spans) + 1)
    first_start_after[-1] = float("inf")
    for i in range(len(spans) - 1, -1, -1):
        first_start_after[i] = min(spans[i][0], first_start_after[i + 1])

    def in_flight_from(c: float) -> float:
        """Earliest start of a request still in flight after c (inf when none is)."""
        return first_start_after[bisect.bisect_right(ends, c)]

    best = (0.0, start, start)
    seen = None                 # the last successful completion so far
    for t, e, ok in spans:
        if not ok:
            continue
        left = in_flight_from(seen) if seen is not None else min(x[0] for x in spans)
        left = max(left, seen) if seen is not None else left
        if e - left > best[0]:
            best = (e - left, left, e)
        seen = e
    # The tail: requests sent after the last success that never saw one.
    tail_from = in_flight_from(seen) if seen is not None else min(x[0] for x in spans)
    if tail_from < float("inf"):
        left = max(tail_from, seen) if seen is not None else tail_from
        if end - left > best[0]:
            best = (end - left, left, end)
    return Stall(duration_s=best[0], start_s=best[1] - origin, end_s=best[2] - origin)
