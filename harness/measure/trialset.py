"""A trial set: one experiment run N times, judged on intervals instead of on one run.

    ts = summarize(results)         # the N Results of one experiment, in trial order
    ts.verdict, ts.assertions[0].interval, ts.assertions[0].trials_needed

Per assertion (the experiment's SLOs and steady-state checks, as each trial judged them):

* ratios (availability, error_rate): Wilson interval of the pooled ratio over the trials'
  requests in the assertion's scope, on the effective n (harness.measure.stats);
* durability (lost_writes, unexpected_writes, money_conserved) are invariants, not estimates:
  one trial that lost an acknowledged write is a counterexample, so the set FAILs; all trials
  holding is a PASS; no estimate of "how often" softens a lost write;
* everything else (time to recover, latency percentiles, longest outage, throughput): bootstrap
  interval of the mean over trials; a trial that never recovered counts as +inf.

Trials that cannot be judged give no value: ERROR trials (the harness broke; the set is ERROR)
and trials with fewer requests than `min_samples`. An aborted trial (abort_if fired) is a
measured failure: the set FAILs, and its requests up to the abort count in the ratios' pooled
interval (availability, error rate), so a set of aborted trials still has one to compare. Every assertion also carries the share of trials that passed
it, with its own Wilson interval: flakiness, visible.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Sequence

from harness.measure.result import Result, Verdict, worst_verdict
from harness.measure.stats import (
    FEW_TRIALS,
    MIN_TRIALS,
    Interval,
    bootstrap_mean,
    closeness,
    decide,
    ratio_interval,
    share_interval,
)
from harness.measure.verdict import format_value
from harness.model import METRICS
from harness.model.experiment import Experiment

INVARIANT_METRICS = ("lost_writes", "unexpected_writes", "money_conserved")
RATIO_METRICS = ("availability", "error_rate")


@dataclass(frozen=True)
class TrialAssertion:
    name: str                   # as in a run: "slo.availability", "steady_state.baseline.availability"
    kind: str
    scope: str
    metric: str
    op: str
    threshold: float
    text: str
    unit: str
    method: str                 # "wilson" | "bootstrap" | "invariant"
    values: tuple[float | None, ...]    # per trial (None: unknown or not judged); inf: never recovered
    passed: tuple[bool | None, ...]     # per trial, as that trial judged it
    interval: Interval | None
    verdict: Verdict
    trials_needed: int | None   # INCONCLUSIVE: about how many trials would decide
    pass_share: Interval | None  # share of judged trials that passed, Wilson
    message: str

    @property
    def passes(self) -> int:
        return sum(1 for p in self.passed if p is True)

    @property
    def judged(self) -> int:
        return sum(1 for p in self.passed if p is not None)

    @property
    def closeness(self) -> float:
        """Half-widths between the estimate and the threshold (0 = on it; inf = far/decided)."""
        if self.method == "invariant":
            return math.inf if self.verdict is not Verdict.INCONCLUSIVE else 0.0
        return closeness(self.threshold, self.interval)


# What `compare` matches trial sets on, asserted or not (overall phase, per trial).
SPREAD_METRICS = ("availability", "latency_p99", "time_to_recover", "longest_outage", "lost_writes")


@dataclass(frozen=True)
class MetricSpread:
    """One metric over the trials, whether or not an assertion names it."""

    metric: str
    method: str                         # "wilson" | "bootstrap"
    values: tuple[float | None, ...]    # per judged-or-not trial; None unknown; inf never recovered
    interval: Interval | None


@dataclass(frozen=True)
class TrialSet:
    experiment: Experiment
    trials: tuple[Result, ...]
    assertions: tuple[TrialAssertion, ...]
    verdict: Verdict
    reasons: tuple[str, ...]
    stack: str = "fresh"                # "fresh": a new stack per trial; "reused": one, settled between
    wall_s: tuple[float, ...] = ()      # per trial, stack time included (fresh) or settle time (reused)
    spreads: tuple[MetricSpread, ...] = ()

    def spread(self, metric: str) -> MetricSpread:
        for m in self.spreads:
            if m.metric == metric:
                return m
        raise KeyError(metric)

    @property
    def name(self) -> str:
        return self.experiment.name

    @property
    def judged(self) -> tuple[Result, ...]:
        return tuple(r for r in self.trials if _judgeable(r))

    @property
    def few_trials(self) -> bool:
        """True when the verdict rests on too few trials for the intervals to be trusted."""
        return len(self.judged) < FEW_TRIALS

    @property
    def exit_code(self) -> int:
        return self.verdict.exit_code

    @property
    def closeness(self) -> float:
        """The smallest closeness of an undecided assertion (inf when all are decided)."""
        open_ = [a.closeness for a in self.assertions if a.verdict is Verdict.INCONCLUSIVE]
        return min(open_, default=math.inf)


def _judgeable(r: Result) -> bool:
    return r.verdict is not Verdict.ERROR and not r.too_few_samples and not r.aborted


def _measured_until_abort(r: Result) -> bool:
    """An aborted trial's requests up to the abort were measured like any: they count in the
    ratios' pooled interval (left out, the interval would read only the trials that held up)."""
    return bool(r.aborted) and r.verdict is not Verdict.ERROR and not r.too_few_samples


