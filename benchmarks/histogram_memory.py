"""Latency in per-step HDR histograms vs raw samples: peak memory and percentile error (issue 14).

A faithful simulation of what the orchestrator receives from the load worker: `Sample`s in 50 ms
batches, in start order, at RATE requests/s for SECONDS (default one hour at 10,000/s = 36 M
requests): 70% reads (lognormal, median 5 ms), 30% writes (median 12 ms), 0.1% slow tail
(0.2-2 s), a 3 s window where every write fails (a failover), and 20 s where latency is 10x
(a degraded link). Latencies are whole microseconds, so the exact reference and the histogram see
the same values and the error measured is the histogram's alone.

Each mode runs in its own process (peak RSS from getrusage is per process):

  hist      StepHistograms only, as a run would keep them; prints peak RSS and CPU per request.
  raw       today's path: every Sample kept in a list, then a Timeline over them, for
            RAW_SECONDS (default 60 s); peak RSS per request extrapolated to SECONDS (the list
            and the Timeline grow linearly in the requests).
  accuracy  the same stream into StepHistograms and into exact references (a Counter of
            microseconds per phase; each 100 ms step's values sorted); worst relative error of
            p50/p95/p99/p99.9 per phase and p50/p99 over every step.

    .venv/bin/python benchmarks/histogram_memory.py [--seconds 3600] [--rate 10000] [--raw-seconds 60]
"""

from __future__ import annotations

import argparse
import json
import math
import random
import resource
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.measure import histogram as H  # noqa: E402
from harness.measure.timeline import Timeline  # noqa: E402
from harness.model import Sample  # noqa: E402

T0 = 10_000.0
BATCH_S = 0.05
QS = (50.0, 95.0, 99.0, 99.9)


def phases(seconds: float) -> list[tuple[str, float, float]]:
    return [("overall", 0.0, seconds), ("baseline", 0.0, seconds / 3), ("failover", seconds / 3, seconds / 3 + 3.0),
            ("degraded", 2 * seconds / 3, 2 * seconds / 3 + 20.0), ("recovery", 2 * seconds / 3 + 30.0, seconds)]


def stream(seconds: float, rate: float, seed: int = 14):
    """Batches of Samples, as LoadGenerator.poll() delivers them."""
    rng = random.Random(seed)
    lognorm = rng.lognormvariate
    n_batch = int(rate * BATCH_S)
    fail_a, fail_b = seconds / 3, seconds / 3 + 3.0
    slow_a, slow_b = 2 * seconds / 3, 2 * seconds / 3 + 20.0
    dt = 1.0 / rate
    k = 0
    total = int(seconds * rate)
    while k < total:
        batch = []
        for _ in range(min(n_batch, total - k)):
            off = k * dt
            r = rng.random()
            write = r < 0.3
            us = int(lognorm(9.39, 0.5) if write else lognorm(8.52, 0.45)) + 1     # medians 12 ms / 5 ms
            if r > 0.999:
                us = rng.randrange(200_000, 2_000_000)
            if slow_a <= off < slow_b:
                us *= 10
            ok = not (write and fail_a <= off < fail_b)
            batch.append(Sample(T0 + off, us / 1_000_000, ok, "transfer" if write else "balance",
                                "" if ok else "HTTPError"))
            k += 1
        yield batch


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def mode_hist(seconds: float, rate: float) -> dict:
    base = peak_rss_mb()
    t = time.process_time()
    sh = H.StepHistograms(T0, close_after_s=3.0)
    n = 0
    for batch in stream(seconds, rate):
        sh.record_many(batch)
        n += len(batch)
    sh.close_all()
    steps = sh.steps(T0 + seconds)
    pct = {name: sh.percentiles(T0 + a, T0 + b, QS) for name, a, b in phases(seconds)}
    cpu = time.process_time() - t
    return {"requests": n, "peak_rss_mb": peak_rss_mb(), "rss_before_mb": base, "cpu_s": cpu,
            "cpu_us_per_request": cpu / n * 1e6, "steps": len(steps), "kept_bytes": sh.nbytes(), "late": sh.late,
            "p99_overall_s": pct["overall"][2]}


def mode_raw(seconds: float, rate: float) -> dict:
    base = peak_rss_mb()
    samples: list[Sample] = []
    for batch in stream(seconds, rate):
        samples.extend(batch)
    after_list = peak_rss_mb()
    tl = Timeline(samples)           # what evaluate() builds over them
    steps = tl.steps(T0, T0 + seconds)
    return {"requests": len(samples), "peak_rss_mb": peak_rss_mb(), "rss_before_mb": base,
            "rss_list_mb": after_list, "steps": len(steps)}


def _exact(counter: Counter, q: float) -> int:
    total = sum(counter.values())
    rank = min(max(math.ceil(round(q * total / 100.0, 9)), 1), total)
    seen = 0
    for v in sorted(counter):
        seen += counter[v]
        if seen >= rank:
            return v
    raise AssertionError


