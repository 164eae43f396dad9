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

The run's own path (`--run`): the stream above plus two 2 s outages (every request fails) goes
through what a run does with it: polls into `harness.measure.store.SampleStore` as the
orchestrator builds it (`harness.run.orchestrator._store`), the faults' edges marked as the
scheduler reaches them, then `evaluate()` of the RunRecord (phases from harness.run.phases,
closed loop with 60 users so the coordinated-omission correction runs):

  run       peak RSS and CPU of that process for SECONDS; the result's figures.
  exact     the same stream's exact nearest-rank percentiles per phase (raw and as felt, the
            correction applied per request as the raw path does); compared with `run`'s.
  agree     AGREE_SECONDS (default 120 s) evaluated twice in one process, once with the default
            caps (quiet steps evicted) and once with no cap (every sample raw): the outage edges,
            stalls, error windows, TTR and counts must be identical.

    .venv/bin/python benchmarks/histogram_memory.py [--seconds 3600] [--rate 10000] [--raw-seconds 60]
    .venv/bin/python benchmarks/histogram_memory.py --run [--seconds 3600] [--agree-seconds 120]
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


def outages(seconds: float) -> list[tuple[float, float]]:
    """`--run`: two 2 s holes in which every request fails (a link down, a restart)."""
    return [(seconds / 4, seconds / 4 + 2.0), (3 * seconds / 4, 3 * seconds / 4 + 2.0)]


def stream(seconds: float, rate: float, seed: int = 14, holes: bool = False):
    """Batches of Samples, as LoadGenerator.poll() delivers them."""
    down = outages(seconds) if holes else []
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
            # an outage fails every request in flight during it (a link down)
            ok = not (write and fail_a <= off < fail_b) and \
                not any(off < b and off + us / 1_000_000 > a for a, b in down)
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


USERS = 60


def run_faults(seconds: float):
    from harness.model import FaultEvent

    fa = seconds / 3
    (o1a, o1b), (o2a, o2b) = outages(seconds)
    sa = 2 * seconds / 3
    return [FaultEvent("outage-1", "network.down", ("lb-app-1",), T0 + o1a, T0 + o1b, issued_t=T0 + o1a - 0.002),
            FaultEvent("failover", "container.kill", ("db-1",), T0 + fa, None, issued_t=T0 + fa - 0.003),
            FaultEvent("degraded", "network.latency", ("lb-app-1",), T0 + sa, T0 + sa + 20.0, issued_t=T0 + sa - 0.001),
            FaultEvent("outage-2", "network.down", ("lb-app-1",), T0 + o2a, T0 + o2b, issued_t=T0 + o2a - 0.002)]


def run_experiment_model():
    from harness.measure.synthetic import make_experiment
    from harness.model import Assertion
    from harness.model.experiment import LoadSpec

    exp = make_experiment("one-hour", slo=(Assertion("availability", ">=", 0.99, ">= 99%"),), recovery_window_s=3.0)
    return exp.model_copy(update={"load": LoadSpec(profile="ledger", users=USERS)})


def run_path(seconds: float, rate: float, **caps):
    """What a run does with the stream: store (as the orchestrator makes it), marks, evaluate."""
    from harness.measure import evaluate
    from harness.measure.synthetic import make_record
    from harness.run.orchestrator import _mark_edges, _store
    from harness.run.phases import phases as run_phases
    import dataclasses

    exp = run_experiment_model()
    faults = run_faults(seconds)
    store = _store(exp, T0)
    for k, v in caps.items():
        setattr(store, k, v)
    class _R:                               # what _mark_edges needs of the orchestrator's run
        mark = store.mark
    for batch in stream(seconds, rate, holes=True):
        now = batch[-1].t                   # the scheduler knows a fault once it issued it
        _mark_edges(_R, [f for f in faults if f.issued_t <= now], exp.load.request_timeout_s)
        store.add(batch)
    t_end = T0 + seconds
    store.finish(t_end)
    rec = make_record([], experiment=exp, t0=T0, t_end=t_end, faults=faults,
                      phases=run_phases(faults, T0, t_end, exp.load.request_timeout_s))
    return evaluate(dataclasses.replace(rec, store=store)), rec


