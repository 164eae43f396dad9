"""The target: a Compose file plus the `x-continuum` extension.

`ComposeFile` is the shape of the file: what a user may write, with its defaults and limits
(and so the target JSON Schema). Which Compose keys are honoured, ignored with a warning or
refused (and why) is the acceptance table in `harness.model.compose`; roles and durability
read-backs are declared with the models of `harness.model.roles` and `harness.model.durability`.
`ComposeFile.to_target(root)` does the checks that need the whole file or the disk (paths
inside the target directory, names that must exist, dependency cycles, the network rule for
links), lists every problem it finds, and returns the frozen `Target` the harness runs, with
its warnings. Nothing here touches Docker. Documented in docs/target-format.md.

The `x-continuum` block may also live in its own file, `continuum.yaml`, beside or below an
unchanged Compose file (`harness.loader`; written by `continuum init`).
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, WithJsonSchema, field_validator

from harness.model.base import At, Bool, Internal, Model, internal
from harness.model.imageref import parse_image_reference
from harness.model.isolation import (
    ALLOWED_CAPABILITIES,
    CAPABILITY_HELP,
    check_capability,
    reserved_instance,
    reserved_network,
)
from harness.model.compose import (
    Cpus,
    Cpuset,
    Dependency,
    DependsOn,
    DockerSize,
    EnvFiles,
    Expose,
    ExtraHosts,
    Groups,
    Hostname,
    Ignored,
    Ipc,
    Labels,
    LegacyLinks,
    Profiles,
    Refused,
    Restart,
    SecurityOpt,
    Signal,
    Sysctls,
    Tmpfs,
    Ulimits,
    User,
    VolumeDeclIn,
    VolumeMount,
    Volumes,
    ContainerName,
    ContainerPath,
    parse_env_file,
    warnings_of,
)
from harness.model.backup import BackupDecl, DrillSpec, RestoreDecl, check_drill
from harness.model.durability import (
    DurabilityDecl,
    DurabilitySpec,
    InvariantSpec,
    ReadDecl,
    ReadSpec,
    ledger_audit,
)
from harness.model.roles import MasterName, RoleDecl, RoleSpec, UrlPath  # noqa: F401 (re-exported)
from harness.model.monitoring import MonitoringSpec, check_monitoring
from harness.model.units import (
    NAME_MAX,
    NAME_RE,
    Bounded,
    Duration,
    Name,
    Port,
    Text,
    got,
    short,
)

# Compose's own file names, in Compose's order of preference; `continuum.yaml` holds an
# x-continuum block for a Compose file kept unchanged (see harness.loader).
COMPOSE_FILES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")
OVERLAY_FILE = "continuum.yaml"
HOST_CLIENT = "host"                 # the link client that stands for the load generator's host
DEFAULT_NETWORK = "default"          # what Compose attaches a service with no `networks` to
EPHEMERAL_PORTS = range(32768, 61001)   # Toxiproxy listening here fails intermittently
MAX_STOP_GRACE_S = 120.0             # teardown waits this long per container at most
MAX_SERVICES = 200                   # keeps validation linear and every check bounded
MAX_LIST = 1000                      # ports, environment variables per service
IDENT_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
ENV_KEY_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
ENV_FILE_MAX = 256 * 1024


def _pattern(pattern: str, description: str, max_length: int = 255) -> Any:
    import re

    rx = re.compile(pattern)

    def parse(value: Any) -> str:
        if not isinstance(value, str):
            raise ValueError(f"expected {description}, {got(value)}")
        if len(value) > max_length or not rx.match(value):
            raise ValueError(f"{short(value)} is not valid; expected {description}")
        return value

    return Annotated[str, BeforeValidator(parse), WithJsonSchema(
        {"type": "string", "pattern": pattern, "maxLength": max_length, "description": description})]


def _image(value: Any) -> str:
    try:
        parse_image_reference(value)
    except ValueError as exc:
        raise ValueError(f"{short(value)}: {exc}") from None
    return value


ImageRef = Annotated[str, BeforeValidator(_image), WithJsonSchema(
    {"type": "string", "minLength": 1, "maxLength": 512,
     "description": "an image reference as Docker reads it: [registry[:port]/]name[:tag][@digest]"})]
Ident = _pattern(IDENT_PATTERN, "a Python class name", 100)
Capability = Annotated[str, BeforeValidator(check_capability), WithJsonSchema(
    {"type": "string", "enum": sorted(ALLOWED_CAPABILITIES), "description": CAPABILITY_HELP})]
# Dropping a capability only narrows the container: any capability name may be dropped.
DroppedCapability = _pattern(r"^[A-Z_]+$", "a Linux capability such as NET_RAW", 64)


MAX_COMMAND_STRING = 16 * 1024     # shlex is quadratic on long quoted words: bound it first


def _argv(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        if len(value) > MAX_COMMAND_STRING:
            raise ValueError(f"a command written as one string may have at most {MAX_COMMAND_STRING} "
                             f"characters (this one has {len(value)}); write it as a list")
        try:
            return tuple(shlex.split(value))      # split as Compose does; never run by a shell
        except ValueError as exc:
            raise ValueError(f"cannot split into words: {exc}") from None
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ValueError(f"expected a list of strings (or one string, split like a shell word list), "
                     f"{got(value)}")


Argv = Annotated[tuple[str, ...], BeforeValidator(_argv), WithJsonSchema(
    {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}],
     "description": "a list of strings (or one string, split like a shell word list)"})]


def _names(value: Any) -> tuple[str, ...]:
    """A list of names, or a map whose keys are the names (Compose allows both)."""
    if value is None:
        return ()
    if isinstance(value, dict):
        items = list(value)
        for k, v in value.items():
            if v is not None and not (isinstance(v, dict) and set(v) <= {"condition"}):
                raise At(f"expected null or a mapping with 'condition', {got(v)}", k)
            cond = v.get("condition") if isinstance(v, dict) else None
            if cond not in (None, "service_started", "service_healthy"):
                raise At(f"{short(cond)} is not one of: service_started, service_healthy", k,
                         "condition")
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        raise ValueError(f"expected a list of names, {got(value)}")
    if len(items) > MAX_SERVICES:
        raise ValueError(f"at most {MAX_SERVICES} names here, not {len(items)}")
    out: list[str] = []
    seen: set[str] = set()                  # a set: uniqueness stays linear in the list's length
    for i, n in enumerate(items):
        if not isinstance(n, str) or len(n) > NAME_MAX or not NAME_RE.match(n):
            raise At(f"expected a name of lowercase letters and digits (e.g. redis-1), {got(n)}",
                     n if isinstance(value, dict) else i, key=isinstance(value, dict))
        if n in seen:
            raise At("list items must be unique", i)
        seen.add(n)
        out.append(n)
    return tuple(out)


NameList = Annotated[tuple[str, ...], BeforeValidator(_names), WithJsonSchema(
    {"anyOf": [{"type": "array", "items": {"type": "string", "pattern": NAME_RE.pattern}},
               {"type": "object", "propertyNames": {"pattern": NAME_RE.pattern}}],
     "description": "a list of names, or a map of name: {condition: ...}"})]


# ─────────────────────────────────────── services ───────────────────────────────────────


class HealthCheck(Model):
    # Docker form: ("CMD", "curl", ...) or ("CMD-SHELL", "..."); None: the image's own test,
    # with these timings (Compose's meaning of a healthcheck without `test`).
    test: tuple[str, ...] | None = None
    interval_s: Duration(min_s=0.001, max_s=3600) = Field(1.0, alias="interval")
    timeout_s: Duration(min_s=0.001, max_s=3600) = Field(2.0, alias="timeout")
    retries: Bounded(int, ge=1, le=1000) = 30
    start_period_s: Duration(positive=False, min_s=0.001, max_s=3600) = Field(0.0, alias="start_period")
    disable: Bool = False
    start_interval: Ignored("", "Docker 20.10 has no start interval") = None

    @field_validator("test", mode="before")
    @classmethod
    def _test(cls, value: Any) -> tuple[str, ...]:
        if isinstance(value, str) and value:
            return ("CMD-SHELL", value)
        if not isinstance(value, (list, tuple)) or not value or not all(isinstance(v, str) for v in value):
            raise ValueError("expected a command list [CMD, ...] / [CMD-SHELL, ...] or a shell "
                             f"string, {got(value)}")
        head = value[0]
        if head == "NONE":
            return ("NONE",)
        if head not in ("CMD", "CMD-SHELL"):
            raise At(f"healthcheck test must start with CMD, CMD-SHELL or NONE, got {head!r}", 0)
        if len(value) < 2 or (head == "CMD-SHELL" and len(value) != 2):
            raise ValueError(f"{head} needs {'exactly one' if head == 'CMD-SHELL' else 'a'} "
                             "command after it")
        return tuple(value)

    @property
    def off(self) -> bool:
        return self.disable or self.test == ("NONE",)


class PortSpec(Model):
    container_port: int
    host_port: int | None = None    # None: a free port chosen at creation; always on 127.0.0.1
    protocol: Literal["tcp", "udp"] = "tcp"


_PORT_USAGE = 'write "CONTAINER" or "HOST:CONTAINER" (always published on 127.0.0.1)'


def _port(p: Any) -> PortSpec:
    if isinstance(p, bool) or not isinstance(p, (int, str)):
        raise ValueError(f"expected a port: \"CONTAINER\" or \"HOST:CONTAINER\", {got(p)}")
    if isinstance(p, int):
        if not 1 <= p <= 65535:
            raise ValueError(f"{p} is out of range; must be at most 65535")
        return PortSpec(container_port=p)
    text, proto = p.strip()[:64], "tcp"
    if "/" in text:
        text, _, proto = text.partition("/")
        if proto not in ("tcp", "udp"):
            raise ValueError(f"port protocol must be tcp or udp, got {proto!r}")
    parts = text.split(":")
    if len(parts) == 3:
        ip, host, container = parts
        if ip not in ("127.0.0.1", "localhost"):
            raise ValueError(f"binding to {ip or 'all interfaces'!r} is not allowed: ports are "
                             f"only ever published on 127.0.0.1; {_PORT_USAGE}")
    elif len(parts) == 2:
        host, container = parts
        if "." in host or "[" in host:
            raise ValueError(f"{p!r} looks like an interface binding; {_PORT_USAGE}")
    elif len(parts) == 1:
        host, container = "", parts[0]
    else:
        raise ValueError(f"{short(p)} is not a port mapping; {_PORT_USAGE}")

    def number(s: str) -> int:
        if not s.isdigit() or not s.isascii() or len(s) > 5 or not 1 <= int(s) <= 65535:
            raise ValueError(f"{s!r} in {p!r} is not a port number 1-65535 (ranges are not "
                             f"supported); {_PORT_USAGE}")
        return int(s)

    return PortSpec(container_port=number(container), host_port=number(host) if host else None,
                    protocol=proto)  # type: ignore[arg-type]


def _ports(value: Any) -> tuple[PortSpec, ...]:
    if isinstance(value, tuple) and all(isinstance(p, PortSpec) for p in value):
        return value
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"expected a list of ports, {got(value)}")
    if len(value) > MAX_LIST:
        raise ValueError(f"at most {MAX_LIST} ports per service, not {len(value)}")
    out: list[PortSpec] = []
    seen: set[tuple[int, str]] = set()      # linear, not a scan of `out` per port
    for i, p in enumerate(value):
        try:
            spec = _port(p)
        except ValueError as exc:
            raise At(str(exc), i) from None
        if (spec.container_port, spec.protocol) in seen:
            raise At(f"container port {spec.container_port} is listed twice", i)
        seen.add((spec.container_port, spec.protocol))
        out.append(spec)
    return tuple(out)


Ports = Annotated[tuple[PortSpec, ...], BeforeValidator(_ports), WithJsonSchema(
    {"type": "array", "items": {"anyOf": [{"type": "integer", "minimum": 1, "maximum": 65535},
                                          {"type": "string", "minLength": 1, "maxLength": 64}],
                                "description": "a port: \"CONTAINER\" or \"HOST:CONTAINER\""}})]


def _environment(value: Any) -> tuple[tuple[str, str], ...]:
    import re

    key_rx = re.compile(ENV_KEY_PATTERN)
    if isinstance(value, tuple):
        return value
    if isinstance(value, (dict, list)) and len(value) > MAX_LIST:
        raise ValueError(f"at most {MAX_LIST} environment variables per service, not {len(value)}")
    pairs: list[tuple[str, str]] = []
    if isinstance(value, dict):
        for k, v in value.items():
            if not key_rx.match(k):
                raise At(f"{k!r} is not an accepted key here; expected an environment variable "
                         "name", k, key=True)
            if isinstance(v, bool) or not isinstance(v, (str, int, float)):
                raise At(f"expected a string or a number, {got(v)}", k)
            pairs.append((k, v if isinstance(v, str) else repr(v) if isinstance(v, float) else str(v)))
    elif isinstance(value, list):
        seen: set[str] = set()
        for i, item in enumerate(value):
            if not isinstance(item, str) or "=" not in item or not key_rx.match(item.partition("=")[0]):
                raise At(f"expected NAME=value, {got(item)}", i)
            k, _, v = item.partition("=")
            if k in seen:
                raise At(f"environment variable {k!r} is set twice", i)
            seen.add(k)
            pairs.append((k, v))
    else:
        raise ValueError(f"expected a map of NAME: value (strings or numbers) or a list of "
                         f"NAME=value, {got(value)}")
    return tuple(pairs)


Environment = Annotated[tuple[tuple[str, str], ...], BeforeValidator(_environment), WithJsonSchema(
    {"anyOf": [{"type": "object", "propertyNames": {"pattern": ENV_KEY_PATTERN},
                "additionalProperties": {"type": ["string", "number"]}},
               {"type": "array", "items": {"type": "string", "pattern": r"^[A-Za-z_][A-Za-z0-9_]*="}}],
     "description": "a map of NAME: value (strings or numbers) or a list of NAME=value"})]


_BuildIgnored = Ignored("", "the build runs on this machine's engine with its defaults")
_Swarm = Ignored("", "Swarm only")


class BuildSpec(Model):
    context: Path                   # absolute, inside the target directory (after to_target)
    dockerfile: str = "Dockerfile"
    args: Environment = ()          # build arguments (a map or a KEY=value list)
    target: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")] | None = None
    # Accepted, ignored (validate warns): the build runs on this machine's engine.
    cache_from: _BuildIgnored = None
    cache_to: _BuildIgnored = None
    labels: _BuildIgnored = None
    network: _BuildIgnored = None
    shm_size: _BuildIgnored = None
    extra_hosts: _BuildIgnored = None
    platforms: _BuildIgnored = None
    tags: _BuildIgnored = None
    pull: _BuildIgnored = None
    no_cache: _BuildIgnored = None

    @classmethod
    def parse(cls, value: Any) -> Any:
        if isinstance(value, str) and value:
            return {"context": value}
        return value

    @field_validator("context", mode="before")
    @classmethod
    def _context(cls, value: Any) -> Any:
        if isinstance(value, Path):
            return value
        if not isinstance(value, str) or not value:
            raise ValueError(f"expected a build context path, {got(value)}")
        if "://" in value or value.startswith("git@"):
            raise ValueError(f"{short(value)}: a remote build context is refused (nothing is "
                             "fetched from outside this machine); give a directory of the target")
        return Path(value)

    @field_validator("dockerfile", mode="before")
    @classmethod
    def _dockerfile(cls, value: Any) -> str:
        if not isinstance(value, str) or not value:
            raise ValueError(f"expected a dockerfile path, {got(value)}")
        return value


Build = Annotated[BuildSpec, BeforeValidator(BuildSpec.parse), WithJsonSchema(
    {"anyOf": [{"type": "string", "minLength": 1},
               {"type": "object", "properties": {"context": {"type": "string", "minLength": 1},
                                                 "dockerfile": {"type": "string", "minLength": 1},
                                                 "args": {}, "target": {"type": "string"}},
                "required": ["context"]}],
     "description": "a build context path, or {context, dockerfile, args, target}"})]


class Resources(Model):
    cpus: Cpus | None = None
    memory: DockerSize | None = None
    pids: Bounded(int, ge=1, le=2**31) | None = None
    devices: Refused("devices", (None,)) = None
    generic_resources: _Swarm = None


class DeployResources(Model):
    limits: Resources = Resources()
    reservations: Resources = Resources()


class DeployRestart(Model):
    condition: Literal["none", "on-failure", "any"] = "any"
    max_attempts: Bounded(int, ge=0, le=10000) = 0
    delay: Ignored("", "Docker's restart policy has no delay or window") = None
    window: Ignored("", "Docker's restart policy has no delay or window") = None

    def as_restart(self) -> str:
        if self.condition == "none":
            return "no"
        if self.condition == "on-failure":
            return f"on-failure:{self.max_attempts}" if self.max_attempts else "on-failure"
        return "always"


class Deploy(Model):
    replicas: Bounded(int, ge=1, le=20) = 1
    resources: DeployResources = DeployResources()
    restart_policy: DeployRestart | None = None
    # Swarm-only settings: accepted, ignored, warned.
    mode: _Swarm = None
    placement: _Swarm = None
    update_config: _Swarm = None
    rollback_config: _Swarm = None
    endpoint_mode: _Swarm = None
    labels: _Swarm = None


class ServiceSpec(Model):
    """One service of a Compose file; every key in `harness.model.compose.KEYS` has a field."""

    name: Internal[str] = internal("")      # the Compose key
    image: ImageRef = None                  # type: ignore[assignment]  # with build: <target>-<service>
    build: Build | None = None
    command: Argv | None = None
    entrypoint: Argv | None = None
    environment: Environment = ()           # after to_target: env_file entries first, then these
    env_file: EnvFiles = ()
    healthcheck: HealthCheck | None = None
    networks: NameList = ()
    needs: DependsOn = Field((), alias="depends_on")
    deploy: Deploy = Deploy()
    scale: Bounded(int, ge=1, le=20) | None = None
    ports: Ports = ()
    expose: Expose = ()
    cap_add: Annotated[tuple[Capability, ...], Field(max_length=64)] = ()
    cap_drop: Annotated[tuple[DroppedCapability, ...], Field(max_length=64)] = ()
    stop_grace_s: Duration(positive=False, max_s=MAX_STOP_GRACE_S) = Field(5.0, alias="stop_grace_period")
    stop_signal: Signal | None = None
    container_name: ContainerName | None = None
    hostname: Hostname | None = None
    domainname: Hostname | None = None
    labels: Labels = ()
    user: User | None = None
    working_dir: ContainerPath | None = None
    volumes: Volumes = ()
    tmpfs: Tmpfs = ()
    restart: Restart | None = None
    ulimits: Ulimits = ()
    init: Bool | None = None
    read_only: Bool = False
    tty: Bool = False
    stdin_open: Bool = False
    shm_size: DockerSize | None = None
    mem_limit: DockerSize | None = None
    memswap_limit: DockerSize | None = None
    mem_reservation: DockerSize | None = None
    cpus: Cpus | None = None
    cpu_shares: Bounded(int, ge=2, le=262144) | None = None
    cpuset: Cpuset | None = None
    pids_limit: Bounded(int, ge=-1, le=2**31) | None = None
    group_add: Groups = ()
    sysctls: Sysctls = ()
    extra_hosts: ExtraHosts = ()
    security_opt: SecurityOpt = ()
    ipc: Ipc = None
    profiles: Profiles = ()
    links: LegacyLinks = None
    # Refused, each with its reason (harness.model.compose.KEYS).
    privileged: Refused("privileged") = None
    network_mode: Refused("network_mode", (None,)) = None
    pid: Refused("pid", (None,)) = None
    uts: Refused("uts", (None,)) = None
    userns_mode: Refused("userns_mode", (None,)) = None
    cgroup: Refused("cgroup", (None, "private")) = None
    cgroup_parent: Refused("cgroup_parent", (None,)) = None
    devices: Refused("devices", (None, ())) = None
    device_cgroup_rules: Refused("device_cgroup_rules", (None,)) = None
    gpus: Refused("gpus", (None,)) = None
    oom_kill_disable: Refused("oom_kill_disable") = None
    volumes_from: Refused("volumes_from", (None,)) = None
    external_links: Refused("external_links", (None,)) = None
    extends: Refused("extends", (None,)) = None
    secrets: Refused("secrets", (None,)) = None
    configs: Refused("configs", (None,)) = None
    # Accepted and ignored; `validate` warns (harness.model.compose.KEYS says why).
    logging: Ignored("logging") = None
    platform: Ignored("platform") = None
    pull_policy: Ignored("pull_policy") = None
    dns: Ignored("dns") = None
    dns_search: Ignored("dns_search") = None
    dns_opt: Ignored("dns_opt") = None
    mac_address: Ignored("mac_address") = None
    runtime: Ignored("runtime") = None
    storage_opt: Ignored("storage_opt") = None
    isolation: Ignored("isolation") = None
    annotations: Ignored("annotations") = None
    attach: Ignored("attach") = None
    develop: Ignored("develop") = None
    post_start: Ignored("post_start") = None
    pre_stop: Ignored("pre_stop") = None
    credential_spec: Ignored("credential_spec") = None
    cpu_count: Ignored("cpu_count") = None
    cpu_percent: Ignored("cpu_percent") = None
    cpu_period: Ignored("cpu_period") = None
    cpu_quota: Ignored("cpu_quota") = None
    cpu_rt_period: Ignored("cpu_rt_period") = None
    cpu_rt_runtime: Ignored("cpu_rt_runtime") = None
    blkio_config: Ignored("blkio_config") = None
    mem_swappiness: Ignored("mem_swappiness") = None
    oom_score_adj: Ignored("oom_score_adj") = None

    @classmethod
    def _input_filter(cls, data: Any) -> Any:       # extensions (x-*) are ignored, as Compose does
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if not (isinstance(k, str) and k.startswith("x-"))}
        return data

    @field_validator("healthcheck", mode="after")
    @classmethod
    def _none(cls, value: HealthCheck | None) -> HealthCheck | None:
        # Kept as ("NONE",): switched off, the image's own health check is off too.
        return HealthCheck(test=("NONE",)) if value is not None and value.off else value

    @field_validator("cap_add", "cap_drop", mode="after")
    @classmethod
    def _unique(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        # Each item is on the allow-list (harness.model.isolation); CAP_X and X are one item.
        if len(set(value)) != len(value):
            raise ValueError("list items must be unique (CAP_NET_ADMIN and NET_ADMIN are the same)")
        return value

    @property
    def depends_on(self) -> tuple[str, ...]:
        """The names of the services this one depends on (`needs` has their conditions)."""
        return tuple(d.name for d in self.needs)

    @property
    def restart_policy(self) -> str:
        if self.restart is not None:
            return self.restart
        if self.deploy.restart_policy is not None:
            return self.deploy.restart_policy.as_restart()
        return "no"

    @property
    def replicas(self) -> int:
        if "replicas" not in self.deploy.model_fields_set and self.scale is not None:
            return self.scale
        return self.deploy.replicas

    def instance_names(self) -> tuple[str, ...]:
        """Replicas are addressable one by one: app-1, app-2, ...; a single instance keeps its name."""
        if self.replicas == 1:
            return (self.name,)
        return tuple(f"{self.name}-{i}" for i in range(1, self.replicas + 1))


class NetworkOptions(Model):
    internal: Bool = False


class NetworkSpec(Model):
    name: str
    internal: bool = False


# ─────────────────────────────────────── x-continuum ───────────────────────────────────────


class LinkDecl(Model):
    client: Name = Field(alias="from")
    to: Name
    port: Port


class EndpointDecl(Model):
    service: Name
    port: Port


class AuditDecl(Model):
    """The ledger's original read-back (kept: `durability` is the general form of it)."""

    path: UrlPath = "/audit"