def mode_accuracy(seconds: float, rate: float) -> dict:
    sh = H.StepHistograms(T0, close_after_s=3.0)
    ph = phases(seconds)
    exact = {name: Counter() for name, _, _ in ph}
    ph_steps = [(name, math.ceil(a / H.STEP_S - 1e-9), math.ceil(b / H.STEP_S - 1e-9)) for name, a, b in ph]
    step_vals: dict[int, list[int]] = {}
    worst_step = {50.0: 0.0, 99.0: 0.0}
    below = 0
    checked_steps = 0

    def check_closed() -> None:
        nonlocal checked_steps, below
        for k in [k for k in step_vals if k in sh._closed]:
            vals = sorted(step_vals.pop(k))
            c = sh._closed[k]
            for q, got in ((50.0, c.p50_us), (99.0, c.p99_us)):
                rank = min(max(math.ceil(round(q * len(vals) / 100.0, 9)), 1), len(vals))
                ex = vals[rank - 1]
                err = (got - ex) / ex
                below += err < 0
                worst_step[q] = max(worst_step[q], abs(err))
            checked_steps += 1

    for batch in stream(seconds, rate):
        sh.record_many(batch)
        for s in batch:
            if not s.ok:
                continue
            us = int(s.latency_s * 1_000_000 + 0.5)
            k = int((s.t - T0) // H.STEP_S)
            # a phase holds whole steps (its edges rounded to a step, as StepHistograms does),
            # so both sides hold the same requests and the error measured is the bucketing's
            for name, a, b in ph_steps:
                if a <= k < b:
                    exact[name][us] += 1
            step_vals.setdefault(k, []).append(us)
        check_closed()
    sh.close_all()
    check_closed()
    worst_phase = {}
    table = {}
    for name, a, b in ph:
        if not exact[name]:
            continue
        got = sh.percentiles(T0 + a, T0 + b, QS)
        row = {}
        for q, g in zip(QS, got):
            ex = _exact(exact[name], q)
            err = (g * 1_000_000 - ex) / ex
            below += err < -1e-9
            row[q] = (ex, round(g * 1_000_000), err)
            worst_phase[q] = max(worst_phase.get(q, 0.0), abs(err))
        table[name] = row
    return {"checked_steps": checked_steps, "worst_step_error": worst_step, "worst_phase_error": worst_phase,
            "phases": table, "below_exact": below}


def run_child(mode: str, seconds: float, rate: float) -> dict:
    t = time.monotonic()
    out = subprocess.run([sys.executable, __file__, "--child", mode, "--seconds", str(seconds), "--rate", str(rate)],
                         capture_output=True, text=True, check=True)
    doc = json.loads(out.stdout.strip().splitlines()[-1])
    doc["wall_s"] = time.monotonic() - t
    return doc


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--seconds", type=float, default=3600.0)
    ap.add_argument("--rate", type=float, default=10_000.0)
    ap.add_argument("--raw-seconds", type=float, default=60.0)
    ap.add_argument("--child", choices=("hist", "raw", "accuracy"))
    ap.add_argument("--skip-accuracy", action="store_true")
    args = ap.parse_args()
    if args.child:
        fn = {"hist": mode_hist, "raw": mode_raw, "accuracy": mode_accuracy}[args.child]
        print(json.dumps(fn(args.seconds, args.rate)))
        return 0
    n = int(args.seconds * args.rate)
    print(f"simulated run: {args.seconds:g} s at {args.rate:g} requests/s = {n:,} requests", flush=True)
    raw = run_child("raw", args.raw_seconds, args.rate)
    per_req = (raw["peak_rss_mb"] - raw["rss_before_mb"]) / raw["requests"]
    print(f"raw samples ({args.raw_seconds:g} s, {raw['requests']:,} requests): peak RSS {raw['peak_rss_mb']:.0f} MB "
          f"({per_req * 1024 * 1024:.0f} bytes/request with the Timeline) → {args.seconds:g} s: "
          f"~{raw['rss_before_mb'] + per_req * n:,.0f} MB", flush=True)
    hist = run_child("hist", args.seconds, args.rate)
    print(f"step histograms ({hist['requests']:,} requests, {hist['steps']:,} steps): peak RSS "
          f"{hist['peak_rss_mb']:.0f} MB (interpreter and imports {hist['rss_before_mb']:.0f} MB; encoded steps "
          f"{hist['kept_bytes'] / 1e6:.1f} MB), {hist['cpu_us_per_request']:.2f} µs CPU/request "
          f"(simulation included), wall {hist['wall_s']:.0f} s", flush=True)
    print(f"ratio raw/histogram peak RSS at {args.seconds:g} s: "
          f"{(raw['rss_before_mb'] + per_req * n) / hist['peak_rss_mb']:.0f}x")
    if not args.skip_accuracy:
        acc = run_child("accuracy", args.seconds, args.rate)
        print(f"accuracy over {acc['checked_steps']:,} steps: worst |error| p50 {acc['worst_step_error']['50.0'] * 100:.3f}%, "
              f"p99 {acc['worst_step_error']['99.0'] * 100:.3f}%; values below exact: {acc['below_exact']}")
        for name, row in acc["phases"].items():
            cells = "  ".join(f"p{q}: {ex / 1000:.2f}→{g / 1000:.2f} ms ({err * 100:+.3f}%)" for q, (ex, g, err) in row.items())
            print(f"  {name:9} {cells}")
        print("worst phase |error|: " + ", ".join(f"p{q} {e * 100:.3f}%" for q, e in acc["worst_phase_error"].items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
