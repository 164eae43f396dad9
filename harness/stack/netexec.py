"""Rules in a container's network namespace, from a helper container that lives in it.

The harness never enters a namespace from the host (no `nsenter`, no host PIDs, no host root):
for each container whose network it must change, it starts a small helper container of its own
image (`NETEXEC_IMAGE`: Debian with iptables) with `network_mode: container:<id>` and
NET_ADMIN only, as Pumba does. Docker joins the helper to that container's namespace by
container id, and refuses when the container is not running, so a reused PID can never put a
rule into the host's namespace or anyone else's. This works the same on a remote engine or
Docker Desktop, where host `nsenter` cannot.

One helper per namespace *incarnation* (container id + the time it started), kept for the run:
the helper's process holds that namespace, so the handle can never come to mean another one. A
container that restarts gets a new namespace (its old rules are gone with the old one) and a
new helper on first use; the stale helper is removed.

The helper's PID 1 is a fixed script (`continuum-netexec`, see harness.stack.images) reading
requests on its stdin, kept attached for the run. Landing is two-phase, so many namespaces
change together: `begin()` writes a batch to each helper (microseconds each, no API call),
then `wait()` reads each acknowledgement. A batch is `iptables-restore --noflush` input (atomic
per table inside the namespace); nothing the harness sends is ever evaluated by a shell: the
script only appends request lines to a file it hands to iptables-restore.
"""

from __future__ import annotations

import logging
import socket
import struct
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Callable

import docker
from docker.errors import DockerException, NotFound
from docker.models.containers import Container

from harness.errors import FaultError, HarnessError, StackError
from harness.stack.engine import docker_errors
from harness.stack.images import NETEXEC_IMAGE

log = logging.getLogger(__name__)

REPLY_TIMEOUT_S = 15.0      # iptables-restore waits up to 5 s for the xtables lock
HELPER_SERVICE = "netexec"  # the service label of helpers (reports and `ps` skip them)


@dataclass(frozen=True)
class Incarnation:
    container_id: str
    started_at: str

    @property
    def key(self) -> str:
        return f"{self.container_id[:12]}@{self.started_at}"


class Helper:
    """One helper container and its attached stdin/stdout."""

    def __init__(self, container: Container, sock, incarnation: Incarnation, name: str):
        self.container = container
        self.incarnation = incarnation
        self.name = name                   # the instance whose namespace this is
        self._raw = getattr(sock, "_sock", sock)
        self._raw.settimeout(REPLY_TIMEOUT_S)
        self._keep = sock                  # the SDK's wrapper owns the HTTP response
        self._buf = b""
        self.lock = threading.Lock()       # one request at a time per helper
        self.dead = False                  # its connection broke: a new helper is needed

    def send(self, request: bytes) -> None:
        try:
            self._raw.sendall(request)
        except OSError as exc:
            self.dead = True
            raise FaultError(f"the namespace helper of {self.name} is gone: {exc}") from exc

    def line(self) -> str:
        try:
            while b"\n" not in self._buf:
                header = _recv_exactly(self._raw, 8)
                if not header:
                    self.dead = True
                    raise FaultError(f"the namespace helper of {self.name} exited")
                _stream, size = struct.unpack(">BxxxL", header)
                self._buf += _recv_exactly(self._raw, size)
        except (OSError, socket.timeout, DockerException) as exc:
            self.dead = True
            raise FaultError(f"the namespace helper of {self.name} did not answer: {exc}") from exc
        line, _, self._buf = self._buf.partition(b"\n")
        return line.decode(errors="replace")

    def close(self) -> None:
        for closer in (self._raw.close, getattr(self._keep, "close", lambda: None)):
            try:
                closer()
            except OSError:
                pass


def _recv_exactly(sock, n: int) -> bytes:
    """n bytes of Docker's multiplexed attach stream (b"" at a clean end), by `recv` alone, so
    the socket's timeout bounds every wait. Not the SDK's `read_exactly`: it polls with no
    timeout before each recv, so a helper that never answers hangs it for ever, and over TLS the
    poll also misses bytes the SSL layer has already decrypted (a remote engine hung there)."""
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            if buf:
                raise OSError(f"the stream ended inside a frame ({len(buf)} of {n} bytes)")
            return b""
        buf += chunk
    return bytes(buf)


