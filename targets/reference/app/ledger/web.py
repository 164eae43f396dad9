"""HTTP routes, readiness, metrics and the graceful drain on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import signal
import time
from concurrent.futures import ThreadPoolExecutor

from aiohttp import web

from .config import Config
from .datatier import DataTier
from .metrics import Metrics
from .store import Answer, Ledger

log = logging.getLogger("ledger.web")

KEY_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
ACCOUNT_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
MAX_AMOUNT = 10**12
MAX_MEMO = 140


class State:
    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.metrics = Metrics()
        self.tier = DataTier(cfg, self.metrics)
        self.ledger = Ledger(cfg, self.tier, self.metrics)
        # Requests and the readiness probe get separate pools, so a saturated request pool
        # cannot make the probe late and the replica look dead.
        self.pool = ThreadPoolExecutor(cfg.threads, thread_name_prefix="ledger")
        self.probe_pool = ThreadPoolExecutor(1, thread_name_prefix="probe")
        self.seeded = False
        self.primary_ok = False
        self.replica_ok = False
        self.draining = False
        self.inflight = 0
        self.version_header = str(cfg.app_version)

    @property
    def ready(self) -> bool:
        # "Data tier reachable" = the primary, or at least a replica (reads still work while
        # Sentinel promotes a new primary). Not seeded yet, or draining: not ready.
        return self.seeded and not self.draining and (self.primary_ok or self.replica_ok)

    async def run(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)


STATE = web.AppKey("state", State) if hasattr(web, "AppKey") else "state"


def _json(answer: Answer) -> web.Response:
    resp = web.json_response(answer.body, status=answer.status, dumps=lambda o: json.dumps(o, separators=(",", ":")))
    if answer.replayed:
        resp.headers["Idempotent-Replayed"] = "true"
    return resp


def _bad(message: str, status: int = 400) -> web.Response:
    return web.json_response({"error": message}, status=status)


@web.middleware
async def accounting(request: web.Request, handler):
    st: State = request.app[STATE]
    st.inflight += 1
    st.metrics.set("ledger_inflight_requests", st.inflight)
    status = 500
    try:
        resp = await handler(request)
        status = resp.status
        # Which release answered: load generators record it per request (mixed-version window).
        resp.headers["X-App-Version"] = st.version_header
        if st.draining:
            # Tell keep-alive peers (HAProxy) to stop reusing this connection.
            resp.force_close()
        return resp
    except web.HTTPException as e:
        status = e.status
        raise
    finally:
        st.inflight -= 1
        st.metrics.set("ledger_inflight_requests", st.inflight)
        route = request.match_info.route.resource
        name = route.canonical if route is not None else "other"
        st.metrics.inc("ledger_http_requests_total", route=name, code=str(status))


async def create_account(request: web.Request) -> web.Response:
    started = time.monotonic()
    st: State = request.app[STATE]
    try:
        body = await request.json()
        account = str(body["id"])
        balance = body["balance"]
    except (ValueError, KeyError, TypeError):
        return _bad('body must be JSON {"id": str, "balance": int}')
    if not ACCOUNT_RE.match(account):
        return _bad("id must be 1-64 characters of [A-Za-z0-9._-]")
    if not isinstance(balance, int) or isinstance(balance, bool) or not 0 <= balance <= MAX_AMOUNT:
        return _bad("balance must be an integer in [0, 10^12]")
    return _json(await st.run(st.ledger.create_account, account, balance, started))


async def get_account(request: web.Request) -> web.Response:
    started = time.monotonic()
    st: State = request.app[STATE]
    return _json(await st.run(st.ledger.balance, request.match_info["id"], started))


async def create_transfer(request: web.Request) -> web.Response:
    started = time.monotonic()
    st: State = request.app[STATE]
    key = request.headers.get("Idempotency-Key", "")
    if not KEY_RE.match(key):
        return _bad("an Idempotency-Key header of 1-128 characters [A-Za-z0-9._:-] is required")
    try:
        body = await request.json()
        src, dst, amount = str(body["from"]), str(body["to"]), body["amount"]
    except (ValueError, KeyError, TypeError):
        return _bad('body must be JSON {"from": str, "to": str, "amount": int}')
    if not isinstance(amount, int) or isinstance(amount, bool) or not 0 < amount <= MAX_AMOUNT:
        return _bad("amount must be a positive integer")
    if src == dst:
        return _bad("from and to must differ")
    memo = None
    if st.cfg.app_version >= 2:     # version 1 ignores a memo, as it ignores any other field
        memo = body.get("memo", "")
        if not isinstance(memo, str) or len(memo) > MAX_MEMO:
            return _bad(f"memo must be a string of at most {MAX_MEMO} characters")
    return _json(await st.run(st.ledger.transfer, key, src, dst, amount, started, memo))


async def list_transfers(request: web.Request) -> web.Response:
    started = time.monotonic()
    st: State = request.app[STATE]
    try:
        offset = int(request.query.get("offset", "0"))
        limit = int(request.query.get("limit", "50"))
    except ValueError:
        return _bad("offset and limit must be integers")
    if offset < 0 or not 1 <= limit <= 500:
        return _bad("offset >= 0 and 1 <= limit <= 500")
    return _json(await st.run(st.ledger.transfers, offset, limit, started))


async def audit(request: web.Request) -> web.Response:
    st: State = request.app[STATE]
    return _json(await st.run(st.ledger.audit, time.monotonic()))


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    st: State = request.app[STATE]
    body = {
        "ready": st.ready, "draining": st.draining, "seeded": st.seeded,
        "primary": st.primary_ok, "replica": st.replica_ok,
        "primary_addr": ":".join(map(str, st.tier.primary_addr)) if st.tier.primary_addr else None,
    }
    return web.json_response(body, status=200 if st.ready else 503)


async def metrics(request: web.Request) -> web.Response:
    st: State = request.app[STATE]
    st.metrics.set("ledger_ready", 1 if st.ready else 0)
    return web.Response(text=st.metrics.render(), content_type="text/plain", charset="utf-8",
                        headers={"X-Content-Type-Options": "nosniff"})


async def probe_loop(st: State) -> None:
    """Keep readiness current and seed the data tier once (idempotent per data tier)."""
    loop = asyncio.get_running_loop()
    while True:
        try:
            if not st.seeded:
                created = await loop.run_in_executor(st.probe_pool, st.ledger.seed)
                st.seeded = True
                log.info("seed accounts in place (%d created now)", created)
            st.primary_ok, st.replica_ok = await loop.run_in_executor(st.probe_pool, st.ledger.probe)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # keep probing: the data tier may come back
            st.primary_ok = False
            log.warning("probe: %s: %s", type(e).__name__, e)
        await asyncio.sleep(st.cfg.probe_interval_s)


def build_app(st: State) -> web.Application:
    app = web.Application(middlewares=[accounting], client_max_size=64 * 1024)
    app[STATE] = st
    app.router.add_post("/accounts", create_account)
    app.router.add_get("/accounts/{id}", get_account)
    app.router.add_post("/transfers", create_transfer)
    app.router.add_get("/transfers", list_transfers)
    app.router.add_get("/audit", audit)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    return app


async def serve(cfg: Config) -> None:
    st = State(cfg)
    app = build_app(st)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "0.0.0.0", cfg.port, shutdown_timeout=cfg.shutdown_timeout_s, backlog=1024)
    await site.start()
    log.info("listening on :%d (sentinels %s, wait %d replica(s))", cfg.port,
             ",".join(f"{h}:{p}" for h, p in cfg.sentinels) or "none", cfg.wait_replicas)
    probe = asyncio.create_task(probe_loop(st))

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()

    # Graceful drain: readyz goes 503 while we keep serving, so the LBs' checks take us out
    # (fall 2 × inter 500 ms); then stop accepting, finish in-flight requests, exit.
    log.info("SIGTERM: draining (%.1f s), %d in flight", cfg.drain_delay_s, st.inflight)
    st.draining = True
    await asyncio.sleep(cfg.drain_delay_s)
    await runner.cleanup()
    probe.cancel()
    st.pool.shutdown(wait=True, cancel_futures=False)
    st.probe_pool.shutdown(wait=False, cancel_futures=True)
    log.info("drained, exiting")


def main() -> None:
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    cfg = Config.from_env(os.environ)
    asyncio.run(serve(cfg))
