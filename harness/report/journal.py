"""journal.jsonl: an append-only record of the run's life, one JSON object per line.

Every line is flushed and fsync'd as it is written, so the journal survives the harness being
killed mid-run (it is what the operator reads afterwards to see what was injected and when).
Each line has `event`, `wall` (ISO-8601 UTC), `mono` (CLOCK_MONOTONIC seconds, the samples'
clock) and, once run_start has been seen, `offset_s` relative to the run's t0.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import threading
import time
from pathlib import Path
from typing import Any, Callable

from harness.events import (
    Aborted,
    AlertFired,
    AlertResolved,
    Events,
    FaultInjected,
    FaultReverted,
    Message,
    NoteAdded,
    PhaseStarted,
    ProbeChanged,
    RoleResolved,
    RunEnded,
    RunStarted,
)
from harness.report.results import plain

JOURNAL_FILE = "journal.jsonl"
# Every event but Progress (the console's; the journal records what happened, not the ticker).
EVENTS = (RunStarted, PhaseStarted, FaultInjected, FaultReverted, RoleResolved, Aborted, NoteAdded,
          RunEnded, Message, AlertFired, AlertResolved, ProbeChanged)


def _fault(fault: Any) -> dict[str, Any]:
    return {"fault": getattr(fault, "name", str(fault)), "action": getattr(fault, "action", None)}


class Journal:
    """Append-only JSONL journal. Use as a context manager; `attach(events)` to follow a run."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "a", encoding="utf-8")
        if self._file.tell() > 0:
            with open(self.path, "rb") as f:        # a torn last line (killed mid-write) stays alone
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":
                    self._file.write("\n")
                    self._file.flush()
        self._lock = threading.Lock()
        self._t0: float | None = None
        self._attached: list[tuple[Any, Callable[..., Any]]] = []

    # ── writing ──
    def write(self, event: str, **fields: Any) -> None:
        """Append one line: {"event", "wall", "mono", "offset_s"?, **fields}; flushed and fsync'd."""
        mono = time.monotonic()
        line: dict[str, Any] = {
            "event": event,
            "wall": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds"),
            "mono": round(mono, 6),
        }
        if self._t0 is not None:
            line["offset_s"] = round(mono - self._t0, 6)
        line.update({k: plain(v) for k, v in fields.items()})
        text = json.dumps(line, ensure_ascii=False, default=str) + "\n"
        with self._lock:
            if self._file.closed:
                raise ValueError(f"journal {self.path} is closed")
            self._file.write(text)
            self._file.flush()
            os.fsync(self._file.fileno())

    # ── following the event catalogue ──
    def attach(self, events: Events) -> "Journal":
        events.subscribe(self.on_event, *EVENTS, name="journal")
        self._attached.append((events, self.on_event))
        return self

    def on_event(self, ev: Any) -> None:
        if isinstance(ev, RunStarted):
            self._on_run_start(ev.experiment, ev.run_id, ev.t0, ev.plan_s)
        elif isinstance(ev, PhaseStarted):
            self.write("phase", name=ev.name, t=ev.t)
        elif isinstance(ev, FaultInjected):
            self.write("fault_injected", **_fault(ev.fault), targets=list(ev.targets), t=ev.t,
                       issued_t=ev.issued_t, detail=ev.detail)
        elif isinstance(ev, RoleResolved):
            self.write("role_resolved", role=ev.role, holders=list(ev.holders), how=ev.how,
                       fault=ev.fault, t=ev.t)
        elif isinstance(ev, FaultReverted):
            self.write("fault_reverted", **_fault(ev.fault), targets=list(ev.targets), t=ev.t,
                       confirmed=ev.confirmed, detail=ev.detail)
        elif isinstance(ev, Aborted):
            self.write("abort", reason=ev.reason, t=ev.t)
        elif isinstance(ev, NoteAdded):
            self.write("note", text=ev.note.text, author=ev.note.author, t=ev.note.t)
        elif isinstance(ev, RunEnded):
            self._on_run_end(ev.record, ev.result)
        elif isinstance(ev, Message):
            self.write("message", text=ev.text, level=ev.level)
        elif isinstance(ev, AlertFired):
            a = ev.alert
            self.write("alert_fired", alert=a.name, labels=dict(a.labels), fired_t=a.fired_t,
                       seen_t=a.seen_t, summary=a.summary)
        elif isinstance(ev, AlertResolved):
            a = ev.alert
            self.write("alert_resolved", alert=a.name, labels=dict(a.labels), fired_t=a.fired_t,
                       resolved_t=a.resolved_t)
        elif isinstance(ev, ProbeChanged):
            sm = ev.sample
            self.write("probe", probe=sm.probe, use=ev.use, ok=sm.ok, value=sm.value, detail=sm.detail, t=sm.t)

    def detach(self) -> None:
        for events, handler in self._attached:
            events.unsubscribe(handler)
        self._attached.clear()

    def _on_run_start(self, experiment: Any, run_id: str, t0: float, plan_s: float | None = None, **_: Any) -> None:
        self._t0 = t0
        self.write("run_start", experiment=getattr(experiment, "name", str(experiment)), run_id=run_id,
                   t0=t0, plan_s=plan_s)

    def _on_run_end(self, record: Any = None, result: Any = None, **_: Any) -> None:
        fields: dict[str, Any] = {}
        if record is not None:
            store = getattr(record, "store", None)      # a long run's samples hold stand-ins
            fields.update(run_id=record.run_id, t_end=record.t_end,
                          samples=store.requests if store is not None else len(record.samples))
        if result is not None:
            fields.update(verdict=str(getattr(result, "verdict", "")), reasons=list(getattr(result, "reasons", ())))
        self.write("run_end", **fields)

    # ── lifetime ──
    def close(self) -> None:
        self.detach()
        with self._lock:
            if not self._file.closed:
                self._file.close()

    def __enter__(self) -> "Journal":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def read_journal(path: Path | str) -> list[dict[str, Any]]:
    """All complete lines of a journal (a torn last line, from a kill mid-write, is ignored)."""
    out = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out

