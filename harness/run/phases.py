"""A run's phases from its fault events: baseline, one window per fault, recovery.

A fault's window starts when the harness issued it (`FaultEvent.issued_t`), not when it was
seen to take effect: damage can land in between (a kill that lands before the Docker call
returns, a partition's first rules), and it belongs to the fault (harness.measure.recovery).
"""

from __future__ import annotations

from typing import Sequence

from harness.model.record import FaultEvent, Phase

RECOVERY_GRACE_S = 5.0   # the recovery phase starts this long after the last fault ended
MIN_RECOVERY_S = 2.0     # a shorter recovery phase is not recorded (steady state not judged on it)


def _start(e: FaultEvent) -> float:
    return e.issued_t if e.issued_t is not None else e.injected_t


def phases(events: Sequence[FaultEvent], t0: float, t_end: float, request_timeout_s: float) -> tuple[Phase, ...]:
    if not events:
        return (Phase("baseline", t0, t_end),)
    first = min(_start(e) for e in events)
    # Requests still in flight when the first fault is issued are its victims, not the
    # baseline's: the baseline ends one request timeout before the first fault.
    baseline_end = max(t0, first - request_timeout_s)
    out = [Phase("baseline", t0, baseline_end)]
    starts = sorted(_start(e) for e in events)
    for e in events:
        start = _start(e)
        if e.reverted_t is not None and e.reverted_t > e.injected_t:
            end = e.reverted_t
        else:  # an instantaneous fault's window runs until the next fault or the grace ends
            later = [s for s in starts if s > start]
            end = min([*later, e.injected_t + RECOVERY_GRACE_S, t_end])
        out.append(Phase(f"fault:{e.fault}", start, max(end, start)))
    last = max(p.end_t for p in out[1:])
    recovery_start = min(last + RECOVERY_GRACE_S, t_end)
    if t_end - recovery_start >= MIN_RECOVERY_S:  # a sliver of a phase proves nothing
        out.append(Phase("recovery", recovery_start, t_end))
    return tuple(out)
