"""Latency as users feel it: every request counted from when it was due (coordinated omission).

A load generator that waits for each answer before sending the next request (closed loop) sends
less exactly when the system is slow, so a slowdown produces few slow samples and the
percentiles barely move (Gil Tene's "coordinated omission"). Two corrections, by load mode:

* open loop (`Sample.due_t` set by the load generator): the request was due at `due_t` and sent
  at `t >= due_t` (later when every user was busy); its latency is `t - due_t + latency_s`, as
  wrk2 measures from each request's intended send time.
* closed loop (no `due_t`): HdrHistogram's expected-interval correction. Each user was expected
  to send a request every `interval_s` (its pace while the system was healthy: users over the
  baseline's request rate); a request that took `L >= 2 * interval_s` stood in the way of the
  requests its user would have sent meanwhile, which are counted too, as `L - interval_s`,
  `L - 2 * interval_s`, ... down to `interval_s` (`recordValueWithExpectedInterval`).

The correction applies to latency percentiles only (over successful requests); counts,
availability and outages use the requests that were really sent. Functions here take and return
plain values so that a histogram can be fed the same way (`record_corrected_value`).
"""

from __future__ import annotations

from typing import Iterable, Iterator

from harness.model import Sample

# A synthetic value per expected interval; beyond this many per request the stall is already
# far past any SLO, and the cap keeps a pathological interval (1 user at 10 000/s, one 60 s
# hang) from filling memory.
MAX_SYNTHETIC_PER_REQUEST = 10_000


def expected_interval(users: int, requests: int, length_s: float) -> float | None:
    """A closed-loop user's expected time between requests: `users / (requests / length_s)`.

    None when it cannot be known (no requests, an empty interval): then nothing is corrected."""
    if users <= 0 or requests <= 0 or length_s <= 0:
        return None
    return users * length_s / requests


def due_latency(s: Sample) -> float:
    """A request's latency counted from when it was due (open loop), else as measured."""
    if s.due_t is None:
        return s.latency_s
    return s.latency_s + max(0.0, s.t - s.due_t)


def corrected(value_s: float, interval_s: float | None) -> Iterator[float]:
    """`value_s`, then the values of the requests it held up (HdrHistogram's expected interval)."""
    yield value_s
    if interval_s is None or interval_s <= 0 or value_s <= interval_s:
        return
    missing = value_s - interval_s
    n = 0
    while missing >= interval_s and n < MAX_SYNTHETIC_PER_REQUEST:
        yield missing
        missing -= interval_s
        n += 1


def felt_latencies(samples: Iterable[Sample], interval_s: float | None) -> list[float]:
    """Latencies of the successful samples as users felt them (unsorted).

    Open-loop samples count from their due time; closed-loop samples, when `interval_s` is
    known, also stand for the requests they held up."""
    out: list[float] = []
    for s in samples:
        if not s.ok:
            continue
        if s.due_t is not None:
            out.append(due_latency(s))
        else:
            out.extend(corrected(s.latency_s, interval_s))
    return out
