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
    # Every request's [start, completion], by completion, and the earliest start among the
    # requests from each position on: "the first request still in flight after position k".
    spans = sorted(((min(s.t + s.latency_s, end), s.t, s.ok) for s in samples))
    n = len(spans)
    first_start_from = [float("inf")] * (n + 1)
    for k in range(n - 1, -1, -1):
        first_start_from[k] = min(spans[k][1], first_start_from[k + 1])

    best = (0.0, start, start)
    seen: float | None = None       # the last successful completion so far
    after = 0                       # index of the first request completing after `seen`
    for k, (e, _, ok) in enumerate(spans):
        if not ok:
            continue
        if seen is None:
            left = first_start_from[0]
        else:
            while after < n and spans[after][0] <= seen:     # sorted: `after` only moves on
                after += 1
            left = max(seen, first_start_from[after])
        if e - left > best[0]:
            best = (e - left, left, e)
        seen, after = e, k + 1
    # The tail: requests sent after the last success that never saw one.
    if seen is None:
        left = first_start_from[0]
    else:
        while after < n and spans[after][0] <= seen:
            after += 1
        left = max(seen, first_start_from[after])
    if left < float("inf") and end - left > best[0]:
        best = (end - left, left, end)
    return Stall(duration_s=best[0], start_s=best[1] - origin, end_s=best[2] - origin)
