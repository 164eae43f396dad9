"""The target: a Compose file (a strict subset) plus the `x-continuum` extension.

`ComposeFile` is the shape of the file: what a user may write, with its defaults and limits
(and so the target JSON Schema). `ComposeFile.to_target(root)` does the checks that need the
whole file or the disk (paths inside the target directory, names that must exist, dependency
cycles, the network rule for links) and returns the frozen `Target` the harness runs. Nothing
here touches Docker. Documented in docs/target-format.md.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, WithJsonSchema, field_validator

from harness.model.base import At, Bool, Internal, Model, internal
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

COMPOSE_FILES = ("compose.yaml", "compose.yml")
HOST_CLIENT = "host"                 # the link client that stands for the load generator's host
DEFAULT_NETWORK = "default"          # what Compose attaches a service with no `networks` to
EPHEMERAL_PORTS = range(32768, 61001)   # Toxiproxy listening here fails intermittently
IMAGE_PATTERN = r"^[a-z0-9][a-z0-9._/:@-]*$"
IDENT_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
ENV_KEY_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"


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


ImageRef = _pattern(IMAGE_PATTERN, "an image reference such as redis:7.2-alpine")
Ident = _pattern(IDENT_PATTERN, "a Python class name", 100)
Capability = _pattern(r"^[A-Z_]+$", "a Linux capability such as NET_ADMIN", 64)
MasterName = _pattern(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", "a Sentinel master name", 64)
UrlPath = _pattern(r"^/[A-Za-z0-9._~/-]*$", "a URL path such as /audit")


def _argv(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        try:
            return tuple(shlex.split(value))      # tokenised only; never run by a shell
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
    out: list[str] = []
    for i, n in enumerate(items):
        if not isinstance(n, str) or len(n) > NAME_MAX or not NAME_RE.match(n):
            raise At(f"expected a name of lowercase letters and digits (e.g. redis-1), {got(n)}",
                     n if isinstance(value, dict) else i, key=isinstance(value, dict))
        if n in out:
            raise At("list items must be unique", i)
        out.append(n)
    return tuple(out)


NameList = Annotated[tuple[str, ...], BeforeValidator(_names), WithJsonSchema(
    {"anyOf": [{"type": "array", "items": {"type": "string", "pattern": NAME_RE.pattern}},
               {"type": "object", "propertyNames": {"pattern": NAME_RE.pattern}}],
     "description": "a list of names, or a map of name: {condition: ...}"})]


# ─────────────────────────────────────── services ───────────────────────────────────────


class HealthCheck(Model):
    test: tuple[str, ...]           # Docker form: ("CMD", "curl", ...) or ("CMD-SHELL", "...")
    interval_s: Duration() = Field(1.0, alias="interval")
    timeout_s: Duration() = Field(2.0, alias="timeout")
    retries: Bounded(int, ge=1, le=1000) = 30
    start_period_s: Duration(positive=False) = Field(0.0, alias="start_period")

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
    out: list[PortSpec] = []
    for i, p in enumerate(value):
        try:
            spec = _port(p)
        except ValueError as exc:
            raise At(str(exc), i) from None
        if any(o.container_port == spec.container_port and o.protocol == spec.protocol for o in out):
            raise At(f"container port {spec.container_port} is listed twice", i)
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


class BuildSpec(Model):
    context: Path                   # absolute, inside the target directory (after to_target)
    dockerfile: str = "Dockerfile"

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
                                                 "dockerfile": {"type": "string", "minLength": 1}},
                "required": ["context"], "additionalProperties": False}],
     "description": "a build context path, or {context, dockerfile}"})]


class Deploy(Model):
    replicas: Bounded(int, ge=1, le=20) = 1


class ServiceSpec(Model):
    name: Internal[str] = internal("")      # the Compose key
    image: ImageRef
    build: Build | None = None
    command: Argv | None = None
    entrypoint: Argv | None = None
    environment: Environment = ()
    healthcheck: HealthCheck | None = None
    networks: NameList = ()
    depends_on: NameList = ()
    deploy: Deploy = Deploy()
    ports: Ports = ()
    cap_add: Annotated[tuple[Capability, ...], Field(max_length=64)] = ()
    stop_grace_s: Duration(positive=False) = Field(5.0, alias="stop_grace_period")

    @field_validator("healthcheck", mode="after")
    @classmethod
    def _none(cls, value: HealthCheck | None) -> HealthCheck | None:
        return None if value is not None and value.test == ("NONE",) else value

    @field_validator("cap_add", mode="after")
    @classmethod
    def _unique(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(value)) != len(value):
            raise ValueError("list items must be unique")
        return value

    @property
    def replicas(self) -> int:
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


class RoleDecl(Model):
    sentinel: Name | None = None
    master: MasterName | None = None
    port: Port = 26379
    replicas: Bool = False
    members: Annotated[tuple[Name, ...], Field(min_length=1)] | None = None


class EndpointDecl(Model):
    service: Name
    port: Port


class AuditDecl(Model):
    path: UrlPath = "/audit"


class LoadDecl(Model):
    locustfile: Text(max_length=4096, min_length=1)
    profiles: Annotated[tuple[Ident, ...], Field(min_length=1)]


class XContinuum(Model):
    links: tuple[LinkDecl, ...] = ()
    roles: dict[Name, RoleDecl] = {}
    entrypoints: tuple[EndpointDecl, ...] = ()
    audit: AuditDecl | None = None
    load: LoadDecl | None = None
    monitoring: MonitoringSpec | None = None


# ─────────────────────────────────────── the runtime target ───────────────────────────────────────


class LinkSpec(Model):
    """A TCP link routed through the run's Toxiproxy: clients of `upstream` reach the proxy instead.

    `client` is a service name (all its instances) or "host"; `upstream` is an *instance* name.
    """

    name: str                       # e.g. "lb-app-1"; also the Toxiproxy proxy name
    client: str
    upstream: str
    port: int


class RoleSpec(Model):
    """A role resolved when a fault fires (which Redis is primary *now*), or a static set."""

    name: str
    kind: Literal["sentinel-primary", "sentinel-replicas", "static"]
    service: str | None = None      # the Sentinel service to ask (sentinel kinds)
    master_name: str | None = None  # the Sentinel master group name
    port: int = 26379
    members: tuple[str, ...] = ()   # static: instance names


class Endpoint(Model):
    """An entry point the load generator may use; published on 127.0.0.1."""

    service: str                    # a service or an instance name
    port: int                       # container port


class AuditSpec(Model):
    """How the durability read-back is fetched after load stops."""

    path: str = "/audit"            # HTTP GET on an entry point, JSON body


class Target(Model):
    name: str
    root: Path                      # the target directory
    services: tuple[ServiceSpec, ...]
    networks: tuple[NetworkSpec, ...]
    links: tuple[LinkSpec, ...] = ()
    roles: tuple[RoleSpec, ...] = ()
    entrypoints: tuple[Endpoint, ...] = ()
    audit: AuditSpec | None = None
    load_profile: Path | None = None            # a locustfile inside the target directory
    load_profiles: tuple[str, ...] = ()         # profile names it offers (user class names)
    monitoring: MonitoringSpec | None = None    # its Prometheus / Alertmanager (harness.model.monitoring)

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


class ComposeFile(Model):
    """A target's compose.yaml: the Compose subset and x-continuum."""

    version: Annotated[str | float | int, Field(union_mode="left_to_right")] | None = None
    name: Name | None = None
    services: Annotated[dict[Name, ServiceSpec], Field(min_length=1)]
    networks: dict[Name, NetworkOptions | None] = {}
    x_continuum: XContinuum = Field(XContinuum(), alias="x-continuum")

    @classmethod
    def _extension(cls, key: Any) -> bool:
        return isinstance(key, str) and key.startswith("x-") and key != "x-continuum"

    @classmethod
    def _input_filter(cls, data: Any) -> Any:       # extensions (x-*) are ignored, as Compose does
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if not cls._extension(k)}
        return data

    def to_target(self, root: Path) -> Target:
        """Cross-check the whole file and build the Target. Raises `At` with absolute paths."""
        return _TargetBuilder(self, root).build()


