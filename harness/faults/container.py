"""Container faults: kill (SIGKILL), stop (SIGTERM, grace), pause (freezer), restart,
rolling restart of a whole service one instance at a time."""

from __future__ import annotations

import threading
import time

from docker.errors import DockerException

from harness.errors import FaultError
from harness.faults.base import FaultContext, Injection
from harness.faults.select import pick
from harness.model import FaultSpec

CONFIRM_TIMEOUT_S = 30.0


def _wait_status(container, want: set[str], timeout_s: float = CONFIRM_TIMEOUT_S) -> str:
    deadline = time.monotonic() + timeout_s
    while True:
        container.reload()
        if container.status in want:
            return container.status
        if time.monotonic() > deadline:
            raise FaultError(f"{container.name} is {container.status}, expected {'/'.join(sorted(want))}")
        time.sleep(0.05)


def _wait_healthy(container, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        container.reload()
        health = (container.attrs["State"].get("Health") or {}).get("Status")
        if health in (None, "healthy") and container.status == "running":
            return
        if time.monotonic() > deadline:
            raise FaultError(f"{container.name} not healthy {timeout_s:.0f} s after restart (status {health})")
        time.sleep(0.1)


def _start_again(ctx: FaultContext, names: list[str]) -> str:
    for name in names:
        c = ctx.stack.container(name)
        c.reload()
        if c.status == "paused":
            c.unpause()
        elif c.status != "running":
            c.start()
        _wait_status(c, {"running"})
    return "running: " + ", ".join(names)


def inject(ctx: FaultContext, fault: FaultSpec) -> Injection:
    kind = fault.action.split(".", 1)[1]
    names = pick(ctx, fault)
    try:
        if kind == "kill":
            for n in names:
                ctx.stack.container(n).kill(signal="SIGKILL")
            return Injection(fault, tuple(names), (lambda: _start_again(ctx, names)) if fault.revert else None)
        if kind == "stop":
            for n in names:
                c = ctx.stack.container(n)
                c.stop(timeout=int(ctx.stack.target.service(c.labels["io.continuum.service"]).stop_grace_s))
            return Injection(fault, tuple(names), (lambda: _start_again(ctx, names)) if fault.revert else None)
        if kind == "pause":
            for n in names:
                c = ctx.stack.container(n)
                c.pause()
                _wait_status(c, {"paused"})
            return Injection(fault, tuple(names), lambda: _start_again(ctx, names))
        if kind == "restart":
            for n in names:
                ctx.stack.container(n).restart(timeout=5)
            return Injection(fault, tuple(names), None)
        if kind == "rolling_restart":
            return _rolling(ctx, fault, names)
    except DockerException as exc:
        raise FaultError(f"{fault.action} on {', '.join(names)} failed: {exc}") from exc
    raise FaultError(f"unknown container action {fault.action}")


def _rolling(ctx: FaultContext, fault: FaultSpec, names: list[str]) -> Injection:
    """Restart each instance in turn (graceful stop, start, wait healthy), like a deploy.
    Runs in the background so load keeps being measured; the revert waits for it to finish
    and makes sure every instance is running again."""
    errors: list[str] = []
    stop = threading.Event()

    def roll() -> None:
        for n in sorted(names):
            if stop.is_set():
                return
            c = ctx.stack.container(n)
            try:
                grace = int(ctx.stack.target.service(c.labels["io.continuum.service"]).stop_grace_s)
                c.stop(timeout=grace)
                c.start()
                _wait_healthy(c)
            except (DockerException, FaultError) as exc:
                errors.append(f"{n}: {exc}")
                return

    thread = threading.Thread(target=roll, name=f"rolling-{fault.name}", daemon=True)
    thread.start()

    def revert() -> str:
        thread.join(timeout=120)
        stop.set()
        detail = _start_again(ctx, names)
        if errors:
            raise FaultError("rolling restart failed: " + "; ".join(errors))
        return detail

    if fault.select is None or fault.select.pick != "all":
        pass  # a rolling restart of a subset is allowed; the loader decides what select means
    return Injection(fault, tuple(sorted(names)), revert, background=thread)