class LoadDecl(Model):
    locustfile: Text(max_length=4096, min_length=1)
    profiles: Annotated[tuple[Ident, ...], Field(min_length=1)]


class XContinuum(Model):
    links: tuple[LinkDecl, ...] = ()
    roles: dict[Name, RoleDecl] = {}
    entrypoints: tuple[EndpointDecl, ...] = ()
    durability: DurabilityDecl | None = None
    audit: AuditDecl | None = None
    load: LoadDecl | None = None
    monitoring: MonitoringSpec | None = None
    backup: BackupDecl | None = None        # a drill's backup and restore (harness.model.backup)
    restore: RestoreDecl | None = None


class Overlay(XContinuum):
    """`continuum.yaml`: the x-continuum block in a file of its own, for a Compose file kept as
    it is (`compose` names it, relative to this file)."""

    compose: Text(max_length=4096, min_length=1)
    name: Name | None = None


# ─────────────────────────────────────── the runtime target ───────────────────────────────────────


class LinkSpec(Model):
    """A TCP link routed through the run's Toxiproxy: clients of `upstream` reach the proxy instead.

    `client` is a service name (all its instances) or "host"; `upstream` is an *instance* name.
    """

    name: str                       # e.g. "lb-app-1"; also the Toxiproxy proxy name
    client: str
    upstream: str
    port: int


