"""Durability, in the manner of Jepsen's set checker: the client's own history (what it wrote
and was told, what it read) against what the system holds once load stopped.

A write id may be attempted more than once (client retries reuse the idempotency key): an id is
*acked* when any attempt was acknowledged, *unknown* when every attempt ended in an error or a
timeout. The ids *present* are those the final read-back returned plus those read during the
run (a consumer's deliveries). Then:

* lost        = acked ids not present (the system said yes and forgot)
* unexpected  = present ids never attempted (the system invented a write)
* recovered   = unknown ids present (the write did happen; the client could not know)
* duplicates  = ids present more than once: listed twice by the read-back, delivered twice
  during the run, or (when the read-back consumes, as a queue drain does) read during the run
  and again by the read-back
* invariants  = each named invariant the target declares, true / false / unknown

Without a read-back of the ids these are unknown (None), never zero: three-valued truth, as
Jepsen's `:valid? :unknown` when there was no final read.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Any, Sequence

from harness.model import AuditSnapshot, InvariantReading, ReadRecord, WriteRecord

EXAMPLE_IDS = 20    # how many offending ids a report quotes


@dataclass(frozen=True)
class Invariant:
    name: str
    holds: bool | None              # None: unknown (the read-back failed or gave no value)
    value: Any = None
    expected: Any = None
    op: str = "=="
    description: str = ""
    error: str | None = None

    def text(self) -> str:
        if self.holds is None:
            return f"{self.name} unknown: {self.error or 'no value'}"
        shown = f"{self.value!r} {self.op} {self.expected!r}"
        return f"{self.name} {'holds' if self.holds else 'does not hold'} ({self.description}: {shown})"


@dataclass(frozen=True)
class Durability:
    attempted: int
    acked: int
    unknown: int
    audited: bool                           # the ids were read back
    lost: int | None = None
    unexpected: int | None = None
    recovered: int | None = None
    duplicates: int | None = None
    read_during_run: int = 0                # distinct ids the load read while it ran
    invariants: tuple[Invariant, ...] = ()
    source: str = ""                        # how the read-back was done
    error: str | None = None                # why the ids are unknown
    lost_ids: tuple[str, ...] = ()          # up to EXAMPLE_IDS, sorted
    unexpected_ids: tuple[str, ...] = ()
    duplicate_ids: tuple[str, ...] = ()

    def invariant(self, name: str) -> Invariant | None:
        return next((i for i in self.invariants if i.name == name), None)

    @property
    def money_conserved(self) -> bool | None:
        """The reference ledger's invariant, by its old name (reports and tests read it)."""
        inv = self.invariant("money_conserved")
        return None if inv is None else inv.holds


def _compare(op: str, value: Any, expected: Any) -> bool | None:
    """`value op expected`; numbers compare as numbers (JSON gives 100 and 100.0 alike),
    anything else only for equality. None when they cannot be compared."""
    def number(x: Any) -> float | None:
        if isinstance(x, bool):
            return None
        if isinstance(x, (int, float)) and math.isfinite(x):
            return float(x)
        if isinstance(x, str):
            try:
                f = float(x)
            except ValueError:
                return None
            return f if math.isfinite(f) else None
        return None

    a, b = number(value), number(expected)
    if a is not None and b is not None:
        return {"==": a == b, ">=": a >= b, "<=": a <= b, ">": a > b, "<": a < b}[op]
    if op == "==" and value is not None and expected is not None:
        return value == expected
    return None


def invariant_of(r: InvariantReading) -> Invariant:
    if r.error is not None:
        return Invariant(r.name, None, op=r.op, description=r.description, error=r.error)
    holds = _compare(r.op, r.value, r.expected)
    err = None if holds is not None else f"cannot compare {r.value!r} {r.op} {r.expected!r}"
    return Invariant(r.name, holds, r.value, r.expected, r.op, r.description, err)


def present_ids(audit: AuditSnapshot | None, reads: Sequence[ReadRecord] = ()) -> frozenset[str] | None:
    """The ids the system was seen to hold: the read-back's and those read during the run;
    None (unknown, never empty) when the read-back gave no ids. Shared with harness.measure.rpo."""
    if audit is None or audit.ids is None:
        return None
    return frozenset(audit.ids) | {r.id for r in reads}


def durability(writes: Sequence[WriteRecord], audit: AuditSnapshot | None,
               reads: Sequence[ReadRecord] = (), *, consumes: bool = False) -> Durability:
    attempted = {w.id for w in writes}
    acked = {w.id for w in writes if w.outcome == "acked"}
    unknown = attempted - acked
    run_reads = Counter(r.id for r in reads)
    invariants = tuple(invariant_of(r) for r in (audit.invariants if audit else ()))
    base = dict(attempted=len(attempted), acked=len(acked), unknown=len(unknown),
                read_during_run=len(run_reads), invariants=invariants,
                source=audit.source if audit else "", error=audit.error if audit else None)
    if audit is None or audit.ids is None:
        return Durability(audited=False, **base)
    held = Counter(audit.ids)
    present = set(present_ids(audit, reads) or ())
    # Repeats within one source are duplicates; across the two only when the read-back
    # consumes (a drain), because a set read-back lists again what was read during the run.
    seen = held + run_reads if consumes else Counter({i: max(held[i], run_reads[i]) for i in present})
    dup = sorted(i for i, n in seen.items() if n > 1)
    lost = acked - present
    unexpected = present - attempted
    return Durability(
        audited=True,
        lost=len(lost),
        unexpected=len(unexpected),
        recovered=len(unknown & present),
        duplicates=len(dup),
        lost_ids=tuple(sorted(lost)[:EXAMPLE_IDS]),
        unexpected_ids=tuple(sorted(unexpected)[:EXAMPLE_IDS]),
        duplicate_ids=tuple(dup[:EXAMPLE_IDS]),
        **base,
    )
