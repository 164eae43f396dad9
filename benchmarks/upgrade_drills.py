"""Upgrade drills (issue 17): the reference app v1 → v2, rolling and blue-green, and the fragile
twin's, each run N times; prints per run the failed requests, p99 in the upgrade's window, the
longest outage in it, the mixed-version window, and the medians.

    .venv/bin/python benchmarks/upgrade_drills.py --runs 3            # runs the four drills
    .venv/bin/python benchmarks/upgrade_drills.py --from reports/a reports/b   # only summarise

Each run is `continuum run` as a subprocess (its own stack), one at a time. The load average
before each run is printed: on a shared machine the figures are only comparable side by side.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DRILLS = ["experiments/drills/app-rolling-upgrade.yaml", "experiments/drills/app-blue-green-upgrade.yaml",
          "experiments/drills/fragile/app-rolling-upgrade-fragile.yaml",
          "experiments/drills/fragile/app-blue-green-upgrade-fragile.yaml"]


def figures(results: Path) -> dict:
    run = json.loads(results.read_text())["runs"][0]
    phase = next((p for p in run["phases"] if p["name"].startswith("fault:")), {})
    outage = phase.get("longest_outage") or {}
    v = run.get("versions") or {}
    return {"experiment": run["experiment"], "verdict": run["verdict"], "run_id": run["run_id"],
            "failed": sum(p.get("requests", 0) - p.get("successes", 0) for p in run["phases"] if p["name"] == "overall"),
            "failed_in_upgrade": phase.get("requests", 0) - phase.get("successes", 0),
            "p99_upgrade_s": phase.get("latency_p99_s"), "outage_s": outage.get("duration_s"),
            "mixed_s": v.get("mixed_window_s"), "errors": phase.get("errors"),
            "reasons": run["reasons"]}


def show(rows: list[dict]) -> None:
    for r in rows:
        print(f"{r['experiment']:34} {r['verdict']:6} failed {r['failed']:4} (in upgrade {r['failed_in_upgrade']:4})  "
              f"p99 {fmt(r['p99_upgrade_s'])}  outage {fmt(r['outage_s'])}  mixed {fmt(r['mixed_s'])}  {r['run_id']}"
              + (f"  load {r['load']}" if r.get("load") else ""))
    by: dict[str, list[dict]] = {}
    for r in rows:
        by.setdefault(r["experiment"], []).append(r)
    print("medians:")
    for name, rs in by.items():
        med = {k: statistics.median([r[k] for r in rs if r[k] is not None] or [float("nan")])
               for k in ("failed", "p99_upgrade_s", "outage_s", "mixed_s")}
        print(f"  {name:32} n={len(rs)} failed {med['failed']:g}  p99 {fmt(med['p99_upgrade_s'])}  "
              f"outage {fmt(med['outage_s'])}  mixed {fmt(med['mixed_s'])}")


def fmt(v) -> str:
    return "   -   " if v is None else f"{v:6.2f}s"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--from", dest="dirs", nargs="*", help="report directories to summarise instead")
    ap.add_argument("--image", action="append", default=[], help="passed to continuum run")
    args = ap.parse_args()
    rows = []
    if args.dirs:
        for d in args.dirs:
            rows.append(figures(Path(d) / "results.json"))
        show(rows)
        return 0
    for k in range(args.runs):
        for drill in DRILLS:
            out = ROOT / "reports" / "bench-upgrade" / f"{Path(drill).stem}-{k + 1}"
            load = os.getloadavg()[0]
            cmd = [str(ROOT / ".venv/bin/continuum"), "run", drill, "--report-dir", str(out), "--plain"]
            for i in args.image:
                cmd += ["--image", i]
            subprocess.run(cmd, cwd=ROOT, timeout=1200, check=False)
            row = figures(out / "latest" / "results.json")
            row["load"] = f"{load:.1f}"
            rows.append(row)
            show([row])
    show(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
