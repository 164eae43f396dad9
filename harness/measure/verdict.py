"""RunRecord → Result: measure, check every assertion, decide the verdict.

Verdict rules, first match wins:

1. ERROR         the harness failed (`harness_error`) or the run was interrupted. Never blamed on
                 the system; whatever was measured is still reported.
2. FAIL          `abort_if` stopped the run: the system fell below the abort line.
3. INCONCLUSIVE  fewer than `experiment.min_samples` requests overall: too little evidence to
                 judge, even if an assertion looks failed (its message is still listed).
4. FAIL          any assertion measured and not met (including a fault that never recovered when
                 `time_to_recover` is asserted).
5. INCONCLUSIVE  any assertion whose metric is unknown (no audit for `lost_writes`, no
                 successful request for a latency, no requests at all in a phase, ...).
6. PASS

SLO assertions are evaluated over the whole run ("overall"); steady-state assertions on the
"baseline" and the "recovery" phase separately (each phase that was recorded).
"""

from __future__ import annotations

from typing import Sequence

from harness.measure.audit import Durability, durability
from harness.measure.detection import summarize as summarize_monitoring
from harness.measure.metrics import (
    PhaseMetrics,
    error_windows,
    phase_metrics,
    recovery_threshold,
    time_to_recover,
)
from harness.measure.monitoring import monitor_outcome, probe_outcomes
from harness.measure.result import AssertionOutcome, FaultSummary, NoteSummary, Result, Verdict
from harness.measure.timeline import Timeline
from harness.model import METRICS, MONITOR_METRICS, Assertion, RunRecord

_NEGATION = {">=": "<", ">": "<=", "<=": ">", "<": ">=", "==": "!="}
STEADY_SCOPES = ("baseline", "recovery")


def _span_end(fault, faults, t_end: float) -> float:
    """A fault is judged until the next fault lands (or the run ends)."""
    later = [f.injected_t for f in faults if f.injected_t > fault.injected_t]
    return min([t_end, *later])


def format_value(metric: str, value: float | None, decimals: int = 2) -> str:
    """A measured value for humans, in the metric's unit: 99.41%, 412 ms, 2.31 s, 3, 512.0 req/s."""
    if value is None:
        return "unknown"
    kind = METRICS.get(metric, "")
    if metric == "money_conserved":
        return "yes" if value else "no"
    if kind == "ratio":
        return f"{value * 100:.{decimals}f}%"
    if kind == "seconds":
        if abs(value) < 1.0:
            return f"{value * 1000:.{max(decimals - 2, 0)}f} ms"
        return f"{value:.{decimals}f} s"
    if kind == "count":
        return f"{value:g}" if value != int(value) else str(int(value))
    if kind == "rate":
        return f"{value:.1f} req/s"
    return f"{value:g}"


def _message(a: Assertion, measured: float, passed: bool, prefix: str) -> str:
    if passed:
        return f"{prefix}{a.metric} {format_value(a.metric, measured)} meets {a.text}"
    # Never print "99.90% < required >= 99.9%": add digits until the shown value differs.
    shown = format_value(a.metric, measured)
    for d in range(3, 9):
        if measured == a.threshold or shown != format_value(a.metric, a.threshold, d - 1):
            break
        shown = format_value(a.metric, measured, d)
    return f"{prefix}{a.metric} {shown} {_NEGATION[a.op]} required {a.text}"


def _phase_value(metric: str, pm: PhaseMetrics) -> tuple[float | None, str]:
    """(value, why unknown) of a metric computed from one phase."""
    if metric in ("availability", "error_rate", "throughput") and pm.requests == 0:
        return None, f"no requests in {pm.name}"
    if metric.startswith("latency_") and pm.successes == 0:
        return None, f"no successful requests in {pm.name}"
    value = {
        "availability": pm.availability,
        "error_rate": pm.error_rate,
        "latency_p50": pm.latency_p50_s,
        "latency_p95": pm.latency_p95_s,
        "latency_p99": pm.latency_p99_s,
        "latency_max": pm.latency_max_s,
        "throughput": pm.throughput_rps,
        "longest_outage": pm.longest_outage.duration_s if pm.longest_outage else None,
    }[metric]
    return value, "" if value is not None else f"{pm.name} is empty"


def _durability_value(metric: str, d: Durability) -> tuple[float | None, str]:
    if not d.audited:
        return None, "no durability audit"
    value = {"lost_writes": d.lost, "unexpected_writes": d.unexpected,
             "money_conserved": None if d.money_conserved is None else int(d.money_conserved)}[metric]
    return (None if value is None else float(value)), ""


