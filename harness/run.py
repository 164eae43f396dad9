"""Running one experiment: stack up, load on, faults on schedule, measure, judge, stack down.

    record, result = run_experiment(experiment, events=Events())

The loop is single-threaded and ticks every 50 ms: it drains samples from the load worker,
updates the live view (progress, abort_if), and fires or reverts faults when their offsets
come. Each injected fault is pushed on the undo stack the moment it is in place, so a
Ctrl-C, a SIGTERM or a harness error reverts it; SIGKILL is the reaper's job (it removes the
containers, and with them every fault, which all live inside them or in the run's Toxiproxy).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import signal
import threading
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator, Protocol

from harness.errors import AuditError, ContinuumError, HarnessError, Interrupted
from harness.events import Events
from harness.faults import FaultContext, Injection, inject
from harness.live import LiveStats
from harness.model import AuditSnapshot, Experiment, FaultEvent, FaultSpec, Note, Phase, RunRecord, Target
from harness.undo import UndoStack

log = logging.getLogger(__name__)

TICK_S = 0.05
PROGRESS_EVERY_S = 1.0
RECOVERY_GRACE_S = 5.0   # the recovery phase starts this long after the last fault ended
AUDIT_TIMEOUT_S = 20.0
MIN_RECOVERY_S = 2.0     # a shorter recovery phase is not recorded (steady state not judged on it)
MAX_LEAD_S = 0.25        # at most this much early is an undo sent to land on time


class Pacer(Protocol):
    """Game days: the operator decides when each fault fires, may add notes, may abort."""

    def ready(self, fault: FaultSpec) -> bool: ...          # polled while a fault is due
    def notes(self) -> list[str]: ...                       # new notes since last call
    def abort_requested(self) -> str | None: ...


@dataclass
class _Active:
    spec: FaultSpec
    injection: Injection
    injected_t: float
    revert_at: float | None


@dataclass
class _Schedule:
    """Fault offsets, shifted by however long a game-day operator held a fault back."""

    pending: list[FaultSpec]
    shift_s: float = 0.0
    active: list[_Active] = field(default_factory=list)
    events: list[FaultEvent] = field(default_factory=list)


@contextmanager
def signals_as_interrupt() -> Iterator[None]:
    """SIGTERM behaves like Ctrl-C: unwind through every context manager, then exit 130."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):  # noqa: ARG001
        raise Interrupted(f"interrupted by {signal.Signals(signum).name}")

    saved = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in saved.items():
            signal.signal(s, h)


def run_experiment(
    experiment: Experiment,
    *,
    events: Events | None = None,
    run_id: str | None = None,
    image_overrides: dict[str, str] | None = None,
    pacer: Pacer | None = None,
    keep_stack: bool = False,
    target: Target | None = None,
):
    """Run one experiment end to end. Returns (RunRecord, Result).

    Harness failures are caught and recorded (verdict ERROR); Interrupted propagates after
    cleanup, with the partial record attached as `exc.record`.
    """
    from harness.load.runner import LoadGenerator
    from harness.measure import evaluate
    from harness.stack.engine import connect
    from harness.stack.images import ensure_images
    from harness.stack.stack import Stack
    from harness.target import load_target

    events = events or Events()
    target = target or load_target(experiment.target)
    started_at = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    say = lambda text: events.message.fire(text=text, level="info")  # noqa: E731

    state = _RunState(experiment)
    undo = UndoStack()
    harness_error: str | None = None
    interrupted: BaseException | None = None
    stack = None
    try:
        client = connect()
        ensure_images(client, [target], overrides=image_overrides, say=say)
        stack = Stack(target, run_id, client=client, image_overrides=image_overrides, detach=keep_stack, say=say)
        with stack:
            say(f"run {stack.run_id}: {target.name} up in {stack.timings['up_s']:.1f} s")
            endpoints = stack.endpoints()
            if experiment.load.host:  # the experiment pins the entry point load goes to
                endpoints = [url for _, url in stack.entry_points(experiment.load.host)]
                if not endpoints:
                    raise HarnessError(f"load.host {experiment.load.host} is not an entry point of {target.name}")
            load = LoadGenerator(
                target.load_profile,
                experiment.load.profile,
                host=endpoints[0],
                users=experiment.load.users,
                spawn_rate=experiment.load.spawn_rate,
                request_timeout_s=experiment.load.request_timeout_s,
                # Hard cap: the worker stops by itself even if we vanish (game days may stretch).
                max_duration_s=experiment.duration_s * (20 if pacer else 1) + 60,
                env={"CONTINUUM_ENDPOINTS": ",".join(endpoints)},
            )
            with load:
                state.t0 = load.t_start or time.monotonic()
                events.run_start.fire(
                    experiment=experiment, run_id=stack.run_id, t0=state.t0, plan_s=experiment.duration_s
                )
                ctx = FaultContext(stack=stack, run_id=stack.run_id)
                try:
                    _loop(experiment, ctx, load, state, undo, events, pacer)
                finally:
                    # Faults are reverted before load stops so recovery is measured, and on
                    # every exit path.
                    _revert_all(state, undo, events)
                    state.t_end = time.monotonic()
                    state.samples.extend(load.poll())
                load.stop()
                state.samples.extend(load.poll())
                state.writes = load.writes()
            if target.audit is not None and not state.interrupted:
                state.audit, state.audit_error = _audit(endpoints, target.audit.path)
    except Interrupted as exc:
        interrupted = exc
        state.interrupted = True
    except KeyboardInterrupt as exc:
        interrupted = Interrupted("interrupted by SIGINT")
        interrupted.__cause__ = exc
        state.interrupted = True
    except HarnessError as exc:
        harness_error = str(exc)
    except ContinuumError:
        raise
    finally:
        failures = undo.unwind()
        if failures:
            harness_error = harness_error or "revert failed: " + "; ".join(f.error for f in failures)

    record = state.record(stack.run_id if stack else (run_id or "-"), started_at, harness_error)
    result = evaluate(record)
    events.run_end.fire(record=record, result=result)
    if interrupted is not None:
        interrupted.record = record  # type: ignore[attr-defined]
        interrupted.result = result  # type: ignore[attr-defined]
        raise interrupted
    return record, result


