"""Load profile for the reference ledger: ~70% balance reads, ~30% idempotent transfers.

Self-contained (no harness imports). The harness sets:
  CONTINUUM_ENDPOINTS        comma-separated base URLs of every entry point (both LBs);
                             without it the Locust host is the only endpoint
  CONTINUUM_REQUEST_TIMEOUT  seconds per request (default 2)

Client-side failover: each user prefers one LB (spread round-robin) and, on a connection
error or timeout, retries once on the next LB with the same Idempotency-Key, then sticks to
the LB that worked. Every transfer attempt fires with context={"write_id": key} so the harness
can match it against the audit; a request counts as failed unless its status is 2xx. The
answering release (the X-App-Version header) goes in the context as "version".
"""

from __future__ import annotations

import itertools
import os
import random
import uuid

from locust import FastHttpUser, between, task

SEED_ACCOUNTS = int(os.environ.get("LEDGER_SEED_ACCOUNTS", "100"))
ACCOUNTS = [f"acc-{i:03d}" for i in range(SEED_ACCOUNTS)]
TIMEOUT = float(os.environ.get("CONTINUUM_REQUEST_TIMEOUT", "2") or 2)
_spread = itertools.count()


def _endpoints(host: str | None) -> list[str]:
    raw = os.environ.get("CONTINUUM_ENDPOINTS", "")
    found = [u.strip().rstrip("/") for u in raw.split(",") if u.strip()]
    if not found and host:
        found = [host.rstrip("/")]
    return found


class Ledger(FastHttpUser):
    wait_time = between(0.01, 0.05)
    network_timeout = TIMEOUT
    connection_timeout = TIMEOUT
    # A status outside 2xx must not be retried by the HTTP client itself.
    max_retries = 0
    insecure = True

    def on_start(self) -> None:
        self.endpoints = _endpoints(self.host) or [""]
        self.current = next(_spread) % len(self.endpoints)

    def _send(self, method: str, path: str, name: str, **kwargs):
        """One logical request: try the current LB, on a transport failure once the next one."""
        tries = 2 if len(self.endpoints) > 1 else 1
        for attempt in range(tries):
            base = self.endpoints[self.current]
            with self.client.request(method, base + path, name=name, catch_response=True, **kwargs) as resp:
                code = resp.status_code or 0
                # Which release answered (the harness's mixed-version window), in the request's
                # context like write ids; absent when the app does not say.
                version = resp.headers.get("X-App-Version") if resp.headers else None
                if version:
                    resp.request_meta["context"]["version"] = version
                if 200 <= code < 300:
                    resp.success()
                    return
                transport_error = code == 0 or resp.error is not None and not code
                resp.failure(f"HTTP {code}" if code else f"{type(resp.error).__name__}: {resp.error}")
            if not transport_error or attempt + 1 == tries:
                return
            self.current = (self.current + 1) % len(self.endpoints)

    @task(7)
    def balance(self) -> None:
        self._send("GET", f"/accounts/{random.choice(ACCOUNTS)}", "balance")

    @task(3)
    def transfer(self) -> None:
        src, dst = random.sample(ACCOUNTS, 2)
        key = str(uuid.uuid4())
        self._send(
            "POST", "/transfers", "transfer",
            # A memo: version 2 stores it, version 1 ignores it (both serve during an upgrade).
            json={"from": src, "to": dst, "amount": random.randint(1, 5), "memo": "load"},
            headers={"Idempotency-Key": key},
            context={"write_id": key},
        )


# The target's compose.yaml offers the profile as `ledger`; both spellings name this class.
ledger = Ledger