def _request(lines: list[str]) -> bytes:
    for line in lines:
        if "\n" in line or "\r" in line:
            raise FaultError(f"rule line {line!r} contains a line break")
    return "".join(f"r {line}\n" for line in lines).encode() + b"apply\n"


class Pending:
    """A batch sent to one namespace; `wait()` returns when it landed (monotonic seconds)."""

    def __init__(self, helper: Helper, sent_t: float):
        self.helper = helper
        self.sent_t = sent_t

    def wait(self) -> float:
        try:
            reply = self.helper.line()
            got_t = time.monotonic()
        finally:
            self.helper.lock.release()
        if reply.startswith("ok"):
            return _landed_at(reply, self.sent_t, got_t)
        raise FaultError(f"iptables-restore in {self.helper.name}'s namespace failed: "
                         f"{reply.removeprefix('err ').strip()[:300]}")


def _landed_at(reply: str, sent_t: float, got_t: float) -> float:
    """The helper stamps its reply with the kernel's wall clock right after iptables-restore
    returned; on the same kernel that is when the rules took effect, without the reply's trip
    back. A stamp outside [sent, received] (another host's clock) falls back to receipt."""
    parts = reply.split()
    try:
        landed = float(parts[1]) - time.time() + time.monotonic()
    except (IndexError, ValueError):
        return got_t
    return landed if sent_t <= landed <= got_t else got_t


class Namespace:
    """The handle faults get: one incarnation of one container's network namespace."""

    def __init__(self, helper: Helper):
        self._helper = helper
        self.key = helper.incarnation.key

    def begin(self, lines: list[str]) -> Pending:
        """Send an iptables-restore batch; returns at once. Call `wait()` on the result."""
        request = _request(lines)
        self._helper.lock.acquire()
        try:
            sent_t = time.monotonic()
            self._helper.send(request)
        except BaseException:
            self._helper.lock.release()
            raise
        return Pending(self._helper, sent_t)

    def restore(self, lines: list[str]) -> float:
        return self.begin(lines).wait()

    def save(self) -> str:
        """`iptables-save` of every table in the namespace (the read-back)."""
        with self._helper.lock:
            self._helper.send(b"save\n")
            out = []
            while (line := self._helper.line()) != ".":
                out.append(line)
        return "\n".join(out)


