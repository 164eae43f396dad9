"""LoadGenerator against a fake worker (a tiny script speaking the wire format): failure paths.

No locust here: the fake stands in for `python -m harness.load.worker`.
"""

from __future__ import annotations

import sys
import textwrap
import time
from pathlib import Path

import pytest

from harness.errors import LoadError
from harness.load import LoadGenerator
from harness.model import ReadRecord, Sample, WriteRecord

FAKE = textwrap.dedent(f'''\
    #!{sys.executable}
    import json, os, struct, sys, time
    sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})
    from harness.load import wire

    mode = os.environ["FAKE_WORKER_MODE"]
    cfg = json.loads(sys.stdin.buffer.readline())
    out = sys.stdout.buffer
    def send(kind, body):
        out.write(wire.encode(kind, body)); out.flush()

    print("fake worker", mode, cfg["user_class"], file=sys.stderr, flush=True)
    if mode == "hang":
        time.sleep(30); sys.exit(0)
    if mode == "error":
        send(wire.ERROR, {{"type": "MissingUserClass", "message": "no user class 'X'", "stage": "user-class"}})
        sys.exit(1)
    send(wire.READY, {{"pid": os.getpid(), "t_start": time.monotonic(), "users": 1}})
    send(wire.BATCH, {{"n": ["get", "HTTP 500"], "s": [[1.0, 0.5, 1, 1, 0], [2.0, 0.25, 0, 1, 2]],
                      "w": [["w1", 1, 1.0], ["w2", 0, 2.0]], "u": 1}})
    if mode == "crash":
        time.sleep(0.2); sys.exit(3)
    if mode == "truncated":
        out.write(wire.encode(wire.END, {{"reason": "stop"}})[:7]); out.flush(); sys.exit(0)
    if mode == "ignore-stop":
        time.sleep(30); sys.exit(0)
    line = sys.stdin.buffer.readline()
    send(wire.BATCH, {{"n": [], "s": [[3.0, 0.125, 1, 1, 0], [3.5, 0.25, 1, 1, 0, 3.25]], "w": [], "r": [["m1", 3.0]], "u": 0}})
    send(wire.END, {{"reason": "stop" if line.strip() == b"stop" else "eof", "requests": 3, "failures": 1,
                    "writes": 2, "t_stop": time.monotonic(), "grace_exceeded": False}})
''')


@pytest.fixture
def fake(tmp_path: Path, monkeypatch):
    exe = tmp_path / "fake-python"
    exe.write_text(FAKE)
    exe.chmod(0o755)
    lf = tmp_path / "locustfile.py"
    lf.write_text("# not imported by the fake\n")

    def make(mode: str, **kw) -> LoadGenerator:
        monkeypatch.setenv("FAKE_WORKER_MODE", mode)
        args = dict(locustfile=lf, user_class="Fake", host="http://127.0.0.1:1", users=1, spawn_rate=1,
                    request_timeout_s=1.0, max_duration_s=30, python=str(exe))
        args.update(kw)
        return LoadGenerator(**args)

    return make


def _wait(cond, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not cond() and time.monotonic() < deadline:
        time.sleep(0.02)
    return cond()


def test_good_worker_samples_writes_summary(fake):
    with fake("good") as load:
        assert load.t_start is not None and load.pid
        assert _wait(lambda: len(load.samples()) == 2)
        assert load.poll() == [Sample(1.0, 0.5, True, "get", ""), Sample(2.0, 0.25, False, "get", "HTTP 500")]
        assert load.poll() == []
        assert load.users_running() == 1
        summary = load.stop()
    assert summary.reason == "stop" and summary.requests == 3 and summary.failures == 1
    # an open-loop sample carries when it was due as a sixth field
    assert load.poll() == [Sample(3.0, 0.125, True, "get", ""), Sample(3.5, 0.25, True, "get", "", due_t=3.25)]
    assert load.writes() == (WriteRecord("w1", "acked", 1.0), WriteRecord("w2", "unknown", 2.0))
    assert load.reads() == (ReadRecord("m1", 3.0),)
    assert load.stop() == summary           # idempotent
    assert not load.running()


def test_error_frame_before_ready(fake):
    with pytest.raises(LoadError, match=r"failed to start: \[user-class\] MissingUserClass: no user class 'X'"):
        fake("error").start()


def test_not_ready_in_time_is_killed(fake):
    load = fake("hang", ready_timeout_s=0.5)
    t = time.monotonic()
    with pytest.raises(LoadError, match=r"not ready within 0.5 s(.|\n)*fake worker hang"):
        load.start()
    assert time.monotonic() - t < 5
    assert load._proc.poll() is not None    # no orphan


def test_crash_mid_run_surfaces_in_poll_after_the_samples(fake):
    with pytest.raises(LoadError, match="exit status 3"):
        with fake("crash") as load:
            assert _wait(lambda: load._stream_closed and not load.running())
            assert len(load.poll()) == 2            # what arrived is handed out first
            with pytest.raises(LoadError, match="ended unexpectedly.*exit status 3"):
                load.poll()


def test_truncated_stream_is_a_load_error(fake):
    load = fake("truncated").start()
    assert _wait(lambda: load._stream_closed)
    assert len(load.poll()) == 2
    with pytest.raises(LoadError, match="ended inside a frame"):
        load.poll()
    with pytest.raises(LoadError, match="ended inside a frame"):
        load.stop()


def test_worker_that_ignores_stop_is_killed(fake):
    load = fake("ignore-stop")
    load.start()
    t = time.monotonic()
    with pytest.raises(LoadError, match="did not stop within 0.5 s"):
        load.stop(timeout=0.5)
    assert time.monotonic() - t < 5
    assert load._proc.returncode == -9


def test_exit_with_an_exception_stops_the_worker_and_does_not_mask_it(fake):
    with pytest.raises(KeyError):
        with fake("crash") as load:
            raise KeyError("boom")          # and stop() fails too (exit 3): KeyError still wins
    assert load._proc.returncode == 3
    assert not load.running()


@pytest.mark.parametrize("kw, msg", [
    ({"users": 0}, "users"),
    ({"request_timeout_s": 0}, "request_timeout_s"),
    ({"user_class": "not valid"}, "identifier"),
])
def test_bad_arguments_are_load_errors(fake, kw, msg):
    with pytest.raises(LoadError, match=msg):
        fake("good", **kw)