class _TargetBuilder:
    def __init__(self, compose: ComposeFile, root: Path):
        self.c = compose
        self.root = root

    def build(self) -> Target:
        name = self._name()
        services = tuple(self._service(n, s) for n, s in self.c.services.items())
        by_name = {s.name: s for s in services}
        networks = self._networks(services)
        instances = self._instances(services)
        self._check_depends(services, by_name)
        xc = self.c.x_continuum
        links = self._links(xc.links, by_name, instances)
        roles = self._roles(xc.roles, by_name, instances)
        entrypoints = self._entrypoints(xc.entrypoints, by_name, instances, links)
        locustfile, profiles = None, ()
        if xc.load is not None:
            locustfile = _inside_path(self.root, xc.load.locustfile,
                                      ("x-continuum", "load", "locustfile"), what="locustfile",
                                      kind="file")
            profiles = xc.load.profiles
        audit = AuditSpec(path=xc.audit.path) if xc.audit is not None else None
        monitoring = None
        if xc.monitoring is not None:
            try:
                monitoring = check_monitoring(xc.monitoring, by_name)
            except At as exc:
                raise At(exc.message, "x-continuum", "monitoring", *exc.path, key=exc.key) from None
        return Target(name=name, root=self.root, services=services, networks=networks,
                      links=links, roles=roles, entrypoints=entrypoints, audit=audit,
                      load_profile=locustfile, load_profiles=profiles, monitoring=monitoring)

    def _name(self) -> str:
        if self.c.name is not None:
            return self.c.name
        name = self.root.name
        if not NAME_RE.match(name) or len(name) > NAME_MAX:
            raise At(f"the target directory name {name!r} is not a valid name; "
                     "add a top-level 'name:' (lowercase letters, digits, '-')")
        return name

    def _service(self, name: str, s: ServiceSpec) -> ServiceSpec:
        at = ("services", name)
        if name == HOST_CLIENT:
            raise At(f"a service may not be called {HOST_CLIENT!r}: that name stands for "
                     "the load generator's host in links", *at, key=True)
        update: dict[str, Any] = {"name": name}
        if s.build is not None:
            ctx_path = at + ("build",)
            ctx = _inside_path(self.root, str(s.build.context), ctx_path, what="build context",
                               kind="dir")
            df = _inside_path(ctx, s.build.dockerfile, ctx_path, what="dockerfile", kind="file")
            if not _inside(self.root, df):
                raise At(f"dockerfile {s.build.dockerfile!r} escapes the target directory", *ctx_path)
            update["build"] = BuildSpec(context=ctx, dockerfile=str(df.relative_to(ctx)))
        if not s.networks:
            update["networks"] = (DEFAULT_NETWORK,)
        for i, p in enumerate(s.ports):
            if p.host_port is not None and s.replicas > 1:
                raise At(f"a fixed host port ({p.host_port}) cannot be published by "
                         f"{s.replicas} replicas; give only the container port", *at, "ports", i)
        return s.model_copy(update=update)

    def _networks(self, services: tuple[ServiceSpec, ...]) -> tuple[NetworkSpec, ...]:
        declared = self.c.networks
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
            if client == up_service.name:
                raise At(f"service {client!r} cannot link to itself", *at)
            if client != HOST_CLIENT:
                if port in EPHEMERAL_PORTS:
                    raise At(f"link port {port} is in the ephemeral range 32768-61000, "
                             "where the proxy's listener fails intermittently; "
                             "serve the upstream on a lower port", *at, "port")
                shared = sorted(set(by_name[client].networks) & set(up_service.networks))
                if shared:
                    raise At(f"link {client}->{to}: client {client!r} shares network "
                             f"{shared[0]!r} with upstream service {up_service.name!r}, so it would "
                             "reach the upstream directly and bypass the proxy; put them on "
                             "different networks (see docs/target-format.md)", *at)
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

    def _roles(self, raw: dict[str, RoleDecl], by_name: dict[str, ServiceSpec],
               instances: dict[str, ServiceSpec]) -> tuple[RoleSpec, ...]:
        out: list[RoleSpec] = []
        for name, r in raw.items():
            at = ("x-continuum", "roles", name)
            if name in by_name or name in instances or name == HOST_CLIENT:
                raise At(f"role name {name!r} is already a service or instance name", *at, key=True)
            given = set(r.model_fields_set)
            if r.members is not None:
                extra = sorted(given - {"members"})
                if extra:
                    raise At(f"a static role (with members) takes no {extra[0]!r}", *at, extra[0],
                             key=True)
                members: list[str] = []
                for j, m in enumerate(r.members):
                    if m in by_name:
                        members.extend(by_name[m].instance_names())
                    elif m in instances:
                        members.append(m)
                    else:
                        raise At(f"role member {m!r} is not a service or instance "
                                 f"(instances: {', '.join(instances)})", *at, "members", j)
                out.append(RoleSpec(name=name, kind="static", members=tuple(dict.fromkeys(members))))
                continue
            for req in ("sentinel", "master"):
                if getattr(r, req) is None:
                    raise At(f"missing required field {req!r} (a role is either "
                             "{sentinel, master, port, replicas} or {members})", *at, req)
            if r.sentinel not in by_name:
                raise At(f"sentinel {r.sentinel!r} is not a service "
                         f"(services: {', '.join(by_name)})", *at, "sentinel")
            out.append(RoleSpec(name=name, kind="sentinel-replicas" if r.replicas else "sentinel-primary",
                                service=r.sentinel, master_name=r.master, port=r.port))
        return tuple(out)

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
    ok = resolved.is_dir() if kind == "dir" else resolved.is_file()
    if not ok:
        raise At(f"{what} {rel!r} is not an existing {'directory' if kind == 'dir' else 'file'}"
                 f" inside the target directory", *path)
    return resolved
