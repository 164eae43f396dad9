"""Where the engine is, and so where the harness reaches the ports a run publishes.

The engine is the one `docker` itself would use: `DOCKER_HOST` (with `DOCKER_TLS_VERIFY` and
`DOCKER_CERT_PATH` for TLS), else the Docker context named by `DOCKER_CONTEXT` or made current by
`docker context use` (the SDK's own `ContextAPI` reads them, TLS material included).

A run publishes its ports (Toxiproxy's API, entry points, monitoring) on one address of the
engine's host: 127.0.0.1 for a local engine (a Unix socket, or TCP to a loopback address), so that
nothing is reachable from another machine and no target container can reach the Toxiproxy API;
for a remote engine (`tcp://HOST:PORT`, `ssh://USER@HOST`) that host's own address, the only one
of the host's addresses the harness knows it can reach. On a remote engine containers can reach
that address too: there the Toxiproxy API is guarded by nothing but the network (said in
docs/scaling.md). `CONTINUUM_PUBLISH_IP` overrides the choice (an engine behind NAT, or a host
with several addresses).
"""

from __future__ import annotations

import ipaddress
import os
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from harness.errors import DockerUnavailable, InputError

PUBLISH_IP_ENV = "CONTINUUM_PUBLISH_IP"
LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class EngineAddress:
    """How the harness reaches the engine: `host` as docker would be given it (`unix://...`,
    `tcp://10.0.0.5:2376`, `ssh://ci@box`), the TLS material if any, and where the context came
    from (for messages)."""

    host: str
    tls: object | None = None       # docker.tls.TLSConfig, from a context
    source: str = "default"         # "DOCKER_HOST", "context NAME" or "default"

    @property
    def local(self) -> bool:
        scheme = urlsplit(self.host).scheme
        if scheme in ("unix", "npipe", ""):
            return True
        hostname = urlsplit(self.host).hostname or ""
        try:
            return ipaddress.ip_address(_resolve(hostname)).is_loopback
        except ValueError:
            return False


def engine_address(environ: dict[str, str] | None = None) -> EngineAddress:
    """The engine `docker` would talk to, without connecting."""
    env = os.environ if environ is None else environ
    if env.get("DOCKER_HOST"):
        return EngineAddress(env["DOCKER_HOST"], None, "DOCKER_HOST")
    try:
        from docker.context import ContextAPI
        from docker.context.config import get_current_context_name

        name = env.get("DOCKER_CONTEXT") or get_current_context_name()
        ctx = ContextAPI.get_context(name)
    except Exception as exc:  # noqa: BLE001 - a broken ~/.docker/config.json or context store
        raise DockerUnavailable(f"cannot read the Docker context: {exc}") from exc
    if ctx is None:
        raise DockerUnavailable(f"Docker context {name!r} does not exist (DOCKER_CONTEXT or `docker context use`)")
    if ctx.Host is None or name == "default":
        return EngineAddress("unix:///var/run/docker.sock", None, "default")
    return EngineAddress(ctx.Host, ctx.TLSConfig or None, f"context {name}")


def publish_ip(engine: EngineAddress, environ: dict[str, str] | None = None) -> str:
    """The host address a run's ports are published on, and the harness reaches them at."""
    env = os.environ if environ is None else environ
    override = env.get(PUBLISH_IP_ENV)
    if override:
        try:
            return str(ipaddress.IPv4Address(override))
        except ValueError:
            raise InputError(f"not an IPv4 address: {override!r}", where=f"environment {PUBLISH_IP_ENV}") from None
    if engine.local:
        return LOOPBACK
    hostname = urlsplit(engine.host).hostname
    if not hostname:
        raise InputError(f"cannot tell the engine's host from {engine.host!r}; set {PUBLISH_IP_ENV}",
                         where=engine.source)
    address = _resolve(hostname)
    if not address:
        raise DockerUnavailable(f"the engine's host {hostname!r} ({engine.source}) does not resolve")
    return address


def _resolve(hostname: str) -> str:
    try:
        return str(ipaddress.ip_address(hostname))
    except ValueError:
        pass
    try:
        return socket.getaddrinfo(hostname, None, socket.AF_INET, socket.SOCK_STREAM)[0][4][0]
    except (OSError, IndexError):
        return ""


def address_for(client) -> EngineAddress:
    """Where a connected DockerClient's engine is (a test or a caller may pass its own)."""
    base = client.api.base_url
    if base in ("http+docker://localhost", "http+docker://localnpipe"):
        return EngineAddress("unix://", None, "the client's socket")
    if base == "http+docker://ssh":          # the SDK keeps the SSH host in its adapter only
        return engine_address()
    parts = urlsplit(base)
    return EngineAddress(f"tcp://{parts.hostname}:{parts.port or 2376}", None, f"engine {base}")


def publish_ip_for(client) -> str:
    """`publish_ip` for a connected DockerClient."""
    return publish_ip(address_for(client))


def asks_container_addresses(target) -> tuple[list[str], list[str]]:
    """What of `target` the harness asks at its instances' container addresses, reachable only
    from the engine's own host: (http and tcp role probes, http read-backs with `among`), each
    as "where: what". Without its roles a run cannot place a fault; without its read-back it
    runs and its durability is unknown."""
    roles = [f"x-continuum.roles.{r.name}: a {r.kind} probe" for r in target.roles if r.kind in ("http", "tcp")]
    reads: list[str] = []
    d = target.durability
    if d is not None:
        specs = [("x-continuum.durability.read", d.read)] + [
            (f"x-continuum.durability.invariants.{i.name}.read", i.read) for i in d.invariants]
        reads = [f"{where}: an http read-back with among" for where, read in specs
                 if read is not None and read.at_container_addresses]
    return roles, reads


def check_reachable(target, engine: EngineAddress) -> list[str]:
    """Refuse, before any object is made, a target whose roles this machine could not ask on
    `engine`; return what it can run without (read-backs: durability unknown), to be said."""
    if engine.local:
        return []
    roles, reads = asks_container_addresses(target)
    where = f"the engine ({engine.source}: {engine.host}) is remote, and"
    if roles:
        raise InputError(
            f"{where} this target's roles ask its instances at their container addresses, which "
            f"only the engine's host can reach: {'; '.join(roles)}. Use exec probes there "
            "(docs/remote-engines.md)", where=str(target.root))
    return [f"{where} {r}, which only the engine's host can reach: durability will be unknown "
            "(use an exec read-back there)" for r in reads]
