"""Restore drill figures: RTO, RPO in seconds and in writes, and the known answer, over N drills.

    .venv/bin/python benchmarks/drill_restore.py [--trials 3] [--image SERVICE=IMAGE ...]

One reference stack is brought up (retried: on a loaded machine its health checks can miss the
90 s start-up bound) and experiments/drills/redis-backup-restore.yaml runs on it N times in a
row (the restore leaves the stack whole again; each trial's audit counts only its own writes).
For each drill it prints the figures and checks the known answer against the load's own
records and the system's read-back: 0 lost among writes acknowledged before the consistent
point, every write sent after it and acknowledged before the disaster lost, and rpo_writes
equal to that count. Prints the load average before and after; figures go in README.md.
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

from harness.errors import StackError  # noqa: E402
from harness.loader import load_experiment  # noqa: E402
from harness.measure.rpo import acknowledged  # noqa: E402
from harness.run import run_experiment  # noqa: E402


def known_answer(record) -> tuple[int, int, int]:
    """(before, lost before, after) from the load's records and the read-back, independently of
    the drill summary."""
    marks = {k: v for e in record.faults for k, v in e.marks}
    present = set(record.audit.ids or ())
    acked = acknowledged(record.writes)
    before = [w for w in acked if w.acked_at <= marks["consistent_from"]]
    after = [w for w in acked if w.sent >= marks["consistent_to"] and w.acked_at <= marks["disaster"]]
    kept_after = sum(1 for w in after if w.id in present)
    assert kept_after == 0, f"{kept_after} writes after the consistent point survived"
    return len(before), sum(1 for w in before if w.id not in present), len(after)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--image", action="append", default=[], help="SERVICE=IMAGE")
    args = ap.parse_args()
    overrides = dict(v.split("=", 1) for v in args.image)
    from harness.stack.stack import Stack

    exp = load_experiment(ROOT / "experiments/drills/redis-backup-restore.yaml")
    print(f"load average before: {os.getloadavg()}")
    rows = []
    for attempt in range(4):
        try:
            with Stack(exp.target, image_overrides=overrides, say=print) as stack:
                print(f"stack {stack.run_id} up in {stack.timings['up_s']:.1f} s (attempt {attempt + 1})")
                for k in range(args.trials):
                    t = time.monotonic()
                    record, result = run_experiment(exp, stack=stack, image_overrides=overrides)
                    d = result.drill
                    if result.harness_error or d is None:
                        print(f"trial {k + 1}: ERROR {result.harness_error}")
                        continue
                    before, lost_before, after = known_answer(record)
                    ok = lost_before == 0 and d.lost_writes_before_backup == 0 and d.rpo_writes == after
                    rows.append((d.rto_s, d.rpo_s, d.rpo_writes))
                    print(f"trial {k + 1}: {result.verdict.value} in {time.monotonic() - t:.0f} s; "
                          f"RTO {d.rto_s} s, RPO {d.rpo_s} s / {d.rpo_writes} writes; "
                          f"consistent point step {d.consistent_to_s - d.consistent_from_s:.3f} s; "
                          f"disaster at {d.disaster_s} s, restored at {d.restored_s} s; "
                          f"before: {before} acked, {lost_before} lost; in flight: {d.in_flight.acked} "
                          f"({d.in_flight.lost} lost); after: {after} acked, {d.rpo_writes} lost; "
                          f"after restore: {d.after_restore.acked} acked, {d.after_restore.lost} lost; "
                          f"known answer {'exact' if ok else 'MISSED'}; reasons {list(result.reasons)}; "
                          f"load {os.getloadavg()[0]:.1f}", flush=True)
            break
        except StackError as exc:
            print(f"stack up failed (attempt {attempt + 1}): {str(exc)[:200]}", flush=True)
    if rows:
        for name, i in (("RTO s", 0), ("RPO s", 1), ("RPO writes", 2)):
            vals = [r[i] for r in rows if r[i] is not None]
            print(f"{name}: {vals}, median {statistics.median(vals) if vals else None}")
    print(f"load average after: {os.getloadavg()}")
    return 0 if rows else 1


if __name__ == "__main__":
    sys.exit(main())
