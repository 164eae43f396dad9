"""Load from 1, 2 and 4 local load workers (a Locust master and its workers), side by side.

    .venv/bin/python benchmarks/load_workers.py [--rounds 3] [--seconds 8] [--users 12] [--workers 1,2,4]

The same locustfile (FastHttpUser, wait_time constant(0), one GET /) and the same total user
count, run through LoadGenerator with workers=1 (today's single process), 2 and 4 (a master and
that many workers, harness.load.distributed). The endpoint is the asyncio counting server of
load_overhead.py in its own process. Per run:

- requests/s: the server's count over the steady window [first request + 1.5 s, first request
  + seconds - 0.5 s] (start-up, joining and spawning left out);
- CPU per request: CPU time of the load processes (the LoadGenerator's child and, with workers,
  its children) plus this process's, over the same window, per request the server counted;
- exactness: requests the server saw over the whole run = samples the harness received =
  the requests the load reported, which must be equal, every run (printed; exit 1 if not).

Runs rotate their order every round (1 2 4, 2 4 1, 4 1 2, ...) so drift on a shared machine is
spread. The load average is printed before and after: on 2 cores shared with other work, quote
ratios measured in one run, not absolute figures. Load goes to 127.0.0.1 only; each run is
bounded by --seconds.
"""

from __future__ import annotations

import argparse
import ctypes
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from load_overhead import LOCUSTFILE, _proc_cpu, serve  # noqa: E402 - the same server and profile

from harness.load import LoadGenerator  # noqa: E402


def _tree(pid: int) -> list[int]:
    """pid and its descendants (the master's workers), from /proc."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            with open(f"/proc/{p}/task/{p}/children") as f:
                todo.extend(int(c) for c in f.read().split())
        except OSError:
            pass
    return out


def run_one(lf: Path, url: str, users: int, workers: int, seconds: float, counter) -> dict:
    counter.value = 0
    received = 0
    stop = threading.Event()
    with LoadGenerator(lf, "Bench", url, users=users, spawn_rate=users, request_timeout_s=5.0,
                       max_duration_s=seconds + 10, workers=workers, join_timeout_s=120) as load:
        def consume():
            nonlocal received
            while not stop.is_set():        # what the orchestrator does: poll ~10x per second
                received += len(load.poll())
                time.sleep(0.1)

        th = threading.Thread(target=consume, daemon=True)
        th.start()
        pts = []
        first = None
        hard = time.monotonic() + seconds + 60
        pids = _tree(load.pid)
        while time.monotonic() < hard:
            t, c = time.monotonic(), counter.value
            if first is None and c > 0:
                first = t
                pids = _tree(load.pid)      # every worker is up once requests flow
            pts.append((t, c, sum(_proc_cpu(p) for p in pids) + time.process_time()))
            if first is not None and t >= first + seconds - 0.5:
                break
            time.sleep(0.02)
        summary = load.stop()
        stop.set()
        th.join()
    received += len(load.poll_final())
    if first is None:
        raise RuntimeError("no requests reached the server")
    w0, w1 = first + 1.5, first + seconds - 0.5
    a = min(pts, key=lambda p: abs(p[0] - w0))
    b = min(pts, key=lambda p: abs(p[0] - w1))
    n = b[1] - a[1]
    return {"rps": n / (b[0] - a[0]), "cpu_us": (b[2] - a[2]) / max(1, n) * 1e6, "recorded": summary.requests,
            "received": received, "samples": len(load.samples()), "server": counter.value,
            "by_worker": sorted(load.requests_by_worker().values()),
            "offsets_us": [round(w.offset_s * 1e6, 1) for w in load.workers_joined()]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--users", type=int, default=12)
    ap.add_argument("--workers", default="1,2,4")
    args = ap.parse_args()
    counts = [int(x) for x in args.workers.split(",")]
    if args.seconds < 4:
        ap.error("--seconds must be >= 4 (1.5 s warm-up and 0.5 s tail are left out)")

    ctx = mp.get_context("spawn")
    port = ctx.Value(ctypes.c_int, 0, lock=False)
    counter = ctx.Value(ctypes.c_long, 0, lock=False)
    server_cpu = ctx.Value(ctypes.c_double, 0.0, lock=False)
    stop_evt = ctx.Event()
    srv = ctx.Process(target=serve, args=(port, counter, server_cpu, stop_evt), daemon=True)
    srv.start()
    deadline = time.monotonic() + 10
    while port.value == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    url = f"http://127.0.0.1:{port.value}"

    rps: dict[int, list[float]] = {n: [] for n in counts}
    cpu: dict[int, list[float]] = {n: [] for n in counts}
    exact = True
    load_before = os.getloadavg()
    t_bench = time.monotonic()
    with tempfile.TemporaryDirectory() as d:
        lf = Path(d) / "locustfile.py"
        lf.write_text(LOCUSTFILE)
        for r in range(args.rounds):
            order = counts[r % len(counts):] + counts[:r % len(counts)]
            for n in order:
                res = run_one(lf, url, args.users, n, args.seconds, counter)
                same = res["server"] == res["received"] == res["samples"] == res["recorded"]
                exact &= same
                rps[n].append(res["rps"])
                cpu[n].append(res["cpu_us"])
                print(f"round {r + 1}  workers={n}  {res['rps']:8.0f} req/s {res['cpu_us']:7.1f} CPU µs/req  "
                      f"server={res['server']} received={res['received']} recorded={res['recorded']} "
                      f"{'EXACT' if same else 'MISMATCH'}  per worker {res['by_worker'] or '-'}  "
                      f"clock offsets µs {res['offsets_us'] or '-'}  load {os.getloadavg()[0]:.1f}", flush=True)
    wall = time.monotonic() - t_bench
    stop_evt.set()
    srv.join(10)
    base_rps, base_cpu = statistics.median(rps[counts[0]]), statistics.median(cpu[counts[0]])
    print()
    print(f"{'workers':>8s}{'median req/s':>14s}{'ratio':>8s}{'CPU µs/req':>12s}{'ratio':>8s}   runs (req/s)")
    for n in counts:
        mr, mc = statistics.median(rps[n]), statistics.median(cpu[n])
        print(f"{n:8d}{mr:14.0f}{mr / base_rps:8.2f}{mc:12.1f}{mc / base_cpu:8.2f}   "
              + "  ".join(f"{x:.0f}" for x in rps[n]))
    print(f"every run exact (server = received = recorded): {'yes' if exact else 'NO'}")
    print(f"users={args.users} seconds={args.seconds:g} rounds={args.rounds} cores={os.cpu_count()} "
          f"load average before {load_before[0]:.1f} after {os.getloadavg()[0]:.1f}; "
          f"server CPU {server_cpu.value:.1f} s over {wall:.0f} s wall ({server_cpu.value / wall:.0%} of a core)")
    return 0 if exact else 1


if __name__ == "__main__":
    raise SystemExit(main())