class Endpoint(Model):
    """An entry point the load generator may use; published on 127.0.0.1."""

    service: str                    # a service or an instance name
    port: int                       # container port


class VolumeSpec(Model):
    """A named volume of the target: one per run, labelled with the run id, removed with it."""

    name: str
    labels: tuple[tuple[str, str], ...] = ()


class Target(Model):
    name: str
    root: Path                      # the target directory (where the Compose file is)
    services: tuple[ServiceSpec, ...]
    networks: tuple[NetworkSpec, ...]
    links: tuple[LinkSpec, ...] = ()
    roles: tuple[RoleSpec, ...] = ()
    entrypoints: tuple[Endpoint, ...] = ()
    durability: DurabilitySpec | None = None
    volumes: tuple[VolumeSpec, ...] = ()
    load_profile: Path | None = None            # a locustfile inside the target directory
    load_profiles: tuple[str, ...] = ()         # profile names it offers (user class names)
    left_out: tuple[str, ...] = ()              # services with profiles: not started
    warnings: tuple[str, ...] = ()              # file:line:column: what is accepted but ignored
    monitoring: MonitoringSpec | None = None    # its Prometheus / Alertmanager (harness.model.monitoring)
    drill: DrillSpec | None = None              # how it is backed up and restored (harness.model.backup)

    def service(self, name: str) -> ServiceSpec:
        for s in self.services:
            if s.name == name:
                return s
        raise KeyError(name)

    def instances(self) -> tuple[tuple[str, ServiceSpec], ...]:
        return tuple((i, s) for s in self.services for i in s.instance_names())

    def instance_names(self) -> tuple[str, ...]:
        return tuple(i for i, _ in self.instances())

    def service_of(self, instance: str) -> ServiceSpec:
        for i, s in self.instances():
            if i == instance:
                return s
        raise KeyError(instance)

    def link(self, name: str) -> LinkSpec:
        for link in self.links:
            if link.name == name:
                return link
        raise KeyError(name)

    def role(self, name: str) -> RoleSpec | None:
        return next((r for r in self.roles if r.name == name), None)

    def expand(self, name: str) -> tuple[str, ...] | None:
        """A service → its instances; an instance → itself; anything else → None."""
        for s in self.services:
            if s.name == name:
                return s.instance_names()
        return (name,) if name in self.instance_names() else None


