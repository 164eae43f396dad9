"""Overhead of LoadGenerator (Locust in our worker, every request recorded and streamed to the
parent) against the plain Locust CLI, same locustfile, same user class and user count.

    .venv/bin/python benchmarks/load_overhead.py [--rounds 3] [--seconds 10] [--users 10]

Both are measured the same way: by the *server's* request counter, over the steady window
[first request + 1.5 s, first request + seconds - 0.5 s], so start-up costs (importing locust,
spawning users) are left out of both. Runs alternate (A B, B A, A B, ...) so drift on a shared
machine hits both. The server is an asyncio raw-protocol server in its own process answering a
fixed keep-alive response; its CPU use is printed so you can see it was not the bottleneck.

Load goes to 127.0.0.1 only; every run is bounded by --seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import multiprocessing as mp
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.load import LoadGenerator  # noqa: E402

LOCUSTFILE = """\
from locust import FastHttpUser, constant, task


class Bench(FastHttpUser):
    wait_time = constant(0)

    @task
    def index(self):
        self.client.get("/")
"""

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"


def serve(port_out, counter, cpu_out, stop_evt) -> None:
    class Proto(asyncio.Protocol):
        def connection_made(self, transport):
            self.t = transport
            self.tail = b""

        def data_received(self, data):
            data = self.tail + data
            n = data.count(b"\r\n\r\n")         # GET requests: no bodies
            if n:
                counter.value += n
                self.t.write(RESPONSE * n)
                self.tail = data[data.rfind(b"\r\n\r\n") + 4:]
            else:
                self.tail = data

    async def main():
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        server = await asyncio.get_running_loop().create_server(Proto, sock=sock, backlog=1024)
        port_out.value = sock.getsockname()[1]
        while not stop_evt.is_set():
            await asyncio.sleep(0.1)
        server.close()

    asyncio.run(main())
    ru = resource.getrusage(resource.RUSAGE_SELF)
    cpu_out.value = ru.ru_utime + ru.ru_stime


class Sampler:
    """Reads the server's counter (and the load processes' CPU time) every 20 ms."""

    def __init__(self, counter):
        self.counter = counter

    def measure(self, seconds: float, done, pid: int) -> tuple[float, float]:
        """(requests/s, CPU µs per request) over the steady window.

        CPU is the load process's (from /proc) plus this process's own (sampling, and for
        LoadGenerator the frame reader and poll()), both only inside the window.
        """
        pts: list[tuple[float, int, float]] = []
        first = None
        hard = time.monotonic() + seconds + 60
        while time.monotonic() < hard:
            t, c = time.monotonic(), self.counter.value
            pts.append((t, c, _proc_cpu(pid) + time.process_time()))
            if first is None and c > 0:
                first = t
            if first is not None and t >= first + seconds - 0.5:
                break
            if done():
                break
            time.sleep(0.02)
        if first is None:
            raise RuntimeError("no requests reached the server")
        w0, w1 = first + 1.5, first + seconds - 0.5
        a = min(pts, key=lambda p: abs(p[0] - w0))
        b = min(pts, key=lambda p: abs(p[0] - w1))
        n = b[1] - a[1]
        return n / (b[0] - a[0]), (b[2] - a[2]) / max(1, n) * 1e6


_TICK = os.sysconf("SC_CLK_TCK")


def _proc_cpu(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICK     # utime, stime
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return 0.0


def run_cli(locust: str, lf: Path, url: str, users: int, seconds: float, sampler: Sampler, counter) -> dict:
    counter.value = 0
    argv = [locust, "--headless", "-f", str(lf), "-u", str(users), "-r", str(users),
            "-t", f"{seconds:g}s", "--host", url, "--only-summary", "--loglevel", "WARNING", "Bench"]
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=lf.parent)
    try:
        rps, cpu_us = sampler.measure(seconds, lambda: p.poll() is not None, p.pid)
        _, err = p.communicate(timeout=seconds + 30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    if p.returncode not in (0, 1):     # 1: some requests failed (none expected here)
        raise RuntimeError(f"locust CLI exited {p.returncode}: {err.decode()[-2000:]}")
    return {"rps": rps, "cpu_us": cpu_us}


def run_lg(lf: Path, url: str, users: int, seconds: float, sampler: Sampler, counter) -> dict:
    counter.value = 0
    received = 0
    with LoadGenerator(lf, "Bench", url, users=users, spawn_rate=users, request_timeout_s=5.0,
                       max_duration_s=seconds + 5) as load:
        import threading

        stop = threading.Event()

        def consume():
            nonlocal received
            while not stop.is_set():        # what the orchestrator does: poll ~10x per second
                received += len(load.poll())
                time.sleep(0.1)

        th = threading.Thread(target=consume, daemon=True)
        th.start()
        rps, cpu_us = sampler.measure(seconds, lambda: False, load.pid)
        summary = load.stop()
        stop.set()
        th.join()
    received += len(load.poll())
    return {"rps": rps, "cpu_us": cpu_us, "recorded": summary.requests, "received": received, "server": counter.value}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--users", type=int, default=10)
    args = ap.parse_args()
    if args.seconds < 4:
        ap.error("--seconds must be >= 4 (1.5 s warm-up and 0.5 s tail are left out)")
    locust = str(Path(sys.executable).with_name("locust"))
    if not os.access(locust, os.X_OK):
        print(f"no locust CLI beside {sys.executable}", file=sys.stderr)
        return 2

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
    sampler = Sampler(counter)

    results: dict[str, list[float]] = {"cli": [], "lg": []}
    cpu_per_req: dict[str, list[float]] = {"cli": [], "lg": []}
    rows = []
    t_bench = time.monotonic()
    with tempfile.TemporaryDirectory() as d:
        lf = Path(d) / "locustfile.py"
        lf.write_text(LOCUSTFILE)
        for r in range(args.rounds):
            order = ("cli", "lg") if r % 2 == 0 else ("lg", "cli")
            for mode in order:
                if mode == "cli":
                    res = run_cli(locust, lf, url, args.users, args.seconds, sampler, counter)
                else:
                    res = run_lg(lf, url, args.users, args.seconds, sampler, counter)
                results[mode].append(res["rps"])
                cpu_per_req[mode].append(res["cpu_us"])
                rows.append((r + 1, mode, res))
                extra = ""
                if mode == "lg":
                    extra = (f"  recorded={res['recorded']} received={res['received']} "
                             f"server={res['server']}")
                print(f"round {r + 1}  {'locust CLI' if mode == 'cli' else 'LoadGenerator':14s}"
                      f"{res['rps']:10.0f} req/s {res['cpu_us']:6.1f} CPU µs/req{extra}", flush=True)
    wall = time.monotonic() - t_bench
    stop_evt.set()
    srv.join(10)

    cli, lg = statistics.median(results["cli"]), statistics.median(results["lg"])
    ratio = lg / cli
    print()
    print(f"{'':24s}{'median req/s':>14s}{'runs':>30s}")
    print(f"{'locust CLI (headless)':24s}{cli:14.0f}{'  '.join(f'{x:.0f}' for x in results['cli']):>30s}")
    print(f"{'LoadGenerator':24s}{lg:14.0f}{'  '.join(f'{x:.0f}' for x in results['lg']):>30s}")
    print(f"{'ratio LoadGenerator/CLI':24s}{ratio:14.3f}   (goal >= 0.95)")
    ccli, clg = statistics.median(cpu_per_req["cli"]), statistics.median(cpu_per_req["lg"])
    print(f"CPU per request in the steady window (load process + this one), median: CLI {ccli:.1f} µs, "
          f"LoadGenerator {clg:.1f} µs, ratio CLI/LoadGenerator {ccli / clg:.3f}")
    print(f"users={args.users} seconds={args.seconds:g} rounds={args.rounds} "
          f"server CPU {server_cpu.value:.1f} s over {wall:.0f} s wall ({server_cpu.value / wall:.0%} of a core); "
          f"cores={os.cpu_count()} locust={_locust_version()}")
    return 0


def _locust_version() -> str:
    try:
        from importlib.metadata import version
        return version("locust")
    except Exception:
        return "?"


if __name__ == "__main__":
    raise SystemExit(main())
