"""Resource faults: CPU throttling and memory limits through the cgroup (docker update).
The settings before the fault are read first and restored, and the restore is read back."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from harness.errors import FaultError
from harness.faults.base import FaultContext, FaultSpec, Injection, Window
from harness.faults.select import Selector, pick
from harness.model.units import Bounded, Size

UNLIMITED_MEMORY = 1 << 40  # Docker cannot unset a memory limit; 1 TiB is "no limit" in practice
MIN_MEMORY_BYTES = 6 * 1024 * 1024  # Docker refuses less
MemorySize = Size(minimum=MIN_MEMORY_BYTES, what="Docker's minimum of 6MiB")


class _ResourceFault(FaultSpec):
    select: Selector
    for_s: Window = Field(alias="for")

    def what(self) -> str:
        return self.select.service or self.select.role or "-"


class CpuLimit(_ResourceFault):
    action: Literal["resource.cpu"] = "resource.cpu"
    cpus: Bounded(float, gt=0, le=64)
    summary = "CPU quota, e.g. `0.5`"

    def plan_line(self) -> str:
        return f"{self.select.describe()}: limit to {self.cpus:g} CPU"

    def inject(self, ctx: FaultContext) -> Injection:
        names = pick(ctx, self)
        before = []
        for n in names:
            inst = ctx.instance(n)
            hc = inst.host_config()
            before.append((inst, hc.get("CpuPeriod") or 0, hc.get("CpuQuota") or 0))
            inst.update(cpu_period=100_000, cpu_quota=max(1000, int(self.cpus * 100_000)))

        def revert() -> str:
            for inst, period, quota in before:
                inst.update(cpu_period=period or 100_000, cpu_quota=quota if quota > 0 else -1)
                if (inst.host_config().get("CpuQuota") or 0) > 0 and quota <= 0:
                    raise FaultError(f"CPU quota of {inst.name} still set after revert")
            return "cpu quota restored"

        return Injection(self, tuple(names), revert)


class MemoryLimit(_ResourceFault):
    action: Literal["resource.memory"] = "resource.memory"
    limit: MemorySize
    summary = "memory limit, ≥ 6MiB, e.g. `64MiB`"

    def plan_line(self) -> str:
        return f"{self.select.describe()}: memory limit {self.limit // (1024 * 1024)}MiB"

    def inject(self, ctx: FaultContext) -> Injection:
        names = pick(ctx, self)
        before = []
        for n in names:
            inst = ctx.instance(n)
            before.append((inst, inst.host_config().get("Memory") or 0))
            inst.update(mem_limit=self.limit, memswap_limit=self.limit)

        def revert() -> str:
            for inst, mem in before:
                value = mem or UNLIMITED_MEMORY
                inst.update(mem_limit=value, memswap_limit=value)  # memory ≤ memory+swap, raised together
                if (inst.host_config().get("Memory") or 0) not in (value, 0):
                    raise FaultError(f"memory limit of {inst.name} not restored")
            return "memory limit restored"

        return Injection(self, tuple(names), revert)
