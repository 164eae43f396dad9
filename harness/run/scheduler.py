"""The fault timeline: when each fault fires and when its window ends, on an injectable clock.

    sched = Scheduler(experiment.faults, t0=t0, inject=lambda f: f.inject(ctx), undo=undo,
                      events=events, clock=clock, pacer=None)
    while ...:
        phase = sched.tick()          # reverts windows that ended, fires faults that are due
        clock.sleep(sched.wait(max_s=0.05))
    sched.revert_all()

Each injected fault is pushed on the undo stack the moment it is in place, so a Ctrl-C, a
SIGTERM or a harness error reverts it. A fault's window is timed from when it took effect,
not from when it was asked for, and its undo is sent that much early (capped) so the window
the system sees is the window written in the file.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Protocol, Sequence

from harness.errors import HarnessError
from harness.events import Events, FaultInjected, FaultReverted
from harness.faults.base import FaultSpec, Injection
from harness.model.record import FaultEvent
from harness.undo import UndoStack

MAX_LEAD_S = 0.25        # at most this much early is an undo sent to land on time


class Clock(Protocol):
    def now(self) -> float: ...
    def sleep(self, seconds: float) -> None: ...


class MonotonicClock:
    """CLOCK_MONOTONIC, the clock every sample is stamped with."""

    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


class Pacer(Protocol):
    """Game days: the operator decides when each fault fires, may add notes, may abort."""

    def ready(self, fault: FaultSpec) -> bool: ...          # polled while a fault is due
    def notes(self) -> list[str]: ...                       # new notes since last call
    def abort_requested(self) -> str | None: ...


@dataclass
class _Active:
    spec: FaultSpec
    injection: Injection
    issued_t: float
    injected_t: float
    revert_at: float | None


@dataclass
class Scheduler:
    faults: Sequence[FaultSpec]
    t0: float
    inject: Callable[[FaultSpec], Injection]
    undo: UndoStack
    events: Events
    clock: Clock = field(default_factory=MonotonicClock)
    pacer: Pacer | None = None
    shift_s: float = 0.0            # how long a game-day operator held faults back, in total
    pending: list[FaultSpec] = field(init=False)
    active: list[_Active] = field(init=False, default_factory=list)
    fault_events: list[FaultEvent] = field(init=False, default_factory=list)
    _in_fault: bool = field(init=False, default=False)
    _held: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        self.pending = sorted(self.faults, key=lambda f: (f.at_s, f.name))

    # ─── the timeline ───

    def due_t(self, fault: FaultSpec) -> float:
        return self.t0 + fault.at_s + self.shift_s

    def tick(self) -> str | None:
        """Revert windows that ended, fire faults that are due. Returns the phase that began
        ("fault:<name>", "recovery"), if one did."""
        now = self.clock.now()
        for act in list(self.active):
            if act.revert_at is not None and now >= act.revert_at:
                self._revert(act)
        phase = None
        self._held = False
        while self.pending and self.clock.now() >= self.due_t(self.pending[0]):
            spec = self.pending[0]
            if self.pacer is not None and not self.pacer.ready(spec):
                # Held: the fault stays "just due", and everything after it moves with it.
                self.shift_s = max(self.shift_s, self.clock.now() - self.t0 - spec.at_s)
                self._held = True
                break
            self.pending.pop(0)
            self._inject(spec)
            phase = f"fault:{spec.name}"
            self._in_fault = True
        if phase is None and self._in_fault and not self.pending and not self.active:
            self._in_fault = False
            phase = "recovery"
        return phase

    def wait(self, max_s: float) -> float:
        """How long to sleep: until the next deadline, at most `max_s` (a 2 s window should last
        2 s, not 2 s plus up to one tick)."""
        deadlines = [a.revert_at for a in self.active if a.revert_at is not None]
        if self.pending and not self._held:      # a held fault is polled once a tick
            deadlines.append(self.due_t(self.pending[0]))
        now = self.clock.now()
        return max(0.0, min([max_s, *(d - now for d in deadlines)]))

    def end_t(self, duration_s: float) -> float:
        return self.t0 + duration_s + self.shift_s

    def active_names(self) -> tuple[str, ...]:
        return tuple(a.spec.name for a in self.active)

    # ─── applying and undoing ───

    def _inject(self, spec: FaultSpec) -> None:
        t_asked = self.clock.now()
        injection = self.inject(spec)
        t = injection.applied_t
        lead = min(max(0.0, t - t_asked), MAX_LEAD_S)
        act = _Active(spec, injection, t_asked, t, t + spec.for_s - lead if spec.for_s else None)
        if injection.reversible:
            self.active.append(act)
            # Registered the moment it exists: any exit path from here reverts it.
            self.undo.push(f"revert {spec.name}", lambda: self._revert(act))
        else:
            self.fault_events.append(FaultEvent(spec.name, spec.action, injection.targets, t, None,
                                                injection.detail, issued_t=t_asked,
                                                marks=tuple(injection.marks.items())))
        self.events.emit(FaultInjected(spec, injection.targets, t, issued_t=t_asked,
                                       detail=injection.detail, reversible=injection.reversible))

    def _revert(self, act: _Active) -> None:
        if act.injection.reverted:
            return
        detail = ""
        confirmed = True
        try:
            detail = act.injection.revert()
        except HarnessError as exc:
            confirmed = False
            detail = str(exc)
            raise
        finally:
            t = act.injection.restored_t or self.clock.now()
            if act in self.active:
                self.active.remove(act)
            # What applying found (a role's holder) and what the revert read back, both kept.
            both = "; ".join(d for d in (act.injection.detail, detail) if d)
            self.fault_events.append(FaultEvent(
                act.spec.name, act.spec.action, act.injection.targets, act.injected_t,
                t if confirmed else None, both, issued_t=act.issued_t,
                marks=tuple(act.injection.marks.items())))
            self.events.emit(FaultReverted(act.spec, act.injection.targets, t, confirmed, detail))

    def revert_all(self) -> None:
        """Revert everything still active now (before load stops, so recovery is measured).
        Everything active is on the undo stack: unwinding it reverts exactly that."""
        failures = self.undo.unwind()
        if failures:
            raise HarnessError("revert failed: " + "; ".join(f"{f.description}: {f.error}" for f in failures))
