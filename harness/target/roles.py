"""Roles resolved when a fault fires: which instances hold a role right now.

Providers: `static` (a fixed set of instances) and Redis Sentinel (`sentinel-primary`,
`sentinel-replicas`: each live Sentinel is asked in turn, since one may be what an earlier
fault killed). The answer is logged by the fault that asked (journal, report).
"""

from __future__ import annotations

import re
from typing import Any

from harness.errors import FaultError, HarnessError
from harness.model.target import RoleSpec

EXEC_TIMEOUT_S = 5.0


def _exec(ctx: Any, instance: str, argv: list[str]) -> str:
    code, out = ctx.instance(instance).exec(argv, timeout_s=EXEC_TIMEOUT_S)
    if code != 0:
        raise FaultError(f"{' '.join(argv)} in {instance} exited {code}: {out[:200]}")
    return out


def _running(ctx: Any, instances: tuple[str, ...]) -> list[str]:
    return [n for n in instances if ctx.instance(n).status() == "running"]


def resolve_role(ctx: Any, role: RoleSpec) -> list[str]:
    if role.kind == "static":
        return list(role.members)
    if role.service is None or role.master_name is None:
        raise FaultError(f"role {role.name} has no Sentinel service or master name")
    instances = set(ctx.target.instance_names())
    last_error: Exception | None = None
    for sentinel in _running(ctx, ctx.target.service(role.service).instance_names()):
        try:
            if role.kind == "sentinel-primary":
                out = _exec(ctx, sentinel, ["redis-cli", "-p", str(role.port), "SENTINEL",
                                            "get-master-addr-by-name", role.master_name])
                words = out.split()
                return [_instance_of(ctx, words[0] if words else "", instances)]
            out = _exec(ctx, sentinel, ["redis-cli", "-p", str(role.port), "SENTINEL", "replicas",
                                        role.master_name])
            words = out.split()
            return sorted(_instance_of(ctx, words[i + 1], instances)
                          for i, word in enumerate(words[:-1]) if word == "ip")
        except HarnessError as exc:
            last_error = exc
    raise FaultError(f"could not resolve role {role.name}: no sentinel answered ({last_error})")


def _instance_of(ctx: Any, host: str, instances: set[str]) -> str:
    if host in instances:
        return host
    # Sentinel may report an address instead of a name: map it back through the instances.
    if re.fullmatch(r"[0-9.]{7,15}", host):
        for name in sorted(instances):
            if host in ctx.instance(name).ips():
                return name
    raise FaultError(f"role answer {host!r} is not an instance of the target")
