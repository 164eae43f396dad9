"""Packet loss: random DROP rules in the selected containers' network namespaces.

The kernels we run on often lack sch_netem, so `tc netem` is not relied on: iptables'
`statistic` match drops each incoming packet with the given probability.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from harness.faults.base import FaultContext, FaultSpec, Injection, Window
from harness.faults.netns import RuleSet
from harness.faults.select import Selector, pick
from harness.model.units import Percent


class PacketLoss(FaultSpec):
    action: Literal["network.loss"] = "network.loss"
    select: Selector
    for_s: Window = Field(alias="for")
    percent: Percent()
    summary = "random packet drop inside the container's namespace, 0 < percent ≤ 100"

    def what(self) -> str:
        return self.select.service or self.select.role or "-"

    def plan_line(self) -> str:
        return f"{self.select.describe()}: drop {self.percent:g}% of packets"

    def inject(self, ctx: FaultContext) -> Injection:
        names = pick(ctx, self)
        rules = RuleSet(f"continuum:{ctx.run_id}:{self.name}")
        probability = f"{self.percent / 100.0:.4f}"
        for n in names:
            rules.add(ctx.instance(n), "INPUT",
                      ["-m", "statistic", "--mode", "random", "--probability", probability])
        applied_t = rules.apply()
        return Injection(self, tuple(names), rules.remove_all, applied_t=applied_t,
                         detail=f"landed in {len(rules.rules)} namespace(s), spread {rules.spread_s * 1000:.0f} ms")