class _RunState:
    def __init__(self, experiment: Experiment):
        self.experiment = experiment
        self.t0 = time.monotonic()
        self.t_end: float | None = None
        self.samples: list = []
        self.writes: tuple = ()
        self.schedule = _Schedule(sorted(experiment.faults, key=lambda f: (f.at_s, f.name)))
        self.notes: list[Note] = []
        self.aborted: str | None = None
        self.audit: AuditSnapshot | None = None
        self.audit_error: str | None = None
        self.interrupted = False

    def phases(self, t_end: float) -> tuple[Phase, ...]:
        evs = self.schedule.events
        if not evs:
            return (Phase("baseline", self.t0, t_end),)
        first = min(e.injected_t for e in evs)
        # Requests still in flight when the first fault lands are its victims, not the
        # baseline's: the baseline ends one request timeout before the first injection.
        baseline_end = max(self.t0, first - self.experiment.load.request_timeout_s)
        phases = [Phase("baseline", self.t0, baseline_end)]
        starts = sorted(e.injected_t for e in evs)
        for e in evs:
            if e.reverted_t is not None and e.reverted_t > e.injected_t:
                end = e.reverted_t
            else:  # an instantaneous fault's window runs until the next fault or the grace ends
                later = [s for s in starts if s > e.injected_t]
                end = min([*later, e.injected_t + RECOVERY_GRACE_S, t_end])
            phases.append(Phase(f"fault:{e.fault}", e.injected_t, max(end, e.injected_t)))
        last = max(p.end_t for p in phases[1:])
        recovery_start = min(last + RECOVERY_GRACE_S, t_end)
        if t_end - recovery_start >= MIN_RECOVERY_S:  # a sliver of a phase proves nothing
            phases.append(Phase("recovery", recovery_start, t_end))
        return tuple(phases)

    def record(self, run_id: str, started_at: str, harness_error: str | None) -> RunRecord:
        t_end = self.t_end or time.monotonic()
        notes = list(self.notes)
        if self.audit_error:
            notes.append(Note(t_end, f"audit unavailable: {self.audit_error}", author="harness"))
        return RunRecord(
            experiment=self.experiment,
            run_id=run_id,
            started_at=started_at,
            t0=self.t0,
            t_end=t_end,
            samples=tuple(s for s in self.samples if self.t0 <= s.t <= t_end),
            phases=self.phases(t_end),
            faults=tuple(self.schedule.events),
            writes=tuple(self.writes),
            audit=self.audit,
            notes=tuple(notes),
            aborted=self.aborted,
            harness_error=harness_error,
            interrupted=self.interrupted,
        )


