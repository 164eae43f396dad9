"""junit.xml: one <testsuite> per experiment, one <testcase> per assertion plus one for the run.

* the "run" case carries the run-level outcome: harness error / interruption → <error>, abort →
  <failure>, too few samples → <skipped>; otherwise it passes;
* each assertion case: met → pass, not met → <failure>, unknown → <skipped> with the reason; when
  the run as a whole could not be judged (ERROR, too few samples) assertion cases are <skipped>;
* the measured value goes to the case's <system-out>, and to the suite's properties as
  `<assertion name>.measured` / `.passed`, next to run_id and verdict;
* per operation (request name): one line each in the run case's <system-out>, and properties
  `operation.<name>.<metric>` (availability, latencies, throughput, outage, stall, TTR);
* a trial set (`--trials`) is one <testsuite> judged on its intervals (`trial_testsuite`), in
  place of its trials' suites.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import junit_xml

from harness.measure.result import Result, Verdict
from harness.measure.trialset import TrialSet
from harness.measure.verdict import format_value, operation_ttr
from harness.report.files import atomic_write_text


def _run_case(r: Result) -> junit_xml.TestCase:
    case = junit_xml.TestCase("run", classname=f"continuum.{r.name}", elapsed_sec=r.duration_s,
                              stdout=_summary(r))
    if r.verdict is Verdict.ERROR:
        case.add_error_info(message="; ".join(r.reasons), output="\n".join(r.reasons), error_type="HarnessError")
    elif r.aborted:
        case.add_failure_info(message=f"aborted: {r.aborted}", failure_type="Aborted")
    elif _unjudged(r):
        case.add_skipped_info(message=r.reasons[0])
    return case


def _unjudged(r: Result) -> bool:
    """Run-level INCONCLUSIVE (too few samples): no assertion outcome stands."""
    return r.verdict is Verdict.INCONCLUSIVE and r.too_few_samples


def _measures(o, ttr: float | None, never: bool) -> str:
    """One line of a phase's (or an operation's) numbers, the same for every row."""
    outage = o.longest_outage.duration_s if o.longest_outage else None
    stall = o.longest_stall.duration_s if o.longest_stall else None
    return (f"requests {o.requests} ({o.failures} failed), availability "
            f"{format_value('availability', o.availability)}, p50 {format_value('latency_p50', o.latency_p50_s)}, "
            f"p99 {format_value('latency_p99', o.latency_p99_s)}, throughput "
            f"{format_value('throughput', o.throughput_rps)}, time to recover "
            f"{'never' if never else format_value('time_to_recover', ttr)}, longest outage "
            f"{format_value('longest_outage', outage)}, longest stall {format_value('longest_stall', stall)}")


def _summary(r: Result) -> str:
    o = r.overall
    lines = [
        f"verdict: {r.verdict.value}",
        f"run_id: {r.run_id}",
        f"requests: {o.requests} ({o.failures} failed)",
        f"availability: {format_value('availability', o.availability)}",
        f"latency_p99: {format_value('latency_p99', o.latency_p99_s)}",
        f"time_to_recover: {format_value('time_to_recover', r.time_to_recover_s)}",
        f"longest_outage: {format_value('longest_outage', r.longest_outage.duration_s if r.longest_outage else None)}",
        f"longest_stall: {format_value('longest_stall', r.longest_stall.duration_s if r.longest_stall else None)}",
    ]
    for op in r.operations:
        ttr, never = operation_ttr(r, op)
        pm = o.for_operation(op)
        if pm is not None:
            lines.append(f"operation {op}: {_measures(pm, ttr, never)}")
    lines += [f"reason: {x}" for x in r.reasons]
    return "\n".join(lines)


def _operation_properties(r: Result) -> dict[str, str]:
    """`operation.<name>.<metric>` for every operation, over the whole run, in base units
    ("unknown" when not measured), so CI can chart writes and reads apart."""
    out: dict[str, str] = {}
    for op in r.operations:
        pm = r.overall.for_operation(op)
        if pm is None:
            continue
        ttr, never = operation_ttr(r, op)
        values = {
            "requests": pm.requests, "failures": pm.failures, "availability": pm.availability,
            "latency_p50_s": pm.latency_p50_s, "latency_p99_s": pm.latency_p99_s,
            "throughput_rps": pm.throughput_rps,
            "longest_outage_s": pm.longest_outage.duration_s if pm.longest_outage else None,
            "longest_stall_s": pm.longest_stall.duration_s if pm.longest_stall else None,
            "time_to_recover_s": None if never else ttr,
        }
        for k, v in values.items():
            out[f"operation.{op}.{k}"] = "unknown" if v is None else repr(v)
    return out


def testsuite(r: Result) -> junit_xml.TestSuite:
    cases = [_run_case(r)]
    props: dict[str, str] = {"run_id": r.run_id, "verdict": r.verdict.value, "started_at": r.started_at}
    props.update(_operation_properties(r))
    for a in r.assertions:
        measured = "unknown" if a.measured is None else repr(a.measured)
        case = junit_xml.TestCase(
            a.name, classname=f"continuum.{r.name}",
            stdout=f"{a.message}\nmeasured: {measured}\nthreshold: {a.op} {a.threshold!r} ({a.text})\nunit: {a.unit}")
        if r.verdict is Verdict.ERROR:
            case.add_skipped_info(message="not judged: " + "; ".join(r.reasons))
        elif _unjudged(r):
            case.add_skipped_info(message=f"not judged: {r.reasons[0]}")
        elif a.passed is False:
            case.add_failure_info(message=a.message, failure_type="SLOViolation")
        elif a.passed is None:
            case.add_skipped_info(message=a.message)
        cases.append(case)
        props[f"{a.name}.measured"] = measured
        props[f"{a.name}.passed"] = {True: "true", False: "false", None: "unknown"}[a.passed]
    return junit_xml.TestSuite(f"continuum.{r.name}", cases, id=r.run_id, timestamp=r.started_at,
                               properties=props)


def trial_testsuite(ts: TrialSet) -> junit_xml.TestSuite:
    """A trial set as CI sees it: the set's verdict, not each trial's (one flaky trial among
    passing ones is what the intervals judge). INCONCLUSIVE assertions are <skipped> with the
    interval and about how many trials would decide."""
    cls = f"continuum.{ts.name}"
    head = junit_xml.TestCase("trials", classname=cls, elapsed_sec=sum(ts.wall_s),
                              stdout="\n".join([f"verdict: {ts.verdict.value}", f"trials: {len(ts.trials)} "
                                                f"({len(ts.judged)} judged, {ts.stack} stack)",
                                                "per trial: " + " ".join(r.verdict.value for r in ts.trials)]
                                               + [f"reason: {x}" for x in ts.reasons]))
    if ts.verdict is Verdict.ERROR:
        head.add_error_info(message="; ".join(ts.reasons), error_type="HarnessError")
    elif ts.verdict is Verdict.FAIL and any(r.aborted for r in ts.trials):
        head.add_failure_info(message=ts.reasons[0], failure_type="Aborted")
    cases = [head]
    props = {"trials": str(len(ts.trials)), "stack": ts.stack, "verdict": ts.verdict.value,
             "run_ids": ",".join(r.run_id for r in ts.trials)}
    for a in ts.assertions:
        case = junit_xml.TestCase(a.name, classname=cls, stdout=f"{a.message}\ntrials passed: {a.passes}/{a.judged}")
        if ts.verdict is Verdict.ERROR:
            case.add_skipped_info(message="not judged: " + "; ".join(ts.reasons))
        elif a.verdict is Verdict.FAIL:
            case.add_failure_info(message=a.message, failure_type="SLOViolation")
        elif a.verdict is Verdict.INCONCLUSIVE:
            case.add_skipped_info(message=a.message)
        cases.append(case)
        if a.interval is not None:
            props[f"{a.name}.low"], props[f"{a.name}.high"] = repr(a.interval.low), repr(a.interval.high)
        props[f"{a.name}.verdict"] = a.verdict.value
        props[f"{a.name}.passes"] = f"{a.passes}/{a.judged}"
    return junit_xml.TestSuite(cls, cases, id=props["run_ids"], properties=props)


def junit_string(results: Sequence[Result], trial_sets: Sequence[TrialSet] = ()) -> str:
    judged = {ts.name for ts in trial_sets}
    suites = [trial_testsuite(ts) for ts in trial_sets] + [testsuite(r) for r in results if r.name not in judged]
    return junit_xml.to_xml_report_string(suites, prettyprint=True, encoding="utf-8")


def write_junit(results: Sequence[Result], path: Path, trial_sets: Sequence[TrialSet] = ()) -> None:
    atomic_write_text(Path(path), junit_string(results, trial_sets))
