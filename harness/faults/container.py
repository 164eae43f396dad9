"""Container faults: kill (SIGKILL), stop (SIGTERM, grace), pause (freezer), restart, and a
rolling restart of a service one instance at a time, as a deploy does."""

from __future__ import annotations

import threading
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from harness.errors import FaultError, HarnessError
from harness.faults.base import FaultContext, FaultSpec, Injection, Window
from harness.faults.select import Selector, default_pick, pick
from harness.model.base import At, Internal, internal

CONFIRM_TIMEOUT_S = 30.0
HEALTHY_TIMEOUT_S = 60.0


def _start_again(ctx: FaultContext, names: list[str]) -> str:
    for name in names:
        inst = ctx.instance(name)
        status = inst.status()
        if status == "paused":
            inst.unpause()
        elif status != "running":
            inst.start()
        inst.wait_status({"running"}, CONFIRM_TIMEOUT_S)
    return "running: " + ", ".join(names)


def _grace(ctx: FaultContext, name: str) -> float:
    return ctx.target.service(ctx.instance(name).service).stop_grace_s


class _ContainerFault(FaultSpec):
    select: Selector

    def what(self) -> str:
        return self.select.service or self.select.role or "-"


class _DownFault(_ContainerFault):
    """Kill or stop: started again at the end of the window, or when load stops."""

    for_s: Window | None = Field(None, alias="for")
    revert: Internal[bool] = internal(True)   # False: stays down (tests, game days)

    def plan_line(self) -> str:
        after = "started again at the end of the window" if self.for_s else \
            "stays down until load stops, then started again"
        return f"{self.select.describe()}; {after}"

    def _undo(self, ctx: FaultContext, names: list[str]):
        return (lambda: _start_again(ctx, names)) if self.revert else None


class ContainerKill(_DownFault):
    action: Literal["container.kill"] = "container.kill"
    summary = "SIGKILL; started again at the end of `for`, or when load stops if no `for`"

    def inject(self, ctx: FaultContext) -> Injection:
        names = pick(ctx, self)
        died = [ctx.instance(n).kill() for n in names]
        injection = Injection(self, tuple(names), self._undo(ctx, names))
        if died and all(t is not None for t in died):
            # In effect when the last one died (Docker's own record), not when the call
            # returned: under load that is up to seconds later, which would shorten every
            # time to detect and time to recover measured from it.
            injection.applied_t = min(injection.applied_t, max(died))  # type: ignore[type-var]
        return injection


class ContainerStop(_DownFault):
    action: Literal["container.stop"] = "container.stop"
    summary = "SIGTERM with the service's grace period; started again like kill"

    def inject(self, ctx: FaultContext) -> Injection:
        names = pick(ctx, self)
        for n in names:
            ctx.instance(n).stop(_grace(ctx, n))
        return Injection(self, tuple(names), self._undo(ctx, names))


class ContainerPause(_ContainerFault):
    action: Literal["container.pause"] = "container.pause"
    for_s: Window = Field(alias="for")
    summary = "freezer (every process stopped, connections kept); unpaused at the end"

    def plan_line(self) -> str:
        return f"{self.select.describe()}; unpaused at the end of the window"

    def inject(self, ctx: FaultContext) -> Injection:
        names = pick(ctx, self)
        for n in names:
            ctx.instance(n).pause()
            ctx.instance(n).wait_status({"paused"}, CONFIRM_TIMEOUT_S)
        return Injection(self, tuple(names), lambda: _start_again(ctx, names))


class ContainerRestart(_ContainerFault):
    action: Literal["container.restart"] = "container.restart"
    summary = "restart (SIGTERM, 5 s grace, start); instantaneous"

    def plan_line(self) -> str:
        return self.select.describe()

    def inject(self, ctx: FaultContext) -> Injection:
        names = pick(ctx, self)
        for n in names:
            ctx.instance(n).restart(5.0)
        return Injection(self, tuple(names), None)


class RollingRestart(_ContainerFault):
    action: Literal["container.rolling_restart"] = "container.rolling_restart"
    for_s: Window = Field(alias="for")
    summary = ("each instance in turn: stop, start, wait healthy; must be done within `for`. "
               "Select a service; `pick` defaults to `all`")

    @model_validator(mode="before")
    @classmethod
    def _pick_all(cls, data: Any) -> Any:
        return default_pick(data, "all")

    @field_validator("select")
    @classmethod
    def _service_only(cls, sel: Selector, info: ValidationInfo) -> Selector:
        if sel.role is not None:
            raise At("a rolling restart goes through a service's instances; select a service, "
                     "not a role", "role")
        return sel

    def plan_line(self) -> str:
        return f"{self.select.describe()}, one at a time (stop, start, wait healthy); must finish within the window"

    def inject(self, ctx: FaultContext) -> Injection:
        """Restart each instance in turn (graceful stop, start, wait healthy). Runs in the
        background so load keeps being measured; the revert waits for it to finish and makes
        sure every instance is running again."""
        names = sorted(pick(ctx, self))
        errors: list[str] = []
        stop = threading.Event()

        def roll() -> None:
            for n in names:
                if stop.is_set():
                    return
                inst = ctx.instance(n)
                try:
                    inst.stop(_grace(ctx, n))
                    inst.start()
                    inst.wait_healthy(HEALTHY_TIMEOUT_S)
                except HarnessError as exc:
                    errors.append(f"{n}: {exc}")
                    return

        thread = threading.Thread(target=roll, name=f"rolling-{self.name}", daemon=True)
        thread.start()

        def revert() -> str:
            thread.join(timeout=120)
            stop.set()
            detail = _start_again(ctx, names)
            if errors:
                raise FaultError("rolling restart failed: " + "; ".join(errors))
            return detail

        return Injection(self, tuple(names), revert, background=thread)
