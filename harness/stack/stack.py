"""A target brought up in Docker for one run: networks, the run's Toxiproxy, services, health.

    with Stack(target) as stack:          # up; on any exit path: down
        stack.endpoints()                 # ["http://127.0.0.1:41234", ...]
        stack.toxiproxy                   # the run's ToxiproxyClient
        stack.container("app-2")          # docker Container of one instance

Every object is labelled with the run id and registered on the undo stack the moment it exists,
so a failure halfway through `up` removes exactly what was made. An out-of-process reaper
covers SIGKILL of the harness; a janitor sweeps orphans of dead owners on the next start.
"""

from __future__ import annotations

import logging
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable

import docker
from docker.errors import APIError, DockerException, NotFound
from docker.models.containers import Container

from harness import INSTANCE_LABEL, OWNER_LABEL, RUN_LABEL, SERVICE_LABEL, TARGET_LABEL
from harness.errors import HarnessError, NameCollision, StackError
from harness.model.target import LinkSpec, ServiceSpec, Target
from harness.runid import DETACHED, new_run_id, owner_token
from harness.stack import janitor
from harness.stack.engine import connect, docker_errors
from harness.stack.images import TOXIPROXY_IMAGE
from harness.stack.instance import Instance
from harness.stack.reaper import Reaper
from harness.stack.toxiproxy import ToxiproxyClient
from harness.undo import UndoStack

log = logging.getLogger(__name__)

TOXIPROXY_API_PORT = 8474
INGRESS_PORT_BASE = 20000  # below the ephemeral range, where Toxiproxy listeners misbehave
HEALTH_TIMEOUT_S = 90.0


@dataclass(frozen=True)
class InstanceRef:
    name: str           # app-2
    service: str        # app
    container: str      # continuum-<run>-app-2


def _seconds_ns(s: float) -> int:
    return int(s * 1_000_000_000)


def dependency_levels(target: Target) -> list[list[ServiceSpec]]:
    """Services grouped so each group depends only on earlier groups (loader rejects cycles)."""
    placed: dict[str, int] = {}
    remaining = list(target.services)
    levels: list[list[ServiceSpec]] = []
    while remaining:
        level = [s for s in remaining if all(d in placed for d in s.depends_on)]
        if not level:
            raise StackError("depends_on has a cycle among: " + ", ".join(s.name for s in remaining))
        for s in level:
            placed[s.name] = len(levels)
        levels.append(level)
        remaining = [s for s in remaining if s.name not in placed]
    return levels


