"""Compare two suite runs from their results.json: did the candidate get worse than the baseline?

Per experiment (matched by name) the deltas of availability, p99 latency, time to recover,
longest outage and lost writes are checked against thresholds; a verdict that went from PASS
to FAIL is a regression too. Experiments found on one side only are reported, not judged.
A metric unknown on either side is reported as not comparable, except a fault that never
recovered in the candidate, which is a regression when the baseline recovered.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from harness.report.results import ResultsFileError, load_results, overall


@dataclass(frozen=True)
class Thresholds:
    max_availability_drop: float = 0.001    # absolute, ratio (0.001 = 0.1 percentage point)
    max_p99_increase: float = 0.25          # relative (0.25 = +25%)
    max_ttr_increase_s: float = 1.0
    max_outage_increase_s: float = 1.0
    max_lost_writes_increase: int = 0


@dataclass(frozen=True)
class MetricDelta:
    metric: str                     # availability, latency_p99, time_to_recover, longest_outage, lost_writes
    baseline: float | None
    candidate: float | None
    delta: float | None             # candidate - baseline
    regressed: bool
    note: str = ""                  # why it regressed, or why it could not be compared


@dataclass(frozen=True)
class ExperimentComparison:
    experiment: str
    baseline_verdict: str
    candidate_verdict: str
    deltas: tuple[MetricDelta, ...]
    regressions: tuple[str, ...]    # human-readable, one per regression

    @property
    def regressed(self) -> bool:
        return bool(self.regressions)

    def delta(self, metric: str) -> MetricDelta:
        for d in self.deltas:
            if d.metric == metric:
                return d
        raise KeyError(metric)


@dataclass(frozen=True)
class Comparison:
    experiments: tuple[ExperimentComparison, ...]
    only_in_baseline: tuple[str, ...]
    only_in_candidate: tuple[str, ...]
    thresholds: Thresholds

    @property
    def regressed(self) -> bool:
        return any(e.regressed for e in self.experiments)

    def experiment(self, name: str) -> ExperimentComparison:
        for e in self.experiments:
            if e.experiment == name:
                return e
        raise KeyError(name)


def _metrics(run: dict[str, Any]) -> dict[str, float | None]:
    o = overall(run)
    outage = run.get("longest_outage") or None
    return {
        "availability": o.get("availability"),
        "latency_p99": o.get("latency_p99_s"),
        "time_to_recover": run.get("time_to_recover_s"),
        "longest_outage": outage.get("duration_s") if isinstance(outage, dict) else None,
        "lost_writes": (run.get("durability") or {}).get("lost"),
    }


def _unrecovered(run: dict[str, Any]) -> list[str]:
    return [f.get("fault", "?") for f in run.get("faults", []) if f.get("recovered") is False]


def _pct(x: float) -> str:
    return f"{x * 100:.3g}%"


def compare_runs(base: dict[str, Any], cand: dict[str, Any], th: Thresholds) -> ExperimentComparison:
    b, c = _metrics(base), _metrics(cand)
    deltas: list[MetricDelta] = []
    regressions: list[str] = []
    for metric in ("availability", "latency_p99", "time_to_recover", "longest_outage", "lost_writes"):
        bv, cv = b[metric], c[metric]
        if bv is None or cv is None:
            note, bad = "not comparable: unknown on " + ("both sides" if bv is None and cv is None else
                                                        "baseline" if bv is None else "candidate"), False
            if metric == "time_to_recover" and cv is None and bv is not None and _unrecovered(cand):
                note, bad = f"candidate never recovered from {', '.join(_unrecovered(cand))}", True
            deltas.append(MetricDelta(metric, bv, cv, None, bad, note))
            if bad:
                regressions.append(f"{metric}: {note}")
            continue
        d = cv - bv
        if metric == "availability":
            bad = -d > th.max_availability_drop
            note = f"availability dropped {_pct(-d)} ({_pct(bv)} → {_pct(cv)}), more than {_pct(th.max_availability_drop)}"
        elif metric == "latency_p99":
            bad = cv > bv * (1 + th.max_p99_increase) if bv > 0 else cv > bv
            rel = f"+{d / bv * 100:.0f}%" if bv > 0 else f"+{d * 1000:.0f} ms"
            note = f"p99 rose {rel} ({bv * 1000:.0f} ms → {cv * 1000:.0f} ms), more than +{th.max_p99_increase * 100:.0f}%"
        elif metric == "time_to_recover":
            bad = d > th.max_ttr_increase_s
            note = f"time to recover rose {d:.2f} s ({bv:.2f} s → {cv:.2f} s), more than {th.max_ttr_increase_s:g} s"
        elif metric == "longest_outage":
            bad = d > th.max_outage_increase_s
            note = f"longest outage rose {d:.2f} s ({bv:.2f} s → {cv:.2f} s), more than {th.max_outage_increase_s:g} s"
        else:
            bad = d > th.max_lost_writes_increase
            note = f"lost writes rose from {bv:g} to {cv:g}"
        deltas.append(MetricDelta(metric, bv, cv, d, bad, note if bad else ""))
        if bad:
            regressions.append(f"{metric}: {note}")
    bverd, cverd = str(base.get("verdict", "?")), str(cand.get("verdict", "?"))
    if bverd == "PASS" and cverd == "FAIL":
        regressions.insert(0, "verdict: PASS → FAIL")
    return ExperimentComparison(str(cand.get("experiment")), bverd, cverd, tuple(deltas), tuple(regressions))


def compare_docs(baseline: dict[str, Any], candidate: dict[str, Any], thresholds: Thresholds | None = None) -> Comparison:
    """Compare two loaded results.json documents (runs matched by experiment name; the last wins)."""
    th = thresholds or Thresholds()
    bruns = {r["experiment"]: r for r in baseline.get("runs", [])}
    cruns = {r["experiment"]: r for r in candidate.get("runs", [])}
    both = [n for n in cruns if n in bruns]
    return Comparison(
        experiments=tuple(compare_runs(bruns[n], cruns[n], th) for n in both),
        only_in_baseline=tuple(n for n in bruns if n not in cruns),
        only_in_candidate=tuple(n for n in cruns if n not in bruns),
        thresholds=th,
    )


def compare(baseline_dir: Path, candidate_dir: Path, thresholds: Thresholds | None = None) -> Comparison:
    """Load both results.json (raises ResultsFileError, an InputError) and compare them."""
    return compare_docs(load_results(Path(baseline_dir)), load_results(Path(candidate_dir)), thresholds)


def _fmt(metric: str, v: float | None) -> str:
    if v is None:
        return "unknown"
    if metric == "availability":
        return f"{v * 100:.3f}%"
    if metric == "latency_p99":
        return f"{v * 1000:.1f} ms"
    if metric == "lost_writes":
        return f"{v:g}"
    return f"{v:.2f} s"


def _fmt_delta(metric: str, d: MetricDelta) -> str:
    if d.delta is None:
        return "n/a"
    if metric == "availability":
        return f"{d.delta * 100:+.3f} pp"
    if metric == "latency_p99":
        rel = f" ({d.delta / d.baseline * 100:+.0f}%)" if d.baseline else ""
        return f"{d.delta * 1000:+.1f} ms{rel}"
    if metric == "lost_writes":
        return f"{d.delta:+g}"
    return f"{d.delta:+.2f} s"


def format_comparison(c: Comparison) -> str:
    """A plain-text report (CI logs)."""
    lines: list[str] = []
    for e in c.experiments:
        flag = "REGRESSION" if e.regressed else "ok"
        lines.append(f"{e.experiment}: {e.baseline_verdict} → {e.candidate_verdict}  [{flag}]")
        for d in e.deltas:
            mark = "  ✗" if d.regressed else "   "
            lines.append(f"{mark} {d.metric:<16} {_fmt(d.metric, d.baseline):>12} → {_fmt(d.metric, d.candidate):>12}"
                         f"  {_fmt_delta(d.metric, d):>16}" + (f"  {d.note}" if d.note else ""))
        lines += [f"    regression: {r}" for r in e.regressions]
    for n in c.only_in_baseline:
        lines.append(f"{n}: missing in candidate (present in baseline)")
    for n in c.only_in_candidate:
        lines.append(f"{n}: new in candidate (absent from baseline)")
    n_reg = sum(e.regressed for e in c.experiments)
    lines.append(f"{len(c.experiments)} compared, {n_reg} regressed, "
                 f"{len(c.only_in_baseline)} missing in candidate, {len(c.only_in_candidate)} new")
    return "\n".join(lines)


def cmd_compare(baseline_dir: Path, candidate_dir: Path, max_availability_drop: float = 0.001,
                max_p99_increase: float = 0.25, max_ttr_increase_s: float = 1.0,
                max_outage_increase_s: float = 1.0, max_lost_writes_increase: int = 0,
                out: TextIO | None = None) -> int:
    """`continuum compare`: 0 no regression, 1 regression, 2 bad input (message on stderr)."""
    out = out or sys.stdout
    th = Thresholds(max_availability_drop, max_p99_increase, max_ttr_increase_s, max_outage_increase_s,
                    max_lost_writes_increase)
    try:
        c = compare(Path(baseline_dir), Path(candidate_dir), th)
    except ResultsFileError as e:
        print(f"continuum compare: {e}", file=sys.stderr)
        return 2
    print(format_comparison(c), file=out)
    return 1 if c.regressed else 0
