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
check repeated trials use) and replaced by a fresh one when it does not settle; an `error` or
`unsettled` candidate is run once more on a fresh stack before it is reported as such.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
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
    steady = [a for a in result.assertions if a.kind == "steady_state" and a.passed is False]
    if steady:
        return Outcome("unsettled", reasons=tuple(a.message for a in steady), wall_s=wall_s, run_id=run_id)
    failed = frozenset(a.key for a in result.assertions if a.kind == "slo" and a.passed is False)
    if result.verdict is Verdict.FAIL:
        if result.aborted:
            failed = failed | {"aborted"}
        return Outcome("fail", failed, reasons, lost, wall_s, run_id)
    if result.verdict is Verdict.PASS:
        return Outcome("pass", reasons=reasons, lost_writes=lost, wall_s=wall_s, run_id=run_id)
    return Outcome("inconclusive", reasons=reasons, lost_writes=lost, wall_s=wall_s, run_id=run_id)


@dataclass
class StackRunner:
    """Runs experiments on one target, on a reused stack (settled between runs) or a fresh one each."""

    target: Any
    stack: StackMode = "reused"
    events: Events = field(default_factory=Events)
    image_overrides: dict[str, str] | None = None
    settle_timeout_s: float = 60.0
    _stack: Any = None
    _used: int = 0
    ups: int = 0                                # stacks brought up (fresh ones included)
    up_s: float = 0.0

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

    def _ready(self, experiment: Any) -> tuple[Any, float]:
        """A stack in its steady state for the next candidate, and the seconds spent getting it."""
        from harness.run.settle import settle, steady_probe

        t = time.monotonic()
        if self._stack is None:
            self._stack = self._up()
        elif self._used:
            s = settle(self._stack, timeout_s=self.settle_timeout_s,
                       probe=lambda st: steady_probe(st, experiment))
            if not s.ok:
                self.events.say(f"stack {self._stack.run_id} did not settle in {s.seconds:.0f} s "
                                f"({s.why}): replacing it", level="warning")
                self.replace()
        self._used += 1
        return self._stack, time.monotonic() - t

    def replace(self) -> None:
        self.close()
        self._stack = self._up()

    def run(self, experiment: Any) -> Outcome:
        """Run once; an `error` or `unsettled` run is repeated once on a fresh stack."""
        out = self._run_once(experiment, fresh=False)
        if out.status in ("error", "unsettled"):
            self.events.say(f"{experiment.name}: {out.brief()}; once more on a fresh stack", level="warning")
            out = self._run_once(experiment, fresh=True)
        return out

    def _run_once(self, experiment: Any, *, fresh: bool) -> Outcome:
        from harness.run.orchestrator import run_experiment

        t = time.monotonic()
        settle_s = 0.0
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
                    stack, settle_s = self._ready(experiment)
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
        return Outcome(out.status, out.failed, out.reasons, out.lost_writes, out.wall_s, out.run_id,
                       settle_s, made_fresh)


__all__ = ["Outcome", "StackRunner", "classify", "Status", "StackMode"]
