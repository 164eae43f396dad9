"""Starter load profile written by `continuum init`: HTTP GETs on the entry point.

The harness sets CONTINUUM_ENDPOINTS (every entry point's base URL) and
CONTINUUM_REQUEST_TIMEOUT (seconds). A request counts as available when any server answered
below 500: a 404 from a live server is an answer, a 502 from a proxy with no backend is not.
Replace PATHS with what your users do, and tag writes for the durability check:

    self.client.post("/items", json=..., context={"write_id": key})
"""

from __future__ import annotations

import itertools
import os
import random

from locust import FastHttpUser, between, task

PATHS = ["/"]
TIMEOUT = float(os.environ.get("CONTINUUM_REQUEST_TIMEOUT", "2") or 2)
_spread = itertools.count()


class Browse(FastHttpUser):
    wait_time = between(0.01, 0.05)
    network_timeout = TIMEOUT
    connection_timeout = TIMEOUT
    max_retries = 0

    def on_start(self) -> None:
        raw = os.environ.get("CONTINUUM_ENDPOINTS", "")
        self.endpoints = [u.rstrip("/") for u in raw.split(",") if u] or [self.host.rstrip("/")]
        self.base = self.endpoints[next(_spread) % len(self.endpoints)]

    @task
    def get(self) -> None:
        path = random.choice(PATHS)
        with self.client.get(self.base + path, name=path, catch_response=True) as resp:
            code = resp.status_code or 0
            if 0 < code < 500:
                resp.success()
            else:
                resp.failure(f"HTTP {code}" if code else f"{type(resp.error).__name__}")


# ── written by hand after `continuum init`: writes with ids, for the durability check ──
import base64  # noqa: E402
import json  # noqa: E402
import uuid  # noqa: E402


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


class Writes(Browse):
    """Browse, plus puts of new keys ids/<uuid> through the v3 JSON gateway (HAProxy)."""

    @task(3)
    def put(self) -> None:
        key = str(uuid.uuid4())
        body = {"key": _b64(f"ids/{key}"), "value": _b64("1")}
        with self.client.post(self.base + "/v3/kv/put", json=body, name="put",
                              catch_response=True, context={"write_id": key}) as resp:
            ok = resp.status_code == 200 and "error" not in json.loads(resp.text or "{}")
            if ok:
                resp.success()
            else:
                resp.failure(f"HTTP {resp.status_code}" if resp.status_code else
                             type(resp.error).__name__)
