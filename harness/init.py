"""`continuum init COMPOSE_FILE`: a target folder for a system from its own Compose file.

    continuum init myapp/docker-compose.yml          → myapp/continuum/

Writes, next to the Compose file and without touching it:

    continuum/continuum.yaml         the x-continuum block (links and entry points inferred,
                                     roles for images it knows, comments where it cannot tell)
    continuum/locustfile.py          a starter HTTP load profile (`Browse`)
    continuum/experiments/*.yaml     a starter suite: the entry point's steady state, each
                                     replicated service's instances killed one at a time,
                                     latency on each link

then prints the next steps. It never overwrites a file: if any of them exists, nothing is
written. The Compose file is checked first with the same loader as every run (a file the
harness refuses is reported, file:line:column, exit 2), and what init wrote is loaded back and
validated before it says it is done.

What it infers, and from what:
* entry points: the services that publish a TCP port (services nothing depends on first);
* links: a service that names another (`name:port` in its environment, command, entrypoint or a
  bind-mounted config file inside the target), or depends on it (the port from its `expose`,
  `ports` or a known image's default port). A link the loader refuses as written (today: a
  client sharing a network with its upstream) is written as a comment with the reason;
* replica groups: a service with `deploy.replicas` > 1, or services built from the same image
  whose names differ only by a number (etcd1, etcd2, etcd3);
* roles: for images it recognises (etcd, Patroni), the probe that finds the leader.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from harness.errors import HarnessError, InputError
from harness.model.target import (
    OVERLAY_FILE,
    ComposeFile,
    ServiceSpec,
    TargetProblems,
    XContinuum,
)
from harness.model.units import NAME_MAX

DEFAULT_DIR = "continuum"
PROFILE = "Browse"
TEXT_SCAN_MAX = 64 * 1024
# Default ports of well-known images, for a dependency that does not say its port.
KNOWN_PORTS = {"redis": 6379, "postgres": 5432, "mysql": 3306, "mariadb": 3306, "etcd": 2379,
               "mongo": 27017, "rabbitmq": 5672, "nats": 4222, "memcached": 11211,
               "kafka": 9092, "zookeeper": 2181, "consul": 8500, "elasticsearch": 9200,
               "patroni": 5432, "haproxy": 80, "nginx": 80}
HTTP_PORTS = (80, 8080, 8000, 8008, 3000, 5000, 9000, 2379, 8081, 8888)


@dataclass
class Link:
    client: str
    to: str
    port: int | None
    why: str                        # what it was inferred from
    refused: str = ""               # the loader's reason, when it cannot be interposed as is


@dataclass
class Inferred:
    name: str
    entrypoints: list[tuple[str, int]] = field(default_factory=list)
    links: list[Link] = field(default_factory=list)
    groups: list[tuple[str, list[str]]] = field(default_factory=list)   # (group name, instances)
    roles: list[tuple[str, str, str]] = field(default_factory=list)     # (name, yaml, comment)
    health_path: str = "/"


# ─────────────────────────────────────── inference ───────────────────────────────────────


def _stem(name: str) -> str:
    return re.sub(r"[-_]?[0-9]+$", "", name)


def _image_kind(s: ServiceSpec) -> str:
    text = " ".join([s.image or "", str(s.build.context) if s.build else "",
                     *(s.command or ()), *(s.entrypoint or ())]).lower()
    for kind in ("patroni", "etcd", "redis", "postgres", "haproxy", "nginx", "rabbitmq", "nats",
                 "mysql", "mariadb", "mongo", "kafka", "zookeeper", "consul", "memcached",
                 "elasticsearch"):
        if kind in text:
            return kind
    return ""


def _ports_of(s: ServiceSpec) -> list[int]:
    ports = [p.container_port for p in s.ports if p.protocol == "tcp"]
    ports += [p for p, proto in s.expose if proto == "tcp"]
    if s.healthcheck and s.healthcheck.test:
        ports += [int(m) for m in re.findall(r":([0-9]{2,5})\b", " ".join(s.healthcheck.test))]
    return list(dict.fromkeys(ports))


def _texts(s: ServiceSpec, root: Path) -> list[tuple[str, str]]:
    """(where, text) a service's configuration is written in: env, command, bound files."""
    out = [(f"environment {k}", v) for k, v in s.environment]
    out += [("command", " ".join(s.command or ())), ("entrypoint", " ".join(s.entrypoint or ()))]
    for m in s.volumes:
        if m.type == "bind" and m.source:
            p = (root / m.source).resolve()
            try:
                p.relative_to(root)
            except ValueError:
                continue                # only files of the target are read
            files = [p] if p.is_file() else sorted(q for q in p.rglob("*") if q.is_file())[:20] \
                if p.is_dir() else []
            for f in files:
                try:
                    out.append((f"bound file {f.name}", f.read_bytes()[:TEXT_SCAN_MAX]
                                .decode("utf-8", "replace")))
                except OSError:
                    continue
    return out


