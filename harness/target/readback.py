"""The durability read-back: what the system holds once load has stopped.

An adapter per contract. Today one: the HTTP audit (`x-continuum.audit`), a JSON document
`{"transfer_ids": [...], "total_balance", "expected_total"}` fetched from an entry point. A
system that cannot answer within the timeout leaves durability unknown, never zero (Jepsen's
`:unknown` when there was no final read).
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Callable, Sequence

from harness.model.record import AuditSnapshot
from harness.model.target import AuditSpec

READBACK_TIMEOUT_S = 20.0
CALL_TIMEOUT_S = 5.0
MAX_BODY = 256 * 1024 * 1024        # a read-back larger than this is refused, not swallowed


@dataclass(frozen=True)
class ReadbackOutcome:
    snapshot: AuditSnapshot | None
    error: str | None               # why it is unknown, when snapshot is None


class HttpAuditReadback:
    """GET <entry point><path> on each entry point in turn until one answers."""

    def __init__(self, spec: AuditSpec, *, timeout_s: float = READBACK_TIMEOUT_S,
                 sleep: Callable[[float], None] = time.sleep):
        self.spec = spec
        self.timeout_s = timeout_s
        self.sleep = sleep

    def read(self, endpoints: Sequence[str]) -> ReadbackOutcome:
        deadline = time.monotonic() + self.timeout_s
        last = "no entry point to ask"
        while time.monotonic() < deadline:
            for base in endpoints:
                url = base + self.spec.path
                try:
                    with urllib.request.urlopen(url, timeout=CALL_TIMEOUT_S) as resp:
                        body = json.loads(resp.read(MAX_BODY + 1))
                    return ReadbackOutcome(AuditSnapshot(
                        present_ids=frozenset(str(i) for i in body["transfer_ids"]),
                        total_balance=int(body["total_balance"]),
                        expected_total=int(body["expected_total"])), None)
                except (OSError, urllib.error.URLError, ValueError, KeyError, TypeError) as exc:
                    last = f"{url}: {type(exc).__name__}: {exc}"
            self.sleep(0.5)
        return ReadbackOutcome(None, last)


def readback_for(audit: AuditSpec | None) -> HttpAuditReadback | None:
    """The read-back adapter a target declares, or None."""
    return HttpAuditReadback(audit) if audit is not None else None
