"""Candidate fault schedules generated from a target's topology, and the experiments they become.

    cands = generate(target, seed=7)                    # singles, likeliest breakers first, then pairs
    exp = to_experiment(cands[0], target, Params())     # an ordinary, validated Experiment

What is read from the `Target`: its instances (and which service each belongs to), its roles,
its links (client service → upstream instance) and its entry points. From those:

* `kill`, `stop`, `pause` of every instance and of one holder of every role;
* partitions: for each *tier* (the upstream instances of one client service's links, e.g. the
  apps' Redis nodes) and its *coordinators* (other services that share a network with it and
  are not its clients, e.g. Sentinel): one member (or one role) cut off from its peers and
  coordinators while its clients still reach it, and the clients holding a minority of the tier
  cut off from the majority; for every other service of several instances, one instance cut
  off from the rest;
* link faults on every link: `down`, `latency` (both ways) and `reset_peer`;
* pairs of two singles on different instances (run after every single).

Not generated, on purpose: faults on every instance of a service at once, and a split that cuts
a client off from all of a tier. No redundant design survives those; they would be findings
about the fault, not about the system.

Order (`Candidate.rank`): likely breakers first. When the target reads its data back
(`x-continuum.durability.read`), what can lose acknowledged writes comes first of all: a data
role's holder cut off from the other roles and the coordinators, then that role's holder killed
or paused, then the clients left with one role or a minority of the tier. Then a single point of
failure on the request path (a one-instance service that is an entry point or a link's end),
then the other role faults, then the rest of the request path, then everything else
(monitoring, off-path services), then pairs. The seed shuffles within a rank and picks
instances (`select.seed`), so a seed replays exactly.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import random
from dataclasses import dataclass, field, replace
from typing import Any

from harness.model.target import Target

# Ranks: lower runs first. The R_DATA_* ranks exist only when the target reads its data back:
# a lost acknowledged write is the failure nobody wrote down, and an outage is found anyway
# (a single point of failure fails whatever it is hit with; the data tier only under the right
# split). Measured on the fragile twin (benchmarks/README.md): with outages first, 15 min went
# on three single points and the data tier's partition, 4th in line, was never run.
R_DATA_ISOLATE = -3     # a data role's holder cut off from the other roles and the coordinators
R_DATA_KILL = -2        # a data role's holder killed or paused (writes acknowledged, not replicated)
R_DATA_CLIENTS = -1     # the clients left with one role's holder or a minority of the data
R_SINGLE_POINT = 0      # one-instance service on the request path
R_ROLE = 1              # a role's holder killed / isolated
R_PATH = 2              # other faults on the request path (replicated services, links)
R_PARTITION = 3         # instance splits
R_OFF_PATH = 4          # monitoring and services no client reaches
R_PAIR = 10             # two faults at once (+ the better of the two ranks)


@dataclass(frozen=True)
class Draft:
    """One fault as its file would hold it (minus `at`/`for`, which the Params give)."""

    action: str
    fields: tuple[tuple[str, Any], ...]         # YAML-like values, tuples for lists
    label: str                                  # short, for names: kill-app, isolate-redis-primary

    def data(self) -> dict[str, Any]:
        return {k: _plain(v) for k, v in self.fields}

    def get(self, key: str) -> Any:
        return dict(self.fields).get(key)

    def with_field(self, key: str, value: Any, label: str | None = None) -> "Draft":
        fields = tuple((k, value if k == key else v) for k, v in self.fields)
        return replace(self, fields=fields, label=label or self.label)


def _plain(v: Any) -> Any:
    if isinstance(v, tuple):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    return v


@dataclass(frozen=True)
class Candidate:
    """A fault schedule to try: its faults fire together at `Params.at_s` for `window_s`."""

    faults: tuple[Draft, ...]
    family: str                                 # kill | stop | pause | partition | link | pair
    rank: int
    window_s: float | None = None               # None: Params.window_s
    users: int | None = None                    # None: Params.users
    origin: str = ""                            # the candidate this was shrunk from
    # "durability": judged on lost writes and invariants only. For splits that leave the clients
    # with a minority of the data, refusing writes is the correct answer (a CP store must), so
    # availability there says nothing about the system; what it must not do is lose them.
    judge: str = "all"

    @property
    def name(self) -> str:
        """An experiment name (at most 48 characters): the labels, shortened with a hash if long."""
        full = "x-" + "-and-".join(d.label for d in self.faults)
        if self.window_s is not None:
            full += f"-w{self.window_s:g}".replace(".", "p")
        if self.users is not None:
            full += f"-u{self.users}"
        if len(full) <= 48:
            return full
        digest = hashlib.sha1(full.encode()).hexdigest()[:6]
        return full[:41].rstrip("-_") + "-" + digest

    @property
    def size(self) -> tuple[int, int, float, int]:
        """Smaller is simpler (the shrinker's order): faults, partition members, window, load."""
        members = sum(len(g) for d in self.faults for g in (d.get("groups") or ()))
        return (len(self.faults), members, self.window_s or 0.0, self.users or 0)

    def describe(self) -> str:
        return " + ".join(_describe(d) for d in self.faults)


def _describe(d: Draft) -> str:
    if d.action == "partition":
        a, b = d.get("groups")
        return f"partition [{', '.join(a)}] | [{', '.join(b)}]"
    if "select" in dict(d.fields):
        sel = d.get("select")
        what = sel.get("role") or sel.get("service")
        return f"{d.action} {what}"
    return f"{d.action} {d.get('link')}"


@dataclass(frozen=True)
class Params:
    """The shape of every candidate's experiment: short, the standard checks."""

    at_s: float = 6.0                           # baseline before the faults
    window_s: float = 10.0
    # A data-tier partition's window (the R_DATA_ISOLATE and R_DATA_CLIENTS splits): the two sides
    # only diverge once the partition outlasts failure detection and the failover, and then only
    # for what is left of it (experiments/fragile/redis-primary-partition-fragile.yaml uses 15 s).
    # The loss itself shows only once the healed old primary is demoted, 11-15 s after the heal:
    # the final read waits for that (harness/target/convergence.py); before it did, these runs
    # read 0 lost in 2 of 2 where the same run read later lost 758 and 778.
    data_window_s: float = 15.0
    recovery_s: float = 10.0                    # after the faults: the run lasts at + window + this
    # The load level: `users` closed-loop users, or in open mode (the default) `users *
    # open_rate_per_user` requests due per second, with up to rate x request_timeout + level in flight
    # (so a hanging system never runs out of users and every due request is sent on time).
    # Open, because a closed loop of a few users hides a hole: each user stuck on a 2 s timeout
    # sends nothing else, so an outage weighs a handful of requests (a 2 s kill of the fragile
    # twin's only app, 5 closed users: 19 requests into it, availability 99.3 %, a pass); in open
    # mode the offered rate holds whatever the system does, so a hole weighs what it lasts.
    users: int = 20
    load_mode: str = "open"                     # "open" | "closed"
    # 5/s a level (20 -> 100/s, 30 transfers/s): a lost write is seen only when one was written
    # in the loss window (the writes a demoted primary acknowledged after the promotion); at
    # 2/s a level the twin's primary partition lost none in 2 of its 3 first runs (10 s and 15 s;
    # measured before the final read waited for the demotion, which explains at least part of it).
    open_rate_per_user: float = 5.0             # open mode: requests/s per load level
    request_timeout_s: float = 2.0
    profile: str | None = None                  # default: the target's first
    # The bar a redundant system is held to under one fault, for a short run: the reference's
    # own partition experiment allows 97% (writes fail until Sentinel fails over and the apps
    # follow); one Redis primary kill measured 97.78% over 26 s on a loaded machine, so 98%
    # called the designed failover a finding. A single point of failure down for the window
    # measures 60-80%, far below.
    availability: str = ">= 97%"
    longest_outage: str = "<= 3s"
    longest_stall: str = "<= 5s"
    steady_availability: str = ">= 99%"
    invariants: tuple[str, ...] | None = None   # None: every invariant the target declares
    abort_below: str = "20%"                    # stop a candidate early once it is plainly failing
    abort_over_s: float = 4.0
    extra_slo: tuple[tuple[str, str], ...] = field(default=())


# ─────────────────────────────── the topology ───────────────────────────────


@dataclass(frozen=True)
class _Topology:
    target: Target
    path_services: frozenset[str]               # entry points and both ends of every link
    monitoring: frozenset[str]
    tiers: tuple[tuple[str, tuple[str, ...]], ...]      # (client service, upstream instances)
    clients: frozenset[str]                     # services that are a link's client

    def group(self, instance: str) -> tuple[str, ...]:
        """What stands in for `instance` when it fails: its tier (the other upstreams of the
        same client), else the other instances of its service."""
        for _, tier in self.tiers:
            if instance in tier:
                return tier
        return self.target.service_of(instance).instance_names()

    def leaf(self, tier: tuple[str, ...]) -> bool:
        """A tier at the bottom of the link graph (its members are nobody's clients): the data."""
        return not any(self.service(i) in self.clients for i in tier)

    @classmethod
    def of(cls, target: Target) -> "_Topology":
        path = {e.service for e in target.entrypoints}
        tiers: dict[str, list[str]] = {}
        for link in target.links:
            if link.client == "host":
                continue
            path.add(link.client)
            path.add(target.service_of(link.upstream).name)
            tiers.setdefault(link.client, [])
            if link.upstream not in tiers[link.client]:
                tiers[link.client].append(link.upstream)
        mon: set[str] = set()
        m = target.monitoring
        if m is not None:
            for part in ("prometheus", "alertmanager"):
                ref = getattr(m, part, None)
                if ref is not None and getattr(ref, "service", None):
                    mon.add(ref.service)
        for s in target.services:       # exporters and the like: on a monitoring network only
            if s.name not in path and any(n in ("monitor", "monitoring") for n in s.networks):
                mon.add(s.name)
        return cls(target, frozenset(path), frozenset(mon), tuple((c, tuple(u)) for c, u in tiers.items()),
                   frozenset(tiers))

    def service(self, instance: str) -> str:
        return self.target.service_of(instance).name

    def coordinators(self, tier: tuple[str, ...], client: str) -> list[str]:
        """Services sharing a network with the tier that are neither in it, its client nor monitoring."""
        tier_services = {self.service(i) for i in tier}
        nets = {n for s in tier_services for n in self.target.service(s).networks}
        return [s.name for s in self.target.services
                if s.name not in tier_services and s.name != client and s.name not in self.monitoring
                and nets & set(s.networks)]

    def roles_over(self, coordinators: list[str]) -> list[str]:
        """Roles asked of a coordinator (Sentinel) or whose members are tier instances."""
        return [r.name for r in self.target.roles
                if (r.service in coordinators) or (r.members and set(r.members) & set(self.target.instance_names()))]


# ─────────────────────────────── generation ───────────────────────────────


def singles(target: Target, seed: int = 0) -> list[Candidate]:
    topo = _Topology.of(target)
    rng = random.Random(seed)
    out: list[Candidate] = []
    pick_seed = rng.randrange(2**31)
    for inst, svc in target.instances():
        single_point = len(topo.group(inst)) == 1 and svc.name in topo.path_services
        on_path = svc.name in topo.path_services
        base = R_SINGLE_POINT if single_point else (R_PATH if on_path else R_OFF_PATH)
        if svc.name in topo.monitoring:
            base = R_OFF_PATH
        sel = {"service": inst, "pick": "one", "seed": pick_seed}
        for verb, bump in (("kill", 0), ("stop", 1), ("pause", 1)):
            out.append(Candidate((Draft(f"container.{verb}", (("select", sel),), f"{verb}-{inst}"),),
                                 verb, base if bump == 0 or base >= R_OFF_PATH else max(base, R_PATH) + bump))
    data_roles = _data_roles(topo)
    readback = target.durability is not None and target.durability.read is not None
    for role in target.roles:
        sel = {"role": role.name, "pick": "one", "seed": pick_seed}
        data = readback and role.name in data_roles
        for verb, rank in (("kill", R_DATA_KILL if data else R_ROLE), ("stop", R_PATH),
                           ("pause", R_DATA_KILL if data else R_PATH)):
            out.append(Candidate((Draft(f"container.{verb}", (("select", sel),), f"{verb}-{role.name}"),),
                                 verb, rank))
    out.extend(_partitions(topo))
    for link in target.links:
        expr = f"{link.client}->{link.upstream}"
        up_single = len(topo.group(link.upstream)) == 1
        rank = R_SINGLE_POINT if up_single else R_PATH
        tag = f"{link.client}-{link.upstream}"
        out.append(Candidate((Draft("network.down", (("link", expr),), f"down-{tag}"),), "link", rank))
        out.append(Candidate((Draft("network.latency", (("link", expr), ("stream", "both"), ("latency", "500ms")),
                                    f"slow-{tag}"),), "link", R_PATH + 1))
        out.append(Candidate((Draft("network.reset_peer", (("link", expr), ("timeout", "0ms")),
                                    f"reset-{tag}"),), "link", R_PATH + 1))
    # The seed orders candidates within a rank; the rank order itself is fixed.
    keyed = [(c.rank, rng.random(), i, c) for i, c in enumerate(_unique(out))]
    return [c for *_, c in sorted(keyed, key=lambda k: k[:3])]


def _data_roles(topo: _Topology) -> set[str]:
    """Roles asked of a data tier's coordinators (Sentinel's primary and replicas)."""
    out: set[str] = set()
    for client, tier in topo.tiers:
        if topo.leaf(tier):
            out.update(topo.roles_over(topo.coordinators(tier, client)))
    return out


def _partitions(topo: _Topology) -> list[Candidate]:
    out: list[Candidate] = []
    t = topo.target
    done: set[str] = set()
    has_readback = t.durability is not None and t.durability.read is not None
    for client, tier in topo.tiers:
        leaf = topo.leaf(tier)
        # Coordinators and roles belong to the data (Sentinel watches Redis, not the apps).
        coord = topo.coordinators(tier, client) if leaf else []
        roles = topo.roles_over(coord) if leaf else []
        if len(tier) >= 2:
            # One member (or a role's holder) cut off from its peers and coordinators; clients still reach it.
            for r in roles:
                others = [x for x in roles if x != r] + coord
                if others:
                    out.append(_split([r], others, f"isolate-{r}", R_DATA_ISOLATE if has_readback else R_ROLE))
            for inst in tier if leaf else ():      # stateless peers do not talk to each other
                peers = [i for i in tier if i != inst] + coord
                out.append(_split([inst], peers, f"isolate-{inst}", R_PARTITION))
            # The clients with a minority of the tier, cut off from the majority (and coordinators).
            minority = tier[: (len(tier) - 1) // 2] or tier[:1]
            majority = [i for i in tier if i not in minority]
            judge = "durability" if leaf and has_readback else "all"
            if leaf and not has_readback:
                pass        # nothing to judge a minority split on: availability loss there is expected
            else:
                data_rank = R_DATA_CLIENTS if leaf and has_readback else R_ROLE
                out.append(_split([client, *minority], [*majority, *coord],
                                  f"{client}-with-{'-'.join(minority)}", data_rank if roles else R_PARTITION, judge))
                for r in roles:
                    rest = [x for x in roles if x != r]
                    if rest:
                        out.append(_split([client, r], rest + coord, f"{client}-with-{r}", data_rank, judge))
        done.update(topo.service(i) for i in tier)
    for s in t.services:
        if s.replicas < 2 or s.name in done or s.name in topo.monitoring:
            continue
        names = s.instance_names()
        rank = R_PARTITION if s.name in topo.path_services or any(r.service == s.name for r in t.roles) else R_OFF_PATH
        out.append(_split([names[0]], list(names[1:]), f"isolate-{names[0]}", rank))
    return out


def _split(a: list[str], b: list[str], label: str, rank: int, judge: str = "all") -> Candidate:
    groups = (tuple(a), tuple(b))
    return Candidate((Draft("partition", (("groups", groups), ("direction", "both")), label),), "partition", rank,
                     judge=judge)


def _unique(cands: list[Candidate]) -> list[Candidate]:
    seen: set[str] = set()
    out = []
    for c in cands:
        if c.name not in seen:
            seen.add(c.name)
            out.append(c)
    return out


def _touches(d: Draft) -> set[str]:
    if d.action == "partition":
        return {n for g in d.get("groups") for n in g}
    sel = d.get("select")
    if sel is not None:
        return {sel.get("service") or sel.get("role")}
    return {d.get("link")}


def pairs(ones: list[Candidate], seed: int = 0, limit: int = 400) -> list[Candidate]:
    """Two singles at once, on different things, in the order of their better single (the
    likeliest pairs first), at most `limit`. Pairs of two partitions are left out (two
    partitions on one namespace's rules would cut each other's paths in ways no one wrote)."""
    rng = random.Random(seed + 1)
    out = []
    for x, y in itertools.combinations(ones, 2):
        if x.family == "partition" and y.family == "partition":
            continue
        dx, dy = x.faults[0], y.faults[0]
        if _touches(dx) & _touches(dy):
            continue
        judge = "durability" if "durability" in (x.judge, y.judge) else "all"
        out.append((max(x.rank, y.rank), x.rank + y.rank, rng.random(),
                    Candidate((dx, dy), "pair", R_PAIR + min(x.rank, y.rank), judge=judge)))
    out.sort(key=lambda k: k[:3])
    return [c for *_, c in out[:limit]]


def generate(target: Target, seed: int = 0, *, with_pairs: bool = True) -> list[Candidate]:
    """Every candidate for `target`: singles (ranked), then pairs. The same seed, the same list."""
    ones = singles(target, seed)
    return ones + (pairs(ones, seed) if with_pairs else [])


# ─────────────────────────────── as an experiment ───────────────────────────────


def window_of(c: Candidate, p: Params) -> float:
    """The candidate's fault window: its own (a shrunk one), else the data tier's for a data-tier
    partition, else the default."""
    if c.window_s is not None:
        return c.window_s
    if c.family == "partition" and c.rank in (R_DATA_ISOLATE, R_DATA_CLIENTS):
        return p.data_window_s
    return p.window_s


def experiment_data(c: Candidate, target: Target, p: Params, *, target_path: str) -> dict[str, Any]:
    """The experiment file's content for candidate `c` (plain YAML-able data)."""
    window = window_of(c, p)
    users = c.users if c.users is not None else p.users
    faults = []
    for i, d in enumerate(c.faults):
        f = {"name": d.label[:44] if len(c.faults) == 1 else f"{d.label[:44]}-{i + 1}", "at": _s(p.at_s),
             "for": _s(window), "action": d.action}
        f.update(d.data())
        faults.append(f)
    slo: dict[str, str] = {} if c.judge == "durability" else {
        "availability": p.availability, "longest_outage": p.longest_outage, "longest_stall": p.longest_stall}
    dur = target.durability
    if dur is not None and dur.read is not None:
        slo.update({"lost_writes": "== 0", "unexpected_writes": "== 0"})
        declared = [inv.name for inv in dur.invariants]
        for name in (declared if p.invariants is None else p.invariants):
            slo[name] = "== 1"
    slo.update(dict(p.extra_slo))
    profile = p.profile or target.load_profiles[0]
    data = {
        "apiVersion": "continuum/v1", "kind": "Experiment",
        "name": c.name[:100],
        "description": (f"Explored: {c.describe()} for {_s(window)} under "
                        + (f"{users} users" if p.load_mode == "closed"
                           else f"{users * p.open_rate_per_user:g} requests/s (open loop, level {users})"))[:2000],
        "target": target_path,
        "duration": _s(p.at_s + window + p.recovery_s),
        "load": _load(p, profile, users),
        "faults": faults,
        # The baseline only: it says whether the stack was ready (else the run is `unsettled`, never
        # a finding). The recovery is the system's answer to the fault, judged by the SLOs; it
        # also tells the runner whether the next settle needs its load probe (runner.py).
        "steady_state": {"availability@baseline": p.steady_availability},
        "slo": slo,
        "min_samples": 50,
    }
    if c.judge != "durability":     # an availability abort would end the run before its read-back
        data["abort_if"] = {"availability_below": p.abort_below, "over": _s(p.abort_over_s)}
    return data


def _load(p: Params, profile: str, level: int) -> dict[str, Any]:
    if p.load_mode == "closed":
        return {"profile": profile, "users": level, "spawn_rate": level, "request_timeout": _s(p.request_timeout_s)}
    rate = level * p.open_rate_per_user
    in_flight = max(1, min(5000, math.ceil(rate * p.request_timeout_s) + level))
    return {"profile": profile, "mode": "open", "rate": f"{rate:g}/s", "users": in_flight,
            "spawn_rate": max(rate, float(in_flight)), "request_timeout": _s(p.request_timeout_s)}


def to_experiment(c: Candidate, target: Target, p: Params, *, target_path: str | None = None) -> Any:
    """Validated by the very code that validates a user's file (a bad candidate is a bug here)."""
    from harness.model.base import FROM_FILE
    from harness.model.experiment import Experiment

    data = experiment_data(c, target, p, target_path=target_path or str(target.root))
    return Experiment.model_validate(data, context={"target": target, FROM_FILE: True})


def _s(x: float) -> str:
    return f"{x:g}s"


__all__ = ["Candidate", "Draft", "Params", "window_of", "generate", "singles", "pairs", "to_experiment", "experiment_data"]
