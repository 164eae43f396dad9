"""Time to detect, from the reference target's real Prometheus 2.42 and Alertmanager 0.25 (issue 18).

Runs benchmarks/trials/detection-x8.yaml (24 SIGKILLs: an app replica, a load balancer and the
Redis primary in turn, eight times each, 8 s down, 16 s apart) through the harness, and prints
per kind of fault:

  time to detect   the detecting alert's startsAt (the evaluation at which its rule's `for:` was
                   met) minus when the container died (Docker's State.FinishedAt): min, median,
                   max, against the rule's floor (`for:`) and its bound (for + scrape interval +
                   scrape timeout + evaluation interval);
  seen after       how long after firing the harness saw the alert in Alertmanager (its poll);
  resolve          the alert leaving Alertmanager minus the instance being started again;
  undetected       faults with no alert about them.

Also the alerts that fired without a fault. With --fragile the same trial runs against the
fragile twin, whose rules cover a dead app only: its LB and Redis kills must all be undetected.

    .venv/bin/python benchmarks/detection.py [--fragile] [--dump DIR]

About 8 minutes per target (6.7 min of load plus stack up and down). Record the date and the
machine's load with the figures (benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.events import Events, Message  # noqa: E402
from harness.loader import load_experiment  # noqa: E402
from harness.report.results import results_to_json  # noqa: E402
from harness.run import run_experiment  # noqa: E402

TRIAL = ROOT / "benchmarks/trials/detection-x8.yaml"
TARGETS = {"reference": ROOT / "targets/reference", "fragile": ROOT / "targets/reference-fragile"}


def _fmt(v: float | None) -> str:
    return "    -" if v is None else f"{v:5.2f}"


def report(name: str, result) -> dict:
    m = result.monitoring
    print(f"\n== {name}: {result.verdict} ({result.run_id}), {len(m.faults)} faults, "
          f"scrape {m.scrape_interval_s:g} s / timeout {m.scrape_timeout_s:g} s")
    by_kind: dict[str, list] = {}
    for f in m.faults:
        by_kind.setdefault(f.fault.rsplit("-", 1)[0], []).append(f)
    summary = {}
    seen_lag = {a.describe(): a.seen_s - a.fired_s for a in m.alerts}
    print(f"{'kind':6} {'n':>2} {'detected':>8} {'floor':>6} {'bound':>6} {'min':>6} {'median':>6} {'max':>6} "
          f"{'in bound':>8} {'seen +':>6} {'resolve':>7}")
    for kind, faults in by_kind.items():
        ttd = [f.time_to_detect_s for f in faults if f.time_to_detect_s is not None]
        res = [f.time_to_resolve_s for f in faults if f.time_to_resolve_s is not None]
        det = [f for f in faults if f.status == "detected"]
        floor = det[0].floor_s if det else None
        bound = det[0].bound_s if det else None
        inside = sum(1 for f in det if f.floor_s - m.scrape_timeout_s <= f.time_to_detect_s <= f.bound_s)
        lags = [seen_lag[f.alert] for f in det if f.alert in seen_lag]
        row = {"n": len(faults), "detected": len(det), "undetected": sum(f.status == "undetected" for f in faults),
               "unknown": sum(f.status == "unknown" for f in faults), "floor_s": floor, "bound_s": bound,
               "ttd_s": ttd, "in_bound": inside, "resolve_s": res}
        summary[kind] = row
        med = statistics.median(ttd) if ttd else None
        print(f"{kind:6} {len(faults):2} {len(det):8} {_fmt(floor):>6} {_fmt(bound):>6} "
              f"{_fmt(min(ttd) if ttd else None):>6} {_fmt(med):>6} {_fmt(max(ttd) if ttd else None):>6} "
              f"{inside:4}/{len(det):<3} {_fmt(statistics.median(lags) if lags else None):>6} "
              f"{_fmt(statistics.median(res) if res else None):>7}")
        for f in faults:
            if f.status != "detected":
                print(f"       {f.fault}: {f.status}: {f.why}")
    print(f"alerts without a fault: {m.alerts_without_fault}"
          + "".join(f"\n  {a.describe()} at {a.fired_s:.1f} s" for a in m.alerts if a.without_fault))
    summary["alerts_without_fault"] = m.alerts_without_fault
    return summary


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--fragile", action="store_true", help="also run the trial against the fragile twin")
    ap.add_argument("--only-fragile", action="store_true")
    ap.add_argument("--dump", type=Path, help="write results.json per target here")
    args = ap.parse_args()
    names = ["fragile"] if args.only_fragile else ["reference"] + (["fragile"] if args.fragile else [])
    out = {}
    for name in names:
        exp = load_experiment(TRIAL, target=TARGETS[name])
        events = Events()
        events.subscribe(lambda e: print(f"  {e.text}", flush=True), Message)
        _, result = run_experiment(exp, events=events)
        if result.harness_error:
            print(f"{name}: harness error: {result.harness_error}")
            continue
        out[name] = report(name, result)
        if args.dump:
            args.dump.mkdir(parents=True, exist_ok=True)
            (args.dump / f"{name}.json").write_text(json.dumps(results_to_json([result]), indent=1))
    print(f"\nload average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
