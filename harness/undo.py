"""The undo stack: every change to the world is registered with its undo the moment it exists.

Played last-in first-out on every exit path. An undo that fails is recorded and the rest still
run: one stuck container must not leave the other eleven behind.
"""

from __future__ import annotations

import logging
import signal
import threading
from dataclasses import dataclass
from typing import Callable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class UndoFailure:
    description: str
    error: str


class UndoStack:
    def __init__(self) -> None:
        self._items: list[tuple[str, Callable[[], object]]] = []
        self._lock = threading.Lock()

    def push(self, description: str, undo: Callable[[], object]) -> None:
        with self._lock:
            self._items.append((description, undo))

    def __len__(self) -> int:
        return len(self._items)

    def unwind(self) -> list[UndoFailure]:
        """Run every undo, newest first. Signals that would interrupt cleanup are held off."""
        failures: list[UndoFailure] = []
        with _signals_deferred():
            while True:
                with self._lock:
                    if not self._items:
                        break
                    description, undo = self._items.pop()
                try:
                    undo()
                except Exception as exc:  # keep going: the rest must still be undone
                    log.warning("undo failed: %s: %s", description, exc)
                    failures.append(UndoFailure(description, f"{type(exc).__name__}: {exc}"))
        return failures


class _signals_deferred:
    """Ignore SIGINT/SIGTERM while cleaning up (main thread only); a second Ctrl-C must not
    abandon half-removed containers. SIGKILL cannot be held off: that is the reaper's job."""

    def __enter__(self) -> None:
        self._saved: dict[int, object] = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._saved[sig] = signal.signal(sig, signal.SIG_IGN)

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._saved.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
