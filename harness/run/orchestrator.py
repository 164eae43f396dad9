"""Running one experiment: stack up, load on, faults on schedule, measure, judge, stack down.

    record, result = run_experiment(experiment, events=Events())

The stages are context managers composed on one `ExitStack`, so every exit path (a harness
error, Ctrl-C, SIGTERM) unwinds them in reverse: faults reverted, load stopped, stack removed.
SIGKILL is the reaper's job (it removes the containers, and with them every fault, which all
live inside them or in the run's Toxiproxy). The experiment carries its target: nothing here
reads a file.
"""

from __future__ import annotations

import datetime as dt
import logging
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import Any

from harness.errors import ContinuumError, HarnessError, Interrupted
from harness.events import (
    Aborted,
    Events,
    NoteAdded,
    PhaseStarted,
    Progress,
    RoleResolved,
    RunEnded,
    RunStarted,
)
from harness.faults.base import FaultContext
from harness.live import LiveStats
from harness.model.experiment import Experiment
from harness.model.record import AuditSnapshot, Note, ReadRecord, RunRecord, Sample, WriteRecord
from harness.run.monitoring import baseline_end, monitor_stage, pump
from harness.run.phases import phases
from harness.run.scheduler import Clock, MonotonicClock, Pacer, Scheduler
from harness.target.readback import read_back
from harness.target.roles import check_roles, roles_used
from harness.undo import UndoStack

log = logging.getLogger(__name__)

TICK_S = 0.05
PROGRESS_EVERY_S = 1.0


class _Run:
    """What a run accumulates; becomes the RunRecord."""

    def __init__(self, experiment: Experiment, clock: Clock):
        self.experiment = experiment
        self.clock = clock
        self.t0 = clock.now()
        self.t_end: float | None = None
        self.samples: list[Sample] = []     # stages without a store (fakes in tests) put samples here
        self.store: Any = None              # harness.measure.store.SampleStore: a real run's requests
        self.writes: tuple[WriteRecord, ...] = ()
        self.reads: tuple[ReadRecord, ...] = ()
        self.versions: tuple = ()           # VersionRecord: which release answered
        self.notes: list[Note] = []
        self.aborted: str | None = None
        self.audit: AuditSnapshot | None = None
        self.audit_error: str | None = None
        self.interrupted = False
        self.scheduler: Scheduler | None = None
        self.run_id = "-"
        self.monitoring = None              # MonitorRecord, when the run was monitored

    def add(self, samples: list[Sample], src: int = 0) -> None:
        if self.store is not None:
            self.store.add(samples, src)
        else:
            self.samples.extend(samples)

    def mark(self, t: float) -> None:
        if self.store is not None:
            self.store.mark(t)

    def record(self, started_at: str, harness_error: str | None) -> RunRecord:
        t_end = self.t_end or self.clock.now()
        notes = list(self.notes)
        if self.audit_error:
            notes.append(Note(t_end, f"read-back unavailable: {self.audit_error}", author="harness"))
        fault_events = tuple(self.scheduler.fault_events) if self.scheduler else ()
        store = self.store
        if store is not None and store.t_end is None:
            _mark_edges(self, fault_events, self.experiment.load.request_timeout_s)
            store.finish(t_end)
        return RunRecord(
            experiment=self.experiment, run_id=self.run_id, started_at=started_at,
            t0=self.t0, t_end=t_end,
            # the store's: every sample of a run under its cap, else those kept raw and stand-ins
            samples=tuple(store.samples()) if store is not None else
            tuple(s for s in self.samples if self.t0 <= s.t <= t_end),
            store=store,
            phases=phases(fault_events, self.t0, t_end, self.experiment.load.request_timeout_s),
            faults=fault_events, writes=tuple(self.writes), reads=tuple(self.reads),
            audit=self.audit, notes=tuple(notes),
            aborted=self.aborted, harness_error=harness_error, interrupted=self.interrupted,
            monitoring=self.monitoring,
            versions=tuple(v for v in self.versions if self.t0 <= v.t <= t_end))


