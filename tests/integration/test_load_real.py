"""LoadGenerator driving a real Locust worker against a real HTTP server on 127.0.0.1.

Known answers come from the server's own counts. No Docker needed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from harness.errors import LoadError
from harness.load import LoadGenerator

LOCUSTFILE = textwrap.dedent('''
    import itertools, os
    from locust import FastHttpUser, HttpUser, task, constant

    print("locustfile imported; this line must not corrupt the frame stream")
    _ids = itertools.count()

    class Ok(FastHttpUser):
        wait_time = constant(0.01)
        @task
        def ok(self):
            self.client.get("/ok", name="ok")

    class Flaky(FastHttpUser):
        wait_time = constant(0.005)
        @task
        def write(self):
            wid = f"{os.getpid()}-{next(_ids)}"
            self.client.post("/flaky", data=wid, name="transfer", context={"write_id": wid})

    class Slow(FastHttpUser):
        wait_time = constant(0)
        @task
        def slow(self):
            self.client.get("/slow", name="slow")

    class SlowRequests(HttpUser):
        wait_time = constant(0)
        @task
        def slow(self):
            self.client.get("/slow", name="slow")

    class Raises(FastHttpUser):
        wait_time = constant(0.01)
        @task
        def oops(self):
            self.client.get("/ok", name="ok")
            raise ValueError("a bug in the profile")

    class Wedged(FastHttpUser):
        @task
        def spin(self):
            self.client.get("/ok", name="ok")
            while True:         # never yields: the event loop is stuck
                pass

    class TimeoutEnv(FastHttpUser):
        wait_time = constant(0.01)
        @task
        def echo(self):
            self.client.get("/echo?v=" + os.environ["CONTINUUM_REQUEST_TIMEOUT"]
                            + "&e=" + os.environ.get("CONTINUUM_ENDPOINTS", ""), name="echo")
''')


class Server:
    """Counts what it saw: every request per path, the 500s, the writes it committed."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.count: dict[str, int] = {}
        self.flaky_n = 0
        self.errors = 0
        self.committed: set[str] = set()
        self.queries: list[str] = []
        srv = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _reply(self, code: int, body: bytes = b"ok") -> None:
                self.send_response(code)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                path, _, query = self.path.partition("?")
                with srv.lock:
                    srv.count[path] = srv.count.get(path, 0) + 1
                    if path == "/echo":
                        srv.queries.append(query)
                if path == "/slow":
                    time.sleep(1.0)
                self._reply(200)

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                wid = self.rfile.read(n).decode()
                with srv.lock:
                    srv.count[self.path] = srv.count.get(self.path, 0) + 1
                    srv.flaky_n += 1
                    fail = srv.flaky_n % 10 == 0
                    if fail:
                        srv.errors += 1
                    else:
                        srv.committed.add(wid)
                self._reply(500 if fail else 200)

        class Quiet(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                pass        # clients that timed out leave broken pipes behind

        self.httpd = Quiet(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


@pytest.fixture
def locustfile(tmp_path: Path) -> Path:
    p = tmp_path / "locustfile.py"
    p.write_text(LOCUSTFILE)
    return p


def gen(locustfile: Path, cls: str, host: str, **kw) -> LoadGenerator:
    args = dict(users=3, spawn_rate=100, request_timeout_s=2.0, max_duration_s=20)
    args.update(kw)
    return LoadGenerator(locustfile, cls, host, **args)


def test_every_request_the_server_saw_is_a_sample_in_parent_monotonic_time(server, locustfile):
    t_before = time.monotonic()
    with gen(locustfile, "Ok", server.url) as load:
        t_ready = time.monotonic()
        got = []
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            got += load.poll()
            time.sleep(0.1)
        assert got, "samples stream while load runs"
        assert load.users_running() == 3
        summary = load.stop()
    t_after = time.monotonic()

    samples = load.samples()
    assert summary is not None and summary.reason == "stop"
    assert summary.requests == len(samples) == server.count["/ok"]
    assert got == list(samples[: len(got)])          # poll hands out the same objects, in order
    assert load.poll() == list(samples[len(got):])
    assert all(s.ok and s.name == "ok" and s.error == "" for s in samples)
    assert t_before <= load.t_start <= t_ready
    assert all(t_before <= s.t and s.t + s.latency_s <= t_after for s in samples)
    assert all(0 < s.latency_s < 1.0 for s in samples)
    # full precision, not Locust's rounded stats
    assert any(s.latency_s * 1000 != round(s.latency_s * 1000) for s in samples)
    assert not load.running()


def test_failures_and_write_records_match_the_server(server, locustfile):
    with gen(locustfile, "Flaky", server.url, users=4) as load:
        time.sleep(1.5)
    samples, writes = load.samples(), load.writes()
    assert len(samples) == server.count["/flaky"] > 20
    failed = [s for s in samples if not s.ok]
    assert len(failed) == server.errors == server.flaky_n // 10
    assert {s.error for s in failed} == {"HTTP 500"}
    assert {s.name for s in samples} == {"transfer"}
    assert len(writes) == len(samples)
    acked = {w.id for w in writes if w.outcome == "acked"}
    unknown = {w.id for w in writes if w.outcome == "unknown"}
    assert acked == server.committed
    assert len(unknown) == server.errors and not (acked & unknown)
    sample_ts = sorted(s.t for s in samples)
    assert sorted(w.t for w in writes) == sample_ts


@pytest.mark.parametrize("cls", ["Slow", "SlowRequests"])
def test_request_timeout_is_honoured(server, locustfile, cls):
    with gen(locustfile, cls, server.url, users=2, request_timeout_s=0.2, stop_grace_s=1.0) as load:
        time.sleep(1.0)
        summary = load.stop()
    samples = load.samples()
    assert len(samples) >= 3
    assert summary.failures == len(samples)
    assert all(not s.ok for s in samples)
    assert all(0.19 <= s.latency_s <= 0.6 for s in samples), [s.latency_s for s in samples]


def test_timeout_and_extra_env_reach_the_locustfile(server, locustfile):
    with gen(locustfile, "TimeoutEnv", server.url, request_timeout_s=0.75,
             env={"CONTINUUM_ENDPOINTS": "lb-1=http://127.0.0.1:1"}) as load:
        time.sleep(0.4)
    assert load.samples()
    assert set(server.queries) == {"v=0.75&e=lb-1=http://127.0.0.1:1"}


def test_worker_stops_by_itself_at_max_duration(server, locustfile):
    load = gen(locustfile, "Ok", server.url, max_duration_s=0.5)
    with load:
        deadline = time.monotonic() + 8
        while load.running() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not load.running()
        assert load.summary is not None and load.summary.reason == "max_duration"
        assert load.poll() is not None          # a worker that ended at its cap is not a failure
    assert load.summary.t_stop - load.t_start < 0.5 + 2.0
    assert len(load.samples()) == server.count["/ok"]


def test_worker_exits_on_stdin_eof(server, locustfile):
    load = gen(locustfile, "Ok", server.url)
    with load:
        load._proc.stdin.close()                # what the kernel does when the parent dies
        assert load._proc.wait(timeout=8) == 0
        time.sleep(0.2)
        assert load.summary is not None and load.summary.reason == "eof"


def test_worker_dies_with_its_sigkilled_parent(server, locustfile, tmp_path):
    script = tmp_path / "parent.py"
    script.write_text(textwrap.dedent(f'''
        import sys, time
        from pathlib import Path
        from harness.load import LoadGenerator
        g = LoadGenerator(Path({str(locustfile)!r}), "Ok", {server.url!r}, users=2, spawn_rate=10,
                          request_timeout_s=1.0, max_duration_s=60)
        g.start()
        print(g.pid, flush=True)
        time.sleep(60)
    '''))
    root = str(Path(__file__).resolve().parents[2])
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE,
                              env={**os.environ, "PYTHONPATH": root})
    try:
        worker_pid = int(parent.stdout.readline())
        time.sleep(0.3)
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=5)
        deadline = time.monotonic() + 8
        while _alive(worker_pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(worker_pid), "worker outlived its SIGKILLed parent"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_tasks_that_raise_are_counted(server, locustfile):
    with gen(locustfile, "Raises", server.url, users=2) as load:
        time.sleep(0.5)
    assert load.summary.user_errors == len(load.samples()) == server.count["/ok"] > 0


def test_wedged_worker_is_ended_by_its_hard_cap(server, locustfile):
    load = gen(locustfile, "Wedged", server.url, users=1, max_duration_s=0.3, stop_grace_s=0.2,
               hard_cap_slack_s=0.5)
    load.start()
    t = time.monotonic()
    assert load._proc.wait(timeout=10) == -signal.SIGALRM
    assert time.monotonic() - t < 5
    with pytest.raises(LoadError, match=f"signal {int(signal.SIGALRM)}"):
        load.stop()


def test_missing_user_class_is_a_load_error(server, locustfile):
    with pytest.raises(LoadError, match=r"no user class 'Nope'.*Flaky.*Ok"):
        gen(locustfile, "Nope", server.url).start()


def test_broken_locustfile_is_a_load_error(server, tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from locust import FastHttpUser\nraise RuntimeError('profile is broken')\n")
    with pytest.raises(LoadError, match="profile is broken"):
        with gen(bad, "Ok", server.url):
            pass


def test_locustfile_must_be_a_file(tmp_path, server):
    with pytest.raises(LoadError, match="not a file"):
        gen(tmp_path, "Ok", server.url)


def test_parent_never_imports_locust():
    code = ("import sys, harness.load, harness.load.runner; "
            "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('locust', 'gevent'))))")
    out = subprocess.run([sys.executable, "-c", "import json; " + code], capture_output=True, text=True,
                         check=True, cwd=str(Path(__file__).resolve().parents[2]))
    assert json.loads(out.stdout) == []


def test_open_loop_keeps_its_rate_when_every_answer_takes_a_second(server, locustfile):
    # Closed loop, 3 users against 1 s answers send 3 requests a second; open loop at 20/s with
    # room for 40 in flight keeps sending 20 a second, each measured from when it was due.
    with gen(locustfile, "Slow", server.url, users=40, spawn_rate=1000, mode="open", rate=20.0,
             stop_grace_s=0.0) as load:
        time.sleep(3.0)
        t_stop = time.monotonic()
    samples = load.samples()
    assert all(s.due_t is not None and s.due_t <= s.t for s in samples)
    dues = sorted(s.due_t for s in samples)
    assert dues[0] >= load.t_start - 0.01
    gaps = [b - a for a, b in zip(dues, dues[1:])]
    assert all(abs(g - 0.05) < 1e-6 for g in gaps), gaps            # exactly the schedule
    sent = [s for s in samples if s.t < t_stop - 1.2]
    assert len(sent) >= 0.8 * 20 * (t_stop - 1.2 - load.t_start), len(sent)
    # each was sent on time (a user was free), so its latency is the server's second
    assert all(s.t - s.due_t < 0.3 for s in sent)


def test_open_loop_requests_wait_for_a_free_user_and_count_from_when_they_were_due(server, locustfile):
    # 2 users, 10 due per second, answers take 1 s: 8 of every 10 requests wait for a user, and
    # their wait is part of the latency users feel.
    with gen(locustfile, "Slow", server.url, users=2, spawn_rate=1000, mode="open", rate=10.0,
             stop_grace_s=0.0) as load:
        time.sleep(3.2)
    samples = load.samples()
    assert len(samples) >= 4
    late = sorted(s.t - s.due_t for s in samples)
    assert late[-1] > 1.0                   # the schedule ran on without them
    assert late[0] < 0.3
