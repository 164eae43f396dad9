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

from harness.events import Events
from harness.report.results import plain

JOURNAL_FILE = "journal.jsonl"
EVENTS = ("run_start", "phase", "fault_injected", "fault_reverted", "abort", "note", "run_end", "message")


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
        handlers: dict[str, Callable[..., Any]] = {
            "run_start": self._on_run_start,
            "phase": lambda name, t, **_: self.write("phase", name=name, t=t),
            "fault_injected": lambda fault, targets, t, **_: self.write(
                "fault_injected", **_fault(fault), targets=list(targets), t=t),
            "fault_reverted": lambda fault, targets, t, confirmed=True, detail="", **_: self.write(
                "fault_reverted", **_fault(fault), targets=list(targets), t=t, confirmed=confirmed, detail=detail),
            "abort": lambda reason, t=None, **_: self.write("abort", reason=reason, t=t),
            "note": lambda note, **_: self.write("note", text=note.text, author=note.author, t=note.t),
            "run_end": self._on_run_end,
            "message": lambda text, level="info", **_: self.write("message", text=text, level=level),
        }
        for name in EVENTS:
            hook = getattr(events, name)
            hook.add_listener(handlers[name])
            self._attached.append((hook, handlers[name]))
        return self

    def detach(self) -> None:
        for hook, handler in self._attached:
            try:
                hook.remove_listener(handler)
            except ValueError:      # already detached (a failing listener is removed by the hook)
                pass
        self._attached.clear()

    def _on_run_start(self, experiment: Any, run_id: str, t0: float, plan_s: float | None = None, **_: Any) -> None:
        self._t0 = t0
        self.write("run_start", experiment=getattr(experiment, "name", str(experiment)), run_id=run_id,
                   t0=t0, plan_s=plan_s)

    def _on_run_end(self, record: Any = None, result: Any = None, **_: Any) -> None:
        fields: dict[str, Any] = {}
        if record is not None:
            fields.update(run_id=record.run_id, t_end=record.t_end, samples=len(record.samples))
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