def run_experiment(
    experiment: Experiment,
    *,
    events: Events | None = None,
    run_id: str | None = None,
    image_overrides: dict[str, str] | None = None,
    pacer: Pacer | None = None,
    keep_stack: bool = False,
    clock: Clock | None = None,
    stack: Any | None = None,
    artifacts_dir: Path | None = None,
):
    """Run one experiment end to end. Returns (RunRecord, Result).

    Harness failures are caught and recorded (verdict ERROR); Interrupted propagates after
    cleanup, with the partial record attached as `exc.record` and `exc.result`.

    `stack`: a Stack already up (repeated trials on one stack, harness.run.trials); it is used
    as it is and left up, and the durability audit counts only writes this run made.

    `artifacts_dir`: where faults keep files (a drill's backup), in a folder per run id; the
    CLI gives the report folder. Without it a drill makes a temporary folder and names it.
    """
    from harness.measure import evaluate

    events = events or Events()
    clock = clock or MonotonicClock()
    started_at = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    run = _Run(experiment, clock)
    harness_error: str | None = None
    interrupted: Interrupted | None = None
    try:
        _stages(experiment, run, events, run_id, image_overrides, pacer, keep_stack, stack, artifacts_dir)
    except Interrupted as exc:
        interrupted, run.interrupted = exc, True
    except KeyboardInterrupt as exc:
        interrupted, run.interrupted = Interrupted("interrupted by SIGINT"), True
        interrupted.__cause__ = exc
    except HarnessError as exc:
        harness_error = str(exc)
    except ContinuumError:
        raise
    except Exception as exc:  # a bug or an unexpected library error: the harness's, never the system's
        log.exception("unexpected error in run %s", run.run_id)
        harness_error = f"unexpected {type(exc).__name__}: {exc} (traceback in the log with -v)"
    listener_failures = events.take_failures()
    if listener_failures and harness_error is None:
        harness_error = "; ".join(str(f) for f in listener_failures)
    record = run.record(started_at, harness_error)
    result = evaluate(record)
    events.emit(RunEnded(record, result))
    if interrupted is not None:
        interrupted.record = record  # type: ignore[attr-defined]
        interrupted.result = result  # type: ignore[attr-defined]
        raise interrupted
    return record, result


