"""A target brought up in Docker for one run: networks, the run's Toxiproxy, services, health.

Links are interposed by address translation in each client's namespace, every container at a
fixed address (harness.stack.links and harness.stack.addressing say how and why); namespace
changes go through helper containers (harness.stack.netexec). The run's Toxiproxy serves its
API only on the control network, which no target container joins, and the host reaches it
through a port published on 127.0.0.1 (on a remote engine, its host's address: harness.stack.reach):
a target cannot remove the faults injected into it.

    with Stack(target) as stack:          # up; on any exit path: down
        stack.endpoints()                 # ["http://10.213.4.2:20000", ...] (or 127.0.0.1:PORT)
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
from harness.stack import janitor, upgrade
from harness.stack.addressing import AddressPlan, candidate_subnets, pools_from_info, used_subnets
from harness.stack.engine import connect, docker_errors
from harness.stack.reach import LOOPBACK, address_for, check_reachable, publish_ip
from harness.stack.images import TOXIPROXY_IMAGE
from harness.stack.instance import Instance
from harness.stack.links import (Interposer, Route, plan_routes, proxied_paths, service_networks,
                                 toxiproxy_networks)
from harness.stack.netexec import HELPER_SERVICE, NetExec, check_image
from harness.stack.options import container_options
from harness.stack.reaper import Reaper
from harness.stack.toxiproxy import ToxiproxyClient
from harness.undo import UndoStack

log = logging.getLogger(__name__)

TOXIPROXY_API_PORT = 8474
HEALTH_TIMEOUT_S = 90.0
# The control network: Toxiproxy's API and ingress listeners, and nothing of the target. Named
# to sort before every target network ("0" < any letter a name may start with): Docker 20.10
# publishes a container's ports through its first non-internal network in name order, and the
# API listens on the control network's address only.
CTL_KEY = "_ctl"
CTL_SUFFIX = "0ctl"
SUBNET_TRIES = 20
DOWN_WORKERS = 32          # removals in flight at once in `down` (one wave for any target here)


@dataclass(frozen=True)
class InstanceRef:
    name: str           # app-2
    service: str        # app
    container: str      # continuum-<run>-app-2


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
        self.engine = address_for(self.client)
        self.publish_ip = publish_ip(self.engine)       # 127.0.0.1 unless the engine is remote
        # Container addresses mean this engine's containers only when the engine is local; on a
        # remote one the same address is whatever this machine's routes lead to.
        self.engine_local = self.engine.local
        self.image_overrides = dict(image_overrides or {})
        self.detach = detach
        self.say = say
        self.undo = UndoStack()
        self.timings: dict[str, float] = {}
        self.toxiproxy: ToxiproxyClient | None = None
        self._reaper: Reaper | None = None
        self._containers: dict[str, Container] = {}
        self._handles: dict[str, Instance] = {}
        self._greens: dict[str, Container] = {}     # blue-green upgrades (harness.stack.upgrade)
        self._ingress_ports: dict[str, int] = {}     # link name → 127.0.0.1 port on the host
        self._ingress_direct: dict[str, str] = {}    # link name → Toxiproxy's own address:port
        self._bindings: dict[str, dict[str, tuple[str, int]]] = {}   # removed instance → its ports
        self._images: dict[str, str] = {}            # removed instance → the image id it ran
        self._up = False
        self.nets = service_networks(target)          # service → network keys (with attachments)
        self.plan = AddressPlan()
        self.routes: tuple[Route, ...] = ()
        self.netexec = NetExec(self.client, lambda _name: self.labels(service=HELPER_SERVICE),
                               self.object_name)
        self.interposer: Interposer | None = None
        self._networks: list = []

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
        for warning in check_reachable(self.target, self.engine):     # before anything is made
            self.say(warning)
        swept = janitor.sweep(self.client)
        if swept:
            self.say(f"janitor removed orphaned runs: {', '.join(swept)}")
        self._check_collisions()
        check_image(self.client)
        self._reaper = Reaper(self.run_id).__enter__()
        self.undo.push("stop the reaper", self._close_reaper)
        self.timings["reaper_s"] = time.monotonic() - t0

        t = time.monotonic()
        self._create_networks()
        self.timings["networks_s"] = time.monotonic() - t
        self._create_volumes()
        t = time.monotonic()
        self._start_toxiproxy()
        self.timings["toxiproxy_s"] = time.monotonic() - t
        t = time.monotonic()
        for level in dependency_levels(self.target):
            self._start_level(level)
        self.timings["services_s"] = time.monotonic() - t
        self.timings["up_s"] = time.monotonic() - t0
        self._up = True
        if not self.detach:     # a stack left running has no harness to use them
            self.netexec.warm([(self._containers[i.name], i.name) for i in self.instances()])

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
        for vol in self.target.volumes:
            name = self.volume_name(vol.name)
            # The name filter matches substrings: compare exactly.
            if any(v.name == name for v in self.client.volumes.list(filters={"name": name})):
                raise NameCollision(f"a volume named {name} already exists; it was left untouched")

    def _network_names(self) -> dict[str, str]:
        nets = {n.name: self.object_name(n.name) for n in self.target.networks}
        nets[CTL_KEY] = self.object_name(CTL_SUFFIX)
        return nets

    def _members(self, key: str) -> list[str]:
        return [i for i, s in self.target.instances() if key in self.nets[s.name]]

    def _create_networks(self) -> None:
        """Each network on a subnet of the engine's pools that we name, so every container can
        have a fixed address (see harness.stack.addressing)."""
        internal = {n.name: n.internal for n in self.target.networks}
        with docker_errors("reading the engine's address pools"):
            pools = pools_from_info(self.client.info())
            used = used_subnets(self.client.api.networks())
        for key, name in self._network_names().items():
            # The control network is the only one we add, and it reaches the host (published ports).
            is_internal = internal.get(key, False)
            members = self._members(key) if key != CTL_KEY else []
            net = None
            tried: list[str] = []
            for subnet in candidate_subnets(pools, used, len(members) + 12):
                if len(tried) >= SUBNET_TRIES:
                    break
                tried.append(str(subnet))
                ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(
                    subnet=str(subnet), gateway=str(subnet.network_address + 1))])
                try:
                    net = self.client.networks.create(
                        name, driver="bridge", internal=is_internal, labels=self.labels(),
                        check_duplicate=True, ipam=ipam)
                except APIError as exc:
                    text = str(exc.explanation or exc)
                    if "overlap" in text.lower():   # taken meanwhile by another run or user
                        used.append(subnet)
                        continue
                    raise StackError(f"could not create network {name}: {text}") from exc
                used.append(subnet)
                self.plan.add_network(key, subnet, members)
                break
            if net is None:
                raise StackError(f"could not create network {name}: no free subnet in the engine's "
                                 f"address pools ({', '.join(b for b, _ in pools)}); tried {', '.join(tried) or 'none'}")
            self.undo.push(f"remove network {name}", lambda net=net: _remove_network(net))
            self._networks.append(net)
        self.routes = plan_routes(self.target, self.nets, self.plan, CTL_KEY)

    # ───────────────────────────── volumes ─────────────────────────────

    def volume_name(self, name: str) -> str:
        """A named volume of the target, as this run's own: created for it, removed with it."""
        return self.object_name(f"vol-{name}")

    def _create_volumes(self) -> None:
        for vol in self.target.volumes:
            name = self.volume_name(vol.name)
            with docker_errors(f"could not create volume {name}"):
                created = self.client.volumes.create(
                    name=name, driver="local", labels={**dict(vol.labels), **self.labels()})
            self.undo.push(f"remove volume {name}", lambda v=created: _remove_volume(v))

    def _start_toxiproxy(self) -> None:
        nets = self._network_names()
        ctl_ip = self.plan.toxiproxy_ip(CTL_KEY)
        ports: dict[str, tuple[str, None]] = {f"{TOXIPROXY_API_PORT}/tcp": (self.publish_ip, None)}
        ingress = [r for r in self.routes if r.ingress]
        for r in ingress:
            ports[f"{r.listen_port}/tcp"] = (self.publish_ip, None)
        name = self.object_name("toxiproxy")
        container = self._create(
            name=name,
            image=TOXIPROXY_IMAGE,
            # The API on the control network's address only: target containers, which never
            # join that network, cannot reach it (Docker isolates bridges from each other).
            command=[f"-host={ctl_ip}", f"-port={TOXIPROXY_API_PORT}"],
            labels=self.labels(service="toxiproxy", instance="toxiproxy"),
            hostname="toxiproxy",
            network=nets[CTL_KEY],
            aliases=["toxiproxy"],
            ipv4_address=ctl_ip,
            ports=ports,
        )
        # Toxiproxy listens where the clients are and dials upstreams by their fixed address.
        for key in toxiproxy_networks(self.routes):
            if key != CTL_KEY:
                self._connect(container, nets[key], aliases=[], ipv4_address=self.plan.toxiproxy_ip(key))
        self._start(container)
        container.reload()
        api_port = int(container.ports[f"{TOXIPROXY_API_PORT}/tcp"][0]["HostPort"])
        self.toxiproxy = ToxiproxyClient(self.publish_ip, api_port)
        self.toxiproxy.wait_ready()
        # Probed on the API port: a connection to a listener would dial its upstream. Only on a
        # local engine: a remote engine's bridge addresses may coincide with a local container's.
        direct = bool(ingress) and self.publish_ip == LOOPBACK and _reachable(ctl_ip, TOXIPROXY_API_PORT)
        for r in self.routes:
            self.toxiproxy.create_proxy(r.link, f"{r.listen_ip}:{r.listen_port}", f"{r.upstream_ip}:{r.port}")
            if r.ingress:
                self._ingress_ports[r.link] = int(container.ports[f"{r.listen_port}/tcp"][0]["HostPort"])
                if direct:
                    self._ingress_direct[r.link] = f"{r.listen_ip}:{r.listen_port}"
        if ingress:
            log.info("ingress links reached %s", "at Toxiproxy's own address" if self._ingress_direct
                     else f"through ports published on {self.publish_ip} (the engine's bridge is not reachable)")
        self._containers["toxiproxy"] = container
        self.interposer = Interposer(self.client, self.run_id, self.routes, self.netexec,
                                     self.container, lambda i: self.target.service_of(i).name,
                                     lambda: self.toxiproxy,
                                     lambda svc: list(self.target.service(svc).instance_names()))
        self.interposer.watch()

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
        one_shot = _one_shot(self.target)
        for (svc, _), container in zip(jobs, created):
            self._wait_healthy(container, deadline, until_exit=svc.name in one_shot)

    def _create_instance(self, svc: ServiceSpec, instance: str, start: bool = True,
                         ports: dict[str, tuple[str, int]] | None = None,
                         image: str | None = None) -> Container:
        """`image` and `ports`: a replacement's (harness.stack.upgrade, a restore), else the service's."""
        nets = self._network_names()
        keys = self.nets[svc.name]
        if not keys:
            raise StackError(f"service {svc.name} has no networks")
        container = self._create(
            name=self.object_name(instance),
            image=image or self.image_overrides.get(svc.name, svc.image),
            network=nets[keys[0]],
            aliases=_aliases(svc, instance),
            ipv4_address=self.plan.ip(instance, keys[0]),
            # A port chosen now, not by Docker at start: a killed and restarted instance must
            # come back on the same address, or load and the audit would lose it.
            ports=ports if ports is not None else {
                f"{p.container_port}/{p.protocol}": (self.publish_ip, p.host_port or _free_port()) for p in svc.ports},
            **container_options(svc, instance, volume_name=self.volume_name,
                                labels=self.labels(service=svc.name, instance=instance)),
        )
        for key in keys[1:]:
            self._connect(container, nets[key], aliases=_aliases(svc, instance),
                          ipv4_address=self.plan.ip(instance, key))
        self._containers[instance] = container
        if not start:
            return container
        self._start(container)
        if self.interposer is not None and self.interposer.is_client(instance):
            # Before anyone waits for it to be healthy: its links go through the proxy from
            # (almost) its first connection; the guard rule resets any that came before.
            try:
                self.interposer.ensure(instance)
            except HarnessError as exc:
                raise StackError(f"could not interpose the links of {instance}: {exc}") from exc
        return container

    def _create(self, *, name: str, network: str, aliases: list[str], ipv4_address: str | None = None,
                **kwargs) -> Container:
        endpoint = self.client.api.create_endpoint_config(aliases=aliases, ipv4_address=ipv4_address)
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

    def _connect(self, container: Container, network: str, aliases: list[str],
                 ipv4_address: str | None = None) -> None:
        with docker_errors(f"could not connect {container.name} to {network}"):
            self.client.networks.get(network).connect(container, aliases=aliases or None,
                                                      ipv4_address=ipv4_address)

    def _start(self, container: Container) -> None:
        with docker_errors(f"could not start {container.name}"):
            container.start()

    def _wait_healthy(self, container: Container, deadline: float, until_exit: bool = False) -> None:
        """Until healthy (running, without a health check); with `until_exit` (a dependency
        declared `service_completed_successfully`), until it exited 0."""
        while True:
            with docker_errors(f"{container.name} vanished while starting"):
                container.reload()
            state = container.attrs["State"]
            health = (state.get("Health") or {}).get("Status")
            if until_exit and state["Status"] == "exited" and state.get("ExitCode") == 0:
                return
            if state["Status"] == "exited" or state["Status"] == "dead":
                raise StackError(f"{container.name} exited with {state.get('ExitCode')}: {_log_tail(container)}")
            if not until_exit and (health == "healthy" or (health is None and state["Status"] == "running")):
                return
            if state.get("Restarting") and container.attrs.get("RestartCount", 0) >= 3:
                raise StackError(f"{container.name} keeps restarting (restart policy; "
                                 f"{container.attrs.get('RestartCount')} restarts, last exit "
                                 f"{state.get('ExitCode')}): {_log_tail(container)}")
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
        # Stop following the engine first: what we remove now must not be re-interposed.
        if self.interposer is not None:
            self.interposer.close()
        self.netexec.close()
        self.timings["down_unfollow_s"] = time.monotonic() - t
        # The helpers exited when their stdin closed (and remove themselves); every container in
        # parallel (each removal is a kill + rm), then the networks in parallel. The parallel pass
        # is best effort: the undo stack below removes each container again and reports what it
        # could not; the reaper sweeps what is left (an engine that is restarting).
        doomed = list(self._containers.values()) + self.netexec.containers()
        # All at once, so no removal waits for a slow one of an earlier wave. dockerd serialises
        # much of it anyway: against 8 at a time, `down` of the reference measured 3.51 vs 3.86 s
        # and 3.71 vs 3.70 s (benchmarks/stack_up_down.py), the engine alone 2.90 s in its shape.
        with ThreadPoolExecutor(max_workers=max(1, min(len(doomed), DOWN_WORKERS))) as pool:
            list(pool.map(_try_remove_container, doomed))
            self.timings["down_containers_s"] = time.monotonic() - t
            list(pool.map(_quietly(_remove_network), self._networks))
            self.timings["down_networks_s"] = time.monotonic() - t
        failures = self.undo.unwind()     # what is left: the reaper, anything not removed above
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
            handle = self._handles[name] = Instance(
                self.container(name), name, self.target.service_of(name).name, self.netexec,
                before_kill=self.interposer.stopping if self.interposer is not None else None,
                before_start=self.interposer.starting if self.interposer is not None else None)
        return handle

    # ────────────────────── disaster and restore (harness.faults.drill) ──────────────────────

    def remove_instance(self, instance: str) -> tuple[str, ...]:
        """Remove an instance with its data: its container, its anonymous volumes and the named
        volumes of *this run* it mounts (a volume not labelled with this run id is never
        touched). Its name, addresses and published ports are kept for `recreate_instance`.
        Returns the volumes removed."""
        container = self.container(instance)
        with docker_errors(f"inspecting {instance}"):
            container.reload()
        mounts = [m.get("Name") for m in container.attrs.get("Mounts") or () if m.get("Type") == "volume"]
        self._bindings[instance] = {
            port: (b[0].get("HostIp") or self.publish_ip, int(b[0]["HostPort"]))
            for port, b in ((container.attrs.get("HostConfig") or {}).get("PortBindings") or {}).items() if b}
        # The image it ran, by id: a tag may have moved since the run started (another build), and
        # a restore brings back the same software, not whatever the tag names now.
        self._images[instance] = container.attrs.get("Image") or ""
        if self.interposer is not None:
            self.interposer.stopping(instance)
        self._handles.pop(instance, None)
        _remove_container(container)            # force: a kill and a removal, with -v
        removed = []
        for name in filter(None, mounts):
            with docker_errors(f"inspecting volume {name}"):
                try:
                    volume = self.client.volumes.get(name)
                except NotFound:
                    continue                    # anonymous: went with the container
            if (volume.attrs.get("Labels") or {}).get(RUN_LABEL) != self.run_id:
                continue                        # not ours: never touched
            with docker_errors(f"removing volume {name} of {instance}"):
                _remove_volume(volume)
            removed.append(name)
        return tuple(removed)

    def recreate_instance(self, instance: str) -> Instance:
        """A fresh container for an instance removed by `remove_instance`: same name, addresses
        and published ports, the image it ran (by id), this run's labels, empty volumes; created, *not started* (a restore
        copies files in first). Registered on the undo stack like every container."""
        svc = self.target.service_of(instance)
        for vol in self.target.volumes:
            name = self.volume_name(vol.name)
            if any(m.source == vol.name for m in svc.volumes) and not self.client.volumes.list(filters={"name": name}):
                with docker_errors(f"could not create volume {name}"):
                    created = self.client.volumes.create(
                        name=name, driver="local", labels={**dict(vol.labels), **self.labels()})
                self.undo.push(f"remove volume {name}", lambda v=created: _remove_volume(v))
        self._create_instance(svc, instance, start=False, ports=self._bindings.get(instance),
                              image=self._images.get(instance) or None)
        return self.instance(instance)

    def proxied_paths(self, client: str, upstream: str) -> list[tuple[str, int]]:
        """(address, port) of the proxy listeners through which instance `client` reaches
        instance `upstream` (a partition cuts them too)."""
        return proxied_paths(self.routes, self.target.service_of(client).name, upstream)

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
                    direct = self._ingress_direct.get(ingress.name)
                    out.append((name, f"http://{direct}" if direct else
                                f"http://{self.publish_ip}:{self._ingress_ports[ingress.name]}"))
                    continue
                c = self.container(name)
                c.reload()
                binding = (c.ports or {}).get(f"{port_}/tcp")
                if not binding:
                    raise StackError(f"{name} does not publish port {port_}")
                out.append((name, f"http://{self.publish_ip}:{binding[0]['HostPort']}"))
        return out

    def published_url(self, instance: str, port: int) -> str:
        """http://127.0.0.1:HOST_PORT of an instance's published container `port`. Read from
        the bindings made at creation, so it is known while the instance is down too."""
        bindings = (self.container(instance).attrs.get("HostConfig") or {}).get("PortBindings") or {}
        for binding in bindings.get(f"{port}/tcp") or ():
            if binding.get("HostPort"):
                return f"http://{self.publish_ip}:{binding['HostPort']}"
        raise StackError(f"{instance} does not publish port {port}")

    def links(self) -> tuple[LinkSpec, ...]:
        return self.target.links

    # ─────────── upgrades: service.upgrade (the how is in harness.stack.upgrade) ───────────

    # For harness.stack.upgrade, which cannot import this module (it is imported by it).
    remove_container = staticmethod(lambda c: _remove_container(c))
    aliases = staticmethod(lambda svc, instance: _aliases(svc, instance))

    def image_present(self, image: str) -> bool:
        return upgrade.image_present(self, image)

    def replace_instance(self, instance: str, image: str, grace_s: float) -> None:
        upgrade.replace(self, instance, image, grace_s)

    def add_green(self, instance: str, image: str) -> Instance:
        upgrade.add_green(self, instance, image)
        return upgrade.green_handle(self, instance)

    def switch_to_green(self, instance: str) -> float:
        return upgrade.switch_to_green(self, instance)

    def retire_blue(self, instance: str, grace_s: float) -> None:
        upgrade.retire_blue(self, instance, grace_s)

    def remove_green(self, instance: str) -> None:
        upgrade.remove_green(self, instance)

    def log_tail(self, instance: str, lines: int = 5) -> str:
        """The last lines an instance (or a green one) logged, for error messages."""
        c = self._containers.get(instance) or self._greens.get(instance)
        return "(no such container)" if c is None else _log_tail(c, lines)


