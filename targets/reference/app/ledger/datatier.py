"""Finding the Redis primary through Sentinel, and re-finding it after a failover.

Blocking redis-py, called from a thread pool. Why not `redis.asyncio` with its Sentinel pool:
Debian 12 ships redis-py 4.3.4, whose asyncio client can hand a connection with an unread
reply back to the pool when a command is cancelled (CVE-2023-28858/28859, fixed in 4.5.4) —
and aiohttp cancels a handler when its client goes away, exactly what happens under chaos.
A thread cannot be cancelled, so every command either completes or times out and is discarded.

Discovery asks the Sentinels one by one (short timeouts, a rotating first choice), and checks
the answer with ROLE before trusting it: a Sentinel cut off from the majority may still name
the old primary.
"""

from __future__ import annotations

import logging
import threading
import time

import redis

from .config import Config
from .metrics import Metrics

log = logging.getLogger("ledger.datatier")


class NoPrimary(redis.ConnectionError):
    """No Sentinel named a reachable node that says it is the primary."""


class DataTier:
    def __init__(self, cfg: Config, metrics: Metrics) -> None:
        self._cfg = cfg
        self._metrics = metrics
        self._lock = threading.Lock()
        self._clients: dict[tuple[str, int], redis.Redis] = {}
        # Discovery's ROLE checks use their own short-timeout connections (see _role).
        self._probes: dict[tuple[str, int], redis.Redis] = {}
        self._sentinels = [
            redis.Redis(
                host=h, port=p, socket_timeout=cfg.sentinel_timeout_s,
                socket_connect_timeout=cfg.sentinel_timeout_s, decode_responses=True,
                password=cfg.redis_password or None,
            )
            for h, p in cfg.sentinels
        ]
        self._rr = 0
        self._primary: tuple[str, int] | None = None
        self._client: redis.Redis | None = None
        self._gen = 0
        self._discovered_at = 0.0
        self._failed_at = 0.0
        self._failed_msg = ""
        self._replicas: list[tuple[str, int]] = []
        self._replicas_at = 0.0

    # ── clients ──

    def client_for(self, addr: tuple[str, int]) -> redis.Redis:
        # A known client is returned without the lock, so reads sent to replicas while the
        # primary is away do not queue behind a discovery holding it.
        c = self._clients.get(addr)
        if c is not None:
            return c
        with self._lock:
            return self._client_for_locked(addr)

    def _client_for_locked(self, addr: tuple[str, int]) -> redis.Redis:
        c = self._clients.get(addr)
        if c is None:
            c = redis.Redis(
                host=addr[0], port=addr[1], decode_responses=True,
                socket_timeout=self._cfg.redis_timeout_s,
                socket_connect_timeout=self._cfg.connect_timeout_s,
                max_connections=self._cfg.threads + 16,
                health_check_interval=0, password=self._cfg.redis_password or None,
            )
            self._clients[addr] = c
        return c

    # ── the primary ──

    @property
    def primary_addr(self) -> tuple[str, int] | None:
        return self._primary

    def primary(self) -> tuple[int, redis.Redis]:
        """The current primary's client and the discovery generation it belongs to."""
        c = self._client
        if c is not None:
            return self._gen, c
        return self.rediscover(self._gen)

    def rediscover(self, seen_gen: int) -> tuple[int, redis.Redis]:
        """Find the primary again, unless another thread already did since `seen_gen`."""
        with self._lock:
            if self._gen != seen_gen and self._client is not None:
                return self._gen, self._client
            now = time.monotonic()
            if self._client is not None and now - self._discovered_at < 0.05:
                return self._gen, self._client
            if self._client is None and now - self._failed_at < 0.1:
                # Many threads fail at once in a failover: one asks, the others reuse its answer.
                raise NoPrimary(self._failed_msg)
            self._client = None
            try:
                addr = self._discover_locked()
            except NoPrimary as e:
                self._failed_at, self._failed_msg = time.monotonic(), str(e)
                raise
            if addr != self._primary:
                if self._primary is not None:
                    self._metrics.inc("ledger_primary_changes_total")
                    log.warning("primary is now %s:%s (was %s:%s)", *addr, *self._primary)
                    # Drop idle connections to the old primary; busy ones fail on their own.
                    old = self._clients.get(self._primary)
                    if old is not None:
                        old.connection_pool.disconnect(inuse_connections=False)
                else:
                    log.info("primary is %s:%s", *addr)
                self._primary = addr
            self._client = self._client_for_locked(addr)
            self._gen += 1
            self._discovered_at = time.monotonic()
            return self._gen, self._client

    def _discover_locked(self) -> tuple[str, int]:
        if not self._sentinels:
            return self._cfg.redis_addr
        n = len(self._sentinels)
        start = self._rr
        self._rr = (self._rr + 1) % n
        tried: set[tuple[str, int]] = set()
        problems: list[str] = []
        for i in range(n):
            s = self._sentinels[(start + i) % n]
            try:
                answer = s.sentinel_get_master_addr_by_name(self._cfg.master_name)
            except redis.RedisError as e:
                problems.append(f"sentinel {self._cfg.sentinels[(start + i) % n][0]}: {e}")
                continue
            if not answer:
                continue
            addr = (str(answer[0]), int(answer[1]))
            if addr in tried:
                continue
            tried.add(addr)
            try:
                role = self._role(addr)
            except redis.RedisError as e:
                problems.append(f"{addr[0]}: {e}")
                continue
            if role and role[0] == "master":
                return addr
            problems.append(f"{addr[0]} says it is a {role[0] if role else '?'}")
        raise NoPrimary("; ".join(problems) or "no sentinel named a primary")

    def _role(self, addr: tuple[str, int]) -> list:
        """ROLE of one node, with Sentinel's short timeouts rather than the data path's.

        Discovery runs under the lock, and in a failover the Sentinels keep naming the dead
        primary for a second or two. Connecting to it through the interposed link does not fail
        fast (the connection is accepted, then hangs), so with the data path's 0.6 s read timeout
        every discovery spent ~0.6 s there while every other request thread waited on the lock,
        reads to replicas included — and a switch that happened meanwhile was seen up to 0.6 s
        late. ROLE is a tiny local reply: 0.25 s is plenty for a live node.
        """
        c = self._probes.get(addr)
        if c is None:
            c = redis.Redis(
                host=addr[0], port=addr[1], decode_responses=True,
                socket_timeout=self._cfg.sentinel_timeout_s,
                socket_connect_timeout=self._cfg.sentinel_timeout_s,
                max_connections=4, health_check_interval=0,
                password=self._cfg.redis_password or None,
            )
            self._probes[addr] = c
        return c.execute_command("ROLE")

    # ── replicas, for reads while the primary is away ──

    def replicas(self) -> list[redis.Redis]:
        now = time.monotonic()
        if now - self._replicas_at > 1.0:
            self._replicas_at = now
            self._replicas = self._discover_replicas()
        return [self.client_for(a) for a in self._replicas if a != self._primary]

    def _discover_replicas(self) -> list[tuple[str, int]]:
        if not self._sentinels:
            return []
        for s in self._sentinels:
            try:
                rows = s.sentinel_slaves(self._cfg.master_name)
            except redis.RedisError:
                continue
            out = []
            for r in rows:
                if r.get("is_sdown") or r.get("is_odown") or r.get("is_disconnected"):
                    continue
                out.append((str(r["ip"]), int(r["port"])))
            return out
        return list(self._replicas)
