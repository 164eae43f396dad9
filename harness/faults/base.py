"""What every fault family shares: the spec base class, the context faults act in, and the
injection record. Family modules subclass `FaultSpec` once per action; the subclass *is* the
registration (see `harness.faults`), so nothing else needs editing to add a fault.

A spec is parsed once from the experiment file (units normalised, names checked against the
target) and then trusted. `inject(ctx)` applies it and returns an `Injection` whose `revert()`
undoes it and confirms by reading the state back.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Literal, Protocol, get_args, get_origin

from pydantic import Field

from harness.model.base import Internal, Model, internal
from harness.model.units import Duration, Name

if TYPE_CHECKING:
    from harness.model.target import Target

MAX_FAULT_WINDOW_S = 3600.0         # every fault has a bounded duration

# Shared field types: the window (`for` in YAML) and the offset (`at`).
Window = Duration(max_s=MAX_FAULT_WINDOW_S, description="the fault's window, such as 10s (at most 1h)")
Offset = Duration(positive=False, description="offset from the start of load, such as 20s")

_REGISTRY: dict[str, type["FaultSpec"]] = {}


class FaultSpec(Model):
    """One fault of an experiment. Subclasses declare `action: Literal["family.verb"]`, their own
    fields (with units and limits), `plan_line()` and `inject()`."""

    action: str
    name: Name = ""                 # unique in the experiment; default "<action>-<position>"
    at_s: Offset = Field(alias="at")
    for_s: Internal[float | None] = internal(None)      # families that take a window redeclare it

    summary: ClassVar[str] = ""     # one line for the docs table

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        ann = cls.model_fields["action"].annotation
        if get_origin(ann) is Literal and len(get_args(ann)) == 1:
            action = get_args(ann)[0]
            other = _REGISTRY.get(action)
            if other is not None and other.__qualname__ != cls.__qualname__:
                raise TypeError(f"fault action {action!r} is declared by {other.__module__} "
                                f"and {cls.__module__}")
            _REGISTRY[action] = cls

    @classmethod
    def family(cls) -> str:
        """The family is the module the action lives in: harness.faults.<family>."""
        return cls.__module__.rsplit(".", 1)[-1]

    @property
    def end_s(self) -> float:
        return self.at_s + (self.for_s or 0.0)

    def plan_line(self) -> str:
        """What `continuum plan` prints for this fault (after the action)."""
        raise NotImplementedError

    def what(self) -> str:
        """A few words naming what it hits, for prompts and consoles."""
        return "-"

    def inject(self, ctx: "FaultContext") -> "Injection":
        raise NotImplementedError


class InstanceHandle(Protocol):
    """What faults may do to one running instance (harness.stack.instance implements it)."""

    name: str
    service: str

    def status(self) -> str: ...
    def kill(self) -> float | None: ...        # when it died (monotonic), if known
    def stop(self, timeout_s: float) -> None: ...
    def start(self) -> None: ...
    def pause(self) -> None: ...
    def unpause(self) -> None: ...
    def restart(self, timeout_s: float) -> None: ...
    def wait_status(self, want: set[str], timeout_s: float) -> str: ...
    def wait_healthy(self, timeout_s: float) -> None: ...
    def pid(self) -> int: ...
    def netns(self) -> Any: ...     # harness.faults.netns.NamespaceHandle, through a helper container
    def ips(self) -> list[str]: ...
    def exec(self, argv: list[str], timeout_s: float) -> tuple[int, str]: ...
    def run(self, argv: list[str], timeout_s: float) -> tuple[int, str, str]: ...
    def host_config(self) -> dict[str, Any]: ...
    def update(self, **kw: Any) -> None: ...


class StackLike(Protocol):
    target: "Target"
    run_id: str
    toxiproxy: Any

    def instance(self, name: str) -> InstanceHandle: ...
    def proxied_paths(self, client: str, upstream: str) -> list[tuple[str, int]]: ...


@dataclass
class FaultContext:
    """What a fault may touch: the run's stack (instances, Toxiproxy) and a seeded RNG.

    Roles are resolved through `resolve`; each answer (who held the role, how that was found) is
    kept in `answers` for the fault that asked and passed to `on_role` (the run's journal)."""

    stack: StackLike
    run_id: str
    rng_seed: int = 0
    on_role: Callable[[Any], None] | None = None
    answers: list[Any] = field(default_factory=list)
    fault_name: str | None = None   # the fault being applied (set by the orchestrator)
    # Where a fault keeps files (a backup's snapshot): the run's folder when the CLI runs it.
    artifacts: Path | None = None
    # What one fault hands a later one in the same run (a backup's files to the restore).
    shared: dict[str, Any] = field(default_factory=dict)

    @property
    def target(self) -> "Target":
        return self.stack.target

    @property
    def toxiproxy(self) -> Any:
        return self.stack.toxiproxy

    def instance(self, name: str) -> InstanceHandle:
        return self.stack.instance(name)

    def rng(self, fault: FaultSpec) -> random.Random:
        sel = getattr(fault, "select", None)
        seed = sel.seed if sel is not None and sel.seed is not None else self.rng_seed
        # Same seed and same fault name → same pick, so a run can be replayed.
        return random.Random(f"{seed}:{fault.name}")

    def resolve(self, name: str) -> list[str]:
        """A service → its instances; an instance → itself; a role → its members right now."""
        from harness.target.roles import resolve_role

        role = self.target.role(name)
        if role is not None:
            answer = resolve_role(self, role)
            self.answers.append(answer)
            if self.on_role is not None:
                self.on_role(answer)
            return list(answer.holders)
        found = self.target.expand(name)
        if found is None:
            from harness.errors import FaultError

            raise FaultError(f"{name} is neither a service, an instance nor a role of {self.target.name}")
        return list(found)


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
    # Named instants on the run's clock (FaultEvent.marks), filled by the action, even one that
    # runs in the background: read when its event is recorded.
    marks: dict[str, float] = field(default_factory=dict)

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
