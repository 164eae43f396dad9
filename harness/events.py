"""The run's life as typed events (the habit of locust's `Events` and pytest's hooks).

One frozen dataclass per event; reports, the console and the pytest plugin *subscribe*, they
never reach into the runner:

    events = Events()
    events.subscribe(journal.on_event)                      # every event
    events.subscribe(console.on_fault, FaultInjected)       # only these types

A listener that raises is detached and recorded in `events.failures`: the run that saw it is
an ERROR naming the listener (a report that lost an event must not pass silently).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Protocol, Union

if TYPE_CHECKING:
    from harness.faults.base import FaultSpec
    from harness.measure.result import Result
    from harness.model.experiment import Experiment
    from harness.model.monitoring import AlertEpisode, ProbeSample
    from harness.model.record import Note, RunRecord

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunStarted:
    experiment: "Experiment"
    run_id: str
    t0: float                       # monotonic time load started
    plan_s: float                   # planned duration


@dataclass(frozen=True)
class PhaseStarted:
    name: str                       # "baseline", "fault:<name>", "recovery"
    t: float


@dataclass(frozen=True)
class FaultInjected:
    fault: "FaultSpec"
    targets: tuple[str, ...]
    t: float                        # when it took effect
    issued_t: float | None = None   # when the harness issued it
    detail: str = ""                # what it found while applying (which instance held a role)
    reversible: bool = True         # False: instantaneous, no FaultReverted will follow


@dataclass(frozen=True)
class RoleResolved:
    role: str
    holders: tuple[str, ...]        # the instances holding it when asked
    how: str                        # what was asked and what each instance said
    t: float
    fault: str | None = None        # the fault that asked; None: the check when the stack is up


@dataclass(frozen=True)
class FaultReverted:
    fault: "FaultSpec"
    targets: tuple[str, ...]
    t: float
    confirmed: bool = True
    detail: str = ""


@dataclass(frozen=True)
class Progress:
    t: float
    elapsed_s: float
    remaining_s: float
    rps: float
    error_rate: float
    active_faults: tuple[str, ...] = ()
    phase: str = ""


@dataclass(frozen=True)
class Aborted:
    reason: str
    t: float


@dataclass(frozen=True)
class NoteAdded:
    note: "Note"


@dataclass(frozen=True)
class RunEnded:
    record: "RunRecord"
    result: "Result"


@dataclass(frozen=True)
class AlertFired:
    """An alert of the target's own monitoring started firing (seen in its Alertmanager)."""

    alert: "AlertEpisode"           # .fired_t is when it fired, .seen_t when we saw it


@dataclass(frozen=True)
class AlertResolved:
    alert: "AlertEpisode"           # .resolved_t is the first poll that no longer listed it


@dataclass(frozen=True)
class ProbeChanged:
    """A probe's first sample, and every sample whose outcome differs from the one before."""

    sample: "ProbeSample"
    use: str                        # "steady_state" | "slo" | "abort_if"


@dataclass(frozen=True)
class Message:
    text: str
    level: str = "info"             # "info" | "warning" | "error"


Event = Union[RunStarted, PhaseStarted, FaultInjected, FaultReverted, RoleResolved, Progress,
              Aborted, NoteAdded, RunEnded, AlertFired, AlertResolved, ProbeChanged, Message]
EVENT_TYPES: tuple[type, ...] = (RunStarted, PhaseStarted, FaultInjected, FaultReverted,
                                 RoleResolved, Progress, Aborted, NoteAdded, RunEnded, AlertFired,
                                 AlertResolved, ProbeChanged, Message)


class Listener(Protocol):
    def __call__(self, event: Any) -> None: ...


@dataclass(frozen=True)
class ListenerFailure:
    listener: str
    event: str
    error: str

    def __str__(self) -> str:
        return f"listener {self.listener} failed on {self.event}: {self.error}"


@dataclass
class Events:
    """The bus. `emit` calls each subscribed listener in subscription order."""

    _subs: list[tuple[Listener, tuple[type, ...], str]] = field(default_factory=list)
    failures: list[ListenerFailure] = field(default_factory=list)

    def subscribe(self, listener: Listener, *types: type, name: str | None = None) -> Listener:
        unknown = [t for t in types if t not in EVENT_TYPES]
        if unknown:
            raise TypeError(f"not event types: {unknown}")
        self._subs.append((listener, types or EVENT_TYPES, name or _name(listener)))
        return listener

    def unsubscribe(self, listener: Listener) -> None:
        self._subs = [s for s in self._subs if s[0] is not listener and s[0] != listener]

    def emit(self, event: Event) -> None:
        for listener, types, name in list(self._subs):
            if not isinstance(event, types):
                continue
            try:
                listener(event)
            except Exception as exc:  # a broken report must not break the experiment's cleanup
                log.exception("listener %s failed on %s; detaching it", name, type(event).__name__)
                self.failures.append(ListenerFailure(name, type(event).__name__, f"{type(exc).__name__}: {exc}"))
                self.unsubscribe(listener)

    def say(self, text: str, level: str = "info") -> None:
        self.emit(Message(text, level))

    def take_failures(self) -> list[ListenerFailure]:
        out, self.failures = self.failures, []
        return out


def _name(listener: Callable[..., Any]) -> str:
    owner = getattr(listener, "__self__", None)
    fn = getattr(listener, "__name__", type(listener).__name__)
    return f"{type(owner).__name__}.{fn}" if owner is not None else fn