def _stages(experiment: Experiment, run: _Run, events: Events, run_id: str | None,
            image_overrides: dict[str, str] | None, pacer: Pacer | None, keep_stack: bool,
            stack: Any | None = None, artifacts_dir: Path | None = None) -> None:
    from harness.load.runner import LoadGenerator
    from harness.model.experiment import load_workers
    from harness.stack.engine import connect
    from harness.stack.images import ensure_images
    from harness.stack.stack import Stack

    target = experiment.target
    reused = stack is not None
    with ExitStack() as stages:
        if stack is None:
            client = connect()
            ensure_images(client, [target], overrides=image_overrides, say=events.say)
            stack = stages.enter_context(Stack(target, run_id, client=client, image_overrides=image_overrides,
                                               detach=keep_stack, say=events.say))
            events.say(f"run {stack.run_id}: {target.name} up in {stack.timings['up_s']:.1f} s")
        run.run_id = stack.run_id
        endpoints = _endpoints(stack, experiment)
        ctx = FaultContext(stack=stack, run_id=stack.run_id,
                           artifacts=artifacts_dir / stack.run_id if artifacts_dir else None)
        ctx.on_role = lambda a: events.emit(RoleResolved(
            a.role, a.holders, a.how, run.clock.now(), ctx.fault_name))
        # A role declared wrong (a Sentinel that is not one) stops here, before any load.
        check_roles(ctx, roles_used(experiment))
        # A reused stack holds the writes of earlier trials: read them first, so this run's
        # audit counts only its own (else every earlier write would be "unexpected").
        prior = read_back(target.durability, stack, endpoints) \
            if reused and target.durability is not None and target.durability.read is not None else None
        monitor = monitor_stage(stages, experiment, stack, events)
        load = stages.enter_context(LoadGenerator(
            target.load_profile, experiment.load.profile, host=endpoints[0],
            users=experiment.load.users, spawn_rate=experiment.load.spawn_rate,
            request_timeout_s=experiment.load.request_timeout_s,
            # Hard cap: the worker stops by itself even if we vanish (game days may stretch).
            max_duration_s=experiment.duration_s * (20 if pacer else 1) + 60,
            env={"CONTINUUM_ENDPOINTS": ",".join(endpoints)},
            mode=experiment.load.mode, rate=experiment.load.rate or 0.0,
            workers=min(load_workers(experiment.load.workers), experiment.load.users),
            remote_workers=experiment.load.remote_workers, master_bind=experiment.load.master_bind,
            keep_samples=False))
        for w in load.workers_joined():     # distributed load: each worker's clock, recorded
            events.say(f"{w.name}: clock offset {w.offset_s * 1e3:+.3f} ms (round trip {w.rtt_s * 1e3:.3f} ms), "
                       f"{'same clock, 0 applied' if w.same_clock else f'{w.applied_s * 1e3:+.3f} ms applied'}")
        run.t0 = load.t_start or run.clock.now()
        run.store = _store(experiment, run.t0)
        events.emit(RunStarted(experiment, stack.run_id, run.t0, experiment.duration_s))
        if monitor is not None:
            monitor.start(run.t0, baseline_end(experiment, run.t0))
        undo = UndoStack()
        run.scheduler = Scheduler(experiment.faults, t0=run.t0, inject=lambda f: _inject(f, ctx),
                                  undo=undo, events=events, clock=run.clock, pacer=pacer)
        try:
            _drive(experiment, run, load, events, pacer, monitor)
        finally:
            # Faults are reverted before load stops, so recovery is measured; on every path.
            try:
                run.scheduler.revert_all()
            finally:
                run.t_end = run.clock.now()
                for src, batch in load.poll_sources(final=True):
                    run.add(batch, src)
                if monitor is not None:         # end probes while load still runs, a last poll
                    monitor.finish()
                    pump(monitor, events)
                    run.monitoring = monitor.record()
        if monitor is not None:
            monitor.check()                     # a monitor thread that died of a bug: ERROR
        load.stop()
        for src, batch in load.poll_sources(final=True):
            run.add(batch, src)
        run.writes = load.writes()
        run.reads = load.reads()
        run.versions = load.versions()
        if target.durability is not None:
            run.audit = _final_read(target, ctx, stack, endpoints, run, events)
            failed = [run.audit.error] if run.audit.error else []
            failed += [f"{i.name}: {i.error}" for i in run.audit.invariants if i.error]
            run.audit_error = "; ".join(failed) or None
            if prior is not None:
                run.audit, run.audit_error = _own_writes(run.audit, prior, run.audit_error)


def _final_read(target: Any, ctx: FaultContext, stack: Any, endpoints: list[str], run: _Run,
                events: Events) -> AuditSnapshot:
    """The read-back, once the target's roles have converged (harness.target.convergence): a
    read made while a failover is still settling can find writes a late demotion then discards.
    Roles that never converge leave durability unknown, never a pass."""
    from harness.target.convergence import TIMEOUT_S, wait_converged

    live = [r for r in target.roles if r.kind != "static"]
    if live:
        c = wait_converged(ctx, live)
        if not c.ok:
            why = (f"no final read: the target's roles had not converged {TIMEOUT_S:g} s after the "
                   f"faults were reverted ({c.why})")
            events.say(why)
            return AuditSnapshot(ids=None, error=why)
        if c.seconds >= 1.0:
            events.say(f"roles converged {c.seconds:.1f} s after the load stopped; reading back")
            run.notes.append(Note(run.clock.now(), f"final read-back waited {c.seconds:.1f} s for the "
                                  "target's roles to converge", author="harness"))
    return read_back(target.durability, stack, endpoints)


