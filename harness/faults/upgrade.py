"""Upgrades: every instance of a service replaced by a new image while load runs.

    - name: upgrade-app
      at: 15s
      for: 45s                      # the whole upgrade must be done within this
      action: service.upgrade
      service: app
      image: continuum/reference-app:v2
      strategy: rolling             # or blue-green
      drain_timeout: 6s             # per instance; default: the service's stop_grace_period
      healthy_timeout: 30s          # per instance

`rolling`: one instance at a time: drained (SIGTERM with the grace period, after the harness
took it out of its links' clients, so the load balancer's checks see it go), replaced by a
container of the new image with the same name, addresses, aliases and ports, and waited healthy
(its health check) before the next.

`blue-green`: a green instance beside each blue one (the new image, a new address, blue's names
as aliases), all waited healthy; then the switch: blue's names move to green on every network
(clients that resolve by DNS, like the reference's HAProxy, follow within their resolution
interval), a short hold for them to do so, and blue is drained and removed. How each step works
with Docker is in `harness.stack.upgrade`.

The Docker half is the stack's (`StackLike` upgrade methods); this module decides the order, the
timeouts, and what the run records. The upgrade runs in the background so load keeps being
measured; its injection is reverted when it finished (or at the end of `for`, then waiting
for it). An instance that does not become healthy within `healthy_timeout` stops the upgrade
(FaultError: the run is an ERROR naming it, never a pass). Containers it created carry the
run's labels, so the reaper and `continuum down <run>` remove them after a SIGKILL too.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from harness.errors import FaultError, HarnessError
from harness.faults.base import FaultContext, FaultSpec, Injection, Window
from harness.model.base import At
from harness.model.target import ImageRef
from harness.model.units import Duration, Name

MAX_STEP_S = 600.0
# After the switch, how long blue keeps serving what it has before its drain starts
# (`switch_hold`): new connections already go to green (harness/stack/upgrade.py); this is the
# time requests on blue's open connections get to finish before the SIGTERM.
SWITCH_HOLD_S = 3.0


class ServiceUpgrade(FaultSpec):
    action: Literal["service.upgrade"] = "service.upgrade"
    service: Name
    image: ImageRef
    strategy: Literal["rolling", "blue-green"] = "rolling"
    for_s: Window = Field(alias="for")
    drain_s: Duration(positive=False, max_s=MAX_STEP_S) | None = Field(None, alias="drain_timeout")
    healthy_s: Duration(max_s=MAX_STEP_S) = Field(60.0, alias="healthy_timeout")
    switch_hold_s: Duration(max_s=MAX_STEP_S) = Field(SWITCH_HOLD_S, alias="switch_hold")  # blue-green
    summary = ("replace every instance of `service` by `image` under load: `strategy: rolling` "
               "(drain, replace keeping name and address, wait healthy, one at a time) or "
               "`blue-green` (green beside blue, blue's address moved to green for new "
               "connections, blue drained and removed; not for an entry point); "
               "must finish within `for`")

    @field_validator("service")
    @classmethod
    def _known_service(cls, name: str, info: ValidationInfo) -> str:
        target = (info.context or {}).get("target")
        if target is None:
            return name
        services = [s.name for s in target.services]
        if name not in services:
            hint = " (an instance: upgrades replace a whole service)" if name in target.instance_names() else ""
            raise ValueError(f"unknown service {name!r}{hint}; services: {', '.join(services)}")
        return name

    @model_validator(mode="after")
    def _fits_window(self, info: ValidationInfo) -> "ServiceUpgrade":
        target = (info.context or {}).get("target")
        if target is None:
            return self
        svc = target.service(self.service)
        if self.drain_s is not None and self.drain_s < svc.stop_grace_s:
            raise At(f"drain_timeout {self.drain_s:g}s is shorter than {self.service}'s "
                     f"stop_grace_period ({svc.stop_grace_s:g}s): the drain would be cut short",
                     "drain_timeout")
        steps = svc.replicas if self.strategy == "rolling" else 1
        least = steps * self._drain(target) + (self.switch_hold_s if self.strategy == "blue-green" else 0.0)
        if least > self.for_s:
            raise At(f"for {self.for_s:g}s cannot hold {steps} drain(s) of {self._drain(target):g}s "
                     f"({self.strategy}); give at least {least:g}s", "for")
        return self

    def _drain(self, target: Any) -> float:
        return self.drain_s if self.drain_s is not None else target.service(self.service).stop_grace_s

    def what(self) -> str:
        return self.service

    def plan_line(self) -> str:
        drain = f"{self.drain_s:g}s" if self.drain_s is not None else "its stop_grace_period"
        if self.strategy == "rolling":
            how = (f"one instance at a time: drain (SIGTERM, {drain}), replace keeping name and "
                   f"address, wait healthy (at most {self.healthy_s:g}s)")
        else:
            how = (f"green set beside blue (healthy within {self.healthy_s:g}s), new connections moved "
                   f"to green, blue kept {self.switch_hold_s:g}s, then drained ({drain}) and removed")
        return f"{self.service} → {self.image}, {self.strategy}: {how}; must finish within the window"

    def inject(self, ctx: FaultContext) -> Injection:
        names = sorted(ctx.resolve(self.service))
        stack = ctx.stack
        if not stack.image_present(self.image):
            raise FaultError(f"{self.name}: image {self.image} is not present on the engine "
                             f"(build it first: scripts/setup.sh builds continuum/reference-app:v2)")
        drain = self._drain(ctx.target)
        deadline = time.monotonic() + self.for_s
        errors: list[str] = []
        steps: list[tuple[str, str, float]] = []     # (instance, what, monotonic t), for the record
        stop = threading.Event()

        def mark(instance: str, what: str) -> None:
            steps.append((instance, what, time.monotonic()))

        def healthy(handle: Any, instance: str) -> None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise FaultError(f"{instance}: the upgrade's window ({self.for_s:g}s) ran out")
            try:
                handle.wait_healthy(min(self.healthy_s, left))
            except FaultError as exc:
                raise FaultError(f"{exc}; its last log lines: {stack.log_tail(handle.name)}") from exc

        def rolling() -> None:
            for n in names:
                if stop.is_set():
                    return
                mark(n, "drain")
                stack.replace_instance(n, self.image, drain)
                mark(n, "replaced")
                healthy(stack.instance(n), n)
                mark(n, "healthy")

        green_handles: dict[str, Any] = {}

        def work() -> None:
            try:
                if self.strategy == "rolling":
                    rolling()
                else:
                    blue_green()
            except HarnessError as exc:
                errors.append(str(exc))
            except Exception as exc:        # a bug must surface as the run's ERROR, not vanish
                errors.append(f"{type(exc).__name__}: {exc}")

        def blue_green() -> None:
            greens = list(names)
            try:
                # Created in parallel, as the stack starts a tier: on a busy engine each
                # create-and-start takes seconds.
                with ThreadPoolExecutor(max_workers=len(names)) as pool:
                    handles = list(pool.map(lambda n: stack.add_green(n, self.image), names))
                for n, h in zip(names, handles):
                    green_handles[n] = h
                mark(",".join(names), "green-started")
                for n in names:
                    healthy(green_handles[n], n)
                    mark(n, "green-healthy")
            except BaseException:
                for n in greens:        # blue still serves: the green set goes, nothing moved
                    stack.remove_green(n)
                raise
            for n in names:
                stack.switch_to_green(n)
            mark(",".join(names), "switched")
            stop.wait(self.switch_hold_s)
            for n in names:
                mark(n, "drain")
            # Blue drains in parallel: nothing routes to it any more.
            failed: list[str] = []

            def retire(n: str) -> None:
                try:
                    stack.retire_blue(n, drain)
                except HarnessError as exc:
                    failed.append(f"{n}: {exc}")

            threads = [threading.Thread(target=retire, args=(n,), daemon=True) for n in names]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=drain + 30)
            if failed:
                raise FaultError("retiring blue: " + "; ".join(failed))
            mark(",".join(names), "retired")

        thread = threading.Thread(target=work, name=f"upgrade-{self.name}", daemon=True)

        def done_so_far() -> str:
            return ", ".join(f"{i} {w} at +{t - injection.applied_t:.1f}s" for i, w, t in list(steps)) or "nothing"

        def revert() -> str:
            thread.join(timeout=max(1.0, deadline - time.monotonic()) + drain + 30)
            stop.set()
            if thread.is_alive():
                raise FaultError(f"{self.name}: the upgrade did not finish within {self.for_s:g}s "
                                 f"(done: {done_so_far()})")
            if errors:
                raise FaultError(f"{self.name}: upgrade failed: " + "; ".join(errors) + f" (done: {done_so_far()})")
            return f"{self.strategy} upgrade of {', '.join(names)} to {self.image}: {done_so_far()}"

        # In effect from when the first step starts (steps are offsets from it).
        injection = Injection(self, tuple(names), revert, background=thread)
        thread.start()
        return injection
