"""The experiment and target models: parsed once, frozen, then trusted.

Units are normalised at load time so nothing downstream converts again:
durations are float seconds, availability is a ratio in [0, 1], rates are per second.
Loaders live in `harness.loader` (experiments) and `harness.target` (compose targets).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

# Names that may become part of a Docker object name, a file name or a Toxiproxy proxy name.
# Deliberately narrow: nothing from a file should be able to smuggle a path or shell syntax.
NAME_RE = re.compile(r"^[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*$")
NAME_MAX = 48


# ─────────────────────────────── target (compose + x-continuum) ───────────────────────────────


@dataclass(frozen=True)
class HealthCheck:
    test: tuple[str, ...]           # Docker form: ("CMD", "curl", ...) or ("CMD-SHELL", "...")
    interval_s: float = 1.0
    timeout_s: float = 2.0
    retries: int = 30
    start_period_s: float = 0.0


@dataclass(frozen=True)
class PortSpec:
    container_port: int
    host_port: int | None = None    # None: Docker picks a free port; always bound to 127.0.0.1
    protocol: Literal["tcp", "udp"] = "tcp"


@dataclass(frozen=True)
class BuildSpec:
    context: Path                   # absolute, inside the target directory
    dockerfile: str = "Dockerfile"


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    image: str
    build: BuildSpec | None = None
    command: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None
    environment: tuple[tuple[str, str], ...] = ()
    healthcheck: HealthCheck | None = None
    networks: tuple[str, ...] = ()
    depends_on: tuple[str, ...] = ()
    replicas: int = 1
    ports: tuple[PortSpec, ...] = ()
    cap_add: tuple[str, ...] = ()
    stop_grace_s: float = 5.0

    def instance_names(self) -> tuple[str, ...]:
        """Replicas are addressable one by one: app-1, app-2, ...; a single instance keeps its name."""
        if self.replicas == 1:
            return (self.name,)
        return tuple(f"{self.name}-{i}" for i in range(1, self.replicas + 1))


@dataclass(frozen=True)
class NetworkSpec:
    name: str
    internal: bool = True           # backend networks are internal; an edge network may publish


@dataclass(frozen=True)
class LinkSpec:
    """A TCP link routed through the run's Toxiproxy: clients of `upstream` reach the proxy instead.

    `client` is a service name (all its instances); `upstream` is an *instance* name (app-2, redis-1).
    """

    name: str                       # e.g. "lb-app-1"; also the Toxiproxy proxy name
    client: str
    upstream: str
    port: int


@dataclass(frozen=True)
class RoleSpec:
    """A live role resolved at fault time, e.g. which Redis instance is primary right now."""

    name: str                                   # e.g. "redis-primary"
    kind: Literal["sentinel-primary", "sentinel-replicas", "static"]
    service: str | None = None                  # sentinel service to ask (sentinel kinds)
    master_name: str | None = None              # Sentinel master group name
    port: int = 26379
    members: tuple[str, ...] = ()               # static: instance names


@dataclass(frozen=True)
class Endpoint:
    """An entry point the load generator may use; published on 127.0.0.1."""

    service: str                    # instance name, e.g. "lb-1"
    port: int                       # container port


@dataclass(frozen=True)
class AuditSpec:
    """How to fetch the durability audit after load stops."""

    path: str = "/audit"            # HTTP GET on an entry point, JSON body


@dataclass(frozen=True)
class Target:
    name: str
    root: Path                      # directory holding compose.yaml
    services: tuple[ServiceSpec, ...]
    networks: tuple[NetworkSpec, ...]
    links: tuple[LinkSpec, ...] = ()
    roles: tuple[RoleSpec, ...] = ()
    entrypoints: tuple[Endpoint, ...] = ()
    audit: AuditSpec | None = None
    load_profile: Path | None = None            # a locustfile inside the target directory
    load_profiles: tuple[str, ...] = ()         # profile names it offers (user class names)

    def service(self, name: str) -> ServiceSpec:
        for s in self.services:
            if s.name == name:
                return s
        raise KeyError(name)

    def instances(self) -> tuple[tuple[str, ServiceSpec], ...]:
        return tuple((i, s) for s in self.services for i in s.instance_names())

    def link(self, name: str) -> LinkSpec:
        for link in self.links:
            if link.name == name:
                return link
        raise KeyError(name)


# ─────────────────────────────────────── experiments ───────────────────────────────────────

Op = Literal[">=", ">", "<=", "<", "=="]

# Metric name → unit kind. The loader accepts only these; the verdict knows how to compute each.
METRICS: dict[str, Literal["ratio", "seconds", "count", "rate"]] = {
    "availability": "ratio",
    "error_rate": "ratio",
    "latency_p50": "seconds",
    "latency_p95": "seconds",
    "latency_p99": "seconds",
    "latency_max": "seconds",
    "time_to_recover": "seconds",
    "longest_outage": "seconds",
    "throughput": "rate",
    "lost_writes": "count",
    "unexpected_writes": "count",
    "money_conserved": "count",     # 1 when the audit's invariant holds, 0 when not
}


@dataclass(frozen=True)
class Assertion:
    metric: str
    op: Op
    threshold: float                # in the metric's base unit (ratio, seconds, count, per second)
    text: str                       # as written, for messages: ">= 99.9%"

    def holds(self, value: float) -> bool:
        return {
            ">=": value >= self.threshold,
            ">": value > self.threshold,
            "<=": value <= self.threshold,
            "<": value < self.threshold,
            "==": value == self.threshold,
        }[self.op]


@dataclass(frozen=True)
class LoadSpec:
    profile: str                    # a user class name offered by the target's locustfile
    users: int = 20
    spawn_rate: float = 20.0
    request_timeout_s: float = 2.0
    host: str | None = None         # entry point instance; default: the target's first


@dataclass(frozen=True)
class Selector:
    service: str | None = None      # service name (all its instances) or an instance name
    role: str | None = None         # live role, resolved at injection time
    pick: Literal["one", "all", "count", "percent"] = "one"
    count: int | None = None
    percent: float | None = None
    seed: int | None = None


@dataclass(frozen=True)
class Toxic:
    """One Toxiproxy toxic, attributes already in Toxiproxy's units (ms, KB/s, bytes, µs)."""

    type: str
    attributes: tuple[tuple[str, int], ...]
    stream: Literal["upstream", "downstream"] = "downstream"
    toxicity: float = 1.0


