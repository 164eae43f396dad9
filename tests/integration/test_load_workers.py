"""Load from a Locust master and its workers, for real: Locust's own protocol on 127.0.0.1,
the echo target's load profile, a local HTTP server counting what it answered. No Docker.

Known answers: the server's count equals the harness's count exactly; a worker killed mid-run
is an error naming it; a worker started by `continuum load-worker` joins and is counted.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from harness.errors import LoadError
from harness.load import LoadGenerator

ROOT = Path(__file__).resolve().parents[2]
ECHO = ROOT / "targets" / "echo"
SHORT = bool(os.environ.get("CONTINUUM_SHORT"))
LOAD_S = 1.5 if SHORT else 4.0


class Counter:
    """Answers 200 "ok" to every GET and counts them."""

    def __init__(self) -> None:
        self.count = 0
        lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):  # noqa: N802 - http.server's name
                with lock:
                    outer.count += 1
                self.send_response(200)
                self.send_header("Content-Length", "3")
                self.end_headers()
                self.wfile.write(b"ok\n")

            def log_message(self, *_a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def counter():
    c = Counter()
    yield c
    c.close()


def _gen(counter: Counter, **kw) -> LoadGenerator:
    args = dict(locustfile=ECHO / "locustfile.py", user_class="echo", host=counter.url, users=4, spawn_rate=100,
                request_timeout_s=2.0, max_duration_s=60, workers=2, join_timeout_s=60)
    args.update(kw)
    return LoadGenerator(**args)


def test_two_workers_every_request_counted_exactly_once(counter):
    with _gen(counter) as load:
        joined = load.workers_joined()
        time.sleep(LOAD_S)
        summary = load.stop()
    samples = load.samples()
    assert len(joined) == 2 and {w.src for w in joined} == {0, 1}
    # same machine: offset measured (within its round trip's bound of 0) and 0 applied
    assert all(w.same_clock and w.applied_s == 0.0 and abs(w.offset_s) <= w.rtt_s for w in joined)
    assert summary.requests == len(samples) == counter.count > 0
    by_worker = load.requests_by_worker()
    assert len(by_worker) == 2 and all(n > 0 for n in by_worker.values())
    assert sum(by_worker.values()) == counter.count
    assert all(s.ok for s in samples)
    # times on our clock: inside the run
    assert all(load.t_start - 0.5 <= s.t <= summary.t_stop for s in samples)


def test_open_loop_rate_is_shared_by_the_workers(counter):
    rate = 60.0
    with _gen(counter, mode="open", rate=rate, users=4) as load:
        time.sleep(LOAD_S)
        load.stop()
    dues = sorted(s.due_t for s in load.samples())
    assert len(dues) == counter.count > 10
    # The two workers' slots interleave into one schedule: every due time is on the grid
    # origin + k / rate, no slot twice, none skipped except in the last moments (each worker
    # is told to stop at its own instant, so one may not send a slot the other has passed).
    slots = [(d - load.t_start) * rate for d in dues]
    assert all(abs(k - round(k)) < 1e-6 for k in slots)
    ks = [round(k) for k in slots]
    assert len(set(ks)) == len(ks) and ks[0] <= 1
    holes = sorted(set(range(ks[0], ks[-1] + 1)) - set(ks))
    assert all(h >= ks[-1] - 0.25 * rate for h in holes), holes


def test_a_worker_killed_mid_run_is_an_error_naming_it(counter):
    load = _gen(counter).start()
    try:
        victim = load.workers_joined()[1]
        time.sleep(0.5)
        os.kill(victim.pid, signal.SIGKILL)
        deadline = time.monotonic() + 20
        with pytest.raises(LoadError) as err:
            while time.monotonic() < deadline:
                load.poll()
                time.sleep(0.05)
        assert victim.name in str(err.value) and "signal 9" in str(err.value)
    finally:
        with pytest.raises(LoadError):
            load.stop()
    assert not load.running()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_worker_started_by_the_documented_command_joins_and_is_counted(counter):
    port = _free_port()
    cli = Path(sys.executable).with_name("continuum")
    # started first, as on another machine: it waits for the master (Locust retries)
    remote = subprocess.Popen([str(cli), "load-worker", "--master", f"127.0.0.1:{port}", str(ECHO), "echo"],
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        with _gen(counter, workers=1, remote_workers=1, master_bind=f"127.0.0.1:{port}") as load:
            time.sleep(LOAD_S)
            summary = load.stop()
        pids = {w.pid for w in load.workers_joined()}
        assert remote.pid in pids and len(pids) == 2          # exec: the command's pid is the worker's
        assert summary.requests == len(load.samples()) == counter.count > 0
        remote_name = next(w.name for w in load.workers_joined() if w.pid == remote.pid)
        assert load.requests_by_worker()[remote_name] > 0
        assert remote.wait(timeout=20) == 0                   # Locust's quit from the master ends it
    finally:
        if remote.poll() is None:
            remote.kill()
            remote.wait()
        remote.stderr.close()


def test_workers_that_do_not_all_join_in_time_fail_before_any_load(counter):
    t = time.monotonic()
    with pytest.raises(LoadError, match=r"[01] of 2 load workers joined the master at 127\.0\.0\.1:\d+ within 4 s"):
        _gen(counter, workers=1, remote_workers=1, join_timeout_s=4).start()
    assert time.monotonic() - t < 40
    assert counter.count == 0
