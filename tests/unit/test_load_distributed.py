"""Distributed load, the parts with known answers and no locust: clock offsets (clocks.py),
exactly-once accounting (ledger.py), and LoadGenerator reading a fake master's frames."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from harness.errors import LoadError
from harness.load import LoadGenerator
from harness.load.clocks import estimate
from harness.load.config import WorkerConfig, split_address
from harness.load.ledger import Ledger, LedgerError

# ─────────────────────────── clock offsets ───────────────────────────


def test_offset_of_a_clock_5_s_ahead_over_symmetric_delays_is_exactly_5():
    # master sends at t0, the reply takes as long as the request (2 ms each way)
    ex = [(t0, t0 + 0.002 + 5.0, t0 + 0.004) for t0 in (10.0, 11.0, 12.0)]
    o = estimate(ex)
    assert o.offset_s == pytest.approx(5.0, abs=1e-12)
    assert o.rtt_s == pytest.approx(0.004)
    assert o.applied_s == pytest.approx(5.0) and o.rounds == 3


def test_the_shortest_round_trip_wins_and_its_error_is_within_half_of_it():
    true = -0.250
    # (t0, one-way out, one-way back): asymmetric delays bias the estimate by (out - back) / 2
    legs = [(1.0, 0.030, 0.001), (2.0, 0.0004, 0.0002), (3.0, 0.001, 0.020)]
    ex = [(t0, t0 + out + true, t0 + out + back) for t0, out, back in legs]
    o = estimate(ex)
    assert o.rtt_s == pytest.approx(0.0006)
    assert o.offset_s == pytest.approx(true + (0.0004 - 0.0002) / 2, abs=1e-12)
    assert abs(o.offset_s - true) <= o.rtt_s / 2


def test_same_kernel_means_the_applied_correction_is_exactly_zero_but_the_measure_is_kept():
    o = estimate([(1.0, 1.00031, 1.0006)], same_clock=True)
    assert o.offset_s == pytest.approx(0.00001)
    assert o.applied_s == 0.0


def test_no_exchange_or_a_reply_before_its_ping_is_refused():
    with pytest.raises(ValueError, match="no clock exchange"):
        estimate([])
    with pytest.raises(ValueError, match="ends before it starts"):
        estimate([(2.0, 2.0, 1.0)])

# ─────────────────────────── every request once ───────────────────────────


def _ledger(*names: str) -> Ledger:
    led = Ledger()
    for i, n in enumerate(names):
        led.join(i, n)
    return led


def test_batches_in_order_and_matching_ends_balance():
    led = _ledger("w0", "w1")
    for q in range(3):
        led.batch(0, q, 10, 1)
        led.batch(1, q, 7, 0)
    led.end(0, 3, 30, 3)
    led.end(1, 3, 21, 0)
    led.finish(2)
    assert led.requests == 51


def test_a_gap_is_named_with_the_missing_batches():
    led = _ledger("load worker 1 (pid 7 on a)")
    led.batch(0, 0, 1, 0)
    with pytest.raises(LedgerError, match=r"load worker 1 \(pid 7 on a\): batch 1 missing"):
        led.batch(0, 2, 1, 0)
    led = _ledger("w")
    with pytest.raises(LedgerError, match="batches 0-3 missing"):
        led.batch(0, 4, 1, 0)


def test_a_duplicate_is_refused():
    led = _ledger("w")
    led.batch(0, 0, 5, 0)
    led.batch(0, 1, 5, 0)
    with pytest.raises(LedgerError, match="batch 1 arrived twice"):
        led.batch(0, 1, 5, 0)


@pytest.mark.parametrize("end,what", [((3, 10, 0), "sent 3 batches, 2 arrived"),
                                      ((2, 11, 0), "recorded 11 requests, 10 arrived"),
                                      ((2, 10, 1), "recorded 1 writes, 0 arrived")])
def test_an_end_that_does_not_match_what_arrived(end, what):
    led = _ledger("w")
    led.batch(0, 0, 4, 0)
    led.batch(0, 1, 6, 0)
    with pytest.raises(LedgerError, match=what):
        led.end(0, *end)


def test_a_worker_without_an_end_or_one_that_never_joined():
    led = _ledger("w0", "w1")
    led.end(0, 0, 0, 0)
    with pytest.raises(LedgerError, match="no end from w1"):
        led.finish(2)
    with pytest.raises(LedgerError, match="2 of 3 load workers joined"):
        led.finish(3)
    with pytest.raises(LedgerError, match="never joined"):
        led.batch(5, 0, 1, 0)
    with pytest.raises(LedgerError, match="batch 0 after its end"):
        led.batch(0, 0, 1, 0)

# ─────────────────────────── config ───────────────────────────


def _cfg(**kw) -> WorkerConfig:
    base = dict(locustfile="/x.py", user_class="U", host="http://127.0.0.1:1", users=4, spawn_rate=4.0,
                request_timeout_s=1.0, max_duration_s=10.0, stop_grace_s=1.0)
    return WorkerConfig(**{**base, **kw})


@pytest.mark.parametrize("kw,msg", [({"workers": 0}, "workers must be"), ({"workers": 65}, "workers must be"),
                                    ({"workers": 2, "users": 1}, r"users \(1\) must be at least"),
                                    ({"remote_workers": -1}, "remote_workers"),
                                    ({"master_bind": "nohost"}, "master_bind")])
def test_bad_worker_settings_are_refused(kw, msg):
    with pytest.raises(ValueError, match=msg):
        _cfg(**kw).validate()


def test_one_worker_is_the_single_process_path_and_the_config_round_trips():
    assert not _cfg().distributed
    c = _cfg(workers=2, remote_workers=1, master_bind="0.0.0.0:5557")
    assert c.distributed and c.total_workers == 3
    assert WorkerConfig.from_line(c.to_line()) == c
    assert split_address("[::1]:0") == ("::1", 0)

# ─────────────────────────── LoadGenerator and a fake master ───────────────────────────


FAKE_MASTER = textwrap.dedent(f'''\
    #!{sys.executable}
    import json, os, sys, time
    sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})
    from harness.load import wire
    mode = os.environ["FAKE_MASTER_MODE"]
    cfg = json.loads(sys.stdin.buffer.readline())
    out = sys.stdout.buffer
    def send(kind, body):
        out.write(wire.encode(kind, body)); out.flush()
    # worker 1 is on another machine: its clock runs 100 s ahead of ours
    send(wire.JOINED, {{"src": 0, "name": "load worker 0 (pid 11 on here)", "pid": 11, "host": "here",
                       "offset_s": 0.00001, "rtt_s": 0.0003, "same_clock": True, "applied_s": 0.0}})
    send(wire.JOINED, {{"src": 1, "name": "load worker 1 (pid 22 on there)", "pid": 22, "host": "there",
                       "offset_s": 100.0, "rtt_s": 0.001, "same_clock": False, "applied_s": 100.0}})
    send(wire.READY, {{"pid": os.getpid(), "t_start": 5.0, "users": cfg["users"], "workers": 2}})
    send(wire.BATCH, {{"src": 0, "q": 0, "n": ["get"], "s": [[6.0, 0.1, 1, 1, 0]], "w": [["a", 1, 6.0]], "u": 2}})
    send(wire.BATCH, {{"src": 1, "q": 0, "n": ["get", "HTTP 500"], "s": [[106.5, 0.2, 0, 1, 2, 106.25]],
                      "w": [], "u": 2}})
    if mode == "dead":
        send(wire.ERROR, {{"type": "LoadWorkerLost", "stage": "worker",
                          "message": "load worker 1 (pid 22 on there) exited mid-run (signal 9)"}})
        sys.exit(1)
    q = 2 if mode == "gap" else 1
    sys.stdin.buffer.readline()
    send(wire.BATCH, {{"src": 0, "q": q, "n": [], "s": [[7.0, 0.1, 1, 1, 0]], "w": [], "u": 0}})
    send(wire.WORKER_END, {{"src": 0, "batches": 2, "requests": 2, "failures": 0, "writes": 1, "reads": 0,
                           "user_errors": 0, "t_stop": 8.0}})
    send(wire.WORKER_END, {{"src": 1, "batches": 1, "requests": 1, "failures": 1, "writes": 0, "reads": 0,
                           "user_errors": 0, "t_stop": 108.0}})
    send(wire.END, {{"reason": "stop", "requests": 3, "failures": 1, "writes": 1, "t_stop": 8.0}})
''')


@pytest.fixture
def master(tmp_path: Path, monkeypatch):
    exe = tmp_path / "fake-master"
    exe.write_text(FAKE_MASTER)
    exe.chmod(0o755)
    lf = tmp_path / "locustfile.py"
    lf.write_text("# not imported by the fake\n")

    def make(mode: str) -> LoadGenerator:
        monkeypatch.setenv("FAKE_MASTER_MODE", mode)
        return LoadGenerator(lf, "U", "http://127.0.0.1:1", users=2, spawn_rate=2, request_timeout_s=1.0,
                             max_duration_s=30, python=str(exe), workers=2)

    return make


def test_each_workers_strings_and_clock_are_its_own(master):
    with master("good") as load:
        pass
    s = load.samples()
    assert [(x.t, x.name, x.ok, x.error) for x in s] == [(6.0, "get", True, ""), (6.5, "get", False, "HTTP 500"),
                                                          (7.0, "get", True, "")]
    assert s[1].due_t == pytest.approx(6.25)       # due time corrected by the same offset
    assert [w.id for w in load.writes()] == ["a"]
    ws = load.workers_joined()
    assert [(w.src, w.applied_s, w.same_clock) for w in ws] == [(0, 0.0, True), (1, 100.0, False)]
    assert load.summary.requests == 3


def test_a_missing_batch_makes_the_load_fail_naming_the_worker(master):
    load = master("gap").start()
    with pytest.raises(LoadError, match=r"load worker 0 \(pid 11 on here\): batch 1 missing"):
        load.stop()


def test_a_dead_worker_makes_the_load_fail_naming_it(master):
    load = master("dead").start()
    with pytest.raises(LoadError, match=r"load worker 1 \(pid 22 on there\) exited mid-run"):
        for _ in range(200):
            load.poll()
            import time
            time.sleep(0.02)
    with pytest.raises(LoadError):
        load.stop()

# ─────────────────────────── the experiment's load.workers ───────────────────────────


def test_load_workers_field_bounds_and_auto():
    import os

    from pydantic import ValidationError

    from harness.model.experiment import LoadSpec, load_workers

    assert LoadSpec.model_validate({"profile": "p"}).workers == 1
    assert LoadSpec.model_validate({"profile": "p", "workers": "auto"}).workers == "auto"
    assert load_workers("auto") == len(os.sched_getaffinity(0))
    assert load_workers(3) == 3
    for bad, msg in [(0, "out of range"), (65, "out of range"), ("two", "expected an integer"),
                     (True, "expected an integer"), (2.0, "expected an integer"),
                     (30, "30 load workers need at least as many users")]:
        with pytest.raises(ValidationError, match=msg):
            LoadSpec.model_validate({"profile": "p", "workers": bad})


def test_cli_flags_override_every_experiments_load(monkeypatch):
    import argparse

    from harness.cli import _load_overrides, build_parser
    from harness.errors import InputError
    from harness.model.experiment import LoadSpec

    class Exp:                      # stands in for an Experiment: only model_copy is used
        def __init__(self, load):
            self.load = load

        def model_copy(self, update):
            return Exp(update["load"])

    exps = [Exp(LoadSpec.model_validate({"profile": "p"}))]
    args = build_parser().parse_args(["run", "x.yaml", "--load-workers", "auto", "--remote-load-workers", "2",
                                      "--load-master", "0.0.0.0:5557"])
    (e,) = _load_overrides(exps, args)
    assert (e.load.workers, e.load.remote_workers, e.load.master_bind) == ("auto", 2, "0.0.0.0:5557")
    assert _load_overrides(exps, build_parser().parse_args(["run", "x.yaml"])) is exps
    with pytest.raises(InputError, match="--load-master"):
        _load_overrides(exps, argparse.Namespace(load_workers=None, remote_load_workers=1, load_master=None))
    for bad in (["--load-workers", "0"], ["--load-master", "host"], ["--load-master", "h:0"]):
        with pytest.raises(SystemExit):
            build_parser().parse_args(["run", "x.yaml", *bad])