def _names_of(s: ServiceSpec) -> list[str]:
    return [n for n in (s.name, s.container_name, s.hostname) if n]


def infer(compose: ComposeFile, root: Path) -> Inferred:
    services = {n: s.model_copy(update={"name": n}) for n, s in compose.services.items()
                if not s.profiles}
    name = compose.name or _safe_name(root.name)
    out = Inferred(name=name)
    depended = {d.name for s in services.values() for d in s.needs}

    # Entry points: published TCP ports, the edge first (what nothing depends on).
    for svc in sorted(services.values(), key=lambda s: (s.name in depended, s.name)):
        tcp = [p.container_port for p in svc.ports if p.protocol == "tcp"]
        if tcp:
            best = next((p for p in HTTP_PORTS if p in tcp), tcp[0])
            out.entrypoints.append((svc.name, best))
    if out.entrypoints:
        first = services[out.entrypoints[0][0]]
        m = re.search(r"https?://[^/\s]+(/[^\s\"']*)", " ".join(
            (first.healthcheck.test or ()) if first.healthcheck else ()))
        if m:
            out.health_path = m.group(1)

    # Links: a service naming another with a port, or depending on it.
    found: dict[tuple[str, str], Link] = {}
    aliases = {a: n for n, s in services.items() for a in _names_of(s)}
    for client, s in services.items():
        for where, text in _texts(s, root):
            for m in re.finditer(r"(?<![A-Za-z0-9_.-])([A-Za-z0-9][A-Za-z0-9_.-]*):([0-9]{2,5})\b",
                                 text):
                up = aliases.get(m.group(1))
                if up is None or up == client:
                    continue
                key = (client, up)
                port = int(m.group(2))
                if key not in found or found[key].port is None:
                    found[key] = Link(client, up, port, f"{m.group(0)} in {client}'s {where}")
        for d in s.needs:
            if d.name not in services or (client, d.name) in found:
                continue
            ports = _ports_of(services[d.name])
            port = ports[0] if ports else KNOWN_PORTS.get(_image_kind(services[d.name]))
            found[(client, d.name)] = Link(client, d.name, port,
                                           f"{client} depends on {d.name}")
    out.links = sorted(found.values(), key=lambda l: (l.client, l.to))

    # Replica groups: replicas of one service, or numbered services of one image.
    for s in services.values():
        if s.replicas > 1:
            out.groups.append((s.name, list(s.instance_names())))
    by_stem: dict[tuple[str, str], list[str]] = {}
    for s in services.values():
        if s.replicas == 1 and _stem(s.name) != s.name:
            key = (_stem(s.name), s.image or str(s.build.context if s.build else ""))
            by_stem.setdefault(key, []).append(s.name)
    for (stem, _), members in sorted(by_stem.items()):
        if len(members) > 1:
            out.groups.append((_safe_name(stem), sorted(members)))

    # Roles for images whose leader is known to be found by asking.
    for group, members in out.groups:
        kind = _image_kind(services.get(members[0]) or services[group])
        among = group if group in services else members
        among_yaml = json.dumps(among)
        if kind == "etcd":
            out.roles.append((f"{group}-leader", (
                f"{{among: {among_yaml}, http: {{port: 2379, method: POST, "
                f"path: /v3/maintenance/status, body: \"{{}}\", field: leader, "
                f"equals_field: header.member_id}}}}"),
                "etcd's status names the leader's member id; only the leader's own id matches"))
        elif kind == "patroni":
            out.roles.append((f"{group}-leader", (
                f"{{among: {among_yaml}, http: {{port: 8008, path: /primary, status: 200}}}}"),
                "Patroni's REST API answers 200 on /primary only on the leader"))
    return out


