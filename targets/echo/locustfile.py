"""Load profiles for the echo target. No harness imports.

* `echo`: GET / as fast as the users go;
* `resolve`: GET /resolve, where the service looks up a name each time (DNS faults); a failure
  carries the service's own error text, e.g. "name resolution failed: [Errno -3] ...".

CONTINUUM_REQUEST_TIMEOUT (seconds, default 2) bounds each request; a request fails unless
its status is 2xx.
"""

from __future__ import annotations

import os

from locust import FastHttpUser, constant, task

TIMEOUT = float(os.environ.get("CONTINUUM_REQUEST_TIMEOUT", "2") or 2)


class Echo(FastHttpUser):
    wait_time = constant(0.01)
    network_timeout = TIMEOUT
    connection_timeout = TIMEOUT
    max_retries = 0

    @task
    def root(self) -> None:
        with self.client.get("/", name="echo", catch_response=True) as resp:
            if 200 <= (resp.status_code or 0) < 300:
                resp.success()
            else:
                resp.failure(f"HTTP {resp.status_code}" if resp.status_code else f"{resp.error!r}")


class Resolve(FastHttpUser):
    wait_time = constant(0.01)
    network_timeout = TIMEOUT
    connection_timeout = TIMEOUT
    max_retries = 0

    @task
    def resolve(self) -> None:
        with self.client.get("/resolve", name="resolve", catch_response=True) as resp:
            if 200 <= (resp.status_code or 0) < 300:
                resp.success()
            elif resp.status_code:
                resp.failure(f"HTTP {resp.status_code}: {(resp.text or '').strip()[:80]}")
            else:
                resp.failure(f"{resp.error!r}")


# The target's compose.yaml offers the profiles as `echo` and `resolve`; both spellings work.
echo = Echo
resolve = Resolve
