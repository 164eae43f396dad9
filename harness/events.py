"""The run's life as explicit events (the habit of locust's `Events` and pytest's hooks).

Reports, the console and the pytest plugin *listen*; they never reach into the runner.
A listener that raises is logged and detached so it cannot take a run down with it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable

log = logging.getLogger(__name__)


class EventHook:
    def __init__(self, name: str):
        self.name = name
        self._handlers: list[Callable[..., Any]] = []

    def add_listener(self, handler: Callable[..., Any]) -> Callable[..., Any]:
        self._handlers.append(handler)
        return handler

    def remove_listener(self, handler: Callable[..., Any]) -> None:
        self._handlers.remove(handler)

    def fire(self, **kwargs: Any) -> None:
        for handler in list(self._handlers):
            try:
                handler(**kwargs)
            except Exception:  # a broken report must not break the experiment
                log.exception("listener %r of event %s failed; detaching it", handler, self.name)
                self._handlers.remove(handler)


@dataclass
class Events:
    """The catalogue. Keyword arguments each event fires with are listed beside it."""

    run_start: EventHook = field(default_factory=lambda: EventHook("run_start"))
    # experiment, run_id, t0, plan_s (planned duration)
    phase: EventHook = field(default_factory=lambda: EventHook("phase"))
    # name, t (monotonic)
    fault_injected: EventHook = field(default_factory=lambda: EventHook("fault_injected"))
    # fault (FaultSpec), targets (tuple[str]), t
    fault_reverted: EventHook = field(default_factory=lambda: EventHook("fault_reverted"))
    # fault (FaultSpec), targets, t, confirmed (bool), detail (str)
    progress: EventHook = field(default_factory=lambda: EventHook("progress"))
    # t, elapsed_s, remaining_s, rps, error_rate, active_faults (tuple[str]), phase
    abort: EventHook = field(default_factory=lambda: EventHook("abort"))
    # reason, t
    note: EventHook = field(default_factory=lambda: EventHook("note"))
    # note (Note)
    run_end: EventHook = field(default_factory=lambda: EventHook("run_end"))
    # record (RunRecord), result (Result)
    message: EventHook = field(default_factory=lambda: EventHook("message"))
    # text, level ("info"|"warning"|"error")
