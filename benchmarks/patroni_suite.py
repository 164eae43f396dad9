"""Run experiment files through the harness (`continuum run FILE --trials N`) and print, per
experiment, what each trial measured and the medians / p95 over the trials: time to recover,
the writes' longest outage, writes acknowledged / lost / unknown / recovered, duplicates, and
how long the stack took to come up (fresh stack per trial, so every trial gives one up time).

Nothing here knows Patroni or RabbitMQ: every figure is read from the harness's own reports
(results.json and journal.jsonl in each run folder), so the figures are what `continuum run`
measured through the generic target contract. benchmarks/rabbitmq_suite.py uses it too.

    .venv/bin/python benchmarks/patroni_suite.py --trials 10 experiments/patroni/leader-kill.yaml
    .venv/bin/python benchmarks/patroni_suite.py --report reports/bench/latest     # summarise only

p95 is nearest-rank (with 10 trials it is the largest).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONTINUUM = ROOT / ".venv" / "bin" / "continuum"
# Per trial: a stack up (up to ~160 s measured on a loaded machine), a run (the ten-kill
# experiment is 7 min), the read-back and the teardown.
TRIAL_BOUND_S = 1200
UP_RE = re.compile(r"up in ([0-9.]+) s")


def nearest_rank(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def _overall(run: dict) -> dict:
    return next((ph for ph in run.get("phases") or [] if ph.get("name") == "overall"), {})


def _outage(run: dict, op: str) -> float | None:
    """The longest outage of operation `op` over the whole run (of every request if the run
    sent no such operation)."""
    overall = _overall(run)
    for o in overall.get("operations") or []:
        if o.get("operation") == op:
            return (o.get("longest_outage") or {}).get("duration_s")
    return (overall.get("longest_outage") or {}).get("duration_s")


def _fault_p50_ms(run: dict, op: str) -> float | None:
    """`op`'s latency p50 over the requests that started in the first fault's window."""
    phase = next((ph for ph in run.get("phases") or [] if ph.get("name", "").startswith("fault:")), {})
    for o in phase.get("operations") or []:
        if o.get("operation") == op and o.get("latency_p50_s") is not None:
            return o["latency_p50_s"] * 1000.0
    return None


def trial_rows(report: Path, op: str) -> list[dict]:
    """One row per run in the report folder (its results.json), with the stack's up time from
    the journal (the harness's own "up in N s" message, one per fresh stack)."""
    doc = json.loads((report / "results.json").read_text())
    ups = []
    journal = report / "journal.jsonl"
    if journal.exists():
        for line in journal.read_text().splitlines():
            try:
                ev = json.loads(line)
            except json.JSONDecodeError:
                continue
            m = UP_RE.search(str(ev.get("text", ""))) if ev.get("event") == "message" else None
            if m:
                ups.append(float(m.group(1)))
    rows = []
    for i, run in enumerate(doc.get("runs", [])):
        d = run.get("durability") or {}
        faults = run.get("faults") or []
        ttr = [f.get("time_to_recover_s") for f in faults]
        # Per fault: how long `op` failed (its error window: first to last failed request).
        windows = [next(((o.get("error_window") or {}).get("duration_s", 0.0)
                         for o in f.get("operations") or [] if o.get("operation") == op), None)
                   for f in faults]
        rows.append({
            "trial": i + 1, "verdict": run.get("verdict"),
            "ttr_s": ttr[0] if len(ttr) == 1 else ttr,
            "fault_ttr_s": ttr, "fault_window_s": windows,
            "outage_s": _outage(run, op),
            "p50_fault_ms": _fault_p50_ms(run, op),
            "acked": d.get("acked"), "lost": d.get("lost"), "unknown": d.get("unknown"),
            "recovered": d.get("recovered"), "duplicates": d.get("duplicates"),
            "read_during_run": d.get("read_during_run"), "audited": d.get("audited"),
            "audit_error": d.get("error"),
            "targets": [t for f in faults for t in f.get("targets", [])],
            "up_s": ups[i] if i < len(ups) else None,
        })
    return rows


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.2f}"
    if isinstance(v, list):
        return "/".join(_fmt(x) for x in v)
    return str(v)