# ─────────────────────────────────────── the file ───────────────────────────────────────


VolumeName = _pattern(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", "a volume name", 64)


class ComposeFile(Model):
    """A target's Compose file: services, networks, volumes and x-continuum."""

    version: Annotated[str | float | int, Field(union_mode="left_to_right")] | None = None
    name: Name | None = None
    services: Annotated[dict[Name, ServiceSpec], Field(min_length=1, max_length=MAX_SERVICES)]
    networks: Annotated[dict[Name, NetworkOptions | None], Field(max_length=MAX_SERVICES)] = {}
    volumes: Annotated[dict[VolumeName, VolumeDeclIn], Field(max_length=MAX_SERVICES)] = {}
    include: Refused("include", (None,)) = None
    secrets: Refused("secrets", (None,)) = None
    configs: Refused("configs", (None,)) = None
    x_continuum: XContinuum = Field(XContinuum(), alias="x-continuum")

    @classmethod
    def _extension(cls, key: Any) -> bool:
        return isinstance(key, str) and key.startswith("x-") and key != "x-continuum"

    @classmethod
    def _input_filter(cls, data: Any) -> Any:       # extensions (x-*) are ignored, as Compose does
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if not cls._extension(k)}
        return data

    def check(self, root: Path, xroot: Path | None = None) -> "tuple[Target, list[Issue]]":
        """Cross-check the whole file and build the Target, with its warnings. `xroot` is where
        paths of the x-continuum block are relative to (its own file's directory). Raises
        `TargetProblems` listing every problem found."""
        return _TargetBuilder(self, root, xroot or root).build()

    def to_target(self, root: Path, xroot: Path | None = None) -> Target:
        return self.check(root, xroot)[0]