def _safe_name(text: str) -> str:
    name = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "target"
    if not name[0].isalpha():
        name = "t-" + name
    return name[:NAME_MAX]


def check_links(compose: ComposeFile, root: Path, inferred: Inferred) -> None:
    """Mark each link the loader refuses as written, with its reason (it is then commented)."""
    for _ in range(len(inferred.links) + 1):
        active = [l for l in inferred.links if not l.refused and l.port is not None]
        xc = XContinuum.model_validate({
            "links": [{"from": l.client, "to": l.to, "port": l.port} for l in active],
            "entrypoints": [{"service": s, "port": p} for s, p in inferred.entrypoints]})
        try:
            compose.model_copy(update={"x_continuum": xc}).check(root)
            return
        except TargetProblems as exc:
            marked = False
            for a in exc.problems:
                if a.path[:2] == ("x-continuum", "links") and len(a.path) > 2:
                    link = active[a.path[2]]
                    if not link.refused:
                        link.refused, marked = a.message, True
            if not marked:
                raise _problems(exc) from None


def _problems(exc: TargetProblems) -> InputError:
    return InputError("the Compose file has problems the harness refuses: "
                      + "; ".join(a.message for a in exc.problems[:5]))


# ─────────────────────────────────────── rendering ───────────────────────────────────────


def _q(text: str) -> str:
    return json.dumps(text)          # a JSON string is a YAML string


def render_overlay(compose_rel: str, inf: Inferred) -> str:
    lines = [f"# Continuum target for {compose_rel} (written by `continuum init`; edit freely).",
             "# The Compose file is read as it is; this file adds what the harness needs to know.",
             "# Format: docs/target-format.md.",
             f"compose: {_q(compose_rel)}",
             f"name: {inf.name}",
             ""]
    lines.append("# Where load goes: a service and a container port it publishes.")
    if inf.entrypoints:
        lines.append("entrypoints:")
        lines += [f"  - {{service: {s}, port: {p}}}" for s, p in inf.entrypoints]
    else:
        lines += ["# No service publishes a port: publish the one clients use (ports: [\"8080\"])",
                  "# and name it here.", "entrypoints: []"]
    lines += ["", "# Links routed through the run's Toxiproxy (latency, cuts): client -> upstream:port."]
    active = [l for l in inf.links if not l.refused and l.port is not None]
    lines.append("links:" if active else "links: []")
    said: set[str] = set()
    for l in inf.links:
        entry = f"{{from: {l.client}, to: {l.to}, port: {l.port if l.port else 'PORT'}}}"
        if l.port is None:
            lines.append(f"  # - {entry}   # {l.why}: which port does {l.client} use?")
        elif l.refused:
            # The loader's reason, once per kind of reason (the names in it differ per link).
            kind = l.refused.replace(l.client, "A").replace(l.to, "B")
            lines.append(f"  # - {entry}   # {l.why}")
            if kind not in said:
                said.add(kind)
                lines.append(f"  #   not interposed as written (nor those like it below): {l.refused}")
        else:
            lines.append(f"  - {entry}   # {l.why}")
    lines += ["", "# Roles a fault can select (`select: {role: NAME}`), found by asking when it fires."]
    if inf.roles:
        lines.append("roles:")
        for name, yaml, why in inf.roles:
            lines.append(f"  # {why}")
            lines.append(f"  {name}: {yaml}")
    else:
        lines += ["# roles:",
                  "#   primary: {among: db, http: {port: 8008, path: /primary, status: 200}}",
                  "#   master:  {among: cache, exec: {argv: [redis-cli, role], output_matches: ^master}}"]
    lines += ["",
              "# Durability: tag writes in the locustfile with context={\"write_id\": id}, then say",
              "# how to read back the ids the system holds (http, exec or a function), e.g.",
              "# durability:",
              "#   read: {exec: {among: db, argv: [psql, -tAc, \"select id from writes\"]}}",
              "#   invariants:",
              "#     balanced: {read: {http: {among: app, port: 8080, path: /stats}}, value: total, expected: 0}",
              "",
              f"load: {{locustfile: locustfile.py, profiles: [{PROFILE}]}}",
              ""]
    return "\n".join(lines)


