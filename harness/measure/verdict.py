"""RunRecord → Result: measure, check every assertion, decide the verdict.

Verdict rules, first match wins:

1. ERROR         the harness failed (`harness_error`) or the run was interrupted. Never blamed on
                 the system; whatever was measured is still reported.
2. FAIL          `abort_if` stopped the run: the system fell below the abort line.
3. INCONCLUSIVE  fewer than `experiment.min_samples` requests overall: too little evidence to
                 judge, even if an assertion looks failed (its message is still listed).
4. FAIL          any assertion measured and not met (including a fault that never recovered when
                 `time_to_recover` is asserted).
5. INCONCLUSIVE  any assertion whose metric is unknown (no read-back for `lost_writes`, no
                 successful request for a latency, no requests at all in a phase, ...).
6. PASS

SLO assertions are evaluated over the whole run ("overall") unless their key names a phase
(`latency_p50@slow-app-1`: that fault's window); steady-state assertions on the "baseline" and
the "recovery" phase separately (each phase that was recorded), or on the one they name. A key
that names an operation (`transfer.longest_outage`) is judged on that operation's requests only;
an operation or phase with no requests is unknown (INCONCLUSIVE), never a pass.
"""

from __future__ import annotations

from typing import Sequence

from harness.measure.audit import Durability, durability
from harness.measure.detection import summarize as summarize_monitoring
from harness.measure.metrics import PhaseMetrics, phase_with_operations
from harness.measure.versions import VersionSummary
from harness.measure.versions import summarize as summarize_versions
from harness.measure.monitoring import monitor_outcome, probe_outcomes
from harness.measure.omission import expected_interval
from harness.measure.rpo import DrillSummary, summarize_drill
from harness.measure.recovery import charged, error_window, recovery_bar, spans, time_to_recover
from harness.measure.result import (
    AssertionOutcome,
    FaultSummary,
    NoteSummary,
    OperationRecovery,
    Result,
    Verdict,
)
from harness.measure.store import SampleStore
from harness.measure.timeline import Timeline
from harness.model import AUDIT_METRICS, METRICS, MONITOR_METRICS, Assertion, RunRecord
from harness.model.assertions import DRILL_METRICS, STEADY_PHASES

_NEGATION = {">=": "<", ">": "<=", "<=": ">", "<": ">=", "==": "!="}
STEADY_SCOPES = STEADY_PHASES


def phase_name(phase: str) -> str:
    """A phase as written after "@" → the recorded phase's name ("slow-app-1" → "fault:slow-app-1")."""
    return phase if phase in STEADY_PHASES else f"fault:{phase}"


def format_value(metric: str, value: float | None, decimals: int = 2) -> str:
    """A measured value for humans, in the metric's unit: 99.41%, 412 ms, 2.31 s, 3, 512.0 req/s."""
    if value is None:
        return "unknown"
    kind = METRICS.get(metric, "")
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
        return f"{prefix}{a.key} {format_value(a.metric, measured)} meets {a.text}"
    # Never print "99.90% < required >= 99.9%": add digits until the shown value differs.
    shown = format_value(a.metric, measured)
    for d in range(3, 9):
        if measured == a.threshold or shown != format_value(a.metric, a.threshold, d - 1):
            break
        shown = format_value(a.metric, measured, d)
    return f"{prefix}{a.key} {shown} {_NEGATION[a.op]} required {a.text}"


def _phase_value(metric: str, pm: PhaseMetrics) -> tuple[float | None, str]:
    """(value, why unknown) of a metric computed from one phase."""
    where = pm.name if pm.operation is None else f"{pm.name} named {pm.operation!r}"
    if metric in ("availability", "error_rate", "throughput", "failed_requests") and pm.requests == 0:
        return None, f"no requests in {where}"
    if metric.startswith("latency_") and pm.successes == 0:
        return None, f"no successful requests in {where}"
    value = {
        "availability": pm.availability,
        "error_rate": pm.error_rate,
        "latency_p50": pm.latency_p50_s,
        "latency_p95": pm.latency_p95_s,
        "latency_p99": pm.latency_p99_s,
        "latency_max": pm.latency_max_s,
        "throughput": pm.throughput_rps,
        "failed_requests": float(pm.requests - pm.successes),
        "longest_outage": pm.longest_outage.duration_s if pm.longest_outage else None,
        "longest_stall": pm.longest_stall.duration_s if pm.longest_stall else None,
    }[metric]
    return value, "" if value is not None else f"no requests in {where}"


def operation_ttr(result: Result, operation: str) -> tuple[float | None, bool]:
    """(time to recover, never recovered) of one operation over every fault of a result: the
    worst fault's, as the run-level figure is for every request."""
    recs = [o.recovery for f in result.faults for o in f.operations if o.operation == operation]
    if not recs:
        return None, False
    if any(not r.recovered for r in recs):
        return None, True
    return max(r.time_to_recover_s for r in recs), False  # type: ignore[type-var]


def _durability_value(metric: str, d: Durability) -> tuple[float | None, str]:
    if not d.audited:
        return None, f"the read-back failed ({d.error})" if d.error else "no durability read-back"
    value = {"lost_writes": d.lost, "unexpected_writes": d.unexpected,
             "duplicate_writes": d.duplicates}[metric]
    return (None if value is None else float(value)), ""