class Stack:
    def __init__(
        self,
        target: Target,
        run_id: str | None = None,
        *,
        client: docker.DockerClient | None = None,
        image_overrides: dict[str, str] | None = None,
        detach: bool = False,
        say: Callable[[str], None] = log.info,
    ):
        self.target = target
        self.run_id = run_id or new_run_id()
        self.client = client or connect()
        self.image_overrides = dict(image_overrides or {})
        self.detach = detach
        self.say = say
        self.undo = UndoStack()
        self.timings: dict[str, float] = {}
        self.toxiproxy: ToxiproxyClient | None = None
        self._reaper: Reaper | None = None
        self._containers: dict[str, Container] = {}
        self._handles: dict[str, Instance] = {}
        self._ingress_ports: dict[str, int] = {}     # link name → 127.0.0.1 port on the host
        self._up = False

    # ───────────────────────────── naming and labels ─────────────────────────────

    def object_name(self, suffix: str) -> str:
        return f"continuum-{self.run_id}-{suffix}"

    def labels(self, service: str | None = None, instance: str | None = None) -> dict[str, str]:
        labels = {
            RUN_LABEL: self.run_id,
            OWNER_LABEL: DETACHED if self.detach else owner_token(),
            TARGET_LABEL: self.target.name,
        }
        if service:
            labels[SERVICE_LABEL] = service
        if instance:
            labels[INSTANCE_LABEL] = instance
        return labels

    def instances(self, service: str | None = None) -> list[InstanceRef]:
        return [
            InstanceRef(i, s.name, self.object_name(i))
            for i, s in self.target.instances()
            if service is None or s.name == service
        ]

    # ────────────────────────────────── up ──────────────────────────────────

    def __enter__(self) -> "Stack":
        try:
            self.up()
        except BaseException:
            self.down()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.down()

    def up(self) -> None:
        t0 = time.monotonic()
        swept = janitor.sweep(self.client)
        if swept:
            self.say(f"janitor removed orphaned runs: {', '.join(swept)}")
        self._check_collisions()
        self._reaper = Reaper(self.run_id).__enter__()
        self.undo.push("stop the reaper", self._close_reaper)
        self.timings["reaper_s"] = time.monotonic() - t0

        t = time.monotonic()
        self._create_networks()
        self.timings["networks_s"] = time.monotonic() - t
        t = time.monotonic()
        self._start_toxiproxy()
        self.timings["toxiproxy_s"] = time.monotonic() - t
        t = time.monotonic()
        for level in dependency_levels(self.target):
            self._start_level(level)
        self.timings["services_s"] = time.monotonic() - t
        self.timings["up_s"] = time.monotonic() - t0
        self._up = True

    def _check_collisions(self) -> None:
        names = [i.container for i in self.instances()] + [self.object_name("toxiproxy")]
        for name in names:
            try:
                existing = self.client.containers.get(name)
            except NotFound:
                continue
            raise NameCollision(
                f"a container named {name} already exists "
                f"({'run ' + existing.labels[RUN_LABEL] if RUN_LABEL in existing.labels else 'not made by Continuum'}); "
                "it was left untouched. Pick another --run-id or remove it yourself."
            )
        for net in self._network_names().values():
            if self.client.networks.list(names=[net]):
                raise NameCollision(f"a network named {net} already exists; it was left untouched")

    def _network_names(self) -> dict[str, str]:
        nets = {n.name: self.object_name(n.name) for n in self.target.networks}
        nets["_ctl"] = self.object_name("ctl")
        for link in self.target.links:
            if link.client != "host":
                nets[f"_link:{link.name}"] = self.object_name(f"link-{link.name}")
        return nets

    def _create_networks(self) -> None:
        internal = {n.name: n.internal for n in self.target.networks}
        for key, name in self._network_names().items():
            # The control network is the only one we add that reaches the host (for published ports).
            is_internal = internal.get(key, key != "_ctl")
            try:
                net = self.client.networks.create(
                    name, driver="bridge", internal=is_internal, labels=self.labels(), check_duplicate=True
                )
            except APIError as exc:
                raise StackError(f"could not create network {name}: {exc.explanation or exc}") from exc
            self.undo.push(f"remove network {name}", lambda net=net: _remove_network(net))

    def _start_toxiproxy(self) -> None:
        nets = self._network_names()
        ports: dict[str, tuple[str, None]] = {f"{TOXIPROXY_API_PORT}/tcp": ("127.0.0.1", None)}
        ingress = [link for link in self.target.links if link.client == "host"]
        for i, link in enumerate(ingress):
            ports[f"{INGRESS_PORT_BASE + i}/tcp"] = ("127.0.0.1", None)
        name = self.object_name("toxiproxy")
        container = self._create(
            name=name,
            image=TOXIPROXY_IMAGE,
            labels=self.labels(service="toxiproxy", instance="toxiproxy"),
            hostname="toxiproxy",
            network=nets["_ctl"],
            aliases=["toxiproxy"],
            ports=ports,
        )
        # Toxiproxy takes each upstream's name on that link's own network, and joins the
        # upstream's networks to reach the real container by its unique container name.
        upstream_nets: set[str] = set()
        for link in self.target.links:
            if link.client != "host":
                self._connect(container, nets[f"_link:{link.name}"], aliases=[link.upstream])
            upstream_service = self._service_of_instance(link.upstream)
            upstream_nets.update(upstream_service.networks)
        for net in sorted(upstream_nets):
            self._connect(container, nets[net], aliases=[])
        self._start(container)
        container.reload()
        api_port = int(container.ports[f"{TOXIPROXY_API_PORT}/tcp"][0]["HostPort"])
        self.toxiproxy = ToxiproxyClient("127.0.0.1", api_port)
        self.toxiproxy.wait_ready()
        networks = container.attrs["NetworkSettings"]["Networks"]
        for i, link in enumerate(ingress):
            listen_ip = networks[nets["_ctl"]]["IPAddress"]
            self.toxiproxy.create_proxy(
                link.name, f"{listen_ip}:{INGRESS_PORT_BASE + i}", f"{self.object_name(link.upstream)}:{link.port}"
            )
            self._ingress_ports[link.name] = int(container.ports[f"{INGRESS_PORT_BASE + i}/tcp"][0]["HostPort"])
        for link in self.target.links:
            if link.client == "host":
                continue
            listen_ip = networks[nets[f"_link:{link.name}"]]["IPAddress"]
            self.toxiproxy.create_proxy(
                link.name, f"{listen_ip}:{link.port}", f"{self.object_name(link.upstream)}:{link.port}"
            )
        self._containers["toxiproxy"] = container

    def _service_of_instance(self, instance: str) -> ServiceSpec:
        try:
            return self.target.service_of(instance)
        except KeyError:
            raise StackError(f"link upstream {instance} is not an instance of the target") from None

    def _start_level(self, level: list[ServiceSpec]) -> None:
        jobs = [(svc, inst) for svc in level for inst in svc.instance_names()]
        with ThreadPoolExecutor(max_workers=min(8, len(jobs))) as pool:
            created = list(pool.map(lambda job: self._create_instance(*job), jobs))
        deadline = time.monotonic() + HEALTH_TIMEOUT_S
        for container in created:
            self._wait_healthy(container, deadline)

    def _create_instance(self, svc: ServiceSpec, instance: str) -> Container:
        nets = self._network_names()
        if not svc.networks:
            raise StackError(f"service {svc.name} has no networks")
        hc = svc.healthcheck
        container = self._create(
            name=self.object_name(instance),
            image=self.image_overrides.get(svc.name, svc.image),
            labels=self.labels(service=svc.name, instance=instance),
            hostname=instance,
            network=nets[svc.networks[0]],
            aliases=[instance, svc.name],
            command=list(svc.command) if svc.command else None,
            entrypoint=list(svc.entrypoint) if svc.entrypoint else None,
            environment=[f"{k}={v}" for k, v in svc.environment],
            # A port chosen now, not by Docker at start: a killed and restarted instance must
            # come back on the same address, or load and the audit would lose it.
            ports={f"{p.container_port}/{p.protocol}": ("127.0.0.1", p.host_port or _free_port()) for p in svc.ports},
            cap_add=list(svc.cap_add) or None,
            stop_signal="SIGTERM",
            healthcheck=None
            if hc is None
            else {
                "test": list(hc.test),
                "interval": _seconds_ns(hc.interval_s),
                "timeout": _seconds_ns(hc.timeout_s),
                "retries": hc.retries,
                "start_period": _seconds_ns(hc.start_period_s),
            },
        )
        for net in svc.networks[1:]:
            self._connect(container, nets[net], aliases=[instance, svc.name])
        for link in self.target.links:
            if link.client == svc.name:
                self._connect(container, nets[f"_link:{link.name}"], aliases=[])
        self._start(container)
        self._containers[instance] = container
        return container

    def _create(self, *, name: str, network: str, aliases: list[str], **kwargs) -> Container:
        endpoint = self.client.api.create_endpoint_config(aliases=aliases)
        try:
            with docker_errors(f"could not create container {name}"):
                container = self.client.containers.create(
                    name=name, network=network, networking_config={network: endpoint}, detach=True, **kwargs)
        except StackError as exc:
            cause = exc.__cause__
            if isinstance(cause, APIError) and cause.status_code == 409:
                raise NameCollision(f"a container named {name} appeared while starting; it was left untouched") from cause
            raise
        self.undo.push(f"remove container {name}", lambda: _remove_container(container))
        return container

    def _connect(self, container: Container, network: str, aliases: list[str]) -> None:
        with docker_errors(f"could not connect {container.name} to {network}"):
            self.client.networks.get(network).connect(container, aliases=aliases or None)

    def _start(self, container: Container) -> None:
        with docker_errors(f"could not start {container.name}"):
            container.start()

    def _wait_healthy(self, container: Container, deadline: float) -> None:
        while True:
            with docker_errors(f"{container.name} vanished while starting"):
                container.reload()
            state = container.attrs["State"]
            health = (state.get("Health") or {}).get("Status")
            if state["Status"] == "exited" or state["Status"] == "dead":
                raise StackError(f"{container.name} exited with {state.get('ExitCode')}: {_log_tail(container)}")
            if health == "healthy" or (health is None and state["Status"] == "running"):
                return
            if time.monotonic() > deadline:
                raise StackError(
                    f"{container.name} not healthy after {HEALTH_TIMEOUT_S:.0f} s (status {health}): {_log_tail(container)}"
                )
            time.sleep(0.1)

    # ────────────────────────────────── down ──────────────────────────────────

    def down(self) -> list[str]:
        """Remove everything this run made. Returns the undo failures, if any (then the reaper,
        which sweeps by label when told we are done, still removes what is left)."""
        t = time.monotonic()
        if self.detach and self._up:
            # `continuum up`: leave the stack running; only let go of the reaper.
            if self._reaper is not None:
                self._reaper.detach()
                self._reaper = None
            return []
        # Containers first, in parallel (each removal is a kill + rm), then networks.
        containers = [c for c in self._containers.values()]
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(_remove_container, containers))
        failures = self.undo.unwind()
        self.timings["down_s"] = time.monotonic() - t
        return [f"{f.description}: {f.error}" for f in failures]

    def _close_reaper(self) -> None:
        if self._reaper is not None:
            self._reaper.__exit__(None, None, None)
            self._reaper = None

    # ─────────────────────────────── what runs ───────────────────────────────

    def container(self, instance: str) -> Container:
        try:
            return self._containers[instance]
        except KeyError:
            raise HarnessError(f"no instance {instance} in this run") from None

    def instance(self, name: str) -> Instance:
        """The handle faults use (docker errors translated, timeouts on every wait)."""
        handle = self._handles.get(name)
        if handle is None:
            handle = self._handles[name] = Instance(self.container(name), name,
                                                    self.target.service_of(name).name)
        return handle

    def endpoints(self, service: str | None = None, port: int | None = None) -> list[str]:
        """Base URLs on 127.0.0.1 for the target's entry points (through an ingress link if any)."""
        return [url for _, url in self.entry_points(service, port)]

    def entry_points(self, only: str | None = None, port: int | None = None) -> list[tuple[str, str]]:
        """(instance, base URL) of each entry point, through its ingress link if it has one;
        `only` narrows to a service or one instance."""
        out = []
        for ep in self.target.entrypoints:
            port_ = port or ep.port
            names = [i.name for i in self.instances(ep.service)] or [ep.service]
            for name in names:
                if only is not None and only not in (name, ep.service):
                    continue
                ingress = next(
                    (l for l in self.target.links if l.client == "host" and l.upstream == name and l.port == port_), None
                )
                if ingress is not None:
                    out.append((name, f"http://127.0.0.1:{self._ingress_ports[ingress.name]}"))
                    continue
                c = self.container(name)
                c.reload()
                binding = (c.ports or {}).get(f"{port_}/tcp")
                if not binding:
                    raise StackError(f"{name} does not publish port {port_}")
                out.append((name, f"http://127.0.0.1:{binding[0]['HostPort']}"))
        return out

    def published_url(self, instance: str, port: int) -> str:
        """http://127.0.0.1:HOST_PORT of an instance's published container `port`. Read from
        the bindings made at creation, so it is known while the instance is down too."""
        bindings = (self.container(instance).attrs.get("HostConfig") or {}).get("PortBindings") or {}
        for binding in bindings.get(f"{port}/tcp") or ():
            if binding.get("HostPort"):
                return f"http://127.0.0.1:{binding['HostPort']}"
        raise StackError(f"{instance} does not publish port {port}")

    def links(self) -> tuple[LinkSpec, ...]:
        return self.target.links


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _remove_container(container: Container) -> None:
    try:
        container.remove(force=True, v=True)
    except NotFound:
        pass
    except APIError as exc:
        # 409 "removal already in progress": the reaper or a parallel removal got there first;
        # raising here would hide the error that made us tear down.
        if exc.status_code != 409:
            raise


def _remove_network(net) -> None:
    for attempt in range(5):
        try:
            net.remove()
            return
        except NotFound:
            return
        except APIError:
            if attempt == 4:
                raise
            time.sleep(0.2 * (attempt + 1))


def _log_tail(container: Container, lines: int = 5) -> str:
    try:
        out = container.logs(tail=lines).decode(errors="replace").strip()
    except DockerException:
        return "(no logs)"
    return " | ".join(out.splitlines()) or "(no output)"