def render_locustfile(inf: Inferred) -> str:
    return f'''"""Starter load profile written by `continuum init`: HTTP GETs on the entry point.

The harness sets CONTINUUM_ENDPOINTS (every entry point's base URL) and
CONTINUUM_REQUEST_TIMEOUT (seconds). A request counts as available when any server answered
below 500: a 404 from a live server is an answer, a 502 from a proxy with no backend is not.
Replace PATHS with what your users do, and tag writes for the durability check:

    self.client.post("/items", json=..., context={{"write_id": key}})
"""

from __future__ import annotations

import itertools
import os
import random

from locust import FastHttpUser, between, task

PATHS = [{_q(inf.health_path)}]
TIMEOUT = float(os.environ.get("CONTINUUM_REQUEST_TIMEOUT", "2") or 2)
_spread = itertools.count()


class {PROFILE}(FastHttpUser):
    wait_time = between(0.01, 0.05)
    network_timeout = TIMEOUT
    connection_timeout = TIMEOUT
    max_retries = 0

    def on_start(self) -> None:
        raw = os.environ.get("CONTINUUM_ENDPOINTS", "")
        self.endpoints = [u.rstrip("/") for u in raw.split(",") if u] or [self.host.rstrip("/")]
        self.base = self.endpoints[next(_spread) % len(self.endpoints)]

    @task
    def get(self) -> None:
        path = random.choice(PATHS)
        with self.client.get(self.base + path, name=path, catch_response=True) as resp:
            code = resp.status_code or 0
            if 0 < code < 500:
                resp.success()
            else:
                resp.failure(f"HTTP {{code}}" if code else f"{{type(resp.error).__name__}}")
'''


def _experiment(name: str, description: str, duration: int, faults: list[str], slo: list[str],
                comment: str) -> str:
    lines = [f"# {comment}", "# Starter thresholds (written by `continuum init`): run it, read the",
             "# report, then tighten them to what your system promises.",
             "apiVersion: continuum/v1", "kind: Experiment", f"name: {name}",
             f"description: {_q(description)}", "target: ..", f"duration: {duration}s",
             f"load: {{profile: {PROFILE}, users: 20, spawn_rate: 20, request_timeout: 2s}}"]
    if faults:
        lines.append("faults:")
        lines += faults
    lines.append("steady_state: {availability: \">= 99%\"}")
    lines.append("slo:")
    lines += [f"  {s}" for s in slo]
    lines.append("abort_if: {availability_below: \"20%\", over: 15s}")
    return "\n".join(lines) + "\n"