def _check(a: Assertion, kind: str, scope: str, pm: PhaseMetrics | None, d: Durability,
           faults: Sequence[FaultSummary], operations: Sequence[str],
           versions: VersionSummary | None = None) -> AssertionOutcome:
    prefix = "" if kind == "slo" else f"{scope}: "
    key = a.key

    def outcome(measured: float | None, passed: bool | None, message: str) -> AssertionOutcome:
        return AssertionOutcome(kind, scope, a.metric, a.op, a.threshold, a.text, measured, passed,
                                message, METRICS.get(a.metric, ""), a.operation, a.phase)

    def unknown(why: str) -> AssertionOutcome:
        return outcome(None, None, f"{prefix}{key} unknown: {why} (required {a.text})")

    if a.operation is not None and a.operation not in operations:
        seen = ", ".join(operations) or "none"
        return unknown(f"no request named {a.operation!r} was sent (the run's operations: {seen})")

    if a.metric == "time_to_recover":
        judged = [f for f in faults if a.phase is None or f.fault == a.phase]
        if not judged:
            return unknown("no fault was injected" if a.phase is None else f"fault {a.phase} was not injected")
        recoveries = [(f, f.recovery if a.operation is None else f.for_operation(a.operation).recovery)  # type: ignore[union-attr]
                      for f in judged]
        never = [(f, r) for f, r in recoveries if not r.recovered]
        if never:
            f, r = never[0]
            who = "" if a.operation is None else f" for {a.operation}"
            return outcome(None, False, (
                f"{prefix}{key}: fault {f.fault} never recovered{who} before the run ended "
                f"(no {r.window_s:g} s window with availability >= "
                f"{format_value('availability', r.threshold)}); required {a.text}"))
        ttr = max(r.time_to_recover_s for _, r in recoveries)  # type: ignore[type-var]
        return outcome(ttr, a.holds(ttr), _message(a, ttr, a.holds(ttr), prefix))

    if a.invariant:
        inv = d.invariant(a.metric)
        if inv is None or inv.holds is None:
            why = inv.error if inv is not None and inv.error else "not read back"
            return outcome(None, None, f"{prefix}{a.metric} unknown: {why} (required {a.text})")
        measured = float(inv.holds)
        passed = a.holds(measured)
        state = "holds" if inv.holds else "does not hold"
        detail = f"{inv.description}: {inv.value!r} {inv.op} {inv.expected!r}"
        return outcome(measured, passed, f"{prefix}{a.metric} {state} ({detail})"
                       + ("" if passed else f"; required {a.text}"))
    if a.metric == "mixed_version_window":
        if versions is None:
            value, why = None, ("no request said which version answered it (the load profile "
                                "puts it in the request's context as \"version\")")
        else:
            value, why = versions.mixed_window_s, ""
    elif a.metric in AUDIT_METRICS:
        value, why = _durability_value(a.metric, d)
    elif pm is None:
        value, why = None, f"phase {scope} was not recorded"
    else:
        if a.operation is not None:
            pm = pm.for_operation(a.operation)
        value, why = _phase_value(a.metric, pm) if pm is not None else (None, "not measured")
    if value is None:
        return unknown(why)
    passed = a.holds(value)
    return outcome(value, passed, _message(a, value, passed, prefix))


def drill_outcome(a: Assertion, drill: DrillSummary | None) -> AssertionOutcome:
    """A drill metric (harness.measure.rpo). No recovery point (no backup, a failed backup) and
    an SLO never met again are FAILs with their reason; anything else unmeasured is unknown."""
    def outcome(measured: float | None, passed: bool | None, message: str) -> AssertionOutcome:
        return AssertionOutcome("slo", "overall", a.metric, a.op, a.threshold, a.text, measured,
                                passed, message, METRICS.get(a.metric, ""), None, None)

    if drill is None:
        return outcome(None, None, f"{a.metric} unknown: no drill fault ran (required {a.text})")
    value, why = drill.value(a.metric)
    if value is None:
        failed = (a.metric == "rto" and drill.disaster_s is not None) or (
            a.metric in ("rpo", "rpo_writes") and (not drill.backup_declared or drill.backup_error))
        if failed:
            return outcome(None, False, f"{a.metric}: {why}; required {a.text}")
        return outcome(None, None, f"{a.metric} unknown: {why} (required {a.text})")
    passed = a.holds(value)
    message = _message(a, value, passed, "")
    if not drill.backup_declared and a.metric == "lost_writes_before_backup" and not passed:
        message += " (the target declares no backup: x-continuum.backup)"
    return outcome(value, passed, message)


