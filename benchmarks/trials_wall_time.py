"""Repeated trials: a fresh stack per trial against one reused stack with a settle check (issue 14).

Runs one experiment N times each way, one way after the other, on real containers, and prints
side by side: wall time per trial (median, and the part that is not the experiment's own
duration: stack up/down for fresh, the settle check for reused), the interval and verdict of
every assertion, and the share of trials that passed. It writes each trial set's reports
(results.json, report.html, ...) so `continuum compare` can be run on them afterwards.

    .venv/bin/python benchmarks/trials_wall_time.py [EXPERIMENT.yaml] [--trials 10]
        [--only fresh|reused] [--target DIR] [--out DIR]

Default: experiments/redis-primary-kill.yaml, 10 trials each way (about 30 minutes), reports in
reports/trials-<mode>/. The machine matters: record the date and the load with the figures
(benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.events import Events, Message  # noqa: E402
from harness.loader import load_experiment  # noqa: E402
from harness.measure.trialset import interval_text  # noqa: E402
from harness.report import write_reports  # noqa: E402
from harness.run import signals_as_interrupt  # noqa: E402
from harness.run.trials import run_trials  # noqa: E402


def run_mode(exp, n: int, mode: str, out: Path):
    events = Events()
    events.subscribe(lambda e: print(f"  [{mode}] {e.text}", flush=True), Message)
    t = time.monotonic()
    load0 = os.getloadavg()[0]
    def on_trial(r) -> None:
        print(f"  [{mode}] trial {len(r.results)}: {r.results[-1].verdict.value} in {r.wall_s[-1]:.1f} s"
              + (f" ({'; '.join(r.results[-1].reasons)})" if r.results[-1].reasons else ""), flush=True)
        write_reports(r.results, r.records, out, trial_sets=[r.summary()])     # evidence as it goes

    rec = run_trials(exp, n, events=events, stack=mode, on_trial=on_trial)  # type: ignore[arg-type]
    total = time.monotonic() - t
    ts = rec.summary()
    write_reports(rec.results, rec.records, out, trial_sets=[ts])
    return ts, total, load0, os.getloadavg()[0], rec


def rejudge_inside(rec, metric: str = "time_to_recover"):
    """The same measured trials judged against a threshold set inside their interval (the
    estimate, rounded to 0.1 s): what an edge-of-the-interval SLO gets. Pure re-evaluation of
    the recorded runs; nothing runs again."""
    import dataclasses

    from harness.measure import evaluate
    from harness.measure.trialset import summarize
    from harness.model import Assertion

    ts = rec.summary()
    a = next((x for x in ts.assertions if x.metric == metric), None)
    if a is None or a.interval is None or not a.interval.bounded:
        return None
    th = round(a.interval.estimate, 1)
    text = f"{a.op} {th:g}s"
    exp = rec.experiment
    slo = tuple(Assertion(x.metric, x.op, th, text) if x.metric == metric else x for x in exp.slo)
    exp2 = exp.model_copy(update={"slo": slo})
    results = [evaluate(dataclasses.replace(r, experiment=exp2)) for r in rec.records]
    return next(x for x in summarize(results, stack=rec.stack).assertions if x.metric == metric)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("experiment", nargs="?", default=str(ROOT / "experiments/redis-primary-kill.yaml"))
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--only", choices=("fresh", "reused"))
    ap.add_argument("--target", help="run against this target instead (e.g. targets/reference-fragile)")
    ap.add_argument("--out", type=Path, default=ROOT / "reports", help="reports go to OUT/trials-<mode>[-<target>]")
    args = ap.parse_args()
    exp = load_experiment(Path(args.experiment), target=args.target)
    modes = [args.only] if args.only else ["fresh", "reused"]
    suffix = f"-{Path(args.target).name}" if args.target else ""
    rows = []
    with signals_as_interrupt():        # SIGTERM unwinds like Ctrl-C: faults reverted, stacks removed
        for mode in modes:
            print(f"{exp.name}: {args.trials} trials, {mode} stack", flush=True)
            rows.append((mode, *run_mode(exp, args.trials, mode, args.out / f"trials-{mode}{suffix}")))

    print(f"\n{exp.name} on {exp.target.name}: {args.trials} trials each way, planned {exp.duration_s:g} s per trial")
    print(f"{'stack':7} {'total':>8} {'median/trial':>13} {'overhead/trial':>15} {'load avg':>10}  verdict")
    for mode, ts, total, l0, l1, _ in rows:
        med = statistics.median(ts.wall_s)
        print(f"{mode:7} {total:7.0f}s {med:12.1f}s {med - exp.duration_s:14.1f}s {l0:4.1f}→{l1:<4.1f}  {ts.verdict.value}")
    if len(rows) == 2:
        print(f"ratio reused/fresh total wall time: {rows[1][2] / rows[0][2]:.2f}")
    for mode, ts, *_, rec in rows:
        print(f"\n[{mode}] " + " ".join(r.verdict.value[0] for r in ts.trials) + "  (per-trial verdicts)")
        for a in ts.assertions:
            iv = "invariant" if a.method == "invariant" else interval_text(a.metric, a.interval)
            need = f"  ~{a.trials_needed} trials to decide" if a.trials_needed else ""
            print(f"  {a.name:36} {iv:>34}  {a.text:>9}  passed {a.passes}/{a.judged}  {a.verdict.value}{need}")
        for m in ts.spreads:
            vals = ", ".join("—" if v is None else ("never" if v == float("inf") else f"{v:.4g}") for v in m.values)
            print(f"  {m.metric:36} {interval_text(m.metric, m.interval):>34}  per trial: {vals}")
        inside = rejudge_inside(rec)
        if inside is not None:
            need = f", ~{inside.trials_needed} trials to decide" if inside.trials_needed else ""
            print(f"  threshold inside the interval: {inside.text} → {inside.verdict.value} "
                  f"(passed {inside.passes}/{inside.judged}{need}): {inside.message}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
