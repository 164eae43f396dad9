"""Compare two suite runs from their results.json: did the candidate get worse than the baseline?

Per experiment (matched by name) the deltas of availability, p99 latency, time to recover,
longest outage and lost writes are checked against thresholds; a verdict that went from PASS
to FAIL is a regression too. A metric unknown on either side is reported as not comparable,
except a fault that never recovered in the candidate, which is a regression when the baseline
recovered.

When both sides ran an experiment as a trial set (`--trials`), each metric is compared on its
confidence intervals: a regression needs the intervals to separate in the worse direction *and*
the estimates to differ by more than the threshold (statistically and practically worse). Two
trial sets of the same commit overlap, so luck is not a regression; one run against one run
cannot tell luck from change, so single runs keep the point comparison.

Two properties are not estimates: a candidate trial that lost an acknowledged write, or that never
recovered, against a baseline whose trials never did, is a regression whatever the intervals say.

A candidate trial set none of whose trials could be judged (all stopped by abort_if, or errors)
against a baseline with judged trials is a regression too: nothing measured is not a pass
(measured: the fragile twin's app kill aborted in 3 of 3 trials and compare said "0 regressed").
An experiment of the baseline that the candidate lacks is a regression: a candidate that ran
less is never a pass (a suite whose experiments all went missing must not report "0 compared"
and exit 0). A baseline with nothing in it is bad input.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from harness.report.results import ResultsFileError, load_results, number, overall

Bounds = tuple[float, float]


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
    baseline_interval: Bounds | None = None     # trial sets: the confidence interval of each side
    candidate_interval: Bounds | None = None


@dataclass(frozen=True)
class ExperimentComparison:
    experiment: str
    baseline_verdict: str
    candidate_verdict: str
    deltas: tuple[MetricDelta, ...]
    regressions: tuple[str, ...]    # human-readable, one per regression
    trials: tuple[int, int] | None = None   # (baseline, candidate) trial counts when compared as sets

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
        """A regression anywhere, or an experiment of the baseline the candidate did not run."""
        return any(e.regressed for e in self.experiments) or bool(self.only_in_baseline)

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


_HIGHER_IS_WORSE = {"availability": False, "latency_p99": True, "time_to_recover": True,
                    "longest_outage": True, "lost_writes": True}


def _bounds(entry: dict[str, Any] | None) -> tuple[float, Bounds] | None:
    iv = (entry or {}).get("interval")
    if not iv:
        return None
    return number(iv["estimate"]), (number(iv["low"]), number(iv["high"]))  # type: ignore[return-value]


def _show(metric: str, v: float) -> str:
    return "never" if math.isinf(v) else _fmt(metric, v)


def _iv_text(metric: str, est: float, b: Bounds) -> str:
    return f"{_show(metric, est)} [{_show(metric, b[0])}, {_show(metric, b[1])}]"


def _beyond(metric: str, bv: float, cv: float, th: Thresholds) -> bool:
    """Is the candidate's estimate worse than the baseline's by more than the threshold?"""
    if math.isinf(cv):
        return not math.isinf(bv)
    if math.isinf(bv):
        return False
    d = cv - bv
    if metric == "availability":
        return -d > th.max_availability_drop
    if metric == "latency_p99":
        return cv > bv * (1 + th.max_p99_increase) if bv > 0 else cv > bv
    if metric == "time_to_recover":
        return d > th.max_ttr_increase_s
    if metric == "longest_outage":
        return d > th.max_outage_increase_s
    return d > th.max_lost_writes_increase


def _never(entry: dict[str, Any]) -> list[int]:
    return [k + 1 for k, v in enumerate(entry.get("values", [])) if v == "never"]


def _judged(entry: dict[str, Any]) -> int:
    """How many trials of a set were judged (results.json `judged`; older files: all of them)."""
    return int(entry.get("judged", entry.get("trials", 0)) or 0)


def compare_sets(base: dict[str, Any], cand: dict[str, Any], th: Thresholds) -> ExperimentComparison:
    """Two trial sets of one experiment, metric by metric on their intervals (module docstring)."""
    deltas: list[MetricDelta] = []
    regressions: list[str] = []
    bm, cm = base.get("metrics", {}), cand.get("metrics", {})
    for metric, worse_up in _HIGHER_IS_WORSE.items():
        b, c = _bounds(bm.get(metric)), _bounds(cm.get(metric))
        if metric == "lost_writes":
            # An invariant: any candidate trial that lost an acknowledged write, against a
            # baseline that never did, is a regression whatever the intervals say.
            bvals = [number(v) for v in (bm.get(metric) or {}).get("values", []) if v is not None]
            cvals = [number(v) for v in (cm.get(metric) or {}).get("values", []) if v is not None]
            if bvals and cvals and max(bvals) == 0 and max(cvals) > th.max_lost_writes_increase:
                bad = [k + 1 for k, v in enumerate((cm.get(metric) or {}).get("values", []))
                       if v is not None and number(v) > 0]
                note = f"lost writes in candidate trial{'s' if len(bad) > 1 else ''} {', '.join(map(str, bad))}, none in the baseline"
                deltas.append(MetricDelta(metric, 0.0, max(cvals), max(cvals), True, note,
                                          b[1] if b else None, c[1] if c else None))
                regressions.append(f"{metric}: {note}")
                continue
        if metric == "time_to_recover":
            # Coming back is a safety property, like not losing writes: a candidate trial that
            # never recovered, against a baseline whose every trial did, is a regression.
            never = _never(cm.get(metric, {}))
            bvals = (bm.get(metric) or {}).get("values", [])
            if never and bvals and not _never(bm.get(metric, {})):
                note = (f"candidate never recovered in trial{'s' if len(never) > 1 else ''} "
                        f"{', '.join(map(str, never))}; every baseline trial did")
                deltas.append(MetricDelta(metric, b[0] if b else None, math.inf, math.inf, True, note,
                                          b[1] if b else None, c[1] if c else None))
                regressions.append(f"{metric}: {note}")
                continue
        if b is None or c is None:
            note, bad = "not comparable: no interval on " + ("both sides" if b is None and c is None else
                                                             "baseline" if b is None else "candidate"), False
            deltas.append(MetricDelta(metric, b[0] if b else None, c[0] if c else None, None, bad, note,
                                      b[1] if b else None, c[1] if c else None))
            continue
        (bv, biv), (cv, civ) = b, c
        separated = civ[0] > biv[1] if worse_up else civ[1] < biv[0]
        beyond = _beyond(metric, bv, cv, th)
        bad = separated and beyond
        delta = cv - bv if not (math.isinf(cv) and math.isinf(bv)) else 0.0
        shown = f"{_iv_text(metric, bv, biv)} → {_iv_text(metric, cv, civ)}"
        if bad:
            never = _never(cm.get(metric, {}))
            why = f"; candidate never recovered in trial{'s' if len(never) > 1 else ''} {', '.join(map(str, never))}" if never else ""
            note = f"{metric.replace('_', ' ')} worse, intervals separate: {shown}{why}"
            regressions.append(f"{metric}: {note}")
        elif beyond:
            note = f"estimates differ by more than the threshold but the intervals overlap ({shown}): not a regression"
        else:
            note = ""
        deltas.append(MetricDelta(metric, bv, cv, delta, bad, note, biv, civ))
    bverd, cverd = str(base.get("verdict", "?")), str(cand.get("verdict", "?"))
    if bverd == "PASS" and cverd == "FAIL":
        regressions.insert(0, "verdict: PASS → FAIL")
    # Nothing measured is never a pass: a candidate none of whose trials could be judged
    # (every one stopped by its abort_if bar, or an error) against a baseline that had judged
    # ones leaves every metric "not comparable", which must not read as "no regression".
    bj, cj = _judged(base), _judged(cand)
    if cj == 0 and bj > 0:
        regressions.insert(0, f"judged trials: 0 of {int(cand.get('trials', 0))} in the candidate "
                              f"({cverd}: every trial aborted or errored), {bj} in the baseline: "
                              f"nothing to compare is not a pass")
    return ExperimentComparison(str(cand.get("experiment")), bverd, cverd, tuple(deltas), tuple(regressions),
                                (int(base.get("trials", 0)), int(cand.get("trials", 0))))


def compare_docs(baseline: dict[str, Any], candidate: dict[str, Any], thresholds: Thresholds | None = None) -> Comparison:
    """Compare two loaded results.json documents, matched by experiment name: as trial sets where
    both sides have one, else as runs (the last run of a name wins)."""
    th = thresholds or Thresholds()
    bruns = {r["experiment"]: r for r in baseline.get("runs", [])}
    cruns = {r["experiment"]: r for r in candidate.get("runs", [])}
    bsets = {t["experiment"]: t for t in baseline.get("trial_sets", [])}
    csets = {t["experiment"]: t for t in candidate.get("trial_sets", [])}
    bnames = list(dict.fromkeys([*bruns, *bsets]))
    cnames = list(dict.fromkeys([*cruns, *csets]))
    both = [n for n in cnames if n in bnames]

    def one(n: str) -> ExperimentComparison:
        if n in bsets and n in csets:
            return compare_sets(bsets[n], csets[n], th)
        return compare_runs(bruns[n], cruns[n], th)

    return Comparison(
        experiments=tuple(one(n) for n in both),
        only_in_baseline=tuple(n for n in bnames if n not in cnames),
        only_in_candidate=tuple(n for n in cnames if n not in bnames),
        thresholds=th,
    )


def compare(baseline_dir: Path, candidate_dir: Path, thresholds: Thresholds | None = None) -> Comparison:
    """Load both results.json (raises ResultsFileError, an InputError) and compare them."""
    return compare_docs(load_results(Path(baseline_dir)), load_results(Path(candidate_dir)), thresholds)


def _fmt(metric: str, v: float | None) -> str:
    if v is None:
        return "unknown"
    if math.isinf(v):
        return "never"
    if metric == "availability":
        return f"{v * 100:.3f}%"
    if metric == "latency_p99":
        return f"{v * 1000:.1f} ms"
    if metric == "lost_writes":
        return f"{v:g}"
    return f"{v:.2f} s"


def _cell(metric: str, v: float | None, iv: Bounds | None) -> str:
    if v is None or iv is None:
        return _fmt(metric, v) if v is None or not math.isinf(v) else "never"
    return _iv_text(metric, v, iv)


def _fmt_delta(metric: str, d: MetricDelta) -> str:
    if d.delta is None:
        return "n/a"
    if math.isinf(d.delta):
        return "never"
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
        sets = f"  ({e.trials[0]} vs {e.trials[1]} trials, 95% intervals)" if e.trials else ""
        lines.append(f"{e.experiment}: {e.baseline_verdict} → {e.candidate_verdict}  [{flag}]{sets}")
        for d in e.deltas:
            mark = "  ✗" if d.regressed else "   "
            lines.append(f"{mark} {d.metric:<16} {_cell(d.metric, d.baseline, d.baseline_interval):>28} → "
                         f"{_cell(d.metric, d.candidate, d.candidate_interval):>28}"
                         f"  {_fmt_delta(d.metric, d):>16}" + (f"  {d.note}" if d.note else ""))
        lines += [f"    regression: {r}" for r in e.regressions]
    for n in c.only_in_baseline:
        lines.append(f"{n}: missing in candidate (present in baseline): not a pass")
    for n in c.only_in_candidate:
        lines.append(f"{n}: new in candidate (absent from baseline)")
    n_reg = sum(e.regressed for e in c.experiments) + len(c.only_in_baseline)
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
    if not c.experiments and not c.only_in_baseline:
        print(f"continuum compare: nothing to compare: the baseline {baseline_dir} has no experiments", file=sys.stderr)
        return 2
    print(format_comparison(c), file=out)
    return 1 if c.regressed else 0
