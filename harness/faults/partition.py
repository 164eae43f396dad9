"""Partitions between two named groups (services, instances or roles), both ways or one way,
as DROP rules in each member's network namespace.

Every path between the groups is cut, the proxied ones too: a link from a member on one side
to an upstream on the other goes through the run's Toxiproxy (harness.stack.links), which no
address rule between the members sees, so the client's side also drops its traffic to that
link's proxy listener. The client then sees what it would see without the proxy: connects
that time out and open connections gone silent. Traffic of anyone outside the groups is
untouched, which is exactly the split-brain case (an old primary isolated from its peers but
still reachable by clients outside the partition) that `min-replicas-to-write` must handle.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, ValidationInfo, WithJsonSchema, field_validator

from harness.errors import FaultError
from harness.faults.base import FaultContext, FaultSpec, Injection, Window
from harness.faults.netns import RuleSet
from harness.model.base import At
from harness.model.units import NAME_RE, check_name, got

_GROUPS_SCHEMA = {"type": "array", "minItems": 2, "maxItems": 2,
                  "items": {"type": "array", "minItems": 1,
                            "items": {"type": "string", "pattern": NAME_RE.pattern}},
                  "description": "two lists of service, instance or role names"}


class Partition(FaultSpec):
    action: Literal["partition"] = "partition"
    groups: Annotated[tuple[tuple[str, ...], tuple[str, ...]], WithJsonSchema(_GROUPS_SCHEMA)]
    direction: Literal["both", "one-way"] = "both"
    for_s: Window = Field(alias="for")
    summary = ("`groups: [[A...], [B...]]` of service, instance or role names; `direction: "
               "one-way` drops only A → B; the sides must not overlap (live roles: when it fires)")

    @field_validator("groups", mode="before")
    @classmethod
    def _groups(cls, raw: Any, info: ValidationInfo) -> Any:
        if not isinstance(raw, list) or len(raw) != 2:
            raise ValueError(f"expected two lists of service, instance or role names, {got(raw)}")
        target = (info.context or {}).get("target")
        expanded: list[set[str]] = []
        for g, group in enumerate(raw):
            if not isinstance(group, list) or not group:
                raise At(f"expected a non-empty list of names, {got(group)}", g)
            members: set[str] = set()
            for j, name in enumerate(group):
                try:
                    check_name(name)
                except ValueError as exc:
                    raise At(str(exc), g, j) from None
                if target is None:
                    continue
                found = target.expand(name)
                role = target.role(name)
                if found is not None:
                    members.update(found)
                elif role is not None:
                    # A static role's members are known now. A live role's are only the
                    # instances it asks (Patroni's leader and replicas are both "among pg"):
                    # which side each is on is known when it fires, checked in inject().
                    if not role.resolved_live:
                        members.update(role.members)
                else:
                    raise At(f"{name!r} is not a service, instance or role of target "
                             f"{target.name!r}; services: {', '.join(s.name for s in target.services)}; "
                             f"roles: {', '.join(r.name for r in target.roles) or 'none'}", g, j)
            expanded.append(members)
        overlap = expanded[0] & expanded[1] if target is not None else set()
        if overlap:
            raise ValueError(f"{', '.join(sorted(overlap))} would be on both sides of the partition")
        return (tuple(raw[0]), tuple(raw[1]))

    @property
    def one_way(self) -> bool:
        return self.direction == "one-way"

    def what(self) -> str:
        return f"[{', '.join(self.groups[0])}] | [{', '.join(self.groups[1])}]"

    def plan_line(self) -> str:
        a, b = self.groups
        arrow = "-/->" if self.one_way else "<-/->"
        return f"[{', '.join(a)}] {arrow} [{', '.join(b)}]" + (" (one way: A to B dropped)" if self.one_way else "")

    def inject(self, ctx: FaultContext) -> Injection:
        side_a = sorted({m for n in self.groups[0] for m in ctx.resolve(n)})
        side_b = sorted({m for n in self.groups[1] for m in ctx.resolve(n)})
        overlap = set(side_a) & set(side_b)
        if overlap:
            raise FaultError(f"partition {self.name}: {', '.join(sorted(overlap))} is on both sides right now")
        rules = RuleSet(f"continuum:{ctx.run_id}:{self.name}")
        ips = {n: ctx.instance(n).ips() for n in side_a + side_b}
        for a in side_a:
            ia = ctx.instance(a)
            for b in side_b:
                ib = ctx.instance(b)
                for ip_b in ips[b]:
                    rules.add(ia, "OUTPUT", ["-d", ip_b])          # A → B, at A
                    if not self.one_way:
                        rules.add(ia, "INPUT", ["-s", ip_b])       # B → A, at A
                for ip_a in ips[a]:
                    rules.add(ib, "INPUT", ["-s", ip_a])           # A → B, at B as well
                    if not self.one_way:
                        rules.add(ib, "OUTPUT", ["-d", ip_a])
                # Through the proxy: a's links to b carry A → B out of a (and B → A back into
                # it); b's links to a carry A → B into b.
                for ip, port in ctx.stack.proxied_paths(a, b):
                    rules.add(ia, "OUTPUT", _to(ip, port))
                    if not self.one_way:
                        rules.add(ia, "INPUT", _from(ip, port))
                for ip, port in ctx.stack.proxied_paths(b, a):
                    rules.add(ib, "INPUT", _from(ip, port))
                    if not self.one_way:
                        rules.add(ib, "OUTPUT", _to(ip, port))
        applied_t = rules.apply()
        targets = tuple(side_a) + ("|",) + tuple(side_b)
        return Injection(self, targets, rules.remove_all, applied_t=applied_t,
                         detail=f"landed in {len(rules.rules)} namespace(s), spread {rules.spread_s * 1000:.0f} ms")


def _to(ip: str, port: int) -> list[str]:
    return ["-d", ip, "-p", "tcp", "--dport", str(port)]


def _from(ip: str, port: int) -> list[str]:
    return ["-s", ip, "-p", "tcp", "--sport", str(port)]
