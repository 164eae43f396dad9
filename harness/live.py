"""Live view of the request stream: current rate and error rate, and the abort_if rule.

Fed in batches by the orchestrator's loop (never per request from another thread), it keeps
only the last few seconds of (t, ok) pairs.
"""

from __future__ import annotations

from collections import deque
from typing import Iterable

from typing import TYPE_CHECKING

from harness.model.record import Sample

if TYPE_CHECKING:
    from harness.model.experiment import AbortRule

RATE_WINDOW_S = 1.0
MIN_ABORT_SAMPLES = 20  # do not abort on a handful of requests


class LiveStats:
    def __init__(self, abort: "AbortRule | None"):
        self.abort = abort
        self._keep_s = max(RATE_WINDOW_S, abort.over_s if abort else 0.0)
        self._window: deque[tuple[float, bool]] = deque()
        self.total = 0
        self.failed = 0

    def add(self, samples: Iterable[Sample]) -> None:
        for s in samples:
            self._window.append((s.t, s.ok))
            self.total += 1
            self.failed += not s.ok

    def _trim(self, now: float) -> None:
        while self._window and self._window[0][0] < now - self._keep_s:
            self._window.popleft()

    def rates(self, now: float) -> tuple[float, float]:
        """(requests/s, error ratio) over the last second."""
        self._trim(now)
        recent = [ok for t, ok in self._window if t >= now - RATE_WINDOW_S]
        if not recent:
            return 0.0, 0.0
        return len(recent) / RATE_WINDOW_S, recent.count(False) / len(recent)

    def abort_reason(self, now: float, t0: float) -> str | None:
        """Why abort_if fires now, or None. Judged only once a full window of load exists."""
        if self.abort is None or now - t0 < self.abort.over_s:
            return None
        self._trim(now)
        window = [ok for t, ok in self._window if t >= now - self.abort.over_s]
        if len(window) < MIN_ABORT_SAMPLES:
            return None
        availability = window.count(True) / len(window)
        if availability < self.abort.availability_below:
            return (
                f"abort_if: availability {availability:.2%} over the last {self.abort.over_s:g} s "
                f"is below {self.abort.availability_below:.2%}"
            )
        return None