def _loop(exp: Experiment, ctx: FaultContext, load, state: _RunState, undo: UndoStack, events: Events, pacer) -> None:
    live = LiveStats(exp.abort_if)
    sched = state.schedule
    next_progress = state.t0
    phase = "baseline"
    events.phase.fire(name=phase, t=state.t0)
    while True:
        now = time.monotonic()
        elapsed = now - state.t0
        if elapsed >= exp.duration_s + sched.shift_s:
            break
        batch = load.poll()  # raises LoadError if the worker died: a harness failure
        state.samples.extend(batch)
        live.add(batch)

        # Revert windows that ended, then fire faults that are due (a game day may hold them).
        for act in list(sched.active):
            if act.revert_at is not None and now >= act.revert_at:
                _revert(act, sched, undo, events)
        while sched.pending and elapsed >= sched.pending[0].at_s + sched.shift_s:
            spec = sched.pending[0]
            if pacer is not None and not pacer.ready(spec):
                sched.shift_s += TICK_S
                break
            sched.pending.pop(0)
            _inject(spec, ctx, sched, undo, events)
            phase = f"fault:{spec.name}"
            events.phase.fire(name=phase, t=time.monotonic())
        if not sched.pending and not sched.active and phase.startswith("fault:"):
            phase = "recovery"
            events.phase.fire(name=phase, t=time.monotonic())

        if pacer is not None:
            for text in pacer.notes():
                note = Note(time.monotonic(), text)
                state.notes.append(note)
                events.note.fire(note=note)
            reason = pacer.abort_requested()
            if reason:
                state.aborted = reason
                events.abort.fire(reason=reason, t=now)
                return
        reason = live.abort_reason(now, state.t0)
        if reason:
            state.aborted = reason
            events.abort.fire(reason=reason, t=now)
            return
        if now >= next_progress:
            rps, err = live.rates(now)
            events.progress.fire(
                t=now,
                elapsed_s=elapsed,
                remaining_s=max(0.0, exp.duration_s + sched.shift_s - elapsed),
                rps=rps,
                error_rate=err,
                active_faults=tuple(a.spec.name for a in sched.active),
                phase=phase,
            )
            next_progress = now + PROGRESS_EVERY_S
        # Wake at the next fault deadline rather than on the next tick: a 2 s window should
        # last 2 s, not 2 s plus up to one tick.
        deadlines = [a.revert_at for a in sched.active if a.revert_at is not None]
        if sched.pending:
            deadlines.append(state.t0 + sched.pending[0].at_s + sched.shift_s)
        wait = min([TICK_S, *(d - time.monotonic() for d in deadlines)])
        if wait > 0:
            time.sleep(wait)


def _inject(spec: FaultSpec, ctx: FaultContext, sched: _Schedule, undo: UndoStack, events: Events) -> None:
    t_asked = time.monotonic()
    injection = inject(ctx, spec)
    # The window is timed from when the fault took effect, not from when we asked for it; and
    # the undo is sent that much early (capped) so it too takes effect on time.
    t = injection.applied_t
    lead = min(max(0.0, t - t_asked), MAX_LEAD_S)
    act = _Active(spec, injection, t, t + spec.for_s - lead if spec.for_s else None)
    if injection.reversible:
        sched.active.append(act)
        # Registered the moment it exists: any exit path from here reverts it.
        undo.push(f"revert {spec.name}", lambda: _revert(act, sched, undo, events))
    else:
        sched.events.append(FaultEvent(spec.name, spec.action, injection.targets, t, None, injection.detail))
    events.fault_injected.fire(fault=spec, targets=injection.targets, t=t)


def _revert(act: _Active, sched: _Schedule, undo: UndoStack, events: Events) -> None:
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
        t = act.injection.restored_t or time.monotonic()
        if act in sched.active:
            sched.active.remove(act)
        sched.events.append(
            FaultEvent(act.spec.name, act.spec.action, act.injection.targets, act.injected_t, t if confirmed else None, detail)
        )
        events.fault_reverted.fire(fault=act.spec, targets=act.injection.targets, t=t, confirmed=confirmed, detail=detail)


def _revert_all(state: _RunState, undo: UndoStack, events: Events) -> None:
    # Everything still active is on the undo stack; unwinding it now (rather than at the very
    # end) means the faults stop before the load does.
    failures = undo.unwind()
    if failures:
        raise HarnessError("revert failed: " + "; ".join(f"{f.description}: {f.error}" for f in failures))


def _audit(endpoints: list[str], path: str) -> tuple[AuditSnapshot | None, str | None]:
    """Ask each entry point in turn until one answers; a system that cannot answer its audit
    within the timeout leaves durability unknown (never zero)."""
    deadline = time.monotonic() + AUDIT_TIMEOUT_S
    last = ""
    while time.monotonic() < deadline:
        for base in endpoints:
            try:
                with urllib.request.urlopen(base + path, timeout=5) as resp:
                    body = json.loads(resp.read())
                return (
                    AuditSnapshot(
                        present_ids=frozenset(str(i) for i in body["transfer_ids"]),
                        total_balance=int(body["total_balance"]),
                        expected_total=int(body["expected_total"]),
                    ),
                    None,
                )
            except (OSError, urllib.error.URLError, ValueError, KeyError, TypeError) as exc:
                last = f"{base}{path}: {type(exc).__name__}: {exc}"
        time.sleep(0.5)
    return None, last
