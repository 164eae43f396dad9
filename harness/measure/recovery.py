"""What each fault is charged with: its requests, its error window, its time to recover.

The definitions (attribution, error window, time to recover) are written once, in
docs/results-schema.md ("How the numbers are defined"); this module implements them. In short:
a fault's span runs from when the harness *issued* it (`FaultEvent.issued_t`, before it was seen
to take effect at `injected_t`) to when the next fault was issued; it is charged with every
request in flight at or after that moment and started before the span ends, so failures that
land while a kill or a partition is still landing are its own; time to recover is where the
sliding recovery windows over those requests meet the bar for good.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Sequence

from harness.measure.timeline import Timeline
from harness.model import Assertion, FaultEvent, Sample

RECOVERY_STEP_S = 0.1
DEFAULT_RECOVERY_AVAILABILITY = 0.99


@dataclass(frozen=True)
class ErrorWindow:
    first_s: float              # offsets relative to t0
    last_s: float
    failures: int

    @property
    def duration_s(self) -> float:
        return self.last_s - self.first_s


@dataclass(frozen=True)
class FaultRecovery:
    fault: str
    recovered: bool
    time_to_recover_s: float | None     # None when not recovered before the span ended
    threshold: float                    # availability a window had to meet
    window_s: float


@dataclass(frozen=True)
class Span:
    """A fault's span on the run's clock: [start, end)."""

    fault: FaultEvent
    start: float
    end: float


def fault_start(f: FaultEvent) -> float:
    """When a fault may start doing damage: when it was issued (injected_t if not recorded)."""
    return f.issued_t if f.issued_t is not None else f.injected_t


def spans(faults: Sequence[FaultEvent], t_end: float) -> list[Span]:
    """Each fault's span, in order of issue: until the next one is issued, or t_end."""
    ordered = sorted(faults, key=fault_start)
    out = []
    for k, f in enumerate(ordered):
        end = fault_start(ordered[k + 1]) if k + 1 < len(ordered) else t_end
        out.append(Span(f, fault_start(f), max(end, fault_start(f))))
    return out


def charged(timeline: Timeline, span: Span, operation: str | None = None) -> list[Sample]:
    """The requests a fault is charged with (see module docstring), sorted by start."""
    candidates = timeline.between(span.start - timeline.max_latency_s, span.end)
    return [s for s in candidates if s.t + s.latency_s >= span.start
            and (operation is None or s.name == operation)]


def error_window(requests: Sequence[Sample], t0: float) -> ErrorWindow | None:
    """First to last start of the failures among `requests` (sorted by start); None if none failed."""
    failed = [s for s in requests if not s.ok]
    return ErrorWindow(failed[0].t - t0, failed[-1].t - t0, sum(s.weight for s in failed)) if failed else None


def recovery_bar(slo: Sequence[Assertion], operation: str | None = None) -> Assertion:
    """The availability a recovery window must meet: the SLO's for this operation, else the
    SLO's for every request, else >= 99%. Phase-scoped assertions do not set it (they judge
    one phase, not what "recovered" means)."""
    plain = [a for a in slo if a.metric == "availability" and a.phase is None]
    for a in plain:
        if operation is not None and a.operation == operation:
            return a
    for a in plain:
        if a.operation is None:
            return a
    return Assertion("availability", ">=", DEFAULT_RECOVERY_AVAILABILITY, ">= 99%")


def time_to_recover(requests: Sequence[Sample], span: Span, window_s: float, bar: Assertion,
                    step_s: float = RECOVERY_STEP_S) -> FaultRecovery:
    """Time to recover of one fault over the requests it is charged with (docs/results-schema.md):
    windows of `window_s`, `step_s` apart from the span's start, each request placed at its start
    or the span's start if earlier; TTR is the start of the first window from which every window
    meets `bar` (an empty window does not: nothing answered)."""
    name = span.fault.fault
    windows = int((span.end - span.start - window_s) / step_s + 1e-9) + 1
    if windows <= 0:
        return FaultRecovery(name, False, None, bar.threshold, window_s)
    placed = sorted((max(s.t, span.start), s.ok, s.weight) for s in requests)
    times = [t for t, _, _ in placed]
    ok_prefix, n_prefix = [0], [0]
    for _, ok, w in placed:         # weighted: stand-ins of a long run's quiet steps
        ok_prefix.append(ok_prefix[-1] + (w if ok else 0))
        n_prefix.append(n_prefix[-1] + w)
    last_bad = -1
    for k in range(windows):
        a = span.start + k * step_s
        i, j = bisect.bisect_left(times, a), bisect.bisect_left(times, a + window_s)
        n, good = n_prefix[j] - n_prefix[i], ok_prefix[j] - ok_prefix[i]
        if not n or not bar.holds(good / n):
            last_bad = k
    if last_bad == windows - 1:
        return FaultRecovery(name, False, None, bar.threshold, window_s)
    return FaultRecovery(name, True, round((last_bad + 1) * step_s, 6), bar.threshold, window_s)