def _one_shot(target: Target) -> set[str]:
    """Services some dependent waits on to finish (`condition: service_completed_successfully`)."""
    return {d.name for s in target.services for d in s.needs
            if d.condition == "service_completed_successfully"}


def _aliases(svc: ServiceSpec, instance: str) -> list[str]:
    """The names an instance answers to on its networks: its own, its service's, and the
    service's container_name (which Compose files use as a host name)."""
    return list(dict.fromkeys([instance, svc.name] + ([svc.container_name] if svc.container_name else [])))


def _remove_volume(volume) -> None:
    _remove_retrying(lambda: volume.remove(force=True))     # a removed container may still hold it


def _reachable(ip: str, port: int, timeout_s: float = 0.5) -> bool:
    """Can the host open a TCP connection to a container's own address? On a local Linux engine
    it can, and the load then goes straight to Toxiproxy's listener. The published port would
    put Docker's userland proxy (docker-proxy) in the path, which is neither the system nor the
    fault: it accepts every connection itself and dials the container only afterwards, so with
    the link down a request fails only after that dial (~35 ms here, not a refused connect at
    once), and a request that started up to ~40 ms *before* the link came back succeeds: a
    2.000 s cut measured as 1.92-1.96 s. A remote engine or Docker Desktop keeps the published
    port (its bridge is not routable from here)."""
    try:
        with socket.create_connection((ip, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _remove_container(container: Container) -> None:
    with docker_errors(f"could not remove {container.name}"):
        try:
            container.remove(force=True, v=True)
        except NotFound:
            pass
        except APIError as exc:
            # 409 "removal already in progress": the reaper, a parallel removal or a helper
            # removing itself (auto-remove) got there first; raising here would hide the error
            # that made us tear down.
            if exc.status_code != 409:
                raise


def _try_remove_container(container: Container) -> None:
    try:
        _remove_container(container)
    except HarnessError as exc:
        log.debug("first removal pass: %s", exc)


def _remove_network(net) -> None:
    _remove_retrying(net.remove)


def _remove_retrying(remove: Callable[[], object], attempts: int = 5) -> None:
    """Remove a network or volume; a container's removal may still hold it for a moment."""
    for attempt in range(attempts):
        try:
            remove()
            return
        except NotFound:
            return
        except APIError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.2 * (attempt + 1))


def _quietly(fn: Callable) -> Callable:
    """For the fast path of `down`: a failure here is retried by the undo stack, which reports it."""
    def run(*args: object) -> None:
        try:
            fn(*args)
        except DockerException:
            pass
    return run


def _log_tail(container: Container, lines: int = 5) -> str:
    try:
        out = container.logs(tail=lines).decode(errors="replace").strip()
    except DockerException:
        return "(no logs)"
    return " | ".join(out.splitlines()) or "(no output)"
