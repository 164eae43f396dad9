"""Load generation: Locust in a worker process, per-request samples streamed back.

The orchestrator uses `LoadGenerator` (harness.load.runner). Only `harness.load.worker` and
`harness.load.distributed` (a Locust master and its workers) import locust, and only in their
own processes. The names below are resolved lazily so that
`python -m harness.load.worker` does not import threading/subprocess before gevent patches them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.load.runner import LoadGenerator, LoadSummary

__all__ = ["LoadGenerator", "LoadSummary"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from harness.load import runner

        return getattr(runner, name)
    raise AttributeError(f"module 'harness.load' has no attribute {name!r}")
