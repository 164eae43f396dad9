"""`continuum explore` measured (issue 11): what it finds and how fast it gets through candidates.

    # a search, given only the target: findings, time to first finding, candidates per hour
    .venv/bin/python benchmarks/explore.py search targets/reference-fragile --budget 30m --seed 0

    # candidates per hour, reused stack vs fresh stack: the same seed and budget each way,
    # one way after the other (candidates tried and runs, shrinks and confirmations included)
    nice -n 10 .venv/bin/python benchmarks/explore.py rate targets/reference-fragile --budget 8m

    # closed loop against open loop on one candidate, alternating on one reused stack
    nice -n 10 .venv/bin/python benchmarks/explore.py loop targets/reference-fragile --candidate x-kill-app

Writes each search's folder (summary.json, candidates.jsonl, found/) under --out (default
reports/explore-bench/). Prints the figures with the date and the load average: the machine is
shared and noisy, so quote ratios measured in one run (benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.cli import _budget_arg  # noqa: E402
from harness.errors import Interrupted  # noqa: E402
from harness.events import Events, Message  # noqa: E402
from harness.explore.candidates import generate  # noqa: E402
from harness.explore.explorer import explore  # noqa: E402
from harness.explore.findings import summary_text, write_summary  # noqa: E402
from harness.explore.runner import StackRunner  # noqa: E402
from harness.loader import load_target  # noqa: E402
from harness.run import signals_as_interrupt  # noqa: E402


def _say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')} load {os.getloadavg()[0]:.1f}] {text}", flush=True)


def _events() -> Events:
    ev = Events()
    ev.subscribe(lambda m: m.level != "info" and _say(m.text), Message)
    return ev


def search(args: argparse.Namespace) -> None:
    target = load_target(args.target)
    out = Path(args.out) / f"search-{target.name}-s{args.seed}-{time.strftime('%H%M%S')}"
    cands = generate(target, args.seed)
    _say(f"search {target.name}: {len(cands)} candidates, budget {args.budget:.0f} s, seed {args.seed}, {args.stack}")
    with signals_as_interrupt(), StackRunner(target, args.stack, _events()) as runner:
        try:
            s = explore(target, budget_s=args.budget, seed=args.seed, out_dir=out, run=runner.run,
                        candidates=cands, confirm=args.confirm, stack=args.stack, say=_say)
        except Interrupted as exc:          # the summary so far, then the stack goes down
            s = exc.summary  # type: ignore[attr-defined]
        s.stacks_up = runner.ups
    write_summary(out / "summary.json", s)
    print(summary_text(s))
    print(f"stacks brought up: {s.stacks_up}; out: {out}")


def rate(args: argparse.Namespace) -> None:
    """Candidates (and runs) per hour each way: the same target, seed and budget, one search
    on a reused stack and one with a fresh stack per run, one after the other. Both take the
    candidates in the same order and shrink what fails, so the two differ only in the stack."""
    target = load_target(args.target)
    figures = {}
    for mode in args.modes.split(","):
        out = Path(args.out) / f"rate-{target.name}-{mode}-{time.strftime('%H%M%S')}"
        load0 = os.getloadavg()
        _say(f"rate {mode}: {target.name}, budget {args.budget:.0f} s, seed {args.seed}")
        t = time.monotonic()
        with signals_as_interrupt(), StackRunner(target, mode, _events()) as runner:
            s = explore(target, budget_s=args.budget, seed=args.seed, out_dir=out, run=runner.run,
                        confirm=args.confirm, stack=mode, say=_say)
            ups = runner.ups
        wall = time.monotonic() - t            # stack down included
        load1 = os.getloadavg()
        log = [json.loads(x) for x in (out / "candidates.jsonl").read_text().splitlines()]
        judged = [x for x in log if x["status"] in ("pass", "fail")]
        figures[mode] = {
            "candidates": s.tried, "runs": len(log), "judged_runs": len(judged), "wall_s": round(wall, 1),
            "candidates_per_hour": round(s.tried * 3600 / wall, 1), "runs_per_hour": round(len(log) * 3600 / wall, 1),
            "per_run_median_s": round(statistics.median(x["wall_s"] for x in log), 1) if log else None,
            "settle_median_s": round(statistics.median(x["settle_s"] for x in log), 1) if log else None,
            "stacks_up": ups, "findings": [f["name"] for f in s.findings],
            "statuses": [x["status"] for x in log], "load_avg_start": [round(x, 1) for x in load0],
            "load_avg_end": [round(x, 1) for x in load1], "out": str(out)}
        _say(f"{mode}: {json.dumps(figures[mode])}")
    r, f = figures.get("reused"), figures.get("fresh")
    if r and f and f["candidates_per_hour"] and f["runs_per_hour"]:
        print(f"candidates/hour reused {r['candidates_per_hour']} vs fresh {f['candidates_per_hour']}: "
              f"ratio {r['candidates_per_hour'] / f['candidates_per_hour']:.2f}; runs/hour "
              f"{r['runs_per_hour']} vs {f['runs_per_hour']}: ratio {r['runs_per_hour'] / f['runs_per_hour']:.2f}")
    print(json.dumps(figures, indent=2))


def loop(args: argparse.Namespace) -> None:
    """Closed loop against open loop on one candidate, alternating on one reused stack: what
    each load lets the run see of the same fault (requests sent into the fault's window, its
    availability, the longest outage, the verdict)."""
    from dataclasses import replace

    from harness.explore.candidates import Params, singles, to_experiment
    from harness.run.orchestrator import run_experiment
    from harness.run.settle import settle, steady_probe

    target = load_target(args.target)
    cand = {c.name: c for c in singles(target, args.seed)}[args.candidate]
    cand = replace(cand, window_s=args.window, users=args.level)
    rows = []
    with signals_as_interrupt(), StackRunner(target, "reused", _events()) as runner:
        for i in range(args.repeat):
            for mode in ("closed", "open"):
                exp = to_experiment(cand, target, Params(load_mode=mode))
                stack, settle_s = runner._ready(exp, probe=True)
                record, result = run_experiment(exp, stack=stack, events=runner.events)
                fault = next((p for p in result.phases if p.name.startswith("fault")), None)
                out = result.longest_outage
                row = {"mode": mode, "verdict": result.verdict.value, "requests": result.overall.requests,
                       "availability": result.overall.availability,
                       "fault_requests": fault.requests if fault else None,
                       "fault_failures": fault.failures if fault else None,
                       "longest_outage_s": round(out.duration_s, 2) if out is not None else None,
                       "aborted": result.aborted, "reasons": list(result.reasons[:3]),
                       "load": round(os.getloadavg()[0], 1)}
                rows.append(row)
                _say(json.dumps(row))
    print(json.dumps(rows, indent=2))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="what", required=True)
    sp = sub.add_parser("search")
    sp.add_argument("target")
    sp.add_argument("--budget", type=_budget_arg, default=1800.0)
    sp.add_argument("--seed", type=int, default=0)
    sp.add_argument("--confirm", type=int, default=3)
    sp.add_argument("--stack", choices=("reused", "fresh"), default="reused")
    sp.add_argument("--out", default="reports/explore-bench")
    sp.set_defaults(fn=search)
    sp = sub.add_parser("rate")
    sp.add_argument("target")
    sp.add_argument("--budget", type=_budget_arg, default=480.0)
    sp.add_argument("--confirm", type=int, default=3)
    sp.add_argument("--modes", default="reused,fresh")
    sp.add_argument("--seed", type=int, default=0)
    sp.add_argument("--out", default="reports/explore-bench")
    sp.set_defaults(fn=rate)
    sp = sub.add_parser("loop")
    sp.add_argument("target")
    sp.add_argument("--candidate", default="x-kill-app")
    sp.add_argument("--window", type=_budget_arg, default=4.0)
    sp.add_argument("--level", type=int, default=5)
    sp.add_argument("--repeat", type=int, default=2)
    sp.add_argument("--seed", type=int, default=0)
    sp.set_defaults(fn=loop)
    args = p.parse_args()
    args.fn(args)


if __name__ == "__main__":
    main()
