"""Load a target directory (compose.yaml, a strict Compose subset + x-continuum) into a `Target`.

The subset and the extension are documented in docs/target-format.md. Shape is checked by the
JSON Schema in `harness.schema.target_schema()`; this module does what needs the whole file:
paths that must stay inside the target directory, names that must exist, dependency cycles,
the rule that a link's client must not share a network with its upstream, and so on.
Everything fails with an `InputError` naming ``file:line:column``; nothing touches Docker.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from harness import schema
from harness.errors import InputError
from harness.model import (
    NAME_MAX,
    NAME_RE,
    AuditSpec,
    BuildSpec,
    Endpoint,
    HealthCheck,
    LinkSpec,
    NetworkSpec,
    PortSpec,
    RoleSpec,
    ServiceSpec,
    Target,
)
from harness.yamlsafe import YamlDoc, load_yaml

COMPOSE_FILES = ("compose.yaml", "compose.yml")
HOST_CLIENT = "host"                 # the link client that stands for the load generator's host
DEFAULT_NETWORK = "default"          # what Compose attaches a service with no `networks` to
EPHEMERAL_PORTS = range(32768, 61001)   # Toxiproxy listening here fails intermittently


def find_compose(path: Path) -> Path:
    """The compose file of a target given as a directory or as the file itself."""
    p = Path(path)
    if p.is_dir():
        for name in COMPOSE_FILES:
            if (p / name).is_file():
                return p / name
        raise InputError(f"no {COMPOSE_FILES[0]} in target directory", where=f"{p}:1:1")
    if not p.exists():
        raise InputError("target does not exist", where=f"{p}:1:1")
    return p


def load_target(path: Path) -> Target:
    """Parse a target directory (or its compose file) into a frozen `Target`."""
    compose = find_compose(Path(path))
    doc = load_yaml(compose)
    if not isinstance(doc.data, dict):
        raise doc.error("a target file must be a mapping with a 'services' key")
    schema.validate(doc, schema.target_schema())
    return _Builder(doc, compose.parent.resolve()).build()


def _duration(doc: YamlDoc, path: tuple, value: str | None, default: float,
              *, positive: bool = False) -> float:
    if value is None:
        return default
    try:
        seconds = schema.parse_duration(value)
    except ValueError as exc:
        raise doc.error(str(exc), path) from None
    if positive and seconds <= 0:
        raise doc.error(f"{value!r} must be longer than zero", path)
    return seconds


def _inside(root: Path, candidate: Path) -> bool:
    try:
        candidate.relative_to(root)
        return True
    except ValueError:
        return False


def resolve_inside(doc: YamlDoc, root: Path, rel: str, path: tuple, *, what: str,
                   kind: str) -> Path:
    """`rel` resolved against `root` (symlinks too); must exist and stay inside `root`."""
    if "\x00" in rel:
        raise doc.error(f"{what} contains a NUL byte", path)
    resolved = (root / rel).resolve()
    if not _inside(root, resolved):
        raise doc.error(f"{what} {rel!r} escapes the target directory {root}", path)
    ok = resolved.is_dir() if kind == "dir" else resolved.is_file()
    if not ok:
        raise doc.error(f"{what} {rel!r} is not an existing {'directory' if kind == 'dir' else 'file'}"
                        f" inside the target directory", path)
    return resolved


class _Builder:
    def __init__(self, doc: YamlDoc, root: Path) -> None:
        self.doc = doc
        self.root = root
        self.data: dict[str, Any] = doc.data

    def err(self, message: str, *path: str | int, key: bool = False) -> InputError:
        return self.doc.error(message, tuple(path), key=key)

    # ─── top level ───

    def build(self) -> Target:
        name = self._name()
        services = tuple(self._service(n, raw) for n, raw in self.data["services"].items())
        by_name = {s.name: s for s in services}
        networks = self._networks(services)
        instances = self._instances(services)
        self._check_depends(services, by_name)
        xc = self.data.get("x-continuum") or {}
        links = self._links(xc.get("links") or [], by_name, instances)
        roles = self._roles(xc.get("roles") or {}, by_name, instances)
        entrypoints = self._entrypoints(xc.get("entrypoints") or [], by_name, instances, links)
        audit = AuditSpec(path=xc["audit"].get("path", "/audit")) if "audit" in xc else None
        locustfile, profiles = None, ()
        if "load" in xc:
            locustfile = resolve_inside(self.doc, self.root, xc["load"]["locustfile"],
                                        ("x-continuum", "load", "locustfile"),
                                        what="locustfile", kind="file")
            profiles = tuple(xc["load"]["profiles"])
        return Target(name=name, root=self.root, services=services, networks=networks,
                      links=links, roles=roles, entrypoints=entrypoints, audit=audit,
                      load_profile=locustfile, load_profiles=profiles)

    def _name(self) -> str:
        if "name" in self.data:
            return self.data["name"]
        name = self.root.name
        if not NAME_RE.match(name) or len(name) > NAME_MAX:
            raise self.err(f"the target directory name {name!r} is not a valid name; "
                           "add a top-level 'name:' (lowercase letters, digits, '-')")
        return name

    # ─── services ───

    def _service(self, name: str, raw: dict[str, Any]) -> ServiceSpec:
        at = ("services", name)
        if name == HOST_CLIENT:
            raise self.err(f"a service may not be called {HOST_CLIENT!r}: that name stands for "
                           "the load generator's host in links", *at, key=True)
        build = None
        if "build" in raw:
            b = raw["build"]
            ctx_rel, dockerfile = (b, "Dockerfile") if isinstance(b, str) else \
                (b["context"], b.get("dockerfile", "Dockerfile"))
            ctx_path = at + (("build",) if isinstance(b, str) else ("build", "context"))
            ctx = resolve_inside(self.doc, self.root, ctx_rel, ctx_path, what="build context",
                                 kind="dir")
            df_path = at + ("build", "dockerfile") if isinstance(b, dict) and "dockerfile" in b \
                else ctx_path
            df = resolve_inside(self.doc, ctx, dockerfile, df_path, what="dockerfile", kind="file")
            if not _inside(self.root, df):
                raise self.err(f"dockerfile {dockerfile!r} escapes the target directory", *df_path)
            build = BuildSpec(context=ctx, dockerfile=str(df.relative_to(ctx)))
        networks = raw.get("networks") or []
        networks = tuple(networks) if isinstance(networks, list) else tuple(networks.keys())
        depends = raw.get("depends_on") or []
        depends = tuple(depends) if isinstance(depends, list) else tuple(depends.keys())
        return ServiceSpec(
            name=name,
            image=raw["image"],
            build=build,
            command=self._argv(raw, at, "command"),
            entrypoint=self._argv(raw, at, "entrypoint"),
            environment=self._environment(raw.get("environment"), at + ("environment",)),
            healthcheck=self._healthcheck(raw.get("healthcheck"), at + ("healthcheck",)),
            networks=networks or (DEFAULT_NETWORK,),
            depends_on=depends,
            replicas=(raw.get("deploy") or {}).get("replicas", 1),
            ports=self._ports(raw.get("ports") or [], at + ("ports",),
                              (raw.get("deploy") or {}).get("replicas", 1)),
            cap_add=tuple(raw.get("cap_add") or ()),
            stop_grace_s=_duration(self.doc, at + ("stop_grace_period",),
                                   raw.get("stop_grace_period"), 5.0),
        )

    def _argv(self, raw: dict[str, Any], at: tuple, key: str) -> tuple[str, ...] | None:
        if key not in raw:
            return None
        value = raw[key]
        if isinstance(value, str):
            try:
                return tuple(shlex.split(value))      # tokenised only; never run by a shell
            except ValueError as exc:
                raise self.err(f"cannot split {key} into words: {exc}", *at, key) from None
        return tuple(value)

    def _environment(self, env: Any, at: tuple) -> tuple[tuple[str, str], ...]:
        if env is None:
            return ()
        pairs: list[tuple[str, str]] = []
        if isinstance(env, dict):
            for k, v in env.items():
                pairs.append((k, v if isinstance(v, str) else repr(v) if isinstance(v, float)
                              else str(v)))
        else:
            seen: set[str] = set()
            for i, item in enumerate(env):
                k, _, v = item.partition("=")
                if k in seen:
                    raise self.err(f"environment variable {k!r} is set twice", *at, i)
                seen.add(k)
                pairs.append((k, v))
        return tuple(pairs)

    def _healthcheck(self, hc: dict[str, Any] | None, at: tuple) -> HealthCheck | None:
        if hc is None:
            return None
        test = hc["test"]
        if isinstance(test, str):
            test_t: tuple[str, ...] = ("CMD-SHELL", test)
        else:
            test_t = tuple(test)
            head = test_t[0]
            if head == "NONE":
                return None
            if head not in ("CMD", "CMD-SHELL"):
                raise self.err(f"healthcheck test must start with CMD, CMD-SHELL or NONE, "
                               f"got {head!r}", *at, "test", 0)
            if len(test_t) < 2 or (head == "CMD-SHELL" and len(test_t) != 2):
                raise self.err(f"{head} needs {'exactly one' if head == 'CMD-SHELL' else 'a'} "
                               "command after it", *at, "test")
        d = HealthCheck(test=test_t)
        return HealthCheck(
            test=test_t,
            interval_s=_duration(self.doc, at + ("interval",), hc.get("interval"), d.interval_s,
                                 positive=True),
            timeout_s=_duration(self.doc, at + ("timeout",), hc.get("timeout"), d.timeout_s,
                                positive=True),
            retries=hc.get("retries", d.retries),
            start_period_s=_duration(self.doc, at + ("start_period",), hc.get("start_period"),
                                     d.start_period_s),
        )

    def _ports(self, ports: list[Any], at: tuple, replicas: int) -> tuple[PortSpec, ...]:
        out: list[PortSpec] = []
        for i, p in enumerate(ports):
            spec = self._port(p, at + (i,))
            if any(o.container_port == spec.container_port and o.protocol == spec.protocol
                   for o in out):
                raise self.err(f"container port {spec.container_port} is listed twice", *at, i)
            if spec.host_port is not None and replicas > 1:
                raise self.err(f"a fixed host port ({spec.host_port}) cannot be published by "
                               f"{replicas} replicas; give only the container port", *at, i)
            out.append(spec)
        return tuple(out)

    def _port(self, p: int | str, at: tuple) -> PortSpec:
        if isinstance(p, int):
            return PortSpec(container_port=p)
        text, proto = p.strip(), "tcp"
        if "/" in text:
            text, _, proto = text.partition("/")
            if proto not in ("tcp", "udp"):
                raise self.err(f"port protocol must be tcp or udp, got {proto!r}", *at)
        parts = text.split(":")
        usage = 'write "CONTAINER" or "HOST:CONTAINER" (always published on 127.0.0.1)'
        if len(parts) == 3:
            ip, host, container = parts
            if ip not in ("127.0.0.1", "localhost"):
                raise self.err(f"binding to {ip or 'all interfaces'!r} is not allowed: ports are "
                               f"only ever published on 127.0.0.1; {usage}", *at)
        elif len(parts) == 2:
            host, container = parts
            if "." in host or "[" in host:
                raise self.err(f"{p!r} looks like an interface binding; {usage}", *at)
        elif len(parts) == 1:
            host, container = "", parts[0]
        else:
            raise self.err(f"{p!r} is not a port mapping; {usage}", *at)

        def number(s: str) -> int:
            if not s.isdigit() or not s.isascii() or not 1 <= int(s) <= 65535:
                raise self.err(f"{s!r} in {p!r} is not a port number 1-65535 (ranges are not "
                               f"supported); {usage}", *at)
            return int(s)

        return PortSpec(container_port=number(container),
                        host_port=number(host) if host else None, protocol=proto)  # type: ignore[arg-type]

    # ─── cross-checks ───

    def _networks(self, services: tuple[ServiceSpec, ...]) -> tuple[NetworkSpec, ...]:
        declared = self.data.get("networks") or {}
        nets = [NetworkSpec(name=n, internal=bool((cfg or {}).get("internal", False)))
                for n, cfg in declared.items()]
        used_default = False
        for s in services:
            raw_nets = self.data["services"][s.name].get("networks")
            for i, n in enumerate(s.networks):
                if n == DEFAULT_NETWORK and not raw_nets:
                    used_default = True
                    continue
                if n not in declared:
                    key = i if isinstance(raw_nets, list) else n
                    raise self.err(f"network {n!r} is not declared under top-level networks "
                                   f"(declared: {', '.join(declared) or 'none'})",
                                   "services", s.name, "networks", key,
                                   key=not isinstance(raw_nets, list))
        if used_default and DEFAULT_NETWORK not in declared:
            nets.append(NetworkSpec(name=DEFAULT_NETWORK, internal=False))
        return tuple(nets)

    def _instances(self, services: tuple[ServiceSpec, ...]) -> dict[str, ServiceSpec]:
        owner: dict[str, ServiceSpec] = {}
        for s in services:
            for inst in s.instance_names():
                if len(inst) > NAME_MAX:
                    raise self.err(f"instance name {inst!r} is longer than {NAME_MAX} characters",
                                   "services", s.name, key=True)
                other = owner.get(inst)
                if other is not None or (inst != s.name and inst in self.data["services"]):
                    clash = other.name if other is not None else inst
                    raise self.err(f"instance name {inst!r} of service {s.name!r} collides with "
                                   f"service {clash!r}", "services", s.name, key=True)
                owner[inst] = s
        return owner

    def _check_depends(self, services: tuple[ServiceSpec, ...],
                       by_name: dict[str, ServiceSpec]) -> None:
        for s in services:
            raw = self.data["services"][s.name]["depends_on"] if s.depends_on else None
            for i, d in enumerate(s.depends_on):
                key: str | int = i if isinstance(raw, list) else d
                if d == s.name:
                    raise self.err(f"service {s.name!r} depends on itself",
                                   "services", s.name, "depends_on", key,
                                   key=not isinstance(raw, list))
                if d not in by_name:
                    raise self.err(f"depends_on names unknown service {d!r} "
                                   f"(services: {', '.join(by_name)})",
                                   "services", s.name, "depends_on", key,
                                   key=not isinstance(raw, list))
        state: dict[str, int] = {}      # 1 visiting, 2 done
        stack: list[str] = []

        def visit(n: str) -> None:
            state[n] = 1
            stack.append(n)
            for d in by_name[n].depends_on:
                if state.get(d) == 1:
                    cycle = stack[stack.index(d):] + [d]
                    raise self.err(f"depends_on has a cycle: {' -> '.join(cycle)}",
                                   "services", d, "depends_on")
                if d not in state:
                    visit(d)
            stack.pop()
            state[n] = 2

        for s in services:
            if s.name not in state:
                visit(s.name)

    # ─── x-continuum ───

    def _links(self, raw: list[dict[str, Any]], by_name: dict[str, ServiceSpec],
               instances: dict[str, ServiceSpec]) -> tuple[LinkSpec, ...]:
        out: list[LinkSpec] = []
        seen: dict[str, int] = {}
        for i, link in enumerate(raw):
            at = ("x-continuum", "links", i)
            client, to, port = link["from"], link["to"], link["port"]
            if client != HOST_CLIENT and client not in by_name:
                raise self.err(f"link client {client!r} is not a service (services: "
                               f"{', '.join(by_name)}; or {HOST_CLIENT!r} for an ingress link)",
                               *at, "from")
            if to in by_name:
                upstreams = by_name[to].instance_names()
                up_service = by_name[to]
            elif to in instances:
                upstreams = (to,)
                up_service = instances[to]
            else:
                raise self.err(f"link upstream {to!r} is neither a service nor an instance "
                               f"(instances: {', '.join(instances)})", *at, "to")
            if client == up_service.name:
                raise self.err(f"service {client!r} cannot link to itself", *at)
            if client != HOST_CLIENT:
                if port in EPHEMERAL_PORTS:
                    raise self.err(f"link port {port} is in the ephemeral range 32768-61000, "
                                   "where the proxy's listener fails intermittently; "
                                   "serve the upstream on a lower port", *at, "port")
                shared = sorted(set(by_name[client].networks) & set(up_service.networks))
                if shared:
                    raise self.err(
                        f"link {client}->{to}: client {client!r} shares network "
                        f"{shared[0]!r} with upstream service {up_service.name!r}, so it would "
                        "reach the upstream directly and bypass the proxy; put them on "
                        "different networks (see docs/target-format.md)", *at)
            for upstream in upstreams:
                name = f"{client}-{upstream}"
                if name in seen:
                    raise self.err(f"link {name!r} is declared twice "
                                   f"(also x-continuum.links[{seen[name]}])", *at)
                if len(name) > NAME_MAX:
                    raise self.err(f"link name {name!r} is longer than {NAME_MAX} characters", *at)
                seen[name] = i
                out.append(LinkSpec(name=name, client=client, upstream=upstream, port=port))
        return tuple(out)

    def _roles(self, raw: dict[str, dict[str, Any]], by_name: dict[str, ServiceSpec],
               instances: dict[str, ServiceSpec]) -> tuple[RoleSpec, ...]:
        out: list[RoleSpec] = []
        for name, r in raw.items():
            at = ("x-continuum", "roles", name)
            if name in by_name or name in instances or name == HOST_CLIENT:
                raise self.err(f"role name {name!r} is already a service or instance name",
                               *at, key=True)
            if "members" in r:
                extra = sorted(set(r) - {"members"})
                if extra:
                    raise self.err(f"a static role (with members) takes no {extra[0]!r}",
                                   *at, extra[0], key=True)
                members: list[str] = []
                for j, m in enumerate(r["members"]):
                    if m in by_name:
                        members.extend(by_name[m].instance_names())
                    elif m in instances:
                        members.append(m)
                    else:
                        raise self.err(f"role member {m!r} is not a service or instance "
                                       f"(instances: {', '.join(instances)})", *at, "members", j)
                out.append(RoleSpec(name=name, kind="static", members=tuple(dict.fromkeys(members))))
                continue
            for req in ("sentinel", "master"):
                if req not in r:
                    raise InputError(f"missing required field {req!r} (a role is either "
                                     "{sentinel, master, port, replicas} or {members})",
                                     where=self.doc.where(at), field=f"x-continuum.roles.{name}.{req}")
            if r["sentinel"] not in by_name:
                raise self.err(f"sentinel {r['sentinel']!r} is not a service "
                               f"(services: {', '.join(by_name)})", *at, "sentinel")
            out.append(RoleSpec(
                name=name,
                kind="sentinel-replicas" if r.get("replicas") else "sentinel-primary",
                service=r["sentinel"], master_name=r["master"], port=r.get("port", 26379)))
        return tuple(out)

    def _entrypoints(self, raw: list[dict[str, Any]], by_name: dict[str, ServiceSpec],
                     instances: dict[str, ServiceSpec],
                     links: tuple[LinkSpec, ...]) -> tuple[Endpoint, ...]:
        out: list[Endpoint] = []
        for i, ep in enumerate(raw):
            at = ("x-continuum", "entrypoints", i)
            svc_name, port = ep["service"], ep["port"]
            if svc_name in by_name:
                svc, names = by_name[svc_name], by_name[svc_name].instance_names()
            elif svc_name in instances:
                svc, names = instances[svc_name], (svc_name,)
            else:
                raise self.err(f"entrypoint {svc_name!r} is not a service or instance "
                               f"(services: {', '.join(by_name)})", *at, "service")
            published = any(p.container_port == port and p.protocol == "tcp" for p in svc.ports)
            ingress = all(any(l.client == HOST_CLIENT and l.upstream == n and l.port == port
                              for l in links) for n in names)
            if not (published or ingress):
                raise self.err(f"entrypoint {svc_name}:{port}: service {svc.name!r} does not "
                               f"publish container port {port} (add it to its ports, or an "
                               f"ingress link from {HOST_CLIENT!r})", *at, "port")
            out.append(Endpoint(service=svc_name, port=port))
        return tuple(out)