def _check(a: Assertion, kind: str, scope: str, pm: PhaseMetrics | None, d: Durability,
           faults: Sequence[FaultSummary], ttr: float | None) -> AssertionOutcome:
    prefix = "" if kind == "slo" else f"{scope}: "

    def outcome(measured: float | None, passed: bool | None, message: str) -> AssertionOutcome:
        return AssertionOutcome(kind, scope, a.metric, a.op, a.threshold, a.text, measured, passed,
                                message, METRICS.get(a.metric, ""))

    if a.metric == "time_to_recover":
        if not faults:
            return outcome(None, None, f"{prefix}time_to_recover unknown: no fault was injected (required {a.text})")
        never = [f for f in faults if not f.recovery.recovered]
        if never:
            f = never[0]
            return outcome(None, False, (
                f"{prefix}time_to_recover: fault {f.fault} never recovered before the run ended "
                f"(no {f.recovery.window_s:g} s window with availability >= "
                f"{format_value('availability', f.recovery.threshold)}); required {a.text}"))
        return outcome(ttr, a.holds(ttr), _message(a, ttr, a.holds(ttr), prefix))

    if a.metric in ("lost_writes", "unexpected_writes", "money_conserved"):
        value, why = _durability_value(a.metric, d)
    elif pm is None:
        value, why = None, f"phase {scope} was not recorded"
    else:
        value, why = _phase_value(a.metric, pm)
    if value is None:
        return outcome(None, None, f"{prefix}{a.metric} unknown: {why} (required {a.text})")
    passed = a.holds(value)
    return outcome(value, passed, _message(a, value, passed, prefix))


def evaluate(record: RunRecord) -> Result:
    """Measure `record` and decide its verdict (see module docstring for the rules)."""
    exp = record.experiment
    t0, t_end = record.t0, record.t_end
    tl = Timeline(record.samples)

    overall = phase_metrics("overall", tl.between(t0, t_end + 1e-9), t0, t_end, t0)
    phases = [overall] + [phase_metrics(p.name, tl.between(p.start_t, p.end_t), p.start_t, p.end_t, t0)
                          for p in record.phases]
    by_name = {p.name: p for p in phases}

    bar = recovery_threshold(exp.slo)
    windows = error_windows(tl, record.faults, t0, t_end)
    faults = tuple(
        FaultSummary(
            fault=f.fault, action=f.action, targets=tuple(f.targets),
            injected_s=f.injected_t - t0,
            reverted_s=None if f.reverted_t is None else f.reverted_t - t0,
            detail=f.detail,
            recovery=time_to_recover(tl, f, _span_end(f, record.faults, t_end), exp.recovery_window_s, bar),
            error_window=windows.get(f.fault),
        )
        for f in sorted(record.faults, key=lambda f: f.injected_t)
    )
    ttr_values = [f.recovery.time_to_recover_s for f in faults]
    ttr = max(ttr_values) if faults and all(v is not None for v in ttr_values) else None  # type: ignore[type-var]
    dur = durability(record.writes, record.audit)

    mon = summarize_monitoring(record)
    outcomes: list[AssertionOutcome] = [
        monitor_outcome(a, "slo", mon) if a.metric in MONITOR_METRICS else
        _check(a, "slo", "overall", overall, dur, faults, ttr) for a in exp.slo
    ]
    scopes = [s for s in STEADY_SCOPES if s in by_name] or ["baseline"]
    for a in exp.steady_state:
        for scope in scopes:
            outcomes.append(_check(a, "steady_state", scope, by_name.get(scope), dur, faults, ttr))
    first_fault = min((f.injected_t for f in record.faults), default=None)
    outcomes.extend(probe_outcomes(exp.probes, mon, record.phases,
                                   None if first_fault is None else first_fault - t0, t0))

    failed = [o.message for o in outcomes if o.passed is False]
    unknown = [o.message for o in outcomes if o.passed is None]
    if record.harness_error or record.interrupted:
        verdict = Verdict.ERROR
        reasons = (["interrupted"] if record.interrupted else []) + \
                  ([f"harness error: {record.harness_error}"] if record.harness_error else [])
    elif record.aborted:
        verdict, reasons = Verdict.FAIL, [f"aborted: {record.aborted}"] + failed
    elif overall.requests < exp.min_samples:
        verdict = Verdict.INCONCLUSIVE
        reasons = [f"only {overall.requests} requests measured, fewer than min_samples {exp.min_samples}"] + failed + unknown
    elif failed:
        verdict, reasons = Verdict.FAIL, failed
    elif unknown:
        verdict, reasons = Verdict.INCONCLUSIVE, unknown
    else:
        verdict, reasons = Verdict.PASS, []

    return Result(
        experiment=exp,
        run_id=record.run_id,
        started_at=record.started_at,
        duration_s=t_end - t0,
        verdict=verdict,
        reasons=tuple(reasons),
        assertions=tuple(outcomes),
        phases=tuple(phases),
        faults=faults,
        time_to_recover_s=ttr,
        longest_outage=overall.longest_outage,
        durability=dur,
        timeline=tl.steps(t0, t_end),
        notes=tuple(NoteSummary(n.t - t0, n.text, n.author) for n in sorted(record.notes, key=lambda n: n.t)),
        aborted=record.aborted,
        harness_error=record.harness_error,
        interrupted=record.interrupted,
        too_few_samples=overall.requests < exp.min_samples,
        monitoring=mon,
    )
