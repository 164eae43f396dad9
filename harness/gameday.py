"""Game days: the same experiment file, at human pace.

Load starts as usual; when a fault is due the run holds it until the operator says go (later
offsets shift by the wait), so a team can watch dashboards between steps. Keys, on a terminal:

    Enter / space   inject the fault that is waiting
    n               write a note (a line of text); it lands on the timeline and in the journal
    a               abort: faults are reverted, load stops, the stack is torn down (or kept
                    with --keep)

Without a terminal (piped input, tests) the same commands come one per line: an empty line or
"go", "note TEXT" (or any other text, taken as a note), "abort".

A "go" counts only for the fault that is waiting: one typed before the prompt is dropped, so no
fault is ever injected on a stale key. When the input ends (EOF, e.g. stdin is /dev/null) and a
fault is waiting, nobody can release it any more: the run is aborted rather than left holding.
"""

from __future__ import annotations

import os
import queue
import sys
import termios
import threading
import tty
from typing import TextIO

from harness.faults.base import FaultSpec
from harness.model.experiment import Experiment


class OperatorConsole:
    def __init__(self, experiment: Experiment, stdin: TextIO | None = None, out: TextIO | None = None):
        self.experiment = experiment
        self.stdin = stdin or sys.stdin
        self.out = out or sys.stderr
        self._go = threading.Event()
        self._notes: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._abort: str | None = None
        self._waiting_for: str | None = None
        self._eof = False
        self._saved_tty = None
        self._thread = threading.Thread(target=self._read, name="gameday-input", daemon=True)

    # ─────────────────────── context: raw keys on a terminal ───────────────────────

    def __enter__(self) -> "OperatorConsole":
        if self.stdin.isatty():
            fd = self.stdin.fileno()
            self._saved_tty = termios.tcgetattr(fd)
            tty.setcbreak(fd)  # single keys, still Ctrl-C as a signal
        self._say(
            f"game day: {self.experiment.name} — {len(self.experiment.faults)} fault(s); "
            "Enter injects the waiting fault, n adds a note, a aborts"
        )
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._saved_tty is not None:
            termios.tcsetattr(self.stdin.fileno(), termios.TCSADRAIN, self._saved_tty)

    # ─────────────────────── the Pacer protocol (polled by the run loop) ───────────────────────

    def ready(self, fault: FaultSpec) -> bool:
        if self._waiting_for != fault.name:
            self._waiting_for = fault.name
            self._go.clear()
            self._say(f"NEXT  {fault.name}: {fault.action} on {fault.what()}"
                      f"{f' for {fault.for_s:g} s' if fault.for_s else ''} — press Enter to inject")
        if self._go.is_set():
            self._go.clear()
            self._waiting_for = None
            return True
        if self._eof and self._abort is None:
            self._abort = f"no operator: input closed while {fault.name} was waiting"
            self._say(f"aborting: {self._abort}")
        return False

    def notes(self) -> list[str]:
        out = []
        while True:
            try:
                out.append(self._notes.get_nowait())
            except queue.Empty:
                return out

    def abort_requested(self) -> str | None:
        return self._abort

    # ─────────────────────── input ───────────────────────

    def _say(self, text: str) -> None:
        print(f"gameday: {text}", file=self.out, flush=True)

    def _read(self) -> None:
        if self._saved_tty is not None:
            self._read_keys()
        else:
            self._read_lines()

    def _read_keys(self) -> None:
        fd = self.stdin.fileno()
        while self._abort is None:
            ch = os.read(fd, 1).decode(errors="replace")
            if not ch:
                self._eof = True
                return
            if ch in ("\n", "\r", " "):
                self._go.set()
            elif ch in ("a", "A"):
                self._abort = "aborted by the operator"
                self._say("aborting: reverting faults")
            elif ch in ("n", "N"):
                termios.tcsetattr(fd, termios.TCSADRAIN, self._saved_tty)
                self._say("note: ")
                line = self.stdin.readline().strip()
                tty.setcbreak(fd)
                if line:
                    self._notes.put(line)
                    self._say(f"noted: {line}")

    def _read_lines(self) -> None:
        for raw in self.stdin:
            line = raw.strip()
            if line in ("", "go"):
                self._go.set()
            elif line == "abort":
                self._abort = "aborted by the operator"
                return
            else:
                text = line[5:].strip() if line.startswith("note ") else line
                if text:
                    self._notes.put(text)
        # End of input aborts only when a fault is (or becomes) due: see ready().
        self._eof = True