class NetExec:
    """The run's namespace helpers: created on first use, one per namespace incarnation."""

    def __init__(self, client: docker.DockerClient, labels: Callable[[str], dict[str, str]],
                 name_for: Callable[[str], str]):
        self.client = client
        self._labels = labels              # instance → labels (the run's, plus service/instance)
        self._name_for = name_for          # suffix → container name of the run
        self._helpers: dict[str, Helper] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()
        self._serial = 0
        self._closed = False
        self.followed = False              # True while a Stack's Interposer follows the run's events
        self._warming: ThreadPoolExecutor | None = None
        self._warm_jobs: list[Future] = []

    def namespace(self, container: Container, name: str) -> Namespace:
        """The namespace `container` (instance `name`) runs in right now. FaultError when it
        is not running: a stopped container has no namespace to change."""
        with self._lock:
            lock = self._locks.setdefault(name, threading.Lock())
        with lock:
            helper = self._helpers.get(name)
            if self.followed and helper is not None and not helper.dead:
                # The stack follows the engine's events and forgets a helper the moment its
                # container stops: no inspect on the path of a fault landing or reverting.
                return Namespace(helper)
            with docker_errors(f"inspecting {name}", FaultError):
                container.reload()
            state = container.attrs["State"]
            if state.get("Status") not in ("running", "paused"):
                raise FaultError(f"{name} is {state.get('Status')}; it has no network namespace to change")
            now = Incarnation(container.id, str(state.get("StartedAt")))
            helper = self._helpers.get(name)
            if helper is not None and helper.incarnation == now and not helper.dead:
                return Namespace(helper)
            if helper is not None:
                self._discard(name)
            helper = self._start(container, name, now)
            self._helpers[name] = helper
            return Namespace(helper)

    def warm(self, containers: list[tuple[Container, str]]) -> None:
        """Start the helpers of these containers in the background, so the first namespace
        fault on each lands when it is due instead of after a container start (~0.3 s). A
        fault that comes first waits for the helper already starting (the per-instance lock)."""
        def one(item: tuple[Container, str]) -> None:
            try:
                self.namespace(*item)
            except HarnessError:      # stopped or failing: the fault that needs it will say so
                pass

        self._warming = ThreadPoolExecutor(max_workers=4, thread_name_prefix="netexec-warm")
        self._warm_jobs = [self._warming.submit(one, item) for item in containers]

    def wait_warm(self, timeout_s: float = 60.0) -> bool:
        """Whether every helper `warm` started is up (benchmarks: not to time down against it)."""
        _, pending = wait(self._warm_jobs, timeout=timeout_s)
        return not pending

    def current(self, name: str) -> Namespace | None:
        """The namespace `name` was last seen in, through its live helper; no engine call (the
        caller accepts that the container may have stopped since)."""
        helper = self._helpers.get(name)
        return Namespace(helper) if helper is not None and not helper.dead else None

    def forget(self, name: str) -> None:
        """The container of `name` stopped: its namespace is gone, and so is the helper's use."""
        with self._lock:
            lock = self._locks.setdefault(name, threading.Lock())
        with lock:
            self._discard(name)

    def containers(self) -> list[Container]:
        return [h.container for h in self._helpers.values()]

    def close(self) -> None:
        self._closed = True
        if self._warming is not None:
            self._warming.shutdown(wait=True, cancel_futures=True)
        for h in list(self._helpers.values()):
            h.close()

    def _discard(self, name: str) -> None:
        helper = self._helpers.pop(name, None)
        if helper is not None:
            helper.close()          # its stdin closes: it exits and the engine removes it

    def _start(self, container: Container, name: str, incarnation: Incarnation) -> Helper:
        if self._closed:
            raise FaultError("the run is ending; no namespace changes any more")
        with self._lock:
            self._serial += 1
            serial = self._serial
        helper_name = self._name_for(f"netexec-{name}-{serial}")
        what = f"starting the namespace helper for {name}"
        api = self.client.api
        with docker_errors(what, FaultError):
            # The low-level API, not detached: then the SDK sets StdinOnce with stdin_open.
            created = api.create_container(
                NETEXEC_IMAGE,
                name=helper_name,
                labels=self._labels(name),
                # Its stdin is ours: when we close it (down) or die (SIGKILL: the kernel closes
                # the socket), the request loop ends and the engine removes the helper itself.
                stdin_open=True,
                host_config=api.create_host_config(
                    network_mode=f"container:{container.id}",   # by id: never another namespace
                    cap_drop=["ALL"],
                    cap_add=["NET_ADMIN"],
                    # Idle but for a few milliseconds per fault, when it must not queue behind
                    # the target's busy containers: the top CPU weight (v1 shares; v2 maps them).
                    cpu_shares=262144,
                    auto_remove=True,
                ),
            )
            helper = self.client.containers.prepare_model(created)   # no inspect needed
        try:
            with docker_errors(what, FaultError):
                helper.start()
                sock = self.client.api.attach_socket(
                    helper.id, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1})
        except FaultError as exc:
            _remove_quietly(helper)
            if "non running container" in str(exc) or "is not running" in str(exc):
                raise FaultError(f"{name} stopped; it has no network namespace to change") from exc
            raise
        return Helper(helper, sock, incarnation, name)


def _remove_quietly(container: Container) -> None:
    try:
        container.remove(force=True)
    except DockerException:
        pass


def check_image(client: docker.DockerClient) -> None:
    """Fail early and clearly when the helper image is missing (built by `continuum images`)."""
    try:
        client.images.get(NETEXEC_IMAGE)
    except NotFound:
        raise StackError(f"the namespace helper image {NETEXEC_IMAGE} is missing; "
                         "run `continuum images` (scripts/setup.sh does)") from None
