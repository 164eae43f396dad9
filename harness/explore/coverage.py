"""One finding per component and invariant: what a candidate can break, and what is already found.

    cov = Coverage(target)
    cov.breaks(c)                   # {("app", "availability")}: what c could show failing
    cov.found(finding_name, c, {"availability"})
    cov.duplicate(c)                # the finding it would only repeat, else None

A *component* is what stands behind a fault: a data tier as a whole (its members, their
coordinators and the roles asked of them: `redis-1..3`, `sentinel`, `redis-primary` are one
component, the apps' data), else the service of the instance killed, the service a link leads
to, or for a partition every component with a member on either side. An *invariant class* is
what a failure broke: `durability` (lost or unexpected writes, a declared invariant) or
`availability` (availability, outage, stall, an abort, time to recover).

Only a data component can show `durability` (a stateless load balancer holds no write to lose),
and only when the target reads its data back. A candidate is a duplicate when every (component,
class) it could break already has a finding (or a failure waiting to be investigated): once the
single app is known to take the service down, stopping it, pausing it, or cutting the link to
it say the same thing again. Duplicates are not dropped: the explorer runs them after everything
else, and a failure whose every (component, class) is covered is recorded but not shrunk.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.explore.candidates import Candidate, Draft, _Topology
from harness.model.target import Target

DURABILITY = "durability"
AVAILABILITY = "availability"
DURABILITY_KEYS = ("lost_writes", "unexpected_writes")


def classes_failed(failed: frozenset[str] | set[str], lost_writes: int | None, invariants: set[str]) -> set[str]:
    """The invariant classes a run's failed assertion keys (and lost writes) say it broke."""
    out: set[str] = set()
    for k in failed:
        base = k.split("@", 1)[0].rsplit(".", 1)[-1]
        out.add(DURABILITY if base in DURABILITY_KEYS or base in invariants else AVAILABILITY)
    if lost_writes:
        out.add(DURABILITY)
    return out


@dataclass
class Coverage:
    target: Target
    _topo: _Topology = field(init=False)
    _data: dict[str, str] = field(init=False)           # instance / role / service -> its data tier's name
    readback: bool = field(init=False)
    covered: dict[tuple[str, str], str] = field(init=False, default_factory=dict)   # (component, class) -> finding

    def __post_init__(self) -> None:
        t = self.target
        self._topo = _Topology.of(t)
        self.readback = t.durability is not None and t.durability.read is not None
        self._data = {}
        for client, tier in self._topo.tiers:
            if not self._topo.leaf(tier):
                continue
            name = "data:" + ",".join(sorted({self._topo.service(i) for i in tier}))
            coord = self._topo.coordinators(tier, client)
            for i in tier:
                self._data[i] = name
            for svc in coord:
                self._data[svc] = name
                for inst in t.service(svc).instance_names():
                    self._data[inst] = name
            for role in self._topo.roles_over(coord):
                self._data[role] = name

    # ── what a candidate touches ──

    def _of(self, name: str) -> str:
        if name in self._data:
            return self._data[name]
        try:
            return self._topo.service(name)
        except Exception:  # noqa: BLE001 - a role outside any data tier: the role is its own component
            return name

    def components(self, d: Draft) -> set[str]:
        if d.action == "partition":
            return {self._of(m) for g in d.get("groups") for m in g}
        sel = d.get("select")
        if sel is not None:
            return {self._of(sel.get("service") or sel.get("role"))}
        upstream = str(d.get("link")).split("->", 1)[1]     # a link is the reachability of what it leads to
        return {self._of(upstream)}

    def is_data(self, component: str) -> bool:
        return component.startswith("data:")

    def touches_data(self, experiment) -> bool:
        """Does any fault of `experiment` (a validated Experiment) hit a data tier's member, a
        coordinator, a data role or a link into the tier?"""
        links = {link.name: link.upstream for link in self.target.links}
        for f in experiment.faults:
            names: list[str] = []
            sel = getattr(f, "select", None)
            if sel is not None:
                names += [x for x in (getattr(sel, "service", None), getattr(sel, "role", None)) if x]
            names += [m for g in (getattr(f, "groups", None) or ()) for m in g]
            names += [links.get(n, n) for n in (getattr(f, "links", None) or ())]
            if any(n in self._data for n in names):
                return True
        return False

    def breaks(self, c: Candidate) -> set[tuple[str, str]]:
        """Every (component, class) candidate `c` could show broken."""
        out: set[tuple[str, str]] = set()
        for d in c.faults:
            for comp in self.components(d):
                if c.judge != "durability":
                    out.add((comp, AVAILABILITY))
                if self.readback and self.is_data(comp):
                    out.add((comp, DURABILITY))
        return out

    # ── what is known ──

    def duplicate(self, c: Candidate, classes: set[str] | None = None) -> str | None:
        """The finding `c` would only repeat (every (component, class) it could break, or of
        `classes` when given, is covered), else None."""
        want = {(comp, k) for comp, k in self.breaks(c) if classes is None or k in classes}
        if classes is not None:         # a failure of a class the candidate was not expected to break
            for d in c.faults:
                for comp in self.components(d):
                    for k in classes:
                        if k == AVAILABILITY or self.is_data(comp):
                            want.add((comp, k))
        if not want or any(w not in self.covered for w in want):
            return None
        return sorted({self.covered[w] for w in want})[0]

    def found(self, name: str, c: Candidate, classes: set[str]) -> None:
        """Record that `c` (a finding, or a failure queued for investigation, as `name`) breaks `classes`."""
        for d in c.faults:
            for comp in self.components(d):
                for k in classes:
                    if k == AVAILABILITY or self.is_data(comp):
                        self.covered.setdefault((comp, k), name)

    def forget(self, name: str) -> None:
        """A queued failure that did not confirm covers nothing."""
        self.covered = {w: n for w, n in self.covered.items() if n != name}


__all__ = ["Coverage", "classes_failed", "DURABILITY", "AVAILABILITY"]