def _figures(r) -> dict:
    from harness.report.results import plain

    # stalls apart: inside evicted (quiet) steps they are the stand-ins' (harness.measure.store)
    return {"phases": [plain({k: getattr(p, k) for k in ("name", "requests", "successes", "failures", "errors",
                                                          "longest_outage", "availability", "throughput_rps")})
                       for p in r.phases],
            "ops": [plain([(o.operation, o.requests, o.successes, o.longest_outage)
                           for o in p.operations]) for p in r.phases],
            "faults": [plain((f.fault, f.error_window, f.recovery)) for f in r.faults],
            "ttr": r.time_to_recover_s, "outage": plain(r.longest_outage), "stall": plain(r.longest_stall),
            "timeline": [(s.ok, s.failed) for s in r.timeline]}


PCT = (("latency_p50_s", 50.0), ("latency_p95_s", 95.0), ("latency_p99_s", 99.0), ("latency_max_s", 100.0))
RAW_PCT = (("raw_latency_p50_s", 50.0), ("raw_latency_p99_s", 99.0))


def mode_run(seconds: float, rate: float) -> dict:
    base = peak_rss_mb()
    t = time.process_time()
    r, rec = run_path(seconds, rate)
    cpu = time.process_time() - t
    return {"requests": r.overall.requests, "peak_rss_mb": peak_rss_mb(), "rss_before_mb": base, "cpu_s": cpu,
            "cpu_us_per_request": cpu / max(1, r.overall.requests) * 1e6,
            "measurement": dataclasses_plain(r.measurement), "figures": _figures(r),
            "percentiles": {p.name: {k: getattr(p, k) for k, _ in PCT + RAW_PCT} for p in r.phases},
            "phase_edges": [(p.name, p.start_t, p.end_t) for p in rec.phases],
            "baseline_requests": r.phase("baseline").requests, "verdict": r.verdict.value}


def dataclasses_plain(x):
    from harness.report.results import plain
    return plain(x)


def mode_exact(seconds: float, rate: float, edges: list, baseline_requests: int) -> dict:
    """Exact nearest-rank percentiles per phase, felt values corrected per request."""
    from harness.measure.omission import corrected, expected_interval

    base = next(e for e in edges if e[0] == "baseline")
    interval = expected_interval(USERS, baseline_requests, base[2] - base[1])
    cuts = [("overall", T0, T0 + seconds + 1e-9)] + [(n, a, b) for n, a, b in edges]
    raw = {n: Counter() for n, _, _ in cuts}
    felt = {n: Counter() for n, _, _ in cuts}
    for batch in stream(seconds, rate, holes=True):
        for s in batch:
            if not s.ok:
                continue
            vals = None
            for n, a, b in cuts:
                if a <= s.t < b:
                    raw[n][s.latency_s] += 1
                    if vals is None:
                        vals = list(corrected(s.latency_s, interval))
                    for v in vals:
                        felt[n][v] += 1
    out = {}
    for n, _, _ in cuts:
        if not raw[n]:
            continue
        out[n] = {k: _exact(felt[n], q) for k, q in PCT}
        out[n].update({k: _exact(raw[n], q) for k, q in RAW_PCT})
    return out


def plain_stall(st):
    return None if st is None else round(st.duration_s, 6)


def mode_agree(seconds: float, rate: float) -> dict:
    bounded, _ = run_path(seconds, rate)
    everything, _ = run_path(seconds, rate, raw_cap=10**9, hard_cap=10**9)
    a, b = _figures(bounded), _figures(everything)
    return {"requests": bounded.overall.requests, "evicted_requests": bounded.measurement.evicted_requests,
            "raw_requests": bounded.measurement.raw_requests, "capped": bounded.measurement.capped,
            "identical": a == b, "differences": [k for k in a if a[k] != b[k]],
            "stalls": [(p.name, plain_stall(p.longest_stall), plain_stall(q.longest_stall))
                       for p, q in zip(bounded.phases, everything.phases)],
            "outage": a["outage"], "stall": a["stall"], "ttr": a["ttr"], "faults": a["faults"]}


