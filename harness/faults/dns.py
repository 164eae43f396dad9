"""DNS failure: name lookups fail inside the selected containers for the window.

Containers on the networks a run creates resolve names through Docker's embedded DNS server
at 127.0.0.11 (the engine DNATs it to a port of its own inside the namespace), and anything
else through port 53. The fault adds rules in the container's network namespace for both:

* `mode: refuse` (default): REJECT, so a lookup fails at once, the way a dead resolver
  looks to glibc ("Temporary failure in name resolution");
* `mode: timeout`: DROP, so a lookup hangs until the resolver's own timeout (glibc: 5 s per
  try), the nastier and more common outage.

Connections already open are untouched (only lookups fail), which is what makes this fault
interesting: a service survives it exactly as long as it does not need to resolve a name.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from harness.faults.base import FaultContext, FaultSpec, Injection, Window
from harness.faults.netns import RuleSet
from harness.faults.select import Selector, pick

EMBEDDED_DNS = "127.0.0.11"


class DnsFailure(FaultSpec):
    action: Literal["network.dns"] = "network.dns"
    select: Selector
    for_s: Window = Field(alias="for")
    mode: Literal["refuse", "timeout"] = "refuse"
    summary = ("name lookups fail inside the selected containers: `mode: refuse` (at once, "
               "default) or `timeout` (lookups hang until the resolver gives up); open "
               "connections are untouched")

    def what(self) -> str:
        return self.select.service or self.select.role or "-"

    def plan_line(self) -> str:
        how = "refused at once" if self.mode == "refuse" else "dropped (lookups time out)"
        return f"{self.select.describe()}: DNS lookups {how}"

    def _rules(self) -> list[tuple[list[str], list[str]]]:
        """(match, jump) pairs, both protocols, the embedded server and any other resolver."""
        out = []
        for proto in ("udp", "tcp"):
            if self.mode == "refuse":
                jump = ["REJECT", "--reject-with", "tcp-reset" if proto == "tcp" else "icmp-port-unreachable"]
            else:
                jump = ["DROP"]
            # After the engine's DNAT the embedded server's port is not 53: match its address.
            out.append((["-d", EMBEDDED_DNS, "-p", proto], jump))
            out.append((["!", "-d", EMBEDDED_DNS, "-p", proto, "--dport", "53"], jump))
        return out

    def inject(self, ctx: FaultContext) -> Injection:
        names = pick(ctx, self)
        rules = RuleSet(f"continuum:{ctx.run_id}:{self.name}")
        for n in names:
            for match, jump in self._rules():
                rules.add(ctx.instance(n), "OUTPUT", match, jump)
        applied_t = rules.apply()
        return Injection(self, tuple(names), rules.remove_all, applied_t=applied_t,
                         detail=f"landed in {len(rules.rules)} namespace(s), spread {rules.spread_s * 1000:.0f} ms")