def _mark_edges(run: _Run, fault_events: Any, request_timeout_s: float) -> None:
    """Every instant harness.run.phases and harness.measure.recovery will cut at, announced to
    the store as soon as it is known (its steps then stay raw: cuts exact to the request)."""
    from harness.run.phases import RECOVERY_GRACE_S

    for e in fault_events:
        start = e.issued_t if e.issued_t is not None else e.injected_t
        edges = [start, e.injected_t, start - request_timeout_s, e.injected_t + RECOVERY_GRACE_S]
        if e.reverted_t is not None:
            edges += [e.reverted_t, e.reverted_t + RECOVERY_GRACE_S]
        for t in edges:
            run.mark(t)


def _store(experiment: Experiment, t0: float) -> Any:
    """Where the run's samples go (harness.measure.store): bounded, with raw samples kept around
    every failure and phase edge. A step closes once its slowest request can have arrived; the
    raw margin around failures covers a recovery window (its windows count requests exactly)."""
    from harness.measure.store import SampleStore

    timeout = experiment.load.request_timeout_s
    return SampleStore(t0, close_after_s=timeout + 2.0, margin_s=experiment.recovery_window_s + 0.2)


def _own_writes(after: AuditSnapshot, prior: AuditSnapshot,
                error: str | None) -> tuple[AuditSnapshot, str | None]:
    """The ids this trial wrote on a reused stack: what is held now less what was held before."""
    if prior.ids is None:
        why = f"before the run on a reused stack: {prior.error or 'ids not read'}"
        return replace(after, ids=None, error=why), "; ".join(filter(None, [why, error]))
    if after.ids is None:
        return after, error
    before = prior.present_ids or frozenset()
    return replace(after, ids=tuple(i for i in after.ids if i not in before)), error


def _inject(fault: Any, ctx: FaultContext) -> Any:
    """Apply one fault; which instance held each role it asked for goes into its detail."""
    ctx.answers.clear()
    ctx.fault_name = fault.name
    try:
        injection = fault.inject(ctx)
    finally:
        ctx.fault_name = None
    found = "; ".join(a.text() for a in ctx.answers)
    if found:
        injection.detail = f"{found}; {injection.detail}" if injection.detail else found
    return injection


def _endpoints(stack: Any, experiment: Experiment) -> list[str]:
    if experiment.load.host:  # the experiment pins the entry point load goes to
        endpoints = [url for _, url in stack.entry_points(experiment.load.host)]
        if not endpoints:
            raise HarnessError(f"load.host {experiment.load.host} is not an entry point of {experiment.target.name}")
        return endpoints
    return stack.endpoints()


def _drive(exp: Experiment, run: _Run, load: Any, events: Events, pacer: Pacer | None,
           monitor: Any = None) -> None:
    """The loop: drain samples, feed the live view (progress, abort_if), tick the scheduler."""
    sched = run.scheduler
    assert sched is not None
    live = LiveStats(exp.abort_if)
    clock = run.clock
    next_progress = run.t0
    phase = "baseline"
    events.emit(PhaseStarted(phase, run.t0))
    while True:
        now = clock.now()
        if now >= sched.end_t(exp.duration_s):
            return
        # raises LoadError if the worker died: a harness failure
        for src, batch in load.poll_sources():
            run.add(batch, src)
            live.add(batch)
        began = sched.tick()
        if began is not None:
            phase = began
            events.emit(PhaseStarted(phase, clock.now()))
        _mark_edges(run, sched.fault_events, exp.load.request_timeout_s)
        if pacer is not None:
            for text in pacer.notes():
                note = Note(clock.now(), text)
                run.notes.append(note)
                events.emit(NoteAdded(note))
            reason = pacer.abort_requested()
            if reason:
                run.aborted = reason
                events.emit(Aborted(reason, now))
                return
        pump(monitor, events)
        reason = live.abort_reason(now, run.t0) or (monitor.abort_reason() if monitor is not None else None)
        if reason:
            run.aborted = reason
            events.emit(Aborted(reason, now))
            return
        if now >= next_progress:
            rps, err = live.rates(now)
            events.emit(Progress(now, now - run.t0, max(0.0, sched.end_t(exp.duration_s) - now), rps, err,
                                 sched.active_names(), phase))
            next_progress = now + PROGRESS_EVERY_S
        clock.sleep(sched.wait(TICK_S))
