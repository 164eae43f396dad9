"""Repeated trials: one experiment run N times, then judged on intervals (harness.measure.trialset).

    records, results, ts = run_trials(experiment, 10, events=events)              # fresh stacks
    records, results, ts = run_trials(experiment, 10, events=events, stack="reused")

Two ways to give each trial a system to break:

* fresh   a new stack per trial (up, run, down): trials are independent by construction; costs a
          stack up and down each time.
* reused  one stack for all trials, with a settle check between them (harness.run.settle); the
          durability audit counts only each trial's own writes. A stack that does not settle is
          replaced by a fresh one (said in the journal), never measured half-recovered.

DEFAULT_STACK is chosen from the figures in benchmarks/README.md (trials_wall_time.py: wall time
and the intervals of both ways, side by side, on redis-primary-kill).

A suite with a trial budget (`run_budgeted`) first gives every experiment its initial trials,
then spends what is left one trial at a time on the experiment whose undecided verdict is
closest to its threshold (harness.measure.stats.closeness), as long as another trial of it fits.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Literal, Sequence

from harness.errors import HarnessError, Interrupted
from harness.events import Events
from harness.measure.result import Result, Verdict
from harness.measure.stats import MIN_TRIALS
from harness.measure.trialset import TrialSet, summarize
from harness.model.experiment import Experiment
from harness.model.record import RunRecord
from harness.run.settle import settle, steady_probe

StackMode = Literal["fresh", "reused"]
# Fresh, from the figures (benchmarks/README.md, trials_wall_time.py, redis-primary-kill x10 each
# way): a reused stack saved ~33 s of a ~111 s trial when it settled, but a trial that never
# recovered handed its damage on (6 of 10 reused trials aborted against 1 of 10 fresh, even
# after the settle check passed), so the total wall time came out the same (1201 s vs 1141 s)
# and the trials were no longer independent, which every interval here assumes.
DEFAULT_STACK: StackMode = "fresh"
BUDGET_INITIAL_TRIALS = 3       # per experiment before a budget is spent where verdicts are closest


@dataclass
class TrialRecorder:
    """The trials of one experiment as they accumulate (the CLI writes reports from it)."""

    experiment: Experiment
    stack: StackMode = DEFAULT_STACK
    records: list[RunRecord] = field(default_factory=list)
    results: list[Result] = field(default_factory=list)
    wall_s: list[float] = field(default_factory=list)

    def add(self, record: RunRecord, result: Result, wall_s: float) -> None:
        self.records.append(record)
        self.results.append(result)
        self.wall_s.append(wall_s)

    def summary(self) -> TrialSet:
        return summarize(self.results, stack=self.stack, wall_s=self.wall_s)

    @property
    def mean_wall_s(self) -> float:
        return sum(self.wall_s) / len(self.wall_s) if self.wall_s else 0.0


RunOne = Callable[..., tuple[RunRecord, Result]]


def _default_run_one(experiment: Experiment, **kw: Any) -> tuple[RunRecord, Result]:
    from harness.run.orchestrator import run_experiment

    return run_experiment(experiment, **kw)


class _ReusedStack:
    """One stack across trials; settled before every trial after the first; replaced if it won't."""

    def __init__(self, experiment: Experiment, events: Events, image_overrides: dict[str, str] | None):
        self.experiment = experiment
        self.events = events
        self.image_overrides = image_overrides
        self.stack: Any = None
        self.used = 0

    def _up(self) -> Any:
        from harness.stack.engine import connect
        from harness.stack.images import ensure_images
        from harness.stack.stack import Stack

        client = connect()
        target = self.experiment.target
        ensure_images(client, [target], overrides=self.image_overrides, say=self.events.say)
        stack = Stack(target, None, client=client, image_overrides=self.image_overrides, say=self.events.say)
        stack.__enter__()
        self.events.say(f"run {stack.run_id}: {target.name} up in {stack.timings['up_s']:.1f} s (reused across trials)")
        return stack

    def get(self) -> Any:
        if self.stack is None:
            self.stack = self._up()
            self.used = 0
        elif self.used:
            s = settle(self.stack, probe=lambda st: steady_probe(st, self.experiment))
            if s.ok:
                self.events.say(f"stack {self.stack.run_id} settled in {s.seconds:.1f} s")
            else:
                self.events.say(f"stack {self.stack.run_id} did not settle in {s.seconds:.0f} s ({s.why}): "
                                "replacing it with a fresh one", level="warning")
                self.close()
                self.stack = self._up()
                self.used = 0
        self.used += 1
        return self.stack

    def close(self) -> None:
        if self.stack is not None:
            stack, self.stack = self.stack, None
            stack.__exit__(None, None, None)


