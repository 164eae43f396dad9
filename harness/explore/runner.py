"""Running one candidate experiment and saying what happened, on a reused or a fresh stack.

    runner = StackRunner(target, stack="reused", events=events)
    outcome = runner.run(experiment)        # Outcome(status="fail", failed={"lost_writes"}, ...)
    runner.close()                          # also a context manager

`status` is one of:

* fail          an SLO assertion failed (or the run aborted on its availability line): the
                system's failure, a candidate finding;
* pass          every assertion held;
* inconclusive  too little evidence, or a metric unknown (no read-back): never a finding;
* unsettled     the baseline missed its steady state: the stack had not come back from the
                last candidate, a harness matter, never the system's failure under this fault;
* error         the harness failed (Docker, a fault that could not land): never a finding.

A reused stack is settled before every candidate after its first (harness.run.settle, the
check repeated trials use; its load probe only when the last run's recovery did not meet the
steady state) and replaced by a fresh one when it does not settle. An `unsettled` candidate is
run again after a probed settle; an `error` (or a second `unsettled`) once more on a fresh
stack before it is reported as such.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from harness.errors import HarnessError, Interrupted
from harness.events import Events
from harness.measure.result import Result, Verdict

log = logging.getLogger(__name__)

Status = Literal["fail", "pass", "inconclusive", "unsettled", "error"]
StackMode = Literal["reused", "fresh"]


@dataclass(frozen=True)
class Outcome:
    status: Status
    failed: frozenset[str] = frozenset()        # assertion keys that failed (SLO only)
    reasons: tuple[str, ...] = ()
    lost_writes: int | None = None
    wall_s: float = 0.0
    run_id: str = ""
    settle_s: float = 0.0                       # spent settling (or replacing) the stack first
    fresh: bool = False                         # ran on a stack made for it
    probed: bool = False                        # the settle before it ran the load probe
    recovered: bool | None = None               # its recovery phase met the steady state (None: not judged)
    attempts: int = 1                           # runs it took (an unsettled or error run is run again)
    # Why the stack the *previous* run left did not settle (it was replaced before this run): the
    # previous run's system had not come back, charged to it by the explorer. "" when it did.
    previous_unsettled: str = ""

    def brief(self) -> str:
        what = self.status.upper()
        if self.failed:
            what += f" ({', '.join(sorted(self.failed))})"
        if self.lost_writes:
            what += f", {self.lost_writes} acknowledged writes lost"
        if self.status in ("error", "unsettled", "inconclusive") and self.reasons:
            what += f": {self.reasons[0][:160]}"
        return what


def classify(result: Result, wall_s: float = 0.0, run_id: str = "") -> Outcome:
    lost = result.durability.lost if result.durability is not None else None
    reasons = tuple(result.reasons)
    if result.verdict is Verdict.ERROR or result.harness_error:
        return Outcome("error", reasons=reasons or (result.harness_error or "harness error",),
                       wall_s=wall_s, run_id=run_id)
    # Only the baseline says the stack was not ready. A recovery that misses the steady state
    # is the system's answer to the fault (its SLO assertions judge it); read as "unsettled" it
    # would hide a system that does not come back behind a harness excuse.
    steady = [a for a in result.assertions if a.kind == "steady_state" and a.passed is False
              and a.scope == "baseline"]
    recovered = _recovered(result)
    if steady:
        return Outcome("unsettled", reasons=tuple(a.message for a in steady) + _errors(result, "baseline"),
                       wall_s=wall_s, run_id=run_id, recovered=recovered)
    failed = frozenset(a.key for a in result.assertions if a.kind == "slo" and a.passed is False)
    if result.verdict is Verdict.FAIL:
        if result.aborted:
            failed = failed | {"aborted"}
        if not failed:      # a steady state on the recovery missed (a user's file; candidates judge the baseline)
            failed = frozenset({"steady_state@recovery"})
        return Outcome("fail", failed, reasons, lost, wall_s, run_id, recovered=recovered)
    if result.verdict is Verdict.PASS:
        return Outcome("pass", reasons=reasons, lost_writes=lost, wall_s=wall_s, run_id=run_id, recovered=recovered)
    return Outcome("inconclusive", reasons=reasons, lost_writes=lost, wall_s=wall_s, run_id=run_id,
                   recovered=recovered)


def _errors(result: Result, phase: str) -> tuple[str, ...]:
    """What the phase's failed requests said, most frequent first (why a baseline missed)."""
    try:
        errs = result.phase(phase).errors
    except (KeyError, AttributeError):
        return ()
    return (f"{phase} errors: " + ", ".join(f"{n} x {why[:80]}" for why, n in errs[:3]),) if errs else ()