def _intervals(record: RunRecord, tl: Timeline, operations: Sequence[str]) -> dict[str | None, float | None]:
    """Closed-loop users' expected interval between requests (all, and per operation), from the
    baseline's pace: users / requests per second. Open-loop samples carry their due times and
    need none (harness.measure.omission)."""
    if record.experiment.load.mode != "closed":
        return {}
    base = next((p for p in record.phases if p.name == "baseline"), None)
    start, end = (base.start_t, base.end_t) if base is not None and base.end_t > base.start_t \
        else (record.t0, record.t_end)
    users = record.experiment.load.users
    chunk = tl.between(start, end)
    out: dict[str | None, float | None] = {None: expected_interval(users, sum(s.weight for s in chunk), end - start)}
    for op in operations:
        out[op] = expected_interval(users, sum(s.weight for s in chunk if s.name == op), end - start)
    return out


def _faults(record: RunRecord, tl: Timeline, operations: Sequence[str]) -> tuple[FaultSummary, ...]:
    exp, t0 = record.experiment, record.t0
    out = []
    for span in spans(record.faults, record.t_end):
        f = span.fault
        hit = charged(tl, span)
        per_op = []
        for op in operations:
            mine = [s for s in hit if s.name == op]
            per_op.append(OperationRecovery(
                op, time_to_recover(mine, span, exp.recovery_window_s, recovery_bar(exp.slo, op)),
                error_window(mine, t0)))
        out.append(FaultSummary(
            fault=f.fault, action=f.action, targets=tuple(f.targets),
            injected_s=f.injected_t - t0,
            reverted_s=None if f.reverted_t is None else f.reverted_t - t0,
            detail=f.detail,
            recovery=time_to_recover(hit, span, exp.recovery_window_s, recovery_bar(exp.slo)),
            error_window=error_window(hit, t0),
            issued_s=None if f.issued_t is None else f.issued_t - t0,
            operations=tuple(per_op),
        ))
    return tuple(out)


def evaluate(record: RunRecord) -> Result:
    """Measure `record` and decide its verdict (see module docstring for the rules)."""
    exp = record.experiment
    t0, t_end = record.t0, record.t_end
    # The run's store (bounded: harness.measure.store), or one made from the record's samples:
    # percentiles always come from its per-step histograms, everything else from its samples.
    store = record.store if record.store is not None else SampleStore.of(record.samples, t0, t_end)
    # a run's record holds the store's samples already (raw kept and stand-ins)
    tl = Timeline(record.samples if record.store is not None and record.samples else store.samples())
    operations = tl.operations()
    intervals = _intervals(record, tl, operations)

    def measure(name: str, start: float, end: float, included_end: float) -> PhaseMetrics:
        return phase_with_operations(name, tl.between(start, included_end), start, end, t0, operations, intervals,
                                     latency_of=lambda op, iv: store.latency(op, start, included_end, iv))

    overall = measure("overall", t0, t_end, t_end + 1e-9)
    phases = [overall] + [measure(p.name, p.start_t, p.end_t, p.end_t) for p in record.phases]
    by_name = {p.name: p for p in phases}

    faults = _faults(record, tl, operations)
    ttr_values = [f.recovery.time_to_recover_s for f in faults]
    ttr = max(ttr_values) if faults and all(v is not None for v in ttr_values) else None  # type: ignore[type-var]
    spec = exp.target.durability
    dur = durability(record.writes, record.audit, record.reads,
                     consumes=bool(spec is not None and spec.consumes))

    mon = summarize_monitoring(record)
    vers = summarize_versions(record.versions, t0, t_end)
    drill = summarize_drill(record.faults, record.writes, record.audit, record.reads, tl, t0, t_end,
                            exp.slo, exp.recovery_window_s)
    outcomes: list[AssertionOutcome] = []
    for a in exp.slo:
        if a.metric in MONITOR_METRICS:
            outcomes.append(monitor_outcome(a, "slo", mon))
            continue
        if a.metric in DRILL_METRICS:
            outcomes.append(drill_outcome(a, drill))
            continue
        scope = "overall" if a.phase is None else phase_name(a.phase)
        outcomes.append(_check(a, "slo", scope, by_name.get(scope), dur, faults, operations, vers))
    recorded = [s for s in STEADY_SCOPES if s in by_name] or ["baseline"]
    for a in exp.steady_state:
        for scope in ([a.phase] if a.phase else recorded):
            outcomes.append(_check(a, "steady_state", scope, by_name.get(scope), dur, faults, operations, vers))
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
        longest_stall=overall.longest_stall,
        operations=operations,
        operation_timelines=tuple((op, store.steps(op, t_end, intervals.get(op))) for op in operations),
        durability=dur,
        timeline=store.steps(None, t_end, intervals.get(None)),
        notes=tuple(NoteSummary(n.t - t0, n.text, n.author) for n in sorted(record.notes, key=lambda n: n.t)),
        aborted=record.aborted,
        harness_error=record.harness_error,
        interrupted=record.interrupted,
        too_few_samples=overall.requests < exp.min_samples,
        monitoring=mon,
        versions=vers,
        drill=drill,
        measurement=store.info(_cuts(record)),
    )


def _cuts(record: RunRecord) -> list[float]:
    """Every instant a metric cuts time at: phase edges and fault span starts."""
    cuts = [t for p in record.phases for t in (p.start_t, p.end_t)]
    cuts += [t for f in record.faults for t in (f.injected_t, f.issued_t, f.reverted_t) if t is not None]
    return cuts
