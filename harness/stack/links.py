"""How a link (client service → upstream instance) is routed through the run's Toxiproxy.

Address translation in the client's own network namespace, with one Toxiproxy per run:

* every instance has a fixed address (harness.stack.addressing), so `upstream_ip:port` means
  the same container for the whole run, restarts included;
* Toxiproxy listens on its own address on a network the client shares with the upstream, on a
  port of its own per link (`LINK_PORT_BASE + i`), and forwards to the upstream's address;
* in each client instance's namespace a DNAT rule sends `upstream_ip:port` to that listener,
  and a guard rule resets any connection to `upstream_ip:port` that escaped the DNAT (one
  opened in the instant between the container's start and the rule landing).

The client keeps resolving the upstream's real name to its real address, so nothing in the
application's configuration changes, DNS behaves as it would without the harness (a stopped
upstream's name stops resolving), every network layout works, including the common one where
everything shares one network, and no network is created per link (each network endpoint costs
about 70 ms to remove, serialised in the engine: per-link networks were most of `down`).

Chosen over per-client DNS (a resolver per client namespace, or the upstream's name as an alias
of Toxiproxy on a per-link network: that is what made `down` slow and forbade shared networks)
and over rewriting the upstream's name in /etc/hosts (clients that resolve through DNS, like
HAProxy's `resolvers`, never read it).

A client that shares no network with an upstream (a layout made for the old per-link networks)
is attached to the upstream's first network, so it can resolve and reach it as it would in a
real deployment; its traffic to the link's port still goes through the proxy.

While the harness runs, an `Interposer` keeps this true as containers come and go (it reads the
engine's event stream for the run): a client that starts again gets its rules again (a new
namespace starts empty); while an upstream is stopped its clients' rules for it are taken out,
so a client that still has its address connects to the dead address itself and fails exactly
as it would without the harness, instead of being accepted by the proxy and then left hanging
(a kill by the harness does this just before the SIGKILL; any other stop holds the link down
at the proxy first, the moment the engine reports it); when it starts again the rules return.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable

import docker
from docker.models.containers import Container

from harness import INSTANCE_LABEL, RUN_LABEL
from harness.errors import HarnessError, StackError
from harness.model.target import HOST_CLIENT, Target
from harness.stack.addressing import AddressPlan
from harness.stack.netexec import NetExec

log = logging.getLogger(__name__)

INGRESS_PORT_BASE = 20000   # below the ephemeral range, where Toxiproxy listeners misbehave
LINK_PORT_BASE = 21000
HOLD_UPSTREAM_DOWN = "upstream-stopped"


@dataclass(frozen=True)
class Route:
    link: str                       # the link's name, also its Toxiproxy proxy's name
    client: str                     # client service, or "host" for an ingress link
    upstream: str                   # upstream instance
    port: int                       # the upstream's port
    network: str                    # network key where Toxiproxy listens and dials
    listen_ip: str
    listen_port: int
    upstream_ip: str                # what Toxiproxy dials
    client_sees: tuple[str, ...]    # every address of the upstream the client can reach

    @property
    def ingress(self) -> bool:
        return self.client == HOST_CLIENT


def service_networks(target: Target) -> dict[str, tuple[str, ...]]:
    """Each service's networks, with what a client needs added to reach its upstreams."""
    nets = {s.name: tuple(s.networks) for s in target.services}
    for link in target.links:
        if link.client == HOST_CLIENT:
            continue
        up = target.service_of(link.upstream).name
        if not set(nets[link.client]) & set(nets[up]):
            nets[link.client] += (nets[up][0],)
    return nets


def plan_routes(target: Target, nets: dict[str, tuple[str, ...]], plan: AddressPlan,
                ctl_key: str) -> tuple[Route, ...]:
    routes = []
    ingress = 0
    for i, link in enumerate(target.links):
        up_service = target.service_of(link.upstream).name
        up_nets = nets[up_service]
        if link.client == HOST_CLIENT:
            net = up_nets[0]
            routes.append(Route(link.name, link.client, link.upstream, link.port, net,
                                plan.toxiproxy_ip(ctl_key), INGRESS_PORT_BASE + ingress,
                                plan.ip(link.upstream, net), ()))
            ingress += 1
            continue
        shared = [n for n in up_nets if n in nets[link.client]]
        if not shared:      # service_networks attaches one; a plan without it is a bug
            raise StackError(f"link {link.name}: client and upstream share no network")
        net = shared[0]
        routes.append(Route(link.name, link.client, link.upstream, link.port, net,
                            plan.toxiproxy_ip(net), LINK_PORT_BASE + i,
                            plan.ip(link.upstream, net),
                            tuple(plan.ip(link.upstream, n) for n in shared)))
    return tuple(routes)


def toxiproxy_networks(routes: tuple[Route, ...]) -> tuple[str, ...]:
    return tuple(sorted({r.network for r in routes}))