def _recovered(result: Result) -> bool | None:
    """Did the run's recovery phase meet the steady-state bar (the stack is back, under this very
    load)? None when there was no recovery phase (an aborted run) or nothing in it."""
    from harness.measure.recovery import recovery_bar

    try:
        rec = result.phase("recovery")
    except KeyError:
        return None
    if result.aborted or rec.availability is None or rec.requests < 20:
        return None
    exp = result.experiment
    steady = [a for a in exp.steady_state if a.metric == "availability" and a.operation is None]
    bar = steady[0] if steady else recovery_bar(tuple(exp.slo))
    return bool(bar.holds(rec.availability))


@dataclass
class StackRunner:
    """Runs experiments on one target, on a reused stack (settled between runs) or a fresh one each."""

    target: Any
    stack: StackMode = "reused"
    events: Events = field(default_factory=Events)
    image_overrides: dict[str, str] | None = None
    settle_timeout_s: float = 60.0
    probe: Literal["auto", "always"] = "auto"  # the settle's load probe: when the last run did not show recovery
    _stack: Any = None
    _used: int = 0
    ups: int = 0                                # stacks brought up (fresh ones included)
    up_s: float = 0.0
    _last_recovered: bool | None = None
    _cov: Any = None
    _unsettled_after: str = ""                  # the settle before this run failed: why

    def __enter__(self) -> "StackRunner":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._stack is not None:
            stack, self._stack = self._stack, None
            stack.__exit__(None, None, None)

    def _up(self) -> Any:
        from harness.stack.engine import connect
        from harness.stack.images import ensure_images
        from harness.stack.stack import Stack

        t = time.monotonic()
        client = connect()
        ensure_images(client, [self.target], overrides=self.image_overrides, say=self.events.say)
        stack = Stack(self.target, None, client=client, image_overrides=self.image_overrides, say=self.events.say)
        stack.__enter__()
        self.ups += 1
        self.up_s += time.monotonic() - t
        self._used = 0
        return stack

    def _ready(self, experiment: Any, *, probe: bool) -> tuple[Any, float]:
        """A stack in its steady state for the next candidate, and the seconds spent getting it."""
        from harness.run.settle import settle, steady_probe

        t = time.monotonic()
        if self._stack is None:
            self._stack = self._up()
        elif self._used:
            s = settle(self._stack, timeout_s=self.settle_timeout_s,
                       probe=(lambda st: steady_probe(st, experiment)) if probe else None)
            if not s.ok:
                self.events.say(f"stack {self._stack.run_id} did not settle in {s.seconds:.0f} s "
                                f"({s.why}): replacing it", level="warning")
                self._unsettled_after = f"did not settle in {s.seconds:.0f} s: {s.why}"
                self.replace()
        self._used += 1
        return self._stack, time.monotonic() - t

    def _coverage(self) -> Any:
        from harness.explore.coverage import Coverage

        if self._cov is None:
            self._cov = Coverage(self.target)
        return self._cov

    def _needs_probe(self) -> bool:
        """The settle's load probe (5 s of the experiment's load, plus a load process started
        for it: about half of the 28.8 s median settle measured on the fragile twin) only when the
        last run did not show the stack back: it failed or touched the data tier (its damage
        may outlast the recovery phase), or its recovery phase missed the steady-state bar or
        was not measured. A run whose last 10 s met the bar under this very
        load left a working stack; the structural checks (instances healthy, Toxiproxy clean,
        roles resolved, entry points answering) then suffice, and the next candidate's own
        baseline is judged on its steady state anyway: a miss there is `unsettled`, and is run
        again after a probed settle (never a finding)."""
        return self.probe == "always" or self._last_recovered is not True

    def replace(self) -> None:
        self.close()
        self._stack = self._up()

    def run(self, experiment: Any) -> Outcome:
        """Run once. An `unsettled` run on a reused stack is run again after a settle with the
        load probe; an `error` (or a second `unsettled`) once more on a fresh stack."""
        self._unsettled_after = ""
        out = self._run_once(experiment, fresh=False)
        after_previous = self._unsettled_after      # only the first settle follows the previous run
        n = 1
        if out.status == "unsettled" and self.stack == "reused" and not out.probed:
            self.events.say(f"{experiment.name}: {out.brief()}; once more after a probed settle", level="warning")
            self._last_recovered = None
            out, n = self._run_once(experiment, fresh=False), n + 1
        if out.status in ("error", "unsettled"):
            self.events.say(f"{experiment.name}: {out.brief()}; once more on a fresh stack", level="warning")
            out, n = self._run_once(experiment, fresh=True), n + 1
        return replace(out, attempts=n, previous_unsettled=after_previous)

    def _run_once(self, experiment: Any, *, fresh: bool) -> Outcome:
        from harness.run.orchestrator import run_experiment

        t = time.monotonic()
        settle_s = 0.0
        probed = False
        kw: dict[str, Any] = {"events": self.events, "image_overrides": self.image_overrides}
        made_fresh = fresh or self.stack == "fresh"
        if self.stack == "reused":
            try:
                if fresh:
                    t1 = time.monotonic()
                    self.replace()
                    self._used = 1
                    stack, settle_s = self._stack, time.monotonic() - t1
                else:
                    probed = self._stack is not None and self._used > 0 and self._needs_probe()
                    stack, settle_s = self._ready(experiment, probe=probed)
                    made_fresh = self._used == 1
                kw["stack"] = stack
            except HarnessError as exc:
                return Outcome("error", reasons=(f"stack: {exc}",), wall_s=time.monotonic() - t)
            except Interrupted:
                raise                       # Ctrl-C / SIGTERM: the search stops, cleanup runs
            except Exception as exc:  # noqa: BLE001 - a harness bug bringing a stack up (seen: the
                # janitor's lease age on another job's starting lease) is this candidate's ERROR,
                # said as such; the search goes on rather than lose what it found.
                log.exception("stack up failed")
                return Outcome("error", reasons=(f"stack: unexpected {type(exc).__name__}: {exc}",),
                               wall_s=time.monotonic() - t)
        else:
            self.ups += 1
        record, result = run_experiment(experiment, **kw)
        out = classify(result, time.monotonic() - t, record.run_id)
        # Only a run that passed, came back, and left the data tier alone vouches for the stack.
        # A data tier's damage can outlast the recovery phase: on the fragile twin, after a
        # primary-isolating partition (passed or failed, its recovery phase at >= 99 %), 4 of 7
        # probe-less settles were followed by a baseline at 53-71 %, the app writing to the
        # demoted old primary ("You can't write against a read only replica") for a minute and more.
        vouches = out.status == "pass" and not self._coverage().touches_data(experiment)
        self._last_recovered = out.recovered if vouches else None
        return replace(out, settle_s=settle_s, fresh=made_fresh, probed=probed)


__all__ = ["Outcome", "StackRunner", "classify", "Status", "StackMode"]