FaultFamily = Literal["container", "network", "partition", "resource"]

# action → family. "network.down" disables the proxy; other network actions add toxics.
ACTIONS: dict[str, FaultFamily] = {
    "container.kill": "container",
    "container.stop": "container",
    "container.pause": "container",
    "container.restart": "container",
    "container.rolling_restart": "container",
    "network.latency": "network",
    "network.bandwidth": "network",
    "network.timeout": "network",
    "network.reset_peer": "network",
    "network.slow_close": "network",
    "network.slicer": "network",
    "network.limit_data": "network",
    "network.down": "network",
    "network.loss": "resource",        # tc netem inside the container's namespace
    "partition": "partition",
    "resource.cpu": "resource",
    "resource.memory": "resource",
}


@dataclass(frozen=True)
class FaultSpec:
    name: str                       # unique in the experiment; default "<action>#<index>"
    action: str
    at_s: float                     # offset from the start of load
    for_s: float | None = None      # window length; None: instantaneous (kill, restart)
    select: Selector | None = None  # container / resource faults
    links: tuple[str, ...] = ()     # network faults: link names (a link group expands here)
    toxics: tuple[Toxic, ...] = ()  # network faults other than down
    groups: tuple[tuple[str, ...], tuple[str, ...]] | None = None   # partition: A | B
    one_way: bool = False           # partition: drop only A → B
    params: tuple[tuple[str, float], ...] = ()  # resource faults: cpu workers, memory bytes, loss %
    revert: bool = True             # container.kill/stop: start again at the end of the window

    @property
    def end_s(self) -> float:
        return self.at_s + (self.for_s or 0.0)


@dataclass(frozen=True)
class AbortRule:
    availability_below: float       # ratio
    over_s: float                   # sliding window length


@dataclass(frozen=True)
class Experiment:
    name: str
    description: str
    target: Path                    # absolute path of the target directory
    duration_s: float
    load: LoadSpec
    faults: tuple[FaultSpec, ...] = ()
    steady_state: tuple[Assertion, ...] = ()
    slo: tuple[Assertion, ...] = ()
    abort_if: AbortRule | None = None
    recovery_window_s: float = 3.0  # a window that must meet the SLO to count as recovered
    min_samples: int = 100          # fewer successful+failed requests than this: INCONCLUSIVE
    source: Path | None = None      # the file it came from


# ─────────────────────────────────────── samples ───────────────────────────────────────


@dataclass(frozen=True, slots=True)
class Sample:
    """One request as the load generator saw it. `t` is CLOCK_MONOTONIC seconds (system-wide)."""

    t: float                        # when the request started
    latency_s: float
    ok: bool
    name: str = ""                  # request name in the profile, e.g. "transfer"
    error: str = ""                 # short error class when not ok


# ─────────────────────────────────── what a run records ───────────────────────────────────


@dataclass(frozen=True)
class Phase:
    name: str                       # "baseline", "fault:<fault name>", "recovery"
    start_t: float                  # CLOCK_MONOTONIC seconds, same clock as Sample.t
    end_t: float


@dataclass(frozen=True)
class FaultEvent:
    fault: str                      # FaultSpec.name
    action: str
    targets: tuple[str, ...]        # instance or link names it hit
    injected_t: float
    reverted_t: float | None        # None: instantaneous, or never reverted (then detail says why)
    detail: str = ""


@dataclass(frozen=True)
class WriteRecord:
    """A write the load generator attempted. The id is the client's idempotency key."""

    id: str
    outcome: Literal["acked", "unknown"]    # unknown: error/timeout, the write may or may not exist
    t: float


@dataclass(frozen=True)
class AuditSnapshot:
    """What the target's audit endpoint returned after load stopped."""

    present_ids: frozenset[str]     # every committed transfer id
    total_balance: int
    expected_total: int             # money in the system at creation; conservation means equal


@dataclass(frozen=True)
class Note:
    t: float
    text: str
    author: str = "operator"


@dataclass(frozen=True)
class RunRecord:
    """Everything measured in one experiment run; input to harness.measure.evaluate()."""

    experiment: Experiment
    run_id: str
    started_at: str                 # ISO-8601 wall clock, for humans
    t0: float                       # monotonic time load started; offsets in reports are t - t0
    t_end: float                    # monotonic time load stopped
    samples: tuple[Sample, ...]
    phases: tuple[Phase, ...]
    faults: tuple[FaultEvent, ...]
    writes: tuple[WriteRecord, ...] = ()
    audit: AuditSnapshot | None = None
    notes: tuple[Note, ...] = ()
    aborted: str | None = None      # why abort_if stopped the run
    harness_error: str | None = None  # a HarnessError message: verdict ERROR whatever was measured
    interrupted: bool = False