def client_rules(routes: tuple[Route, ...], client_service: str, comment: str, op: str = "-A",
                 upstreams: set[str] | None = None) -> list[str]:
    """iptables-restore lines that interpose (op -A) or stop interposing (op -D) the links of
    one client service; only those to `upstreams` when given."""
    nat, guard = [], []
    for r in routes:
        if r.client != client_service or (upstreams is not None and r.upstream not in upstreams):
            continue
        for ip in r.client_sees:
            match = f"-d {ip}/32 -p tcp -m tcp --dport {r.port} -m comment --comment {comment}"
            nat.append(f"{op} OUTPUT {match} -j DNAT --to-destination {r.listen_ip}:{r.listen_port}")
            # After DNAT a connection's destination is the proxy, so only one opened before
            # the rule landed can still match: reset it, and the client reconnects through
            # the proxy.
            guard.append(f"{op} OUTPUT {match} -j REJECT --reject-with tcp-reset")
    if not nat:
        return []
    return ["*nat", *nat, "COMMIT", "*filter", *guard, "COMMIT"]


def proxied_paths(routes: tuple[Route, ...], client_service: str, upstream: str) -> list[tuple[str, int]]:
    """The proxy listeners through which `client_service` reaches instance `upstream`."""
    return [(r.listen_ip, r.listen_port) for r in routes
            if r.client == client_service and r.upstream == upstream]