def _ratio_counts(r: Result, metric: str, scope: str) -> tuple[int, int]:
    try:
        pm = r.phase(scope)
    except KeyError:
        return 0, 0
    hits = pm.successes if metric == "availability" else pm.failures
    return hits, pm.requests


def _outcome(r: Result, name: str):
    for o in r.assertions:
        if o.name == name:
            return o
    return None


def _trial_value(o, metric: str) -> float | None:
    if o is None:
        return None
    if o.measured is None:
        # time_to_recover measured as "never": worse than any number, not unknown
        return math.inf if metric == "time_to_recover" and o.passed is False else None
    return float(o.measured)


def _fmt(metric: str, v: float | None) -> str:
    if v is not None and math.isinf(v):
        return "never"
    return format_value(metric, v)


def interval_text(metric: str, iv: Interval | None) -> str:
    """"99.79% [99.71%, 99.85%]" / "4.10 s [3.62 s, never]"."""
    if iv is None:
        return "unknown"
    return f"{_fmt(metric, iv.estimate)} [{_fmt(metric, iv.low)}, {_fmt(metric, iv.high)}]"


def _judge(template, trials: Sequence[Result]) -> TrialAssertion:
    metric, op, th = template.metric, template.op, template.threshold
    outcomes = [_outcome(r, template.name) if _judgeable(r) else None for r in trials]
    values = tuple(_trial_value(o, metric) for o in outcomes)
    passed = tuple(None if o is None else o.passed for o in outcomes)
    judged = [p for p in passed if p is not None]
    share = share_interval(sum(judged), len(judged)) if judged else None
    prefix = "" if template.kind == "slo" else f"{template.scope}: "
    n_known = sum(1 for v in values if v is not None)
    stem = f"{prefix}{metric}"

    if metric in INVARIANT_METRICS:
        method, interval = "invariant", None
        if any(p is False for p in passed):
            bad = [f"{k + 1}" for k, p in enumerate(passed) if p is False]
            verdict = Verdict.FAIL
            message = (f"{stem} missed {template.text} in trial{'s' if len(bad) > 1 else ''} "
                       f"{', '.join(bad)} of {len(trials)} (an invariant: one counterexample fails)")
        elif len(judged) >= MIN_TRIALS and all(judged):
            verdict = Verdict.PASS
            message = f"{stem} met {template.text} in all {len(judged)} judged trials"
        else:
            verdict = Verdict.INCONCLUSIVE
            message = f"{stem} unknown in {len(trials) - len(judged)} of {len(trials)} trials (required {template.text})"
        return TrialAssertion(template.name, template.kind, template.scope, metric, op, th, template.text,
                              template.unit, method, values, passed, interval, verdict, None, share, message)

    if metric in RATIO_METRICS:
        method = "wilson"
        counts = [_ratio_counts(r, metric, template.scope) if o is not None or _measured_until_abort(r)
                  else (0, 0) for r, o in zip(trials, outcomes)]
        interval = ratio_interval(counts)
    else:
        method = "bootstrap"
        interval = bootstrap_mean([v for v in values if v is not None])
    d = decide(op, th, interval)
    what = "pooled" if method == "wilson" else "mean"
    if interval is None:
        message = (f"{stem} unknown: {n_known} trial{'s' if n_known != 1 else ''} measured it, an interval "
                   f"needs {MIN_TRIALS} (required {template.text})")
    else:
        shown = f"{stem} {what} {interval_text(metric, interval)} ({interval.confidence:.0%} {method}, {interval.n} trials)"
        if d.verdict is Verdict.PASS:
            message = f"{shown} meets {template.text} over the whole interval"
        elif d.verdict is Verdict.FAIL:
            message = f"{shown} misses {template.text} over the whole interval"
        else:
            more = (f"; about {d.trials_needed} trials would decide" if d.trials_needed
                    else "; no number of trials is likely to decide")
            message = f"{shown} straddles {template.text}{more}"
    return TrialAssertion(template.name, template.kind, template.scope, metric, op, th, template.text,
                          template.unit, method, values, passed, interval, d.verdict, d.trials_needed, share,
                          message)


