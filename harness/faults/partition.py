"""Partitions between two named groups (services, instances or live roles), both ways or one
way, as DROP rules in each member's network namespace.

Only traffic between the groups is cut: a client reaching a member through the run's
Toxiproxy still does, which is exactly the split-brain case (an old primary isolated from its
peers but still reachable by clients) that `min-replicas-to-write` must handle.
"""

from __future__ import annotations

import time

from harness.errors import FaultError
from harness.faults.base import FaultContext, Injection
from harness.faults.netns import RuleSet, container_ips
from harness.faults.select import resolve_name
from harness.model import FaultSpec


def _members(ctx: FaultContext, names: tuple[str, ...]) -> list[str]:
    out: set[str] = set()
    for name in names:
        out.update(resolve_name(ctx, name))
    return sorted(out)


def inject(ctx: FaultContext, fault: FaultSpec) -> Injection:
    if not fault.groups:
        raise FaultError(f"partition {fault.name} has no groups")
    side_a = _members(ctx, fault.groups[0])
    side_b = _members(ctx, fault.groups[1])
    overlap = set(side_a) & set(side_b)
    if overlap:
        raise FaultError(f"partition {fault.name}: {', '.join(sorted(overlap))} is on both sides right now")
    rules = RuleSet(f"continuum:{ctx.run_id}:{fault.name}")
    ips = {n: container_ips(ctx.stack.container(n)) for n in side_a + side_b}
    try:
        for a in side_a:
            ca = ctx.stack.container(a)
            for b in side_b:
                cb = ctx.stack.container(b)
                for ip_b in ips[b]:
                    rules.add(ca, "OUTPUT", ["-d", ip_b])          # A → B, at A
                    if not fault.one_way:
                        rules.add(ca, "INPUT", ["-s", ip_b])       # B → A, at A
                for ip_a in ips[a]:
                    rules.add(cb, "INPUT", ["-s", ip_a])           # A → B, at B as well
                    if not fault.one_way:
                        rules.add(cb, "OUTPUT", ["-d", ip_a])
    except FaultError:
        rules.remove_all()
        raise
    targets = tuple(side_a) + ("|",) + tuple(side_b)
    return Injection(fault, targets, rules.remove_all, applied_t=rules.first_t or time.monotonic())