Issue = tuple[tuple, str, bool]         # (path in the file, message, points at the key)


class TargetProblems(Exception):
    """Every problem the cross-checks found, each an `At` with its path in the file."""

    def __init__(self, problems: list[At]):
        super().__init__(problems[0].message)
        self.problems = problems


class _TargetBuilder:
    def __init__(self, compose: ComposeFile, root: Path, xroot: Path):
        self.c = compose
        self.root = root
        self.xroot = xroot
        self.problems: list[At] = []
        self.warnings: list[Issue] = []

    def _try(self, fn: Any, *args: Any, default: Any = None) -> Any:
        """Run one check; a problem is recorded and the build goes on, so all are listed."""
        try:
            return fn(*args)
        except At as exc:
            self.problems.append(exc)
            return default

    def _warn(self, message: str, *path: Any, key: bool = True) -> None:
        self.warnings.append((tuple(path), message, key))

    def build(self) -> tuple[Target, list[Issue]]:
        name = self._try(self._name, default="target")
        self._try(self._volume_decls)
        services = tuple(self._try(self._service, n, s, default=s.model_copy(update={
            "name": n, "networks": s.networks or (DEFAULT_NETWORK,)}))
            for n, s in self.c.services.items())
        left_out = tuple(s.name for s in services if s.profiles)
        for s in services:
            if s.profiles:
                self._warn(f"service {s.name!r} has profiles ({', '.join(s.profiles)}) and is not "
                           "started: the harness enables no profile", "services", s.name,
                           "profiles")
        services = tuple(self._try(self._drop_left_out, s, left_out, default=s)
                         for s in services if s.name not in left_out)
        by_name = {s.name: s for s in services}
        networks = self._try(self._networks, services, default=())
        instances = self._try(self._instances, services, default={})
        self._try(self._check_depends, services, by_name)
        self._try(self._aliases, services, instances)
        xc = self.c.x_continuum
        links = self._try(self._links, xc.links, by_name, instances, default=())
        roles = self._try(self._roles, xc.roles, by_name, instances, default=())
        entrypoints = self._try(self._entrypoints, xc.entrypoints, by_name, instances, links,
                                default=())
        locustfile, profiles = None, ()
        if xc.load is not None:
            locustfile = self._try(lambda: _inside_path(
                self.xroot, xc.load.locustfile, ("x-continuum", "load", "locustfile"),
                what="locustfile", kind="file"))
            profiles = xc.load.profiles
        durability = self._try(self._durability, xc, by_name, instances, entrypoints,
                               locustfile)
        monitoring = self._try(self._monitoring, xc, by_name) if xc.monitoring is not None else None
        drill = self._try(self._drill, xc, services, instances, roles)
        if self.problems:
            raise TargetProblems(self.problems)
        volumes = tuple(VolumeSpec(name=n, labels=v.labels) for n, v in self.c.volumes.items())
        target = Target(name=name, root=self.root, services=services, networks=networks,
                        links=links, roles=roles, entrypoints=entrypoints, durability=durability,
                        volumes=volumes, load_profile=locustfile, load_profiles=profiles,
                        left_out=left_out, monitoring=monitoring, drill=drill)
        return target, self.warnings

    def _drill(self, xc: XContinuum, services: tuple[ServiceSpec, ...],
               instances: dict[str, ServiceSpec], roles: tuple[RoleSpec, ...]) -> DrillSpec | None:
        try:
            return check_drill(xc.backup, xc.restore, {s.name for s in services}, set(instances),
                               {r.name for r in roles})
        except At as exc:
            raise At(exc.message, "x-continuum", *exc.path, key=exc.key) from None

    def _monitoring(self, xc: XContinuum, by_name: dict[str, ServiceSpec]) -> MonitoringSpec:
        try:
            return check_monitoring(xc.monitoring, by_name)
        except At as exc:
            raise At(exc.message, "x-continuum", "monitoring", *exc.path, key=exc.key) from None

    def _name_or(self, default: str) -> str:
        try:
            return self._name()
        except At:
            return default

    def _name(self) -> str:
        if self.c.name is not None:
            return self.c.name
        name = self.root.name
        if not NAME_RE.match(name) or len(name) > NAME_MAX:
            raise At(f"the target directory name {name!r} is not a valid name; "
                     "add a top-level 'name:' (lowercase letters, digits, '-')")
        return name

    def _volume_decls(self) -> None:
        for n, v in self.c.volumes.items():
            for path, message in warnings_of(v, ("volumes", n)):
                self._warn(message, *path)

    def _service(self, name: str, s: ServiceSpec) -> ServiceSpec:
        at = ("services", name)
        if name == HOST_CLIENT:
            raise At(f"a service may not be called {HOST_CLIENT!r}: that name stands for "
                     "the load generator's host in links", *at, key=True)
        for inst in s.model_copy(update={"name": name}).instance_names():
            why = reserved_instance(inst)
            if why:
                raise At(f"a service may not be called {inst!r}: {why}", *at, key=True)
        for path, message in warnings_of(s, at):
            self._warn(message, *path)
        for i, d in enumerate(s.needs):
            if d.restart is not None:
                self._warn("depends_on restart is ignored: it is about `docker compose` "
                           "restarting dependents", *at, "depends_on", d.name, "restart")
        update: dict[str, Any] = {"name": name}
        if s.image is None:
            if s.build is None:
                raise At("missing required field 'image' (or give 'build', and the image is "
                         "named <target>-<service>)", *at)
            update["image"] = f"{self._name_or('target')}-{name}:latest"
        if s.build is not None:
            ctx_path = at + ("build",)
            ctx = _inside_path(self.root, str(s.build.context), ctx_path, what="build context",
                               kind="dir")
            df = _inside_path(ctx, s.build.dockerfile, ctx_path, what="dockerfile", kind="file")
            if not _inside(self.root, df):
                raise At(f"dockerfile {s.build.dockerfile!r} escapes the target directory", *ctx_path)
            update["build"] = s.build.model_copy(update={
                "context": ctx, "dockerfile": str(df.relative_to(ctx))})
        if not s.networks:
            update["networks"] = (DEFAULT_NETWORK,)
        if ("replicas" in s.deploy.model_fields_set and s.scale is not None
                and s.scale != s.deploy.replicas):
            raise At(f"scale {s.scale} and deploy.replicas {s.deploy.replicas} disagree; "
                     "give one of them", *at, "scale", key=True)
        for i, p in enumerate(s.ports):
            if p.host_port is not None and s.replicas > 1:
                raise At(f"a fixed host port ({p.host_port}) cannot be published by "
                         f"{s.replicas} replicas; give only the container port", *at, "ports", i)
        if s.container_name is not None and s.replicas > 1:
            raise At(f"container_name {s.container_name!r} cannot name {s.replicas} replicas "
                     "(Compose refuses it too)", *at, "container_name")
        update["volumes"] = tuple(self._try(self._mount, m, at + ("volumes", i), default=m)
                                  for i, m in enumerate(s.volumes))
        if s.env_file:
            update["environment"] = self._try(self._env, s, at, default=s.environment)
        return s.model_copy(update=update)

    def _mount(self, m: VolumeMount, at: tuple) -> VolumeMount:
        if m.type == "volume" and m.source is not None and m.source not in self.c.volumes:
            raise At(f"volume {m.source!r} is not declared under top-level volumes "
                     f"(declared: {', '.join(self.c.volumes) or 'none'}); a path must start "
                     "with ./ or /", *at)
        if m.type != "bind":
            return m
        src = m.source or ""
        if src.startswith("~"):
            raise At(f"bind source {src!r} is in a home directory, outside the target "
                     f"directory {self.root}: binds are refused outside it", *at)
        if src.rstrip("/").endswith("docker.sock"):
            raise At(f"binding {src!r} is refused: it hands the container the Docker engine "
                     "(every other run and the host)", *at)
        resolved = _inside_path(self.root, src, at, what="bind source", kind="any")
        return m.model_copy(update={"source": str(resolved)})

    def _env(self, s: ServiceSpec, at: tuple) -> tuple[tuple[str, str], ...]:
        merged: dict[str, str] = {}
        for i, ref in enumerate(s.env_file):
            where = at + ("env_file",) + ((i,) if len(s.env_file) > 1 else ())
            try:
                path = _inside_path(self.root, ref.path, where, what="env file", kind="file")
            except At as exc:
                if not ref.required and not (self.root / ref.path).exists():
                    continue
                self.problems.append(exc)
                continue
            try:
                raw = path.read_bytes()[:ENV_FILE_MAX + 1]
                text = raw.decode("utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise At(f"env file {ref.path!r} cannot be read: {exc}", *where) from None
            if len(raw) > ENV_FILE_MAX:
                raise At(f"env file {ref.path!r} is larger than {ENV_FILE_MAX} bytes", *where)
            for line, k, v in parse_env_file(text):
                if v is None:
                    raise At(f"{ref.path}:{line}: {k!r} is not KEY=value (a variable without a "
                             "value would come from the shell, which the harness does not read)",
                             *where)
                merged[k] = v
        merged.update(dict(s.environment))          # `environment` wins, as in Compose
        return tuple(merged.items())

    def _drop_left_out(self, s: ServiceSpec, left_out: tuple[str, ...]) -> ServiceSpec:
        keep = []
        for d in s.needs:
            if d.name not in left_out:
                keep.append(d)
            elif d.required:
                raise At(f"service {s.name!r} depends on {d.name!r}, which has profiles and is "
                         "not started (write `required: false` to start without it)",
                         "services", s.name, "depends_on")
        return s.model_copy(update={"needs": tuple(keep)}) if len(keep) != len(s.needs) else s

    def _aliases(self, services: tuple[ServiceSpec, ...], instances: dict[str, ServiceSpec]) -> None:
        seen: dict[str, str] = {}
        for s in services:
            if s.container_name is None:
                continue
            other = seen.get(s.container_name)
            if other is not None or (s.container_name in instances
                                     and instances[s.container_name].name != s.name):
                raise At(f"container_name {s.container_name!r} is also the name of "
                         f"{other or s.container_name!r}", "services", s.name, "container_name")
            seen[s.container_name] = s.name

    def _networks(self, services: tuple[ServiceSpec, ...]) -> tuple[NetworkSpec, ...]:
        declared = self.c.networks
        for n in declared:
            why = reserved_network(n)
            if why:
                raise At(f"a network may not be called {n!r}: {why}", "networks", n, key=True)
        nets = [NetworkSpec(name=n, internal=bool(cfg.internal if cfg else False))
                for n, cfg in declared.items()]
        used_default = False
        for s in services:
            explicit = self.c.services[s.name].networks
            for i, n in enumerate(s.networks):
                if n == DEFAULT_NETWORK and not explicit:
                    used_default = True
                    continue
                if n not in declared:
                    raise At(f"network {n!r} is not declared under top-level networks "
                             f"(declared: {', '.join(declared) or 'none'})",
                             "services", s.name, "networks", i)
        if used_default and DEFAULT_NETWORK not in declared:
            nets.append(NetworkSpec(name=DEFAULT_NETWORK, internal=False))
        return tuple(nets)

    def _instances(self, services: tuple[ServiceSpec, ...]) -> dict[str, ServiceSpec]:
        owner: dict[str, ServiceSpec] = {}
        for s in services:
            for inst in s.instance_names():
                if len(inst) > NAME_MAX:
                    raise At(f"instance name {inst!r} is longer than {NAME_MAX} characters",
                             "services", s.name, key=True)
                other = owner.get(inst)
                if other is not None or (inst != s.name and inst in self.c.services):
                    clash = other.name if other is not None else inst
                    raise At(f"instance name {inst!r} of service {s.name!r} collides with "
                             f"service {clash!r}", "services", s.name, key=True)
                owner[inst] = s
        return owner

    def _check_depends(self, services: tuple[ServiceSpec, ...],
                       by_name: dict[str, ServiceSpec]) -> None:
        for s in services:
            for i, d in enumerate(s.depends_on):
                if d == s.name:
                    raise At(f"service {s.name!r} depends on itself",
                             "services", s.name, "depends_on", i)
                if d not in by_name:
                    raise At(f"depends_on names unknown service {d!r} "
                             f"(services: {', '.join(by_name)})", "services", s.name, "depends_on", i)
        state: dict[str, int] = {}      # 1 visiting, 2 done
        stack: list[str] = []

        def visit(n: str) -> None:
            state[n] = 1
            stack.append(n)
            for d in by_name[n].depends_on:
                if state.get(d) == 1:
                    cycle = stack[stack.index(d):] + [d]
                    raise At(f"depends_on has a cycle: {' -> '.join(cycle)}",
                             "services", d, "depends_on")
                if d not in state:
                    visit(d)
            stack.pop()
            state[n] = 2

        for s in services:
            if s.name not in state:
                visit(s.name)

    def _links(self, raw: tuple[LinkDecl, ...], by_name: dict[str, ServiceSpec],
               instances: dict[str, ServiceSpec]) -> tuple[LinkSpec, ...]:
        out: list[LinkSpec] = []
        seen: dict[str, int] = {}
        for i, link in enumerate(raw):
            at = ("x-continuum", "links", i)
            client, to, port = link.client, link.to, link.port
            if client != HOST_CLIENT and client not in by_name:
                raise At(f"link client {client!r} is not a service (services: "
                         f"{', '.join(by_name)}; or {HOST_CLIENT!r} for an ingress link)", *at, "from")
            if to in by_name:
                upstreams, up_service = by_name[to].instance_names(), by_name[to]
            elif to in instances:
                upstreams, up_service = (to,), instances[to]
            else:
                raise At(f"link upstream {to!r} is neither a service nor an instance "
                         f"(instances: {', '.join(instances)})", *at, "to")
            if client == up_service.name and up_service.replicas < 2:
                # Links within a service (replication pg-N -> pg-M) go between its instances;
                # an instance never goes through the proxy to itself (harness.stack.links).
                raise At(f"service {client!r} has one instance: it cannot link to itself "
                         "(a service links to itself only between its replicas)", *at)
            # Any network layout: a client may share networks with its upstream (the usual
            # Compose file) or not; the stack interposes either way (harness.stack.links).
            if client != HOST_CLIENT and port in EPHEMERAL_PORTS:
                raise At(f"link port {port} is in the ephemeral range 32768-61000, "
                         "where the proxy's listener fails intermittently; "
                         "serve the upstream on a lower port", *at, "port")
            for upstream in upstreams:
                name = f"{client}-{upstream}"
                if name in seen:
                    raise At(f"link {name!r} is declared twice "
                             f"(also x-continuum.links[{seen[name]}])", *at)
                if len(name) > NAME_MAX:
                    raise At(f"link name {name!r} is longer than {NAME_MAX} characters", *at)
                seen[name] = i
                out.append(LinkSpec(name=name, client=client, upstream=upstream, port=port))
        return tuple(out)

    def _members(self, names: tuple[str, ...], by_name: dict[str, ServiceSpec],
                 instances: dict[str, ServiceSpec], *at: Any) -> tuple[str, ...]:
        """Services and instances → instance names, in order, each once."""
        out: list[str] = []
        for j, m in enumerate(names):
            if m in by_name:
                out.extend(by_name[m].instance_names())
            elif m in instances:
                out.append(m)
            else:
                raise At(f"{m!r} is not a service or instance (instances: "
                         f"{', '.join(instances)})", *at, *((j,) if len(names) > 1 else ()))
        return tuple(dict.fromkeys(out))

    def _roles(self, raw: dict[str, RoleDecl], by_name: dict[str, ServiceSpec],
               instances: dict[str, ServiceSpec]) -> tuple[RoleSpec, ...]:
        out: list[RoleSpec] = []
        for name, r in raw.items():
            role = self._try(self._role, name, r, by_name, instances)
            if role is not None:
                out.append(role)
        return tuple(out)

    def _role(self, name: str, r: RoleDecl, by_name: dict[str, ServiceSpec],
              instances: dict[str, ServiceSpec]) -> RoleSpec:
        at = ("x-continuum", "roles", name)
        if name in by_name or name in instances or name == HOST_CLIENT:
            raise At(f"role name {name!r} is already a service or instance name", *at, key=True)
        given = set(r.model_fields_set)
        provider = r.provider()
        usage = ("a role is one of: {among, http | exec | tcp} (ask each instance), "
                 "{sentinel, master, port, replicas} (ask Redis Sentinel) or {members} (fixed)")
        if provider in ("", ) or "," in provider:
            raise At(f"{usage}; got {provider or 'none of them'}", *at)
        if provider == "members":
            extra = sorted(given - {"members"})
            if extra:
                raise At(f"a static role (with members) takes no {extra[0]!r}", *at, extra[0],
                         key=True)
            members = self._members(r.members or (), by_name, instances, *at, "members")
            return RoleSpec(name=name, kind="static", members=members)
        if provider == "sentinel":
            extra = sorted(given - {"sentinel", "master", "port", "replicas", "wait_s"})
            if extra:
                raise At(f"a Sentinel role takes no {extra[0]!r}", *at, extra[0], key=True)
            if r.master is None:
                raise At("missing required field 'master' (the Sentinel master group name)",
                         *at, "master")
            if r.sentinel not in by_name:
                raise At(f"sentinel {r.sentinel!r} is not a service "
                         f"(services: {', '.join(by_name)})", *at, "sentinel")
            if not _looks_like_sentinel(by_name[r.sentinel], r.port):
                self._warn(f"nothing in service {r.sentinel!r} (image, command, health check, "
                           f"ports) says it runs Redis Sentinel on port {r.port}; it is asked "
                           "when the stack is up, and a run stops there if it is not",
                           *at, "sentinel", key=False)
            return RoleSpec(name=name, kind="sentinel-replicas" if r.replicas else "sentinel-primary",
                            service=r.sentinel, master_name=r.master, port=r.port, wait_s=r.wait_s)
        extra = sorted(given - {"among", provider, "wait_s"})
        if extra:
            key = "wait" if extra[0] == "wait_s" else extra[0]
            raise At(f"a role asked by {provider} takes no {key!r} ({usage})", *at, key, key=True)
        if r.among is None:
            raise At(f"missing required field 'among' (the services or instances to ask by "
                     f"{provider})", *at, "among")
        members = self._members(r.among, by_name, instances, *at, "among")
        return RoleSpec(name=name, kind=provider, members=members,  # type: ignore[arg-type]
                        probe=getattr(r, provider), wait_s=r.wait_s)

    def _durability(self, xc: XContinuum, by_name: dict[str, ServiceSpec],
                    instances: dict[str, ServiceSpec], entrypoints: tuple[Endpoint, ...],
                    locustfile: Path | None) -> DurabilitySpec | None:
        at = ("x-continuum",)
        if xc.audit is not None and xc.durability is not None:
            raise At("give either durability or the older audit, not both", *at, "audit", key=True)
        if xc.audit is not None:
            if not entrypoints:
                raise At("audit is read from an entry point; declare entrypoints", *at, "audit")
            return ledger_audit(xc.audit.path)
        d = xc.durability
        if d is None:
            return None
        read = None
        if d.read is not None:
            read = self._read(d.read, by_name, instances, entrypoints, locustfile,
                              *at, "durability", "read")
        invariants = []
        for n, inv in d.invariants.items():
            own = None
            if inv.read is not None:
                own = self._try(self._read, inv.read, by_name, instances, entrypoints, locustfile,
                                *at, "durability", "invariants", n, "read")
            invariants.append(InvariantSpec(name=n, read=own, value=inv.value, op=inv.op,
                                            expected=inv.expected,
                                            expected_field=inv.expected_field))
        return DurabilitySpec(read=read, ids=d.ids, match=d.match, valid_when=d.valid_when,
                              consumes=d.consumes, invariants=tuple(invariants))

    def _read(self, decl: ReadDecl, by_name: dict[str, ServiceSpec],
              instances: dict[str, ServiceSpec], entrypoints: tuple[Endpoint, ...],
              locustfile: Path | None, *at: Any) -> ReadSpec:
        if decl.http is not None:
            h = decl.http
            if h.among is None:
                if not entrypoints:
                    raise At("an http read-back without 'among' asks the entry points; declare "
                             "entrypoints or name the instances to ask", *at, "http")
                return ReadSpec(kind="http", http=h)
            members = self._members(h.among, by_name, instances, *at, "http", "among")
            return ReadSpec(kind="http", http=h, instances=members)
        if decl.exec is not None:
            members = self._members(decl.exec.among, by_name, instances, *at, "exec", "among")
            return ReadSpec(kind="exec", exec=decl.exec, instances=members)
        f = decl.function
        assert f is not None
        if f.file is None:
            if locustfile is None:
                raise At("a function read-back without 'file' is looked up in the load's "
                         "locustfile; declare x-continuum.load or give 'file'", *at, "function")
            path = locustfile
        else:
            path = _inside_path(self.xroot, f.file, at + ("function", "file"), what="read-back file",
                                kind="file")
        if not _defines(path, f.name):
            raise At(f"{path.name} defines no top-level function {f.name!r}", *at, "function",
                     "name")
        return ReadSpec(kind="function", function=f, file=path)

    def _entrypoints(self, raw: tuple[EndpointDecl, ...], by_name: dict[str, ServiceSpec],
                     instances: dict[str, ServiceSpec],
                     links: tuple[LinkSpec, ...]) -> tuple[Endpoint, ...]:
        out: list[Endpoint] = []
        for i, ep in enumerate(raw):
            at = ("x-continuum", "entrypoints", i)
            if ep.service in by_name:
                svc, names = by_name[ep.service], by_name[ep.service].instance_names()
            elif ep.service in instances:
                svc, names = instances[ep.service], (ep.service,)
            else:
                raise At(f"entrypoint {ep.service!r} is not a service or instance "
                         f"(services: {', '.join(by_name)})", *at, "service")
            published = any(p.container_port == ep.port and p.protocol == "tcp" for p in svc.ports)
            ingress = all(any(l.client == HOST_CLIENT and l.upstream == n and l.port == ep.port
                              for l in links) for n in names)
            if not (published or ingress):
                raise At(f"entrypoint {ep.service}:{ep.port}: service {svc.name!r} does not "
                         f"publish container port {ep.port} (add it to its ports, or an "
                         f"ingress link from {HOST_CLIENT!r})", *at, "port")
            out.append(Endpoint(service=ep.service, port=ep.port))
        return tuple(out)


def _inside(root: Path, candidate: Path) -> bool:
    try:
        candidate.relative_to(root)
        return True
    except ValueError:
        return False


def _inside_path(root: Path, rel: str, path: tuple, *, what: str, kind: str) -> Path:
    """`rel` resolved against `root` (symlinks too); must exist and stay inside `root`."""
    if "\x00" in rel:
        raise At(f"{what} contains a NUL byte", *path)
    try:
        resolved = (root / rel).resolve(strict=False)
    except (OSError, RuntimeError) as exc:      # a symlink loop
        raise At(f"{what} {rel!r} cannot be resolved: {exc}", *path) from None
    if not _inside(root, resolved):
        raise At(f"{what} {rel!r} escapes the target directory {root}", *path)
    ok = resolved.is_dir() if kind == "dir" else resolved.is_file() if kind == "file" else \
        resolved.exists()
    if not ok:
        thing = {"dir": "directory", "file": "file"}.get(kind, "file or directory")
        raise At(f"{what} {rel!r} is not an existing {thing} inside the target directory", *path)
    return resolved


def _looks_like_sentinel(s: ServiceSpec, port: int) -> bool:
    """Whether anything a file says about `s` hints at Redis Sentinel (a warning, not a proof)."""
    words = [s.image, *(s.command or ()), *(s.entrypoint or ()),
             *((s.healthcheck.test or ()) if s.healthcheck else ()), *(v for _, v in s.environment)]
    text = " ".join(words).lower()
    ports = {p.container_port for p in s.ports} | {p for p, _ in s.expose}
    return "sentinel" in text or port in ports or str(port) in text


def _defines(path: Path, name: str) -> bool:
    """Whether a Python file defines `name` at top level (read, never imported: importing a
    locustfile would load Locust and gevent into the validating process)."""
    import ast

    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
        return False
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name:
            return True
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name
                                                for t in node.targets):
            return True
        if isinstance(node, (ast.Import, ast.ImportFrom)) and any(
                (a.asname or a.name) == name for a in node.names):
            return True
    return False
