import io
import time

from rich.console import Console

from harness.events import (Aborted, Events, FaultInjected, FaultReverted, Message, NoteAdded,
                            PhaseStarted, Progress, RunEnded, RunStarted)
from harness.faults import build
from harness.measure import evaluate
from harness.measure.synthetic import demo_record, make_experiment
from harness.model import Note
from harness.report.console import ConsoleReporter, print_summary


def _console():
    buf = io.StringIO()
    return Console(file=buf, force_terminal=False, width=200, color_system=None), buf


def _fire(ev, t0):
    fault = build("container.kill", {"name": "kill-app", "at": "2s", "select": {"service": "app"}})
    ev.emit(RunStarted(make_experiment("kill-one"), "r1", t0, 30.0))
    ev.emit(PhaseStarted("baseline", t0))
    for k in range(12):
        ev.emit(Progress(t=t0 + k, elapsed_s=float(k), remaining_s=30.0 - k, rps=480.0, error_rate=0.01,
                         active_faults=(), phase="baseline"))
    ev.emit(FaultInjected(fault, ("app-2",), t0 + 2))
    ev.emit(FaultReverted(fault, ("app-2",), t0 + 4, False, "still paused"))
    ev.emit(NoteAdded(Note(t0 + 5, "failover done", "bob")))
    ev.emit(Aborted("availability below 50%", t0 + 6))
    ev.emit(Message("disk low", "warning"))
    rec = demo_record()
    ev.emit(RunEnded(rec, evaluate(rec)))


def test_plain_mode_one_line_per_event():
    console, buf = _console()
    ev = Events()
    with ConsoleReporter(ev, live=False, console=console):
        _fire(ev, time.monotonic())
    lines = buf.getvalue().splitlines()
    text = buf.getvalue()
    assert "▶ kill-one (run r1, planned 30 s)" in lines[0]
    assert "[    0.0s] phase baseline" in text
    progress = [l for l in lines if "480 req/s" in l]
    assert len(progress) == 3                      # throttled: at 0, 5 and 10 s
    assert "errors 1.00%" in progress[0]
    assert "⚡ fault kill-one" not in text and "⚡ fault kill-app (container.kill) → app-2" in text
    assert "NOT confirmed: still paused" in text
    assert "✎ bob: failover done" in text
    assert "■ abort: availability below 50%" in text
    assert "warning: disk low" in text
    assert "link-down-demo FAIL: availability 89.80% < required >= 99.9%" in lines[-1]
    assert len(lines) == 1 + 1 + 3 + 1 + 1 + 1 + 1 + 1 + 1


def test_live_mode_tracks_state_and_stops():
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=True, width=120)
    ev = Events()
    rep = ConsoleReporter(ev, live=True, console=console)
    t0 = time.monotonic()
    ev.emit(RunStarted(make_experiment("kill-one"), "r1", t0, 30.0))
    fault = build("container.kill", {"name": "kill-app", "at": "2s", "select": {"service": "app"}})
    ev.emit(FaultInjected(fault, ("app-2",), t0 + 2))
    ev.emit(Progress(t=t0 + 3, elapsed_s=3.0, remaining_s=27.0, rps=450.0, error_rate=0.2,
                     active_faults=("kill-app",), phase="fault:kill-app"))
    assert rep._live is not None
    assert rep.state["active_faults"] == ("kill-app",) and rep.state["phase"] == "fault:kill-app"
    rendered = Console(file=io.StringIO(), width=100, record=True)
    rendered.print(rep._panel())
    panel = rendered.export_text()
    assert "kill-one" in panel and "450 req/s" in panel and "20.00%" in panel and "27 s" in panel
    rec = demo_record()
    ev.emit(RunEnded(rec, evaluate(rec)))
    assert rep._live is None
    rep.close()
    assert "FAIL" in buf.getvalue()


def test_print_summary_table():
    console, buf = _console()
    r = evaluate(demo_record())
    print_summary([r], console=console)
    out = buf.getvalue()
    assert "Continuum: FAIL" in out
    for cell in ("link-down-demo", "FAIL", "89.800%", "50 ms", "2.00 s", "1"):
        assert cell in out
    assert "lost_writes 1 != required == 0" in out


def _two_operations():
    from harness.measure.synthetic import make_record, steady_samples
    from harness.model import FaultEvent

    t0 = 1000.0
    s = steady_samples(t0, t0 + 10, 100, name="balance") + \
        steady_samples(t0 + 0.005, t0 + 10, 50, name="transfer", fails=lambda t, lat: t0 + 4 <= t < t0 + 5.5)
    f = FaultEvent("kill-primary", "container.kill", ("redis-1",), t0 + 4.05, None, issued_t=t0 + 4.0)
    return evaluate(make_record(s, faults=[f], experiment=make_experiment("redis-primary-kill-with-a-long-name")))


def test_summary_is_complete_in_a_ci_log_and_has_a_row_per_operation():
    # Not a terminal, and rich guesses 80 columns for a pipe: nothing may be cut or folded.
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=False, width=80, color_system=None)
    print_summary([evaluate(demo_record()), _two_operations()], console=console)
    lines = buf.getvalue().splitlines()
    header = next(line for line in lines if "experiment" in line)
    for col in ("verdict", "availability", "p99", "throughput", "TTR", "longest outage", "longest stall",
                "lost writes"):
        assert col in header
    row = next(line for line in lines if "redis-primary-kill-with-a-long-name" in line)
    assert "PASS" in row and "unknown" in row                 # the lost-writes column is there
    transfer = next(line for line in lines if "· transfer" in line)
    assert "85.000%" in transfer and "1.50 s" in transfer     # the write outage, visible per operation
    assert "· balance" in buf.getvalue()
    assert console.width == 80                                # restored