def render_suite(inf: Inferred) -> dict[str, str]:
    out: dict[str, str] = {}
    ep = f"{inf.entrypoints[0][0]}:{inf.entrypoints[0][1]}" if inf.entrypoints else "the entry point"
    out["steady-state"] = _experiment(
        "steady-state", f"Under load with no fault, {ep} answers.", 30, [],
        ['availability: ">= 99.9%"', 'latency_p99: "<= 1s"'],
        "The entry point's steady state: the baseline every other experiment is measured against.")
    for group, members in inf.groups:
        faults = []
        for i, inst in enumerate(members):
            faults += [f"  - {{name: kill-{inst}, at: {20 + 25 * i}s, for: 10s, action: container.kill, "
                       f"select: {{service: {inst}}}}}"]
        duration = 20 + 25 * len(members) + 5
        out[f"kill-{group}"] = _experiment(
            f"kill-{group}", f"Killing each of {', '.join(members)} in turn, for 10 s each, "
            "costs little availability.", duration, faults,
            ['availability: ">= 95%"', 'time_to_recover: "<= 15s"'],
            f"Each instance of {group} killed one at a time (SIGKILL, started again after 10 s).")
    for name, _, _ in inf.roles:
        out[f"kill-{name}"] = _experiment(
            f"kill-{name}", f"Killing the current {name} costs little availability.", 60,
            [f"  - {{name: kill-{name}, at: 20s, for: 20s, action: container.kill, "
             f"select: {{role: {name}}}}}"],
            ['availability: ">= 95%"', 'time_to_recover: "<= 15s"'],
            f"The instance holding {name} when the fault fires is killed (found by asking).")
    for l in inf.links:
        if l.refused or l.port is None:
            continue
        upstreams = [m for g, ms in inf.groups if g == l.to for m in ms] or [l.to]
        link = f"{l.client}->{l.to}"
        name = _safe_name(f"latency-{l.client}-{l.to}")
        out[name] = _experiment(
            name, f"200 ms more on {link} for 20 s costs no availability.", 60,
            [f"  - {{name: slow-{_safe_name(l.client + '-' + l.to)}, at: 20s, for: 20s, "
             f"action: network.latency, link: {_q(link)}, latency: 200ms}}"],
            ['availability: ">= 99%"', 'latency_p99: "<= 2s"'],
            f"Latency on the link {link} ({l.why}); upstream instances: {', '.join(upstreams)}.")
    return out


# ─────────────────────────────────────── the command ───────────────────────────────────────


@dataclass(frozen=True)
class InitResult:
    out_dir: Path
    written: tuple[Path, ...]
    inferred: Inferred


