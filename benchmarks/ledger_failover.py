"""Failover of the reference ledger (issue 4), measured on real containers, against the fragile twin.

Two trial experiments (benchmarks/trials/), each run once against targets/reference and once
against targets/reference-fragile (same file, target swapped), one stack at a time:

  redis-primary-kill-x10.yaml  ten SIGKILLs of the Redis primary (role redis-primary, resolved
                               when each fires), 20 s apart, each instance started again 8 s later.
                               Per trial:
                                 time to writes  completion of the first successful `transfer` that
                                                 *started* after the kill was confirmed, minus the
                                                 fault's injected_t (see below);
                                 lost            acknowledged transfers absent from the final audit,
                                                 attributed to the trial by when they were attempted;
                                 failed          failed transfers started in the trial's window.
                               Money conservation is the audit's invariant at the end of the run (one
                               audit per run; a transfer is one Lua script, so the invariant cannot
                               break between trials and heal later).
  app-kill-and-roll.yaml       one app replica SIGKILLed (15 s, started again at 30 s), then a rolling
                               restart of all app replicas (45 s .. 85 s). Per fault: failed requests
                               and the longest latency of any request that started from 2 s before
                               the fault to 5 s after its window (a restarted replica rejoining).

Percentiles are nearest-rank over the trials: with 10 trials p95 is the maximum.

Why "started after the kill was confirmed": a transfer that started before the SIGKILL landed
may have been answered by the old primary. The harness records a fault's injected_t as the moment
it took effect (after the kill call returned, `Injection.applied_t`); the benchmark also notes
when the `fault_injected` event fired (column "kill confirmed", relative to injected_t; 0.00 s
with the current harness) and only counts transfers that started after the later of the two.
Completion (start + latency) is used, not start, because the app retries a write for up to 1 s
inside one request: a transfer that started 0.9 s before the new primary took writes still only
succeeded when it took them. The kill itself lands a few ms before injected_t, so the figure is
the time from SIGKILL to the first acknowledged write, within a few ms.

    .venv/bin/python benchmarks/ledger_failover.py [--only reference|fragile] [--skip-redis] [--skip-app] [--dump DIR]

Takes about 12 minutes (4 runs: 2 x ~4 min, 2 x ~2 min); prints one table per trial and a
summary. The machine matters: record the date and the load with the figures (benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.events import Events, FaultInjected, Message  # noqa: E402
from harness.loader import load_experiment  # noqa: E402
from harness.measure.timeline import percentile  # noqa: E402
from harness.run import run_experiment  # noqa: E402

TARGETS = {"reference": ROOT / "targets/reference", "fragile": ROOT / "targets/reference-fragile"}
TRIALS = ROOT / "benchmarks/trials"
TRANSFER = "transfer"           # the request name of a write in targets/*/locustfile.py
GOAL_P95_S = 4.0
WINDOW_BEFORE_S = 2.0           # a request started this long before a fault may still be hit by it
APP_GRACE_S = 5.0               # after a window ends, a restarted replica rejoins the LBs
DUMP_DIR: Path | None = None    # --dump DIR: write each run's raw samples there


def run(trial: str, target: str):
    exp = load_experiment(TRIALS / trial)
    if target != "reference":
        exp = dataclasses.replace(exp, name=f"{exp.name}-{target}", target=TARGETS[target])
    confirmed: dict[str, float] = {}
    events = Events()
    events.subscribe(lambda e: confirmed.setdefault(e.fault.name, time.monotonic()), FaultInjected)
    events.subscribe(lambda e: print(f"    {e.text}", flush=True), Message)
    print(f"  running {exp.name} against {exp.target.root.relative_to(ROOT)} ({exp.duration_s:.0f} s of load)...", flush=True)
    record, result = run_experiment(exp, events=events)
    if DUMP_DIR is not None:
        # Raw samples for a closer look (offsets from t0): [t, latency, ok, name, error].
        DUMP_DIR.mkdir(parents=True, exist_ok=True)
        (DUMP_DIR / f"{exp.name}.json").write_text(json.dumps({
            "faults": [[f.fault, f.injected_t - record.t0, None if f.reverted_t is None else f.reverted_t - record.t0,
                        list(f.targets)] for f in record.faults],
            "samples": [[round(x.t - record.t0, 4), round(x.latency_s, 4), x.ok, x.name, x.error] for x in record.samples],
        }))
    if result.harness_error or record.aborted:
        raise SystemExit(f"{exp.name}: harness error {result.harness_error} / aborted {record.aborted}")
    return exp, record, result, confirmed


def load_line(exp, record) -> str:
    span = record.t_end - record.t0
    return f"load: {exp.load.users} users, {len(record.samples) / span:.0f} req/s over {span:.0f} s ({len(record.samples)} requests)"


# ──────────────────────────────── Redis primary kill, x10 ────────────────────────────────


def redis_trials(target: str) -> dict:
    exp, record, result, confirmed = run("redis-primary-kill-x10.yaml", target)
    faults = sorted(record.faults, key=lambda f: f.injected_t)
    transfers = sorted((s for s in record.samples if s.name == TRANSFER), key=lambda s: s.t)
    present = record.audit.present_ids if record.audit else None     # None: not read back
    acked_first_t: dict[str, float] = {}
    acked: set[str] = set()
    for w in record.writes:
        acked_first_t[w.id] = min(acked_first_t.get(w.id, w.t), w.t)
        if w.outcome == "acked":
            acked.add(w.id)
    lost_ids = (acked - present) if present is not None else set()
    rows = []
    for k, f in enumerate(faults):
        start = f.injected_t - WINDOW_BEFORE_S
        end = faults[k + 1].injected_t - WINDOW_BEFORE_S if k + 1 < len(faults) else record.t_end + 1
        kill_done = max(confirmed.get(f.fault, f.injected_t), f.injected_t)
        after = [s for s in transfers if s.ok and s.t >= kill_done and s.t < end]
        first = min(after, key=lambda s: s.t + s.latency_s) if after else None
        ttw = (first.t + first.latency_s - f.injected_t) if first else None
        failed = sum(1 for s in transfers if not s.ok and start <= s.t < end)
        lost = sum(1 for i in lost_ids if start <= acked_first_t[i] < end) if present is not None else None
        rows.append({
            "trial": k + 1, "killed": ",".join(f.targets), "resolve_s": kill_done - f.injected_t,
            "ttw_s": ttw, "failed": failed, "lost": lost,
        })
    d = result.durability
    print(f"\n  Redis primary SIGKILL x{len(rows)} on {target} ({load_line(exp, record)})")
    print(f"  {'trial':>5} {'killed':>8} {'kill confirmed':>15} {'time to writes':>15} {'failed transfers':>17} {'lost':>5}")
    for r in rows:
        ttw = f"{r['ttw_s']:.2f} s" if r["ttw_s"] is not None else "never"
        print(f"  {r['trial']:>5} {r['killed']:>8} {'+%.2f s' % r['resolve_s']:>15} {ttw:>15} {r['failed']:>17} {r['lost'] if r['lost'] is not None else '?':>5}")
    ttws = sorted(r["ttw_s"] for r in rows if r["ttw_s"] is not None)
    summary = {
        "target": target, "trials": len(rows), "never": sum(1 for r in rows if r["ttw_s"] is None),
        "p50": percentile(ttws, 50), "p95": percentile(ttws, 95), "max": ttws[-1] if ttws else None,
        "mean": statistics.fmean(ttws) if ttws else None,
        "lost_per_trial": [r["lost"] for r in rows], "lost_total": d.lost,
        "money_conserved": d.money_conserved, "acked": d.acked, "unknown": d.unknown,
        "users": exp.load.users, "rps": len(record.samples) / (record.t_end - record.t0),
        "availability": result.overall.availability,
    }
    fmt = lambda v: "-" if v is None else f"{v:.2f} s"  # noqa: E731
    print(f"  time to writes: p50 {fmt(summary['p50'])}, p95 {fmt(summary['p95'])}, max {fmt(summary['max'])}"
          f" (goal p95 <= {GOAL_P95_S:.0f} s){'; never recovered in ' + str(summary['never']) + ' trial(s)' if summary['never'] else ''}")
    print(f"  lost acknowledged transfers per trial: {summary['lost_per_trial']} (total {d.lost}, of {d.acked} acked; "
          f"{d.unknown} unknown, {d.recovered} of them committed); money conserved: {d.money_conserved}")
    return summary


# ──────────────────────────────── app replica kill, rolling restart ────────────────────────────────


def app_trials(target: str) -> dict:
    exp, record, result, _ = run("app-kill-and-roll.yaml", target)
    out = {"target": target, "users": exp.load.users, "rps": len(record.samples) / (record.t_end - record.t0)}
    print(f"\n  App faults on {target} ({load_line(exp, record)})")
    print(f"  {'fault':>16} {'window':>14} {'requests':>9} {'failed':>7} {'writes failed':>14} {'p99':>8} {'max latency':>12} {'longest outage':>15}")
    from harness.measure.metrics import longest_outage
    for f in sorted(record.faults, key=lambda f: f.injected_t):
        end = (f.reverted_t or f.injected_t) + APP_GRACE_S
        start = f.injected_t - WINDOW_BEFORE_S
        win = [s for s in record.samples if start <= s.t < end]
        ok = sorted(s.latency_s for s in win if s.ok)
        failed = sum(1 for s in win if not s.ok)
        wfailed = sum(1 for s in win if not s.ok and s.name == TRANSFER)
        lat_max = max((s.latency_s for s in win), default=None)
        outage = longest_outage(win, start, end)
        out[f.fault] = {"requests": len(win), "failed": failed, "writes_failed": wfailed,
                        "p99_s": percentile(ok, 99), "max_s": lat_max, "outage_s": outage.duration_s if outage else None}
        w = f"{f.injected_t - record.t0 - WINDOW_BEFORE_S:.0f}-{end - record.t0:.0f} s"
        p99 = f"{percentile(ok, 99) * 1000:.0f} ms" if ok else "-"
        mx = f"{lat_max:.2f} s" if lat_max is not None else "-"
        print(f"  {f.fault:>16} {w:>14} {len(win):>9} {failed:>7} {wfailed:>14} {p99:>8} {mx:>12} {outage.duration_s if outage else 0:>13.2f} s")
    d = result.durability
    out["lost"] = d.lost
    out["money_conserved"] = d.money_conserved
    print(f"  lost acknowledged transfers: {d.lost} (of {d.acked}); money conserved: {d.money_conserved}")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--only", choices=sorted(TARGETS))
    ap.add_argument("--skip-redis", action="store_true")
    ap.add_argument("--skip-app", action="store_true")
    ap.add_argument("--dump", type=Path, help="write each run's raw samples as JSON into this directory")
    args = ap.parse_args()
    global DUMP_DIR
    DUMP_DIR = args.dump
    targets = [args.only] if args.only else ["reference", "fragile"]
    print(f"ledger failover benchmark, {dt.date.today().isoformat()}")
    redis, app = [], []
    for t in targets:
        if not args.skip_redis:
            redis.append(redis_trials(t))
        if not args.skip_app:
            app.append(app_trials(t))

    print("\n  Summary")
    fmt = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
    if redis:
        print(f"  {'target':>10} {'users':>5} {'req/s':>6} {'kills':>5} {'ttw p50 s':>9} {'p95 s':>6} {'max s':>6} {'never':>5} {'lost per trial':>32} {'money ok':>8}")
        for s in redis:
            print(f"  {s['target']:>10} {s['users']:>5} {s['rps']:>6.0f} {s['trials']:>5} {fmt(s['p50']):>9} {fmt(s['p95']):>6} {fmt(s['max']):>6} {s['never']:>5} {str(s['lost_per_trial']):>32} {str(s['money_conserved']):>8}")
    if app:
        print(f"  {'target':>10} {'users':>5} {'req/s':>6} {'app kill: failed':>16} {'max latency s':>13} {'rolling restart: failed':>23} {'max latency s':>13} {'lost':>4}")
        for a in app:
            k, r = a.get("kill-one-app", {}), a.get("rolling-restart", {})
            print(f"  {a['target']:>10} {a['users']:>5} {a['rps']:>6.0f} {k.get('failed', '-'):>16} {fmt(k.get('max_s')):>13} {r.get('failed', '-'):>23} {fmt(r.get('max_s')):>13} {str(a['lost']):>4}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