def run_trials(experiment: Experiment, n: int, *, events: Events | None = None,
               image_overrides: dict[str, str] | None = None, stack: StackMode = DEFAULT_STACK,
               recorder: TrialRecorder | None = None, on_trial: Callable[[TrialRecorder], None] | None = None,
               run_one: RunOne = _default_run_one, of: int | None = None) -> TrialRecorder:
    """Run `experiment` n more times into `recorder` (a new one by default) and return it.

    Interrupted propagates after cleanup with `exc.recorder` holding every finished trial (and
    the interrupted one's partial record, as run_experiment attaches it)."""
    events = events or Events()
    rec = recorder or TrialRecorder(experiment, stack)
    shared = _ReusedStack(experiment, events, image_overrides) if stack == "reused" else None
    try:
        for _ in range(n):
            k = len(rec.results) + 1
            total = of if of is not None else (n if recorder is None else None)
            events.say(f"{experiment.name}: trial {k}" + (f" of {total}" if total else ""))
            t = time.monotonic()
            kw: dict[str, Any] = {"events": events, "image_overrides": image_overrides}
            if shared is not None:
                try:
                    kw["stack"] = shared.get()
                except HarnessError as exc:
                    # The shared stack could not be (re)made: this trial makes its own, and an
                    # error doing so is that trial's ERROR, recorded like any other.
                    events.say(f"reused stack unavailable ({exc}): trial {k} on a fresh stack", level="warning")
            try:
                record, result = run_one(experiment, **kw)
            except Interrupted as exc:
                partial = getattr(exc, "record", None)
                if partial is not None:
                    rec.add(*_label(partial, exc.result, k, shared), time.monotonic() - t)  # type: ignore[attr-defined]
                exc.recorder = rec  # type: ignore[attr-defined]
                raise
            rec.add(*_label(record, result, k, shared), time.monotonic() - t)
            if on_trial is not None:
                on_trial(rec)
    finally:
        if shared is not None:
            shared.close()
    return rec


def _label(record: RunRecord, result: Result, k: int, shared: _ReusedStack | None) -> tuple[RunRecord, Result]:
    """Trials on one stack share its run id; the reports tell them apart by a trial suffix."""
    if shared is None:
        return record, result
    run_id = f"{record.run_id}-t{k}"
    return replace(record, run_id=run_id), replace(result, run_id=run_id)


# ─────────────────────────────── a suite on a budget ───────────────────────────────

def next_to_run(recorders: Sequence[TrialRecorder], remaining_s: float) -> TrialRecorder | None:
    """The experiment another trial is best spent on: among undecided trial sets (INCONCLUSIVE,
    no harness error) whose next trial is expected to fit in `remaining_s`, the one closest to
    its threshold (ties: fewer trials so far, then suite order). None: nothing worth a trial."""
    best: tuple[float, int, int] | None = None
    choice = None
    for i, r in enumerate(recorders):
        if not r.results or r.mean_wall_s > remaining_s:
            continue
        ts = r.summary()
        if ts.verdict is not Verdict.INCONCLUSIVE or any(t.verdict is Verdict.ERROR for t in ts.trials):
            continue
        key = (ts.closeness if len(ts.judged) >= MIN_TRIALS else 0.0, len(r.results), i)
        if best is None or key < best:
            best, choice = key, r
    return choice


def run_budgeted(experiments: Sequence[Experiment], budget_s: float, *, initial: int = BUDGET_INITIAL_TRIALS,
                 events: Events | None = None, image_overrides: dict[str, str] | None = None,
                 stack: StackMode = DEFAULT_STACK, on_trial: Callable[[TrialRecorder], None] | None = None,
                 run_one: RunOne = _default_run_one, clock: Callable[[], float] = time.monotonic,
                 recorders: list[TrialRecorder] | None = None) -> list[TrialRecorder]:
    """Every experiment `initial` trials, then one trial at a time where verdicts are closest to
    their thresholds until `budget_s` (wall time, from the call) would be overrun."""
    events = events or Events()
    start = clock()
    recs = recorders if recorders is not None else []
    recs.extend(TrialRecorder(e, stack) for e in experiments)
    for r in recs:
        run_trials(r.experiment, initial, events=events, image_overrides=image_overrides, stack=stack,
                   recorder=r, on_trial=on_trial, run_one=run_one)
    spent = clock() - start
    if spent > budget_s:
        events.say(f"trial budget {budget_s:.0f} s spent on the first {initial} trials of each experiment "
                   f"({spent:.0f} s)", level="warning")
    while True:
        r = next_to_run(recs, budget_s - (clock() - start))
        if r is None:
            break
        run_trials(r.experiment, 1, events=events, image_overrides=image_overrides, stack=stack,
                   recorder=r, on_trial=on_trial, run_one=run_one)
    return recs


def run_suite_trials(experiments: Sequence[Experiment], *, trials: int | None = None, budget_s: float | None = None,
                     events: Events | None = None, image_overrides: dict[str, str] | None = None,
                     stack: StackMode = DEFAULT_STACK, recorders: list[TrialRecorder] | None = None,
                     on_trial: Callable[[TrialRecorder], None] | None = None,
                     run_one: RunOne = _default_run_one) -> list[TrialRecorder]:
    """A suite as trial sets: each experiment `trials` times (default: its own `trials:`), or on
    a budget. `recorders` (if given) is filled as the suite goes, for reports on interruption."""
    recs = recorders if recorders is not None else []
    if budget_s is not None:
        initial = trials or max([BUDGET_INITIAL_TRIALS, *(e.trials for e in experiments)])
        return run_budgeted(experiments, budget_s, initial=initial, events=events, image_overrides=image_overrides,
                            stack=stack, on_trial=on_trial, run_one=run_one, recorders=recs)
    for e in experiments:
        r = TrialRecorder(e, stack)
        recs.append(r)
        n = trials or e.trials
        run_trials(e, n, events=events, image_overrides=image_overrides, stack=stack,
                   recorder=r, on_trial=on_trial, run_one=run_one, of=n)
    return recs


__all__ = ["run_trials", "run_budgeted", "run_suite_trials", "next_to_run", "TrialRecorder", "DEFAULT_STACK", "StackMode"]