def run_child(mode: str, seconds: float, rate: float, extra: list[str] = ()) -> dict:
    t = time.monotonic()
    out = subprocess.run([sys.executable, __file__, "--child", mode, "--seconds", str(seconds), "--rate", str(rate),
                          *extra], capture_output=True, text=True, check=True)
    doc = json.loads(out.stdout.strip().splitlines()[-1])
    doc["wall_s"] = time.monotonic() - t
    return doc


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--seconds", type=float, default=3600.0)
    ap.add_argument("--rate", type=float, default=10_000.0)
    ap.add_argument("--raw-seconds", type=float, default=60.0)
    ap.add_argument("--child", choices=("hist", "raw", "accuracy", "run", "exact", "agree"))
    ap.add_argument("--skip-accuracy", action="store_true")
    ap.add_argument("--run", action="store_true", help="the run's own path (SampleStore + evaluate)")
    ap.add_argument("--agree-seconds", type=float, default=120.0)
    ap.add_argument("--exact-input", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child == "exact":
        doc = json.loads(Path(args.exact_input).read_text())
        print(json.dumps(mode_exact(args.seconds, args.rate, doc["phase_edges"], doc["baseline_requests"])))
        return 0
    if args.child:
        fn = {"hist": mode_hist, "raw": mode_raw, "accuracy": mode_accuracy, "run": mode_run,
              "agree": mode_agree}[args.child]
        print(json.dumps(fn(args.seconds, args.rate)))
        return 0
    if args.run:
        return main_run(args)
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


def main_run(args) -> int:
    import os
    import tempfile

    n = int(args.seconds * args.rate)
    print(f"the run's path: {args.seconds:g} s at {args.rate:g} requests/s = {n:,} requests "
          f"(load average {os.getloadavg()[0]:.1f})", flush=True)
    agree = run_child("agree", args.agree_seconds, args.rate)
    print(f"bounded vs every sample raw over {args.agree_seconds:g} s ({agree['requests']:,} requests, "
          f"{agree['evicted_requests']:,} evicted, {agree['raw_requests']:,} kept raw, capped {agree['capped']}): "
          f"identical (stalls aside) {agree['identical']} {agree['differences'] or ''}; outage {agree['outage']}, "
          f"stall {agree['stall']}, TTR {agree['ttr']}", flush=True)
    for name, a, b in agree["stalls"]:
        if a != b:
            print(f"  longest stall in {name}: {a} bounded, {b} raw", flush=True)
    raw = run_child("raw", args.raw_seconds, args.rate)
    per_req = (raw["peak_rss_mb"] - raw["rss_before_mb"]) / raw["requests"]
    print(f"raw samples ({args.raw_seconds:g} s): peak RSS {raw['peak_rss_mb']:.0f} MB → {args.seconds:g} s: "
          f"~{raw['rss_before_mb'] + per_req * n:,.0f} MB", flush=True)
    run = run_child("run", args.seconds, args.rate)
    print(f"run path ({run['requests']:,} requests): peak RSS {run['peak_rss_mb']:.0f} MB (interpreter and imports "
          f"{run['rss_before_mb']:.0f} MB), {run['cpu_us_per_request']:.2f} µs CPU/request (simulation included), "
          f"wall {run['wall_s']:.0f} s; measurement {run['measurement']}", flush=True)
    print(f"  outage {run['figures']['outage']}, stall {run['figures']['stall']}, TTR {run['figures']['ttr']}, "
          f"faults {run['figures']['faults']}", flush=True)
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(run, f)
    exact = run_child("exact", args.seconds, args.rate, ["--exact-input", f.name])
    worst = 0.0
    below = 0
    for name, want in exact.items():
        if name == "wall_s":
            continue
        got = run["percentiles"][name]
        cells = []
        for k, w in want.items():
            g = got[k]
            err = (g - w) / w
            below += err < -1e-12
            worst = max(worst, abs(err))
            cells.append(f"{k.replace('_s', '').replace('latency_', '')} {w * 1000:.2f}→{g * 1000:.2f} ms ({err * 100:+.3f}%)")
        print(f"  {name:18} " + "  ".join(cells))
    print(f"worst percentile |error| {worst * 100:.3f}% (values below exact: {below}); "
          f"ratio raw/run peak RSS {(raw['rss_before_mb'] + per_req * n) / run['peak_rss_mb']:.0f}x; "
          f"load average {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
