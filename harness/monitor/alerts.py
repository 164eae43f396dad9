"""Following Alertmanager's alerts through a run: when each fired and when it resolved.

`AlertTracker` is a pure state machine fed one poll at a time (tests drive it with made-up
polls; `harness.monitor.monitor` drives it from a thread):

    tracker = AlertTracker(clock=WallClock())
    changes = tracker.observe(am.alerts(), now=time.monotonic())   # [Fired(...), Resolved(...)]
    tracker.missed(now)                                             # a poll that failed
    tracker.episodes()                                              # every alert seen, as episodes

An alert *fired* at its `startsAt` (the Prometheus evaluation at which its rule's `for:` was
met: Prometheus 2.42 sends that, not the moment it went pending); it *resolved* at the first
poll that no longer lists it (Alertmanager drops a resolved alert from its API at once, so our
poll interval is the precision of that edge). The same labels firing again after resolving is a
new episode (a new `startsAt`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Iterable, Union

from harness.model.monitoring import AlertEpisode
from harness.monitor.alertmanager import ActiveAlert
from harness.timestamps import WallClock


@dataclass(frozen=True)
class Fired:
    episode: AlertEpisode


@dataclass(frozen=True)
class Resolved:
    episode: AlertEpisode


Change = Union[Fired, Resolved]


class AlertTracker:
    def __init__(self, clock: WallClock | None = None):
        self.clock = clock or WallClock()
        self._open: dict[tuple[str, float], AlertEpisode] = {}   # (fingerprint, startsAt) → episode
        self._closed: list[AlertEpisode] = []
        self.first_poll_t: float | None = None
        self.last_poll_t: float | None = None
        self._failing_since: float | None = None
        self.gaps: list[tuple[float, float]] = []

    def observe(self, alerts: Iterable[ActiveAlert], now: float) -> list[Change]:
        """One successful poll at `now` (monotonic). Returns what changed, fired first."""
        if self._failing_since is not None:
            self.gaps.append((self._failing_since, now))
            self._failing_since = None
        if self.first_poll_t is None:
            self.first_poll_t = now
        self.last_poll_t = now
        listed: set[tuple[str, float]] = set()
        changes: list[Change] = []
        for a in alerts:
            key = (a.fingerprint, a.starts_unix)
            listed.add(key)
            if key in self._open:
                continue
            fired = self.clock.to_mono(a.starts_unix)
            ep = AlertEpisode(name=a.name, labels=a.labels, fingerprint=a.fingerprint,
                              fired_t=fired, seen_t=now, resolved_t=None, summary=a.summary)
            self._open[key] = ep
            changes.append(Fired(ep))
        for key in [k for k in self._open if k not in listed]:
            ep = replace(self._open.pop(key), resolved_t=now)
            self._closed.append(ep)
            changes.append(Resolved(ep))
        return changes

    def missed(self, now: float) -> None:
        """A poll that failed at `now`: a gap in what we know, from the last good poll."""
        if self._failing_since is None:
            self._failing_since = self.last_poll_t if self.last_poll_t is not None else now

    def close_gap(self, now: float) -> None:
        """The run is over while polls were still failing: the gap lasts until `now`."""
        if self._failing_since is not None:
            self.gaps.append((self._failing_since, now))
            self._failing_since = None

    def episodes(self) -> tuple[AlertEpisode, ...]:
        """Every episode seen, resolved or still open, in the order they fired."""
        return tuple(sorted([*self._closed, *self._open.values()], key=lambda e: (e.fired_t, e.name)))

    def firing(self) -> tuple[AlertEpisode, ...]:
        return tuple(sorted(self._open.values(), key=lambda e: (e.fired_t, e.name)))