def init_target(compose_file: Path | str, out_dir: Path | str | None = None, *,
                say: Callable[[str], None] = print) -> InitResult:
    """Write the target folder for `compose_file`. InputError (nothing written) when the file
    is refused or a file would be overwritten; HarnessError when what was written does not
    validate (a bug here; what was written is removed again)."""
    from harness.loader import _compose_model, _combined, _in_order, _interpolated, load_experiment, load_target
    from harness.yamlsafe import load_yaml

    from harness.model.target import COMPOSE_FILES

    path = Path(compose_file)
    if path.is_dir():
        path = next((path / n for n in COMPOSE_FILES if (path / n).is_file()), path / COMPOSE_FILES[0])
    if not path.is_file():
        raise InputError("no such Compose file", where=f"{path}:1:1")
    root = path.parent.resolve()
    doc, notes = _interpolated(load_yaml(path), root)
    if not isinstance(doc.data, dict):
        raise doc.error("a Compose file must be a mapping with a 'services' key")
    compose, shape = _compose_model(doc)
    errors = [doc.error(m, p) for p, m, bad in notes if bad]
    if compose is None or shape or errors:
        raise _combined(_in_order(errors + shape))
    if "x_continuum" in compose.model_fields_set:
        raise doc.error("this file already has an x-continuum block: it is a target already "
                        f"(continuum validate {path})", ("x-continuum",), key=True)
    try:
        compose.check(root)
    except TargetProblems as exc:
        raise _combined(_in_order([doc.error(a.message, a.path, key=a.key)
                                   for a in exc.problems])) from None

    out = Path(out_dir) if out_dir is not None else root / DEFAULT_DIR
    out_abs = out.resolve()
    try:
        out_abs.relative_to(root)
    except ValueError:
        raise InputError(f"the target folder must be inside {root} (where the Compose file is), "
                         "so that its paths resolve as Compose resolves them",
                         where=f"{out}:1:1") from None

    inferred = infer(compose, root)
    check_links(compose, root, inferred)
    compose_rel = Path(_relpath(path.resolve(), out_abs))
    files = {out_abs / OVERLAY_FILE: render_overlay(str(compose_rel), inferred),
             out_abs / "locustfile.py": render_locustfile(inferred)}
    files.update({out_abs / "experiments" / f"{n}.yaml": t for n, t in render_suite(inferred).items()})
    existing = [p for p in files if p.exists()]
    if existing:
        raise InputError("init never overwrites: " + ", ".join(str(p) for p in existing)
                         + " already exist(s); nothing was written", where=f"{existing[0]}:1:1")

    made_dirs = [d for d in (out_abs, out_abs / "experiments") if not d.exists()]
    written: list[Path] = []
    try:
        for d in made_dirs:
            d.mkdir(parents=True)
        for p, text in files.items():
            with open(p, "x", encoding="utf-8") as fh:     # "x": fail rather than overwrite
                fh.write(text)
            written.append(p)
        target = load_target(out_abs)
        for p in files:
            if p.suffix == ".yaml" and p.parent.name == "experiments":
                load_experiment(p)
    except (InputError, OSError) as exc:
        for p in written:
            p.unlink(missing_ok=True)
        for d in reversed(made_dirs):
            try:
                d.rmdir()
            except OSError:
                pass
        if isinstance(exc, OSError):
            raise InputError(f"cannot write the target folder: {exc}", where=f"{out}:1:1") from None
        raise HarnessError(f"init wrote a target that does not validate (a bug in init; "
                           f"nothing was left behind): {exc}") from None
    del target
    return InitResult(out_abs, tuple(written), inferred)


def _relpath(path: Path, start: Path) -> str:
    import os

    return os.path.relpath(path, start)


def next_steps(result: InitResult, cwd: Path | None = None) -> str:
    import os

    here = cwd or Path.cwd()

    def rel(p: Path) -> str:
        r = os.path.relpath(p, here)
        return r if not r.startswith("../../..") else str(p)

    inf = result.inferred
    out = rel(result.out_dir)
    lines = [f"wrote {out}/ ({len(result.written)} files):"]
    lines += [f"  {rel(p)}" for p in result.written]
    lines.append("")
    lines.append(f"inferred: {len(inf.entrypoints)} entry point(s)"
                 f"{' (' + ', '.join(f'{s}:{p}' for s, p in inf.entrypoints) + ')' if inf.entrypoints else ''}, "
                 f"{sum(1 for l in inf.links if not l.refused and l.port)} link(s)"
                 f"{', ' + str(sum(1 for l in inf.links if l.refused or not l.port)) + ' commented' if any(l.refused or not l.port for l in inf.links) else ''}, "
                 f"{len(inf.groups)} replica group(s), {len(inf.roles)} role(s)")
    refused = [l for l in inf.links if l.refused]
    if refused:
        lines.append(f"  {len(refused)} link(s) left as comments: {refused[0].refused}")
    if not inf.entrypoints:
        lines.append("  no entry point: publish the port clients use, and name it in continuum.yaml")
    lines += ["", "next:",
              f"  1. read {out}/continuum.yaml and {out}/locustfile.py; put what your users do in PATHS",
              f"  2. continuum validate {out} {out}/experiments",
              f"  3. continuum images {out}                       # build or pull every image",
              f"  4. continuum run {out}/experiments/steady-state.yaml --report-dir reports/first",
              f"  5. continuum run {out}/experiments --report-dir reports/suite",
              "  then: tag writes with context={\"write_id\": id} and declare a durability read-back,",
              "  so lost writes are checked (docs/target-format.md)"]
    return "\n".join(lines)


__all__ = ["init_target", "next_steps", "infer", "InitResult"]
