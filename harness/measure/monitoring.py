"""Judging what the monitor measured: the detection metrics and the probes, as assertion outcomes.

* `time_to_detect`: the largest time to detect over the run's faults. Any fault undetected →
  failed (naming it); any unknown → unknown; no fault → unknown.
* `time_to_resolve_alert`: the largest over the faults; an alert still firing after its fault
  ended → failed; a fault never detected or not yet resolvable → unknown.
* `alerts_without_fault`: the count, or unknown when Alertmanager was not read the whole run.
* A probe used as `slo` is judged on all its samples; as `steady_state` on the baseline
  (samples before the first fault took effect) and the recovery phase separately, like the
  steady_state assertions. Any failed sample → failed; else any unknown sample, or none at all
  → unknown; else passed. `measured` is the number of failed samples.
"""

from __future__ import annotations

from typing import Any, Sequence

from harness.measure.detection import MonitorSummary, ProbePoint
from harness.measure.result import AssertionOutcome
from harness.model import METRICS, Assertion, Phase

STEADY_SCOPES = ("baseline", "recovery")


def _fmt(s: float) -> str:
    return f"{s * 1000:.0f} ms" if abs(s) < 1 else f"{s:.2f} s"


def monitor_outcome(a: Assertion, kind: str, mon: MonitorSummary | None) -> AssertionOutcome:
    def out(measured: float | None, passed: bool | None, message: str) -> AssertionOutcome:
        return AssertionOutcome(kind, "overall", a.metric, a.op, a.threshold, a.text, measured, passed,
                                message, METRICS.get(a.metric, ""))

    if mon is None:
        return out(None, None, f"{a.metric} unknown: the target's monitoring was not read (required {a.text})")
    if a.metric == "alerts_without_fault":
        if mon.alerts_without_fault is None:
            return out(None, None, f"alerts_without_fault unknown: {mon.without_fault_unknown} (required {a.text})")
        n = float(mon.alerts_without_fault)
        names = ", ".join(x.describe() for x in mon.alerts if x.without_fault)
        if a.holds(n):
            return out(n, True, f"alerts_without_fault {int(n)} meets {a.text}")
        return out(n, False, f"alerts_without_fault {int(n)} does not meet {a.text} ({names})")
    if not mon.faults:
        return out(None, None, f"{a.metric} unknown: no fault was injected (required {a.text})")
    if a.metric == "time_to_detect":
        missed = [f for f in mon.faults if f.status == "undetected"]
        if missed:
            f = missed[0]
            return out(None, False, f"time_to_detect: fault {f.fault} undetected: {f.why}; required {a.text}")
        unknown = [f for f in mon.faults if f.status == "unknown"]
        if unknown:
            f = unknown[0]
            return out(None, None, f"time_to_detect unknown: fault {f.fault}: {f.why} (required {a.text})")
        worst = max(mon.faults, key=lambda f: f.time_to_detect_s or 0.0)
        value = worst.time_to_detect_s or 0.0
        verb = "meets" if a.holds(value) else "does not meet"
        return out(value, a.holds(value), f"time_to_detect {_fmt(value)} ({worst.fault}: {worst.alert}) "
                                          f"{verb} {a.text}")
    # time_to_resolve_alert
    stuck = [f for f in mon.faults if f.resolve == "still firing"]
    if stuck:
        f = stuck[0]
        return out(None, False, f"time_to_resolve_alert: fault {f.fault}: {f.why}; required {a.text}")
    open_ = [f for f in mon.faults if f.status != "detected" or f.resolve != "resolved"]
    if open_:
        f = open_[0]
        why = f"fault {f.fault} was {f.status}" if f.status != "detected" else f"fault {f.fault}: {f.why}"
        return out(None, None, f"time_to_resolve_alert unknown: {why} (required {a.text})")
    worst = max(mon.faults, key=lambda f: f.time_to_resolve_s or 0.0)
    value = worst.time_to_resolve_s or 0.0
    verb = "meets" if a.holds(value) else "does not meet"
    return out(value, a.holds(value), f"time_to_resolve_alert {_fmt(value)} ({worst.fault}) {verb} {a.text}")


def probe_outcomes(probes: Sequence[Any], mon: MonitorSummary | None, phases: Sequence[Phase],
                   first_fault_s: float | None, t0: float) -> list[AssertionOutcome]:
    """One outcome per slo probe, one per (steady_state probe, scope)."""
    points = mon.probes if mon is not None else ()
    recovery = next((p for p in phases if p.name == "recovery"), None)
    out: list[AssertionOutcome] = []
    for p in probes:
        if p.use == "abort_if":
            continue
        mine = [s for s in points if s.probe == p.name]
        if p.use == "slo":
            out.append(_judge(p, "slo", "overall", mine, ""))
            continue
        scopes = []
        if p.mode in ("start", "edge", "continuous"):
            scopes.append("baseline")
        if p.mode in ("end", "edge", "continuous"):
            scopes.append("recovery")
        for scope in scopes:
            if scope == "baseline":
                chosen = [s for s in mine if first_fault_s is None or s.offset_s < first_fault_s]
                missing = ""
            elif recovery is None:
                chosen, missing = [], "no recovery phase was recorded"
            else:
                start = recovery.start_t - t0
                chosen, missing = [s for s in mine if s.offset_s >= start], ""
            out.append(_judge(p, "steady_state", scope, chosen, missing))
    return out


def _judge(p: Any, kind: str, scope: str, samples: Sequence[ProbePoint], missing: str) -> AssertionOutcome:
    prefix = "" if kind == "slo" else f"{scope}: "
    metric = f"probe:{p.name}"

    def out(measured: float | None, passed: bool | None, message: str) -> AssertionOutcome:
        return AssertionOutcome(kind, scope, metric, "==", 0.0, p.check_text(), measured, passed,
                                f"{prefix}probe {p.name} ({p.mode}) {message}", "count")

    if not samples:
        return out(None, None, f"unknown: {missing or 'no sample was taken'}")
    failed = [s for s in samples if s.ok is False]
    unknown = [s for s in samples if s.ok is None]
    n = len(samples)
    if failed:
        f = failed[0]
        return out(float(len(failed)), False, f"failed {len(failed)} of {n} sample(s); first at "
                                              f"{f.offset_s:.1f} s: {f.detail}")
    if unknown:
        u = unknown[0]
        return out(None, None, f"unknown in {len(unknown)} of {n} sample(s); first at {u.offset_s:.1f} s: "
                               f"{u.detail}")
    return out(0.0, True, f"{n} sample(s) met {p.check_text()}")