class Interposer:
    """Keeps the run's links interposed while containers stop and start (see the module doc).

    While an upstream is stopped, its clients are *not* interposed on it: their rules for it are
    removed, so a client with its address connects to the dead address itself and fails as it
    would without the harness (no answer to ARP: a connect that times out or finds no route).
    When the upstream starts again, the rules come back (the guard resets anything that
    connected directly in between) and any hold on its links is released."""

    def __init__(self, client: docker.DockerClient, run_id: str, routes: tuple[Route, ...],
                 netexec: NetExec, container_of: Callable[[str], Container],
                 service_of: Callable[[str], str], toxiproxy: Callable[[], object],
                 instances_of: Callable[[str], list[str]]):
        self.client = client
        self.run_id = run_id
        self.routes = routes
        self.netexec = netexec
        self._container_of = container_of
        self._service_of = service_of
        self._toxiproxy = toxiproxy
        self._instances_of = instances_of           # service → its instances
        self._known = {i for r in routes for i in ((r.upstream,) + tuple(
            () if r.ingress else instances_of(r.client)))}
        self.comment = f"continuum:{run_id}:links"
        # instance → (namespace key, upstreams interposed there)
        self._installed: dict[str, tuple[str, frozenset[str]]] = {}
        # upstream instance → {its address: the address new connections go to instead}
        # (a blue-green switch, `redirect`); kept so a client that restarts gets it again.
        self._redirects: dict[str, dict[str, str]] = {}
        self.switch_comment = f"continuum:{run_id}:switch"
        self._stopped: set[str] = set()             # upstream instances seen to stop
        self._withdrawn: set[str] = set()           # ... of them, taken out before a kill
        self._locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._stream = None
        self._thread: threading.Thread | None = None
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="interpose")
        self.problems: list[str] = []

    def is_client(self, instance: str) -> bool:
        svc = self._service_of(instance)
        return any(r.client == svc for r in self.routes)

    def _upstreams(self, instance: str) -> set[str]:
        """The upstreams interposed in `instance`'s namespace: never itself (a service linking
        to itself, e.g. replication between its replicas, is interposed between instances)."""
        svc = self._service_of(instance)
        return {r.upstream for r in self.routes if r.client == svc and r.upstream != instance}

    def _instance_lock(self, instance: str) -> threading.Lock:
        with self._lock:
            return self._locks.setdefault(instance, threading.Lock())

    def ensure(self, instance: str) -> None:
        """Interpose the links of `instance` in its current namespace (idempotent), except to
        upstreams that are stopped right now."""
        with self._instance_lock(instance):
            ns = self.netexec.namespace(self._container_of(instance), instance)
            key, have = self._installed.get(instance, ("", frozenset()))
            fresh = key != ns.key
            if fresh:
                have = frozenset()
            want = self._upstreams(instance) - self._stopped
            self._change(instance, ns, have, want)
            if fresh:
                lines = self._redirect_rules(instance, set(self._redirects))
                if lines:
                    ns.restore(lines)

    def _change(self, instance: str, ns, have: frozenset[str], want: set[str]) -> None:
        svc = self._service_of(instance)
        lines = (client_rules(self.routes, svc, self.comment, "-D", set(have - want))
                 + client_rules(self.routes, svc, self.comment, "-A", set(want - have)))
        if lines:
            ns.restore(lines)
        self._installed[instance] = (ns.key, frozenset(want))

    def _upstream_changed(self, upstream: str) -> None:
        """Add or remove `upstream` in every running client interposed on it, all clients
        together (batches sent, then acknowledgements read), through the helpers they already
        have: no inspect on this path, which runs right before a kill. A client that restarted
        unseen gets its batch in its old, dead namespace (harmless); its start event then
        `ensure`s the new one, which leaves out every upstream stopped at that moment."""
        clients = self._clients_of(upstream)
        locks = [self._instance_lock(i) for i in clients]
        for lock in locks:
            lock.acquire()
        try:
            pending, errors = [], []
            for instance in clients:
                ns = self.netexec.current(instance)
                installed = self._installed.get(instance)
                if ns is None or installed is None or installed[0] != ns.key:
                    continue        # not running or restarted: `ensure` sets it up when it starts
                svc, have = self._service_of(instance), installed[1]
                want = frozenset(self._upstreams(instance) - self._stopped)
                lines = (client_rules(self.routes, svc, self.comment, "-D", set(have - want))
                         + client_rules(self.routes, svc, self.comment, "-A", set(want - have)))
                if lines:
                    try:
                        pending.append((instance, ns.key, want, ns.begin(lines)))
                    except HarnessError as exc:
                        errors.append(f"{instance}: {exc}")
            for instance, key, want, landing in pending:
                try:
                    landing.wait()
                    self._installed[instance] = (key, want)
                except HarnessError as exc:
                    errors.append(f"{instance}: {exc}")
            if errors:
                raise StackError("; ".join(errors))
        finally:
            for lock in locks:
                lock.release()

    def _clients_of(self, upstream: str) -> list[str]:
        """The client instances whose namespaces hold rules for `upstream` (ingress has none)."""
        return sorted({i for r in self.routes if r.upstream == upstream and not r.ingress
                       for i in self._instances_of(r.client)})

    def _redirect_rules(self, instance: str, upstreams: set[str], op: str = "-I") -> list[str]:
        svc = self._service_of(instance)
        nat = []
        for r in self.routes:
            moved = self._redirects.get(r.upstream)
            if r.client != svc or r.upstream not in upstreams or not moved:
                continue
            for ip in r.client_sees:
                if ip in moved:
                    # Inserted first: it wins over the link's own DNAT for new connections;
                    # the nat table sees only a connection's first packet, so every connection
                    # already open keeps the path it had (to blue, through the proxy).
                    nat.append(f"{op} OUTPUT -d {ip}/32 -p tcp -m tcp --dport {r.port} -m comment "
                               f"--comment {self.switch_comment} -j DNAT --to-destination {moved[ip]}:{r.port}")
        return ["*nat", *nat, "COMMIT"] if nat else []

    def redirect(self, upstream: str, moved: dict[str, str]) -> int:
        """A blue-green switch: from now on every new connection of `upstream`'s link clients
        to one of its addresses goes to `moved[address]` (green's) instead, straight to it (green
        is not interposed); connections already open stay on blue until blue closes them (its
        drain). Like moving a virtual IP, it works whatever the client's DNS does: Docker 20.10
        keeps answering a container's hostname on every network it is connected to, so blue's
        name cannot be taken from it while it still serves. Returns the number of client
        instances switched; a client that restarts later gets the rule again (`ensure`)."""
        self._redirects[upstream] = dict(moved)
        clients = self._clients_of(upstream)
        pending, errors = [], []
        for instance in clients:
            with self._instance_lock(instance):
                ns = self.netexec.current(instance)
                if ns is None:
                    continue        # not running: `ensure` applies it when it starts
                lines = self._redirect_rules(instance, {upstream})
                if lines:
                    try:
                        pending.append((instance, ns.begin(lines)))
                    except HarnessError as exc:
                        errors.append(f"{instance}: {exc}")
        for instance, landing in pending:
            try:
                landing.wait()
            except HarnessError as exc:
                errors.append(f"{instance}: {exc}")
        if errors:
            raise StackError("switching to green: " + "; ".join(errors))
        return len(pending)

    def unredirect(self, upstream: str) -> None:
        """Take a blue-green switch of `upstream` back out of its running clients: the instance
        is about to be created again at its own address (a rolling upgrade after a blue-green
        one), where the switch would send its clients to the green that is going away."""
        if upstream not in self._redirects:
            return
        clients = self._clients_of(upstream)
        errors = []
        for instance in clients:
            with self._instance_lock(instance):
                ns = self.netexec.current(instance)
                lines = self._redirect_rules(instance, {upstream}, "-D")
                if ns is None or not lines:
                    continue
                try:
                    ns.restore(lines)
                except HarnessError as exc:
                    errors.append(f"{instance}: {exc}")
        del self._redirects[upstream]
        if errors:
            raise StackError("undoing a blue-green switch: " + "; ".join(errors))

    def redirected(self, upstream: str) -> bool:
        return upstream in self._redirects

    def rules_in(self, instance: str) -> list[str]:
        """Our rules in the instance's namespace, read back (tests, `doctor`)."""
        ns = self.netexec.namespace(self._container_of(instance), instance)
        return [line for line in ns.save().splitlines()
                if self.comment in line or self.switch_comment in line]

    # ─────────────────────────── following the engine ───────────────────────────

    def watch(self) -> None:
        self.netexec.followed = True
        self._thread = threading.Thread(target=self._follow, name=f"interposer-{self.run_id}", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._closed.set()
        self.netexec.followed = False
        stream = self._stream
        if stream is not None:
            try:
                stream.close()
            except Exception:       # closing a half-dead HTTP stream; nothing left to save
                pass
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _follow(self) -> None:
        filters = {"type": "container", "event": ["start", "die"], "label": f"{RUN_LABEL}={self.run_id}"}
        since = None
        while not self._closed.is_set():
            try:
                self._stream = self.client.events(decode=True, filters=filters, since=since)
                if self._closed.is_set():
                    return
                for event in self._stream:
                    since = event.get("time", since)
                    self._on(event)
            except Exception as exc:    # the stream broke (engine restart); follow it again
                if self._closed.is_set():
                    return
                log.warning("interposer: engine events interrupted (%s); reconnecting", exc)
                self._closed.wait(0.5)

    def stopping(self, instance: str) -> None:
        """`instance` is about to be killed by the harness: take it out of its clients' rules
        now, so from the kill on a client connects to the dead address itself, exactly as
        without the proxy; connections already open through the proxy end as the upstream's
        own do. Only ingress links (no client namespace) are held down at the proxy."""
        routes = [r for r in self.routes if r.upstream == instance]
        if not routes:
            return
        self._stopped.add(instance)
        self._withdrawn.add(instance)
        try:
            self._upstream_changed(instance)
            tp = self._toxiproxy()
            for r in routes:
                if r.ingress:
                    tp.hold(r.link, HOLD_UPSTREAM_DOWN)
        except HarnessError as exc:     # the kill goes ahead; its die event holds the links
            self._withdrawn.discard(instance)
            self._problem(f"taking {instance} out of its links before a kill: {exc}")

    def starting(self, instance: str) -> None:
        """`instance` is about to be started by the harness: put it back in its clients' rules
        while it is still down, so no client connects to it directly in the moment before the
        rules return (the guard rule would reset such a connection: a failure the system would
        not have without the harness). Its start event then finds nothing left to change."""
        routes = [r for r in self.routes if r.upstream == instance]
        if not routes:
            return
        self._stopped.discard(instance)
        self._withdrawn.discard(instance)
        try:
            tp = self._toxiproxy()
            for r in routes:
                tp.release(r.link, HOLD_UPSTREAM_DOWN)
            self._upstream_changed(instance)
        except HarnessError as exc:     # the start goes ahead; its start event retries
            self._problem(f"putting {instance} back in its links before a start: {exc}")

    def _on(self, event: dict) -> None:
        attrs = (event.get("Actor") or {}).get("Attributes") or {}
        instance = attrs.get(INSTANCE_LABEL)
        action = event.get("Action") or event.get("status")
        if instance and action == "die":
            self.netexec.forget(instance)   # its namespace is gone: no helper may stand for it
        if not instance or instance not in self._known:
            return                  # Toxiproxy, helpers, instances without links
        tp = self._toxiproxy()
        routes = [r for r in self.routes if r.upstream == instance]
        try:
            if action == "die":
                if routes and instance not in self._withdrawn:
                    # Stopped without warning (a crash, an OOM kill, a stop): hold its links
                    # down first (fast: refused at once rather than accepted by the proxy),
                    # then take it out of its clients' rules.
                    for r in routes:
                        tp.hold(r.link, HOLD_UPSTREAM_DOWN)
                    self._stopped.add(instance)
                    self._upstream_changed(instance)
                with self._instance_lock(instance):
                    self._installed.pop(instance, None)
            elif action == "start":
                if routes:
                    self._stopped.discard(instance)
                    self._withdrawn.discard(instance)
                    for r in routes:
                        tp.release(r.link, HOLD_UPSTREAM_DOWN)
                    self._upstream_changed(instance)
                if self.is_client(instance):
                    self._pool.submit(self._reinterpose, instance)
        except HarnessError as exc:
            self._problem(f"{action} of {instance}: {exc}")

    def _reinterpose(self, instance: str) -> None:
        try:
            self.ensure(instance)
        except HarnessError as exc:
            self._problem(f"re-interposing {instance} after it started: {exc}")

    def _problem(self, text: str) -> None:
        if not self._closed.is_set():
            log.warning("interposer: %s", text)
            self.problems.append(text)
