"""What all fault families share: the context they act in and the injection record."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Callable

from harness.errors import FaultError
from harness.model import FaultSpec


@dataclass
class FaultContext:
    """What a fault may touch: the run's stack (containers, Toxiproxy) and a seeded RNG."""

    stack: "Stack"  # noqa: F821  (harness.stack.stack.Stack; not imported to keep faults light)
    run_id: str
    rng_seed: int = 0

    def rng(self, fault: FaultSpec) -> random.Random:
        seed = fault.select.seed if fault.select and fault.select.seed is not None else self.rng_seed
        # Same seed and same fault name → same pick, so a run can be replayed.
        return random.Random(f"{seed}:{fault.name}")


@dataclass
class Injection:
    fault: FaultSpec
    targets: tuple[str, ...]
    _revert: Callable[[], "str | tuple[str, float]"] | None = None
    reverted: bool = False
    detail: str = ""
    background: object = field(default=None, repr=False)  # a thread for long-running actions
    # When the change took effect: right after the last state-changing call returned, before
    # any read-back, so a fault's measured window is the window the system actually saw.
    applied_t: float = field(default_factory=time.monotonic)
    restored_t: float | None = None

    @property
    def reversible(self) -> bool:
        return self._revert is not None

    def revert(self) -> str:
        """Undo and confirm. Idempotent. Returns a short description of what was read back."""
        if self.reverted or self._revert is None:
            return ""
        out = self._revert()
        # A revert may say when the undo took effect (before its read-back); else: now.
        detail, self.restored_t = out if isinstance(out, tuple) else (out, time.monotonic())
        self.reverted = True
        return detail


def inject(ctx: FaultContext, fault: FaultSpec) -> Injection:
    family = fault.action.split(".")[0]
    if fault.action == "network.loss" or family == "resource":
        from harness.faults import resource as mod
    elif family == "container":
        from harness.faults import container as mod  # type: ignore[no-redef]
    elif family == "network":
        from harness.faults import network as mod  # type: ignore[no-redef]
    elif family == "partition":
        from harness.faults import partition as mod  # type: ignore[no-redef]
    else:
        raise FaultError(f"unknown fault action {fault.action}")
    return mod.inject(ctx, fault)
