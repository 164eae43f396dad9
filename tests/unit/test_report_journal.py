import json
import time

from harness.events import (Aborted, Events, FaultInjected, FaultReverted, Message, NoteAdded,
                            PhaseStarted, Progress, RunEnded, RunStarted)
from harness.faults import build
from harness.measure import evaluate
from harness.measure.synthetic import demo_record, make_experiment
from harness.model import Note
from harness.report.journal import Journal, read_journal


def test_journal_records_every_event_one_line_each(tmp_path):
    ev = Events()
    path = tmp_path / "journal.jsonl"
    t0 = time.monotonic()
    fault = build("network.down", {"name": "down", "at": "1s", "for": "2s", "link": "lb-app-1"})
    rec = demo_record()
    with Journal(path) as j:
        j.attach(ev)
        ev.emit(RunStarted(make_experiment("x"), "r1", t0, 10.0))
        ev.emit(PhaseStarted("baseline", t0))
        ev.emit(Progress(t=t0, elapsed_s=1, remaining_s=9, rps=1, error_rate=0, active_faults=(), phase="baseline"))
        ev.emit(FaultInjected(fault, ("lb-app-1",), t0 + 1))
        # a line is on disk as soon as the event fired (flushed + fsync'd)
        assert len(path.read_text().splitlines()) == 3
        ev.emit(FaultReverted(fault, ("lb-app-1",), t0 + 3, True, ""))
        ev.emit(NoteAdded(Note(t0 + 4, "looks fine", "alice")))
        ev.emit(Aborted("availability 10% < 50% over 5 s", t0 + 5))
        ev.emit(Message("hello", "warning"))
        ev.emit(RunEnded(rec, evaluate(rec)))
    lines = read_journal(path)
    assert [l["event"] for l in lines] == ["run_start", "phase", "fault_injected", "fault_reverted", "note",
                                          "abort", "message", "run_end"]
    for l in lines:
        assert "wall" in l and "mono" in l
    assert lines[0]["experiment"] == "x" and lines[0]["run_id"] == "r1"
    assert lines[1]["offset_s"] >= 0
    assert lines[2]["fault"] == "down" and lines[2]["action"] == "network.down" and lines[2]["targets"] == ["lb-app-1"]
    assert lines[3]["confirmed"] is True
    assert lines[4]["author"] == "alice"
    assert lines[7]["verdict"] == "FAIL" and lines[7]["run_id"] == "r-demo"
    # closed: detached from the catalogue, nothing more written
    ev.emit(Message("after close"))
    assert len(path.read_text().splitlines()) == 8


def test_journal_appends_and_ignores_torn_line(tmp_path):
    path = tmp_path / "j.jsonl"
    with Journal(path) as j:
        j.write("message", text="one")
    with open(path, "a") as f:
        f.write('{"event": "mess')          # a kill mid-write
    with Journal(path) as j:
        j.write("message", text="two")
    assert [l["text"] for l in read_journal(path)] == ["one", "two"]
    assert json.loads(path.read_text().splitlines()[-1])["text"] == "two"
