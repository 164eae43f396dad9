"""Settings from the environment, parsed once into a frozen record."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


class ConfigError(ValueError):
    pass


def _addr(text: str, default_port: int) -> tuple[str, int]:
    host, sep, port = text.strip().rpartition(":")
    if not sep:
        host, port = text.strip(), str(default_port)
    if not host:
        raise ConfigError(f"bad address {text!r}")
    try:
        return host, int(port)
    except ValueError:
        raise ConfigError(f"bad port in {text!r}") from None


@dataclass(frozen=True)
class Config:
    port: int = 8080
    # Sentinel addresses; empty means talk to `redis_addr` directly (no failover).
    sentinels: tuple[tuple[str, int], ...] = ()
    master_name: str = "ledger"
    redis_addr: tuple[str, int] = ("127.0.0.1", 6379)
    # A write is acknowledged only once this many replicas confirmed it (WAIT); 0 disables.
    wait_replicas: int = 1
    wait_timeout_ms: int = 400
    # Total time a write may spend retrying across failovers; keep it under the client's 2 s.
    write_budget_s: float = 1.0
    read_budget_s: float = 0.8
    redis_timeout_s: float = 0.6
    connect_timeout_s: float = 0.3
    sentinel_timeout_s: float = 0.25
    seed_accounts: int = 100
    seed_balance: int = 1000
    # On SIGTERM: answer readyz 503 this long (so LBs take us out), then stop accepting and
    # finish what is in flight within shutdown_timeout_s.
    drain_delay_s: float = 1.2
    shutdown_timeout_s: float = 3.0
    threads: int = 48
    probe_interval_s: float = 0.5
    # Redis and Sentinel require a password (LEDGER_REDIS_PASSWORD); empty: no AUTH is sent.
    redis_password: str = ""
    # The release (LEDGER_APP_VERSION, from the image's APP_VERSION build arg): 1 or 2.
    # Every answer carries it in X-App-Version. Version 2 adds a `memo` to transfers (stored
    # in the transfer record, answered back); see web.py and store.py for the overlap rules.
    app_version: int = 1

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "Config":
        def num(name: str, default, kind=float):
            raw = env.get(name)
            if raw is None or raw == "":
                return default
            try:
                value = kind(raw)
            except ValueError:
                raise ConfigError(f"{name}={raw!r} is not a {kind.__name__}") from None
            if value < 0:
                raise ConfigError(f"{name} must not be negative")
            return value

        d = cls()
        sentinels = tuple(
            _addr(part, 26379) for part in env.get("SENTINELS", "").split(",") if part.strip()
        )
        cfg = cls(
            port=num("PORT", d.port, int),
            sentinels=sentinels,
            master_name=env.get("LEDGER_MASTER_NAME", d.master_name) or d.master_name,
            redis_addr=_addr(env["REDIS_ADDR"], 6379) if env.get("REDIS_ADDR") else d.redis_addr,
            wait_replicas=num("LEDGER_WAIT_REPLICAS", d.wait_replicas, int),
            wait_timeout_ms=num("LEDGER_WAIT_TIMEOUT_MS", d.wait_timeout_ms, int),
            write_budget_s=num("LEDGER_WRITE_BUDGET_S", d.write_budget_s),
            read_budget_s=num("LEDGER_READ_BUDGET_S", d.read_budget_s),
            redis_timeout_s=num("LEDGER_REDIS_TIMEOUT_S", d.redis_timeout_s),
            connect_timeout_s=num("LEDGER_CONNECT_TIMEOUT_S", d.connect_timeout_s),
            sentinel_timeout_s=num("LEDGER_SENTINEL_TIMEOUT_S", d.sentinel_timeout_s),
            seed_accounts=num("LEDGER_SEED_ACCOUNTS", d.seed_accounts, int),
            seed_balance=num("LEDGER_SEED_BALANCE", d.seed_balance, int),
            drain_delay_s=num("LEDGER_DRAIN_DELAY_S", d.drain_delay_s),
            shutdown_timeout_s=num("LEDGER_SHUTDOWN_TIMEOUT_S", d.shutdown_timeout_s),
            threads=max(1, num("LEDGER_THREADS", d.threads, int)),
            probe_interval_s=num("LEDGER_PROBE_INTERVAL_S", d.probe_interval_s),
            redis_password=env.get("LEDGER_REDIS_PASSWORD", ""),
            app_version=num("LEDGER_APP_VERSION", d.app_version, int),
        )
        if cfg.app_version not in (1, 2):
            raise ConfigError(f"LEDGER_APP_VERSION must be 1 or 2, not {cfg.app_version}")
        if cfg.wait_replicas and cfg.redis_timeout_s * 1000 <= cfg.wait_timeout_ms + 100:
            raise ConfigError(
                "LEDGER_REDIS_TIMEOUT_S must exceed LEDGER_WAIT_TIMEOUT_MS by 100 ms or more, "
                "or a WAIT that times out would look like a dead connection"
            )
        return cfg


def seed_account_id(i: int) -> str:
    """The fixed seed accounts: acc-000 … acc-099 (the load profile uses the same names)."""
    return f"acc-{i:03d}"
