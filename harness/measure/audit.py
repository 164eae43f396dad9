"""Durability: the writes the load generator attempted, checked against the target's audit.

A write id may be attempted more than once (client retries reuse the idempotency key): an id is
*acked* when any attempt was acknowledged, *unknown* when every attempt ended in an error or
timeout. Against the audit's committed ids:

* lost        = acked ids absent from the audit (the system said yes and forgot)
* unexpected  = present ids never attempted (the system invented a write)
* recovered   = unknown ids that are present (the write did happen; the client could not know)
* money_conserved = total_balance == expected_total

Without an audit these are unknown (None), never zero (three-valued truth, as Jepsen's checker).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from harness.model import AuditSnapshot, WriteRecord

EXAMPLE_IDS = 20    # how many offending ids a report quotes


@dataclass(frozen=True)
class Durability:
    attempted: int
    acked: int
    unknown: int
    audited: bool
    lost: int | None = None
    unexpected: int | None = None
    recovered: int | None = None
    money_conserved: bool | None = None
    total_balance: int | None = None
    expected_total: int | None = None
    lost_ids: tuple[str, ...] = ()          # up to EXAMPLE_IDS, sorted
    unexpected_ids: tuple[str, ...] = ()


def durability(writes: Sequence[WriteRecord], audit: AuditSnapshot | None) -> Durability:
    attempted = {w.id for w in writes}
    acked = {w.id for w in writes if w.outcome == "acked"}
    unknown = attempted - acked
    if audit is None:
        return Durability(len(attempted), len(acked), len(unknown), audited=False)
    present = audit.present_ids
    lost = acked - present
    unexpected = present - attempted
    return Durability(
        attempted=len(attempted),
        acked=len(acked),
        unknown=len(unknown),
        audited=True,
        lost=len(lost),
        unexpected=len(unexpected),
        recovered=len(unknown & present),
        money_conserved=audit.total_balance == audit.expected_total,
        total_balance=audit.total_balance,
        expected_total=audit.expected_total,
        lost_ids=tuple(sorted(lost)[:EXAMPLE_IDS]),
        unexpected_ids=tuple(sorted(unexpected)[:EXAMPLE_IDS]),
    )
