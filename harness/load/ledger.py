"""Every request counted exactly once across load workers.

Each worker numbers its batches 0, 1, 2, ... and at the end says how many batches and
requests it sent. The orchestrator checks, per worker: batches arrive in order with no gap
and no repeat, and the end's totals equal what arrived. Any difference is a LedgerError
(the run is an ERROR: a measurement over requests that went missing is not a measurement).
No locust import.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class LedgerError(ValueError):
    """Requests lost, doubled or unaccounted for between a worker and the orchestrator."""


@dataclass
class _Account:
    name: str
    next_q: int = 0
    requests: int = 0
    writes: int = 0
    ended: bool = False


@dataclass
class Ledger:
    _acc: dict[int, _Account] = field(default_factory=dict)

    def join(self, src: int, name: str) -> None:
        if src in self._acc:
            raise LedgerError(f"{name}: joined twice as worker {src}")
        self._acc[src] = _Account(name)

    def _get(self, src: int) -> _Account:
        acc = self._acc.get(src)
        if acc is None:
            raise LedgerError(f"batch from worker {src}, which never joined")
        return acc

    def batch(self, src: int, q: int, requests: int, writes: int) -> None:
        acc = self._get(src)
        if acc.ended:
            raise LedgerError(f"{acc.name}: batch {q} after its end")
        if q < acc.next_q:
            raise LedgerError(f"{acc.name}: batch {q} arrived twice (expected batch {acc.next_q})")
        if q > acc.next_q:
            missing = f"batch {acc.next_q}" if q == acc.next_q + 1 else f"batches {acc.next_q}-{q - 1}"
            raise LedgerError(f"{acc.name}: {missing} missing (batch {q} arrived next)")
        acc.next_q += 1
        acc.requests += requests
        acc.writes += writes

    def end(self, src: int, batches: int, requests: int, writes: int) -> None:
        acc = self._get(src)
        if acc.ended:
            raise LedgerError(f"{acc.name}: ended twice")
        acc.ended = True
        if batches != acc.next_q:
            raise LedgerError(f"{acc.name}: sent {batches} batches, {acc.next_q} arrived")
        if requests != acc.requests:
            raise LedgerError(f"{acc.name}: recorded {requests} requests, {acc.requests} arrived")
        if writes != acc.writes:
            raise LedgerError(f"{acc.name}: recorded {writes} writes, {acc.writes} arrived")

    def finish(self, expected: int) -> None:
        """At the end of the load: `expected` workers joined and every one of them ended."""
        if len(self._acc) != expected:
            raise LedgerError(f"{len(self._acc)} of {expected} load workers joined")
        open_ = [a.name for a in self._acc.values() if not a.ended]
        if open_:
            raise LedgerError(f"no end from {', '.join(open_)}: its last requests are unaccounted for")

    def by_name(self) -> dict[str, int]:
        return {a.name: a.requests for a in self._acc.values()}

    @property
    def requests(self) -> int:
        return sum(a.requests for a in self._acc.values())
