"""Ledger operations on the data tier, each within a time budget that survives a failover.

A write runs its Lua script and then `WAIT <n> <ms>` on the same connection (one pipeline).
It is acknowledged only when WAIT confirms `n` replicas. On a connection error, a timeout,
READONLY, NOREPLICAS … it re-finds the primary and runs again with the same idempotency key
— safe because the script commits each key once and replays the stored answer — until the
budget runs out; then the outcome is unknown to the client (HTTP 503).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any

import redis

from . import scripts
from .config import Config
from .datatier import DataTier
from .metrics import Metrics
from .retry import Budget, is_retryable_reply, needs_rediscovery, reply_of

log = logging.getLogger("ledger.store")


class Unavailable(Exception):
    """The budget ran out; for a write the outcome is unknown."""


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]
    replayed: bool = False


class Ledger:
    def __init__(self, cfg: Config, tier: DataTier, metrics: Metrics) -> None:
        self.cfg = cfg
        self.tier = tier
        self.metrics = metrics

    # ── the write path ──

    def _write(self, budget: Budget, script: str, keys: list[str], args: list[Any]) -> Any:
        attempt = 0
        last = "no attempt"
        gen: int | None = None
        client: redis.Redis | None = None
        while True:
            if budget.expired():
                raise Unavailable(last)
            if attempt:
                self.metrics.inc("ledger_redis_retries_total")
            rediscover = False
            try:
                if client is None:
                    gen, client = self.tier.primary()
                pipe = client.pipeline(transaction=False)
                pipe.eval(script, len(keys), *keys, *args)
                if self.cfg.wait_replicas:
                    wait_ms = int(min(self.cfg.wait_timeout_ms, max(10.0, (budget.remaining() - 0.1) * 1000)))
                    pipe.execute_command("WAIT", self.cfg.wait_replicas, wait_ms)
                results = pipe.execute(raise_on_error=False)
            except (redis.ConnectionError, redis.TimeoutError) as e:
                last = f"{type(e).__name__}: {e}"
                rediscover = True
            else:
                outcome = results[0]
                # BusyLoadingError (LOADING) is a ConnectionError in redis-py, not a reply error.
                if isinstance(outcome, (redis.ResponseError, redis.exceptions.BusyLoadingError)):
                    msg = reply_of(outcome)
                    if not is_retryable_reply(msg):
                        raise outcome
                    last = msg
                    rediscover = needs_rediscovery(msg)
                elif self.cfg.wait_replicas and isinstance(results[1], Exception):
                    last = f"WAIT failed: {results[1]}"
                    rediscover = True
                elif self.cfg.wait_replicas and int(results[1]) < self.cfg.wait_replicas:
                    # Applied on the primary, not yet confirmed by a replica. Asking again with
                    # the same key replays the answer and waits again.
                    last = f"replication not confirmed (WAIT {results[1]}/{self.cfg.wait_replicas})"
                else:
                    return outcome
            if rediscover:
                client = None
                try:
                    if gen is not None:
                        gen, client = self.tier.rediscover(gen)
                except redis.RedisError as e:
                    last = f"{last}; {e}"
                    client = None
            time.sleep(budget.backoff(attempt))
            attempt += 1

    def _v2(self, record: dict[str, Any]) -> dict[str, Any]:
        """A transfer record as version 2 answers it: records written by version 1 have no
        memo (read as ""). Version 1 answers records as stored and never looks at a memo."""
        if self.cfg.app_version >= 2 and "status" in record:
            return {**record, "memo": record.get("memo", "")}
        return record

    def transfer(self, key: str, src: str, dst: str, amount: int, started: float,
                 memo: str | None = None) -> Answer:
        budget = Budget(self.cfg.write_budget_s, started)
        args: list[Any] = [key, src, dst, amount, int(time.time() * 1000)]
        if self.cfg.app_version >= 2:
            args.append(memo or "")
        try:
            code, raw = self._write(
                budget, scripts.TRANSFER,
                [scripts.tx_key(key), scripts.BALANCES, scripts.TXLOG],
                args,
            )
        except Unavailable as e:
            self.metrics.inc("ledger_transfers_total", result="unknown")
            log.warning("transfer %s: outcome unknown: %s", key, e)
            return Answer(503, {"error": "data tier unavailable", "outcome": "unknown", "detail": str(e)})
        code = int(code)
        if code == 2:
            return Answer(404, {"error": "unknown account"})
        body = self._v2(json.loads(raw))
        if code == 3:
            return Answer(422, {"error": "idempotency key reused with a different transfer", "original": body})
        replayed = code == 1
        if body["status"] == "committed":
            self.metrics.inc("ledger_transfers_total", result="replayed" if replayed else "committed")
            return Answer(201, body, replayed)
        self.metrics.inc("ledger_transfers_total", result="rejected")
        return Answer(409, body, replayed)

    def create_account(self, account: str, balance: int, started: float) -> Answer:
        budget = Budget(self.cfg.write_budget_s, started)
        try:
            code = int(self._write(
                budget, scripts.CREATE_ACCOUNT,
                [scripts.BALANCES, scripts.INITIAL, scripts.EXPECTED], [account, balance],
            ))
        except Unavailable as e:
            return Answer(503, {"error": "data tier unavailable", "outcome": "unknown", "detail": str(e)})
        if code == 0:
            return Answer(409, {"error": "account exists", "id": account})
        return Answer(201, {"id": account, "balance": balance}, replayed=code == 2)

    def seed(self) -> int:
        budget = Budget(self.cfg.write_budget_s)
        return int(self._write(
            budget, scripts.SEED,
            [scripts.BALANCES, scripts.INITIAL, scripts.EXPECTED, scripts.SEEDED],
            [self.cfg.seed_accounts, self.cfg.seed_balance],
        ))

    # ── reads ──

    def _read(self, budget: Budget, fn, allow_replica: bool) -> tuple[Any, bool]:
        """Run `fn(client)` on the primary; if that fails and it is allowed, on a replica.

        Returns (value, stale) where stale means a replica answered.
        """
        attempt = 0
        last = "no attempt"
        gen: int | None = None
        while not budget.expired():
            if attempt:
                self.metrics.inc("ledger_redis_retries_total")
            try:
                gen, client = self.tier.primary() if gen is None else self.tier.rediscover(gen)
                return fn(client), False
            except (redis.ConnectionError, redis.TimeoutError) as e:
                last = f"{type(e).__name__}: {e}"
            if allow_replica:
                for replica in self.tier.replicas():
                    if budget.expired():
                        break
                    try:
                        return fn(replica), True
                    except (redis.ConnectionError, redis.TimeoutError) as e:
                        last = f"replica: {e}"
            time.sleep(budget.backoff(attempt))
            attempt += 1
        raise Unavailable(last)

    def balance(self, account: str, started: float) -> Answer:
        budget = Budget(self.cfg.read_budget_s, started)
        try:
            value, stale = self._read(budget, lambda c: c.hget(scripts.BALANCES, account), True)
        except Unavailable as e:
            return Answer(503, {"error": "data tier unavailable", "detail": str(e)})
        if value is None:
            return Answer(404, {"error": "unknown account", "id": account})
        return Answer(200, {"id": account, "balance": int(value), "stale": stale})

    def transfers(self, offset: int, limit: int, started: float) -> Answer:
        budget = Budget(self.cfg.read_budget_s, started)

        def page(c: redis.Redis):
            total = c.llen(scripts.TXLOG)
            # Newest first: offset 0 is the last committed transfer.
            end = total - 1 - offset
            start = max(0, end - limit + 1)
            ids = c.lrange(scripts.TXLOG, start, end) if end >= 0 else []
            ids.reverse()
            raw = c.mget([scripts.tx_key(i) for i in ids]) if ids else []
            return total, [self._v2(json.loads(r)) for r in raw if r]

        try:
            (total, items), stale = self._read(budget, page, True)
        except Unavailable as e:
            return Answer(503, {"error": "data tier unavailable", "detail": str(e)})
        return Answer(200, {"total": total, "offset": offset, "limit": limit, "stale": stale, "transfers": items})

    def audit(self, started: float) -> Answer:
        """Every committed key, the money there is and the money there should be — one snapshot."""
        budget = Budget(max(self.cfg.read_budget_s, 5.0), started)

        def snapshot(c: redis.Redis):
            pipe = c.pipeline(transaction=True)
            pipe.hvals(scripts.BALANCES)
            pipe.get(scripts.EXPECTED)
            pipe.lrange(scripts.TXLOG, 0, -1)
            return pipe.execute()

        try:
            (balances, expected, ids), _ = self._read(budget, snapshot, False)
        except Unavailable as e:
            return Answer(503, {"error": "data tier unavailable", "detail": str(e)})
        return Answer(200, {
            "transfer_ids": ids,
            "total_balance": sum(int(b) for b in balances),
            "expected_total": int(expected or 0),
        })

    def probe(self) -> tuple[bool, bool]:
        """(primary answers PING, some replica answers PING) — for /readyz."""
        primary_ok = replica_ok = False
        try:
            gen, client = self.tier.primary()
            try:
                primary_ok = bool(client.ping())
            except redis.RedisError:
                self.tier.rediscover(gen)
        except redis.RedisError:
            pass
        try:
            for r in self.tier.replicas():
                try:
                    if r.ping():
                        replica_ok = True
                        break
                except redis.RedisError:
                    continue
        except redis.RedisError:
            pass
        return primary_ok, replica_ok