def summarise(report: Path, op: str) -> dict:
    rows = trial_rows(report, op)
    cols = ["trial", "verdict", "targets", "ttr_s", "outage_s", "p50_fault_ms", "acked", "lost", "unknown",
            "recovered", "duplicates", "read_during_run", "up_s"]
    print(f"\n{report}")
    print("  " + "  ".join(f"{c:>10}" for c in cols))
    for r in rows:
        print("  " + "  ".join(f"{_fmt(r[c]):>10}" for c in cols)
              + (f"  audit: {r['audit_error']}" if r["audit_error"] else ""))
    out: dict = {"report": str(report), "trials": len(rows), "rows": rows}
    for key in ("ttr_s", "outage_s", "p50_fault_ms", "up_s"):
        vals = [r[key] for r in rows if isinstance(r[key], (int, float))]
        if vals:
            out[key] = {"p50": statistics.median(vals), "p95": nearest_rank(vals, 95),
                        "min": min(vals), "max": max(vals), "n": len(vals)}
            print(f"  {key}: p50 {out[key]['p50']:.2f}  p95 {out[key]['p95']:.2f}  "
                  f"min {out[key]['min']:.2f}  max {out[key]['max']:.2f}  (n={len(vals)})")
    for key in ("fault_ttr_s", "fault_window_s"):       # every fault of every run
        vals = [v for r in rows for v in r[key] if isinstance(v, (int, float))]
        never = sum(1 for r in rows for v in r[key] if v is None)
        if vals and any(len(r[key]) > 1 for r in rows):
            out[key] = {"p50": statistics.median(vals), "p95": nearest_rank(vals, 95),
                        "min": min(vals), "max": max(vals), "n": len(vals), "none": never,
                        "values": vals}
            print(f"  per fault {key}: p50 {out[key]['p50']:.2f}  p95 {out[key]['p95']:.2f}  "
                  f"min {out[key]['min']:.2f}  max {out[key]['max']:.2f}  (n={len(vals)}, "
                  f"none {never}): {', '.join(f'{v:.2f}' for v in vals)}")
    for key in ("acked", "lost", "unknown", "recovered", "duplicates", "read_during_run"):
        vals = [r[key] for r in rows if isinstance(r[key], int)]
        out[key] = sum(vals) if vals else None
    unaudited = sum(1 for r in rows if not r["audited"])
    print(f"  totals: acked {out['acked']}  lost {out['lost']}  unknown {out['unknown']}  "
          f"recovered {out['recovered']}  duplicates {out['duplicates']}  "
          f"read during run {out['read_during_run']}  unaudited trials {unaudited}")
    return out


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="*", help="experiment files, each run with --trials N")
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--report-dir", default="reports/bench")
    ap.add_argument("--report", action="append", default=[], help="summarise this run folder only")
    ap.add_argument("--op", default="write", help="operation whose longest outage is shown")
    ap.add_argument("--json", help="also write the summaries here")
    args = ap.parse_args(argv)
    reports = [Path(r) for r in args.report]
    for f in args.files:
        t0 = time.monotonic()
        print(f"# {f}: {args.trials} trials, load average {os.getloadavg()[0]:.1f}", flush=True)
        # The harness's exit code is the verdict: 0 PASS, 1 FAIL, 4 INCONCLUSIVE (a trial set too
        # small for its intervals) are answers; 3 is the harness's own failure.
        rc = subprocess.call([str(CONTINUUM), "run", f, "--trials", str(args.trials),
                              "--report-dir", args.report_dir, "--plain"],
                             stdout=subprocess.DEVNULL, timeout=args.trials * TRIAL_BOUND_S)
        print(f"# exit {rc}, {time.monotonic() - t0:.0f} s wall, load average "
              f"{os.getloadavg()[0]:.1f}", flush=True)
        if rc not in (0, 1, 4):
            print(f"# {f}: harness error (exit {rc}); see {args.report_dir}/latest", file=sys.stderr)
        reports.append((Path(args.report_dir) / "latest").resolve())
    summaries = [summarise(r, args.op) for r in reports]
    if args.json:
        Path(args.json).write_text(json.dumps(summaries, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
