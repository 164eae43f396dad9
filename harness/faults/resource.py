"""Resource faults: CPU throttling and memory limits through the cgroup (docker update), and
packet loss as random DROP rules in the container's namespace (the kernels we run on often
lack sch_netem, so `tc netem` is not relied on). Previous settings are read first and restored."""

from __future__ import annotations

import time

from docker.errors import DockerException

from harness.errors import FaultError
from harness.faults.base import FaultContext, Injection
from harness.faults.netns import RuleSet
from harness.faults.select import pick
from harness.model import FaultSpec

UNLIMITED_MEMORY = 1 << 40  # Docker cannot unset a memory limit; 1 TiB is "no limit" in practice


def inject(ctx: FaultContext, fault: FaultSpec) -> Injection:
    params = dict(fault.params)
    names = pick(ctx, fault)
    containers = [ctx.stack.container(n) for n in names]
    try:
        if fault.action == "resource.cpu":
            return _cpu(fault, names, containers, float(params["cpus"]))
        if fault.action == "resource.memory":
            return _memory(fault, names, containers, int(params["memory_bytes"]))
        if fault.action == "network.loss":
            return _loss(ctx, fault, names, containers, float(params["percent"]))
    except KeyError as exc:
        raise FaultError(f"fault {fault.name} lacks parameter {exc}") from exc
    except DockerException as exc:
        raise FaultError(f"{fault.action} on {', '.join(names)} failed: {exc}") from exc
    raise FaultError(f"unknown resource action {fault.action}")


def _cpu(fault: FaultSpec, names, containers, cpus: float) -> Injection:
    before = []
    for c in containers:
        c.reload()
        hc = c.attrs["HostConfig"]
        before.append((c, hc.get("CpuPeriod") or 0, hc.get("CpuQuota") or 0))
        c.update(cpu_period=100_000, cpu_quota=max(1000, int(cpus * 100_000)))

    def revert() -> str:
        for c, period, quota in before:
            c.update(cpu_period=period or 100_000, cpu_quota=quota if quota > 0 else -1)
            c.reload()
            if (c.attrs["HostConfig"].get("CpuQuota") or 0) > 0 and quota <= 0:
                raise FaultError(f"CPU quota of {c.name} still set after revert")
        return "cpu quota restored"

    return Injection(fault, tuple(names), revert)


def _memory(fault: FaultSpec, names, containers, limit: int) -> Injection:
    before = []
    for c in containers:
        c.reload()
        before.append((c, c.attrs["HostConfig"].get("Memory") or 0))
        c.update(mem_limit=limit, memswap_limit=limit)

    def revert() -> str:
        for c, mem in before:
            value = mem or UNLIMITED_MEMORY
            c.update(mem_limit=value, memswap_limit=value)  # memory ≤ memory+swap, raised together
            c.reload()
            if (c.attrs["HostConfig"].get("Memory") or 0) not in (value, 0):
                raise FaultError(f"memory limit of {c.name} not restored")
        return "memory limit restored"

    return Injection(fault, tuple(names), revert)


def _loss(ctx: FaultContext, fault: FaultSpec, names, containers, percent: float) -> Injection:
    rules = RuleSet(f"continuum:{ctx.run_id}:{fault.name}")
    probability = f"{percent / 100.0:.4f}"
    try:
        for c in containers:
            rules.add(c, "INPUT", ["-m", "statistic", "--mode", "random", "--probability", probability])
    except FaultError:
        rules.remove_all()
        raise
    return Injection(fault, tuple(names), rules.remove_all, applied_t=rules.first_t or time.monotonic())
