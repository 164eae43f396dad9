"""Choosing which instances a fault hits: by service, instance or role; then a pick.

`Selector` is the `select:` field of container, resource and namespace faults. It is checked
against the target when the experiment is loaded; `pick()` resolves it when the fault fires
(roles are asked then, not at start).
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import ValidationInfo, model_validator

from harness.errors import FaultError
from harness.model.base import At, Internal, Model, internal
from harness.model.units import Bounded, Name, Percent

Pick = Literal["one", "all", "count", "percent"]


class Selector(Model):
    """`select: {service | role, pick, count, percent, seed}`."""

    service: Name | None = None     # a service (all its instances) or an instance name
    role: Name | None = None        # a role of the target, resolved when the fault fires
    pick: Pick = "one"
    count: Bounded(int, ge=1, le=1000) | None = None
    percent: Percent() | None = None
    seed: Bounded(int, ge=0, le=2**63 - 1) | None = None
    role_fixed: Internal[bool] = internal(False, exclude=True)   # a static role: fixed in the file

    @model_validator(mode="after")
    def _check(self, info: ValidationInfo) -> "Selector":
        if (self.service is None) == (self.role is None):
            raise ValueError("select needs exactly one of 'service' or 'role'")
        for field, wanted in (("count", "count"), ("percent", "percent")):
            given = getattr(self, field) is not None
            if given and self.pick != wanted:
                raise At(f"{field!r} only goes with 'pick: {wanted}' (pick is {self.pick!r})",
                         field, key=True)
            if self.pick == wanted and not given:
                raise At(f"'pick: {wanted}' needs {field!r}", field)
        target = (info.context or {}).get("target")
        if target is None:
            return self
        services = {s.name: s for s in target.services}
        instances = target.instance_names()
        if self.service is not None:
            if self.service in services:
                size = services[self.service].replicas
            elif self.service in instances:
                size = 1
            elif target.role(self.service) is not None:
                raise At(f"{self.service!r} is a role; write 'role: {self.service}'", "service")
            else:
                raise At(f"unknown service or instance {self.service!r}; services: "
                         f"{', '.join(services)}; instances: {', '.join(instances)}", "service")
            if self.count is not None and self.count > size:
                raise At(f"count {self.count} is more than the {size} instance(s) of "
                         f"{self.service!r}", "count")
        elif target.role(self.role) is None:
            raise At(f"unknown role {self.role!r}; roles of target {target.name!r}: "
                     f"{', '.join(r.name for r in target.roles) or 'none (x-continuum.roles)'}",
                     "role")
        else:
            object.__setattr__(self, "role_fixed", target.role(self.role).kind == "static")
        return self

    def describe(self) -> str:
        when = "fixed in the target file" if self.role_fixed else "resolved when it fires"
        what = f"service {self.service}" if self.service else f"role {self.role} ({when})"
        if self.pick == "count":
            pick = f"{self.count} instance(s)"
        elif self.pick == "percent":
            pick = f"{self.percent or 0:g}% of instances"
        else:
            pick = "one instance" if self.pick == "one" else "all instances"
        seed = "" if self.pick == "all" else \
            (f", seed {self.seed}" if self.seed is not None else ", random pick")
        return f"{what}, {pick}{seed}"


def default_pick(data: Any, pick: str) -> Any:
    """For a spec's before-validator: `select.pick` defaults to `pick` when not written."""
    if isinstance(data, dict) and isinstance(data.get("select"), dict) and "pick" not in data["select"]:
        return {**data, "select": {**data["select"], "pick": pick}}
    return data


def pick(ctx: Any, fault: Any) -> list[str]:
    """The instances `fault.select` names right now, picked with the fault's seeded RNG."""
    sel: Selector | None = getattr(fault, "select", None)
    if sel is None:
        raise FaultError(f"fault {fault.name} selects nothing")
    candidates = sorted(set(ctx.resolve(sel.role or sel.service)))
    if not candidates:
        raise FaultError(f"fault {fault.name}: the selection is empty")
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
    return sorted(ctx.rng(fault).sample(candidates, n))
