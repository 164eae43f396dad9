"""SIGTERM behaves like Ctrl-C: unwind through every context manager, then exit 130."""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Iterator

from harness.errors import Interrupted


@contextmanager
def signals_as_interrupt() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):  # noqa: ARG001
        raise Interrupted(f"interrupted by {signal.Signals(signum).name}")

    saved = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in saved.items():
            signal.signal(s, h)