def _spread(trials: Sequence[Result], metric: str) -> MetricSpread:
    ok = [r if _judgeable(r) else None for r in trials]
    if metric == "availability":
        measured = [r if _judgeable(r) or _measured_until_abort(r) else None for r in trials]
        counts = [(r.overall.successes, r.overall.requests) if r else (0, 0) for r in measured]
        values = tuple(None if r is None else r.overall.availability for r in measured)
        return MetricSpread(metric, "wilson", values, ratio_interval(counts))

    def value(r: Result | None) -> float | None:
        if r is None:
            return None
        if metric == "latency_p99":
            return r.overall.latency_p99_s
        if metric == "time_to_recover":
            return math.inf if r.unrecovered else r.time_to_recover_s
        if metric == "longest_outage":
            return r.longest_outage.duration_s if r.longest_outage else None
        lost = r.durability.lost
        return None if lost is None else float(lost)

    values = tuple(value(r) for r in ok)
    return MetricSpread(metric, "bootstrap", values, bootstrap_mean([v for v in values if v is not None]))


def summarize(trials: Sequence[Result], stack: str = "fresh", wall_s: Sequence[float] = ()) -> TrialSet:
    """Judge one experiment's trials together (see module docstring). `trials` must be non-empty
    and all of the same experiment."""
    if not trials:
        raise ValueError("a trial set needs at least one trial")
    names = {r.name for r in trials}
    if len(names) != 1:
        raise ValueError(f"trials of different experiments in one set: {', '.join(sorted(names))}")
    exp = trials[0].experiment
    # The assertions as the first trial that judged any listed them (every trial has the same).
    template = next((r for r in trials if r.assertions), trials[0])
    assertions = tuple(_judge(a, trials) for a in template.assertions)
    spreads = tuple(_spread(trials, m) for m in SPREAD_METRICS)

    if len(trials) == 1:
        # One trial is one run: judged on its own numbers, as without trials (no interval).
        only = trials[0]
        single = {o.name: o for o in only.assertions}
        assertions = tuple(dataclasses.replace(
            a, verdict={True: Verdict.PASS, False: Verdict.FAIL}.get(single[a.name].passed, Verdict.INCONCLUSIVE),
            message=single[a.name].message) for a in assertions)
        return TrialSet(exp, tuple(trials), assertions, only.verdict,
                        only.reasons + ("rests on 1 trial: no interval",), stack, tuple(wall_s), spreads)
    errors = [(k, r) for k, r in enumerate(trials) if r.verdict is Verdict.ERROR]
    aborted = [(k, r) for k, r in enumerate(trials) if r.aborted and r.verdict is not Verdict.ERROR]
    thin = [k for k, r in enumerate(trials) if r.too_few_samples and r.verdict is not Verdict.ERROR]
    reasons: list[str] = []
    if errors:
        verdict = Verdict.ERROR
        reasons += [f"trial {k + 1}: " + "; ".join(r.reasons) for k, r in errors]
    elif aborted:
        verdict = Verdict.FAIL
        reasons += [f"trial {k + 1}: aborted: {r.aborted}" for k, r in aborted]
    else:
        verdict = worst_verdict(a.verdict for a in assertions) if assertions else Verdict.INCONCLUSIVE
    reasons += [a.message for a in assertions if a.verdict is Verdict.FAIL]
    reasons += [a.message for a in assertions if a.verdict is Verdict.INCONCLUSIVE]
    if thin:
        reasons.append(f"trial{'s' if len(thin) > 1 else ''} {', '.join(str(k + 1) for k in thin)}: fewer "
                       f"requests than min_samples {exp.min_samples}, not counted")
    judged = sum(1 for r in trials if _judgeable(r))
    if judged < FEW_TRIALS and verdict is not Verdict.ERROR:
        reasons.append(f"rests on {judged} judged trial{'s' if judged != 1 else ''}: intervals from fewer "
                       f"than {FEW_TRIALS} are too narrow")
    return TrialSet(exp, tuple(trials), assertions, verdict, tuple(reasons), stack, tuple(wall_s), spreads)



__all__ = ["TrialSet", "TrialAssertion", "MetricSpread", "SPREAD_METRICS", "summarize", "interval_text", "INVARIANT_METRICS"]
