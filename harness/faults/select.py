"""Choosing which instances a fault hits: by service, instance or live role; then pick."""

from __future__ import annotations

import math
import re

from docker.errors import DockerException

from harness.errors import FaultError
from harness.faults.base import FaultContext
from harness.model import FaultSpec, RoleSpec, Selector

EXEC_TIMEOUT_S = 5


def _running(ctx: FaultContext, instances: list[str]) -> list[str]:
    out = []
    for name in instances:
        c = ctx.stack.container(name)
        c.reload()
        if c.status == "running":
            out.append(name)
    return out


def resolve_name(ctx: FaultContext, name: str) -> list[str]:
    """A service name → its instances; an instance name → itself; a role → its live members."""
    target = ctx.stack.target
    for role in target.roles:
        if role.name == name:
            return resolve_role(ctx, role)
    for svc in target.services:
        if svc.name == name:
            return list(svc.instance_names())
    if name in {i for i, _ in target.instances()}:
        return [name]
    raise FaultError(f"{name} is neither a service, an instance nor a role of {target.name}")


def _exec(ctx: FaultContext, instance: str, argv: list[str]) -> str:
    container = ctx.stack.container(instance)
    try:
        # The Docker SDK's exec has no timeout of its own; `timeout` inside bounds it.
        code, out = container.exec_run(["timeout", str(EXEC_TIMEOUT_S), *argv], demux=False)
    except DockerException as exc:
        raise FaultError(f"exec in {instance} failed: {exc}") from exc
    if code != 0:
        raise FaultError(f"{' '.join(argv)} in {instance} exited {code}: {out.decode(errors='replace')[:200]}")
    return out.decode(errors="replace")


def resolve_role(ctx: FaultContext, role: RoleSpec) -> list[str]:
    if role.kind == "static":
        return list(role.members)
    assert role.service is not None and role.master_name is not None  # loader guarantees
    instances = {i for i, _ in ctx.stack.target.instances()}
    last_error: Exception | None = None
    # Ask each live sentinel in turn: one may be the very thing an earlier fault killed.
    for sentinel in _running(ctx, list(ctx.stack.target.service(role.service).instance_names())):
        try:
            if role.kind == "sentinel-primary":
                out = _exec(
                    ctx, sentinel,
                    ["redis-cli", "-p", str(role.port), "SENTINEL", "get-master-addr-by-name", role.master_name],
                )
                host = out.split()[0] if out.split() else ""
                names = [_instance_of(ctx, host, instances)]
            else:
                out = _exec(ctx, sentinel, ["redis-cli", "-p", str(role.port), "SENTINEL", "replicas", role.master_name])
                lines = out.split()
                names = [
                    _instance_of(ctx, lines[i + 1], instances)
                    for i, word in enumerate(lines[:-1])
                    if word == "ip"
                ]
            return sorted(names)
        except FaultError as exc:
            last_error = exc
    raise FaultError(f"could not resolve role {role.name}: no sentinel answered ({last_error})")


def _instance_of(ctx: FaultContext, host: str, instances: set[str]) -> str:
    if host in instances:
        return host
    # Sentinel may report an address instead of a name: map it back through the containers.
    if re.fullmatch(r"[0-9.]+", host):
        for name in instances:
            nets = ctx.stack.container(name).attrs["NetworkSettings"]["Networks"]
            if any(n.get("IPAddress") == host for n in nets.values()):
                return name
    raise FaultError(f"role answer {host!r} is not an instance of the target")


def pick(ctx: FaultContext, fault: FaultSpec) -> list[str]:
    sel = fault.select or Selector()
    if sel.role:
        candidates = resolve_name(ctx, sel.role)
    elif sel.service:
        candidates = resolve_name(ctx, sel.service)
    else:
        raise FaultError(f"fault {fault.name} selects nothing")
    candidates = sorted(set(candidates))
    if not candidates:
        raise FaultError(f"fault {fault.name}: the selection is empty")
    rng = ctx.rng(fault)
    if sel.pick == "all":
        return candidates
    if sel.pick == "one":
        n = 1
    elif sel.pick == "count":
        n = sel.count or 1
    else:
        n = max(1, math.ceil(len(candidates) * (sel.percent or 0) / 100.0))
    if n > len(candidates):
        raise FaultError(f"fault {fault.name} wants {n} instances but only {len(candidates)} exist")
    return sorted(rng.sample(candidates, n))
