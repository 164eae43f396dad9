"""A backup and restore drill measured: RTO, RPO in time and in writes, and the split of the
acknowledged writes around the backup's consistent point.

The drill's faults (harness.faults.drill) leave marks on the run's clock: `consistent_from` and
`consistent_to` (the snapshot step was issued / returned: the snapshot's instant lies between),
`disaster` (the last removal returned), `restored` (every instance healthy again), or
`no_backup`, `backup_failed`, `restore_failed`. From the load's own history (each write's id,
when it was sent and when it was acknowledged) and the read-back after load stopped, every
acknowledged write falls in exactly one class:

* before    acknowledged at or before `consistent_from`: applied before the snapshot was taken,
            so it must be in the backup. Any missing is a FAIL (`lost_writes_before_backup`).
* in_flight sent before `consistent_to` and acknowledged after `consistent_from`: it overlaps
            the snapshot's instant, which the client cannot place exactly; reported (kept, lost),
            never judged.
* after     sent after `consistent_to` and acknowledged before the disaster: certainly not in
            the snapshot, so expected lost. The number lost is the RPO in writes (`rpo_writes`);
            one still present would mean the restore did not come from this backup.
* after_restore  acknowledged after the disaster (by the restored system): must be kept
            (`lost_writes_after_restore`).

RPO in time (`rpo`): from the consistent point (`consistent_from`) to the last write acknowledged
before the disaster, or to the disaster when no write was acknowledged after the consistent
point: the span of acknowledged history the restore gave up.

RTO (`rto`): from the disaster (its `disaster` mark, when the data was gone) to the start of the
first recovery window (the experiment's `recovery_window`, sliding in 0.1 s steps) from which
every window meets the SLO's availability bar until the run ended; the same rule as a fault's
time to recover (harness.measure.recovery), over every request in flight at or after the
disaster. None when the SLO was never met again for good.

Without a backup (the target declares none), there is no consistent point: every write
acknowledged before the disaster should have been recoverable, so the `before` class is all of
them, judged against the backup's due time, and the RPO is unknown (a FAIL saying why).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from harness.measure.audit import present_ids
from harness.measure.recovery import Span, charged, recovery_bar, time_to_recover
from harness.measure.timeline import Timeline
from harness.model import AuditSnapshot, FaultEvent, ReadRecord, WriteRecord

EXAMPLE_IDS = 20
BACKUP, DISASTER, RESTORE = "drill.backup", "drill.disaster", "drill.restore"


@dataclass(frozen=True)
class WriteClass:
    acked: int                      # acknowledged writes in the class (as the load recorded them)
    kept: int | None = None         # ... present after the restore; None: not read back
    lost: int | None = None
    lost_ids: tuple[str, ...] = ()  # up to EXAMPLE_IDS, sorted


@dataclass(frozen=True)
class DrillSummary:
    backup_declared: bool
    backup_error: str | None        # the backup ran and failed (the target's failure)
    restore_error: str | None       # the restore ran and failed
    consistent_from_s: float | None  # offsets from t0
    consistent_to_s: float | None
    disaster_s: float | None
    restored_s: float | None        # every instance healthy again
    rto_s: float | None
    rpo_s: float | None
    before: WriteClass
    in_flight: WriteClass
    after: WriteClass
    after_restore: WriteClass
    audited: bool                   # the ids were read back after load stopped
    why_unknown: dict[str, str] = field(default_factory=dict)   # metric → why it has no value

    @property
    def rpo_writes(self) -> int | None:
        return self.after.lost

    @property
    def lost_writes_before_backup(self) -> int | None:
        return self.before.lost

    @property
    def lost_writes_after_restore(self) -> int | None:
        return self.after_restore.lost

    def value(self, metric: str) -> tuple[float | None, str]:
        """The measured value of a drill metric, or None and why."""
        v = {"rto": self.rto_s, "rpo": self.rpo_s, "rpo_writes": self.rpo_writes,
             "lost_writes_before_backup": self.lost_writes_before_backup,
             "lost_writes_after_restore": self.lost_writes_after_restore}[metric]
        return (None if v is None else float(v)), self.why_unknown.get(metric, "not measured")


def _mark(events: Sequence[FaultEvent], action: str, name: str) -> float | None:
    for e in events:
        if e.action == action:
            for k, t in e.marks:
                if k == name:
                    return t
    return None


@dataclass
class _Write:
    id: str
    sent: float
    acked_at: float


def acknowledged(writes: Sequence[WriteRecord]) -> list[_Write]:
    """One entry per acknowledged id: sent at its first attempt, acknowledged at its first ack
    (a client retry reuses the id). A record without its answer time counts as answered when
    sent (older load workers)."""
    by_id: dict[str, _Write] = {}
    sent: dict[str, float] = {}
    for w in writes:
        sent[w.id] = min(sent.get(w.id, w.t), w.t)
        if w.outcome != "acked":
            continue
        at = w.end_t if w.end_t is not None else w.t
        have = by_id.get(w.id)
        if have is None or at < have.acked_at:
            by_id[w.id] = _Write(w.id, w.t, at)
    for w in by_id.values():
        w.sent = sent[w.id]
    return sorted(by_id.values(), key=lambda w: w.acked_at)


def _classify(ws: list[_Write], present: frozenset[str] | None) -> WriteClass:
    if present is None:
        return WriteClass(len(ws))
    lost = sorted(w.id for w in ws if w.id not in present)
    return WriteClass(len(ws), len(ws) - len(lost), len(lost), tuple(lost[:EXAMPLE_IDS]))


def split(writes: Sequence[WriteRecord], present: frozenset[str] | None, consistent_from: float,
          consistent_to: float, disaster: float) -> tuple[WriteClass, WriteClass, WriteClass, WriteClass]:
    """(before, in_flight, after, after_restore) as the module docstring defines them."""
    before, flight, after, later = [], [], [], []
    for w in acknowledged(writes):
        if w.acked_at > disaster:
            later.append(w)
        elif w.acked_at <= consistent_from:
            before.append(w)
        elif w.sent < consistent_to:
            flight.append(w)
        else:
            after.append(w)
    return (_classify(before, present), _classify(flight, present), _classify(after, present),
            _classify(later, present))


def rpo_seconds(writes: Sequence[WriteRecord], consistent_from: float, disaster: float) -> float:
    last = [w.acked_at for w in acknowledged(writes) if consistent_from < w.acked_at <= disaster]
    return (max(last) if last else disaster) - consistent_from


def rto_seconds(timeline: Timeline, disaster_event: FaultEvent, disaster: float, t_end: float,
                slo: Sequence, window_s: float) -> float | None:
    """RTO as the module docstring defines it; None when the SLO was never met again for good."""
    span = Span(disaster_event, disaster, t_end)
    rec = time_to_recover(charged(timeline, span), span, window_s, recovery_bar(slo))
    return rec.time_to_recover_s if rec.recovered else None


def summarize_drill(events: Sequence[FaultEvent], writes: Sequence[WriteRecord],
                    audit: AuditSnapshot | None, reads: Sequence[ReadRecord], timeline: Timeline,
                    t0: float, t_end: float, slo: Sequence, window_s: float) -> DrillSummary | None:
    """The drill's figures; None when the run had no drill faults."""
    actions = {e.action for e in events}
    if not actions & {BACKUP, DISASTER, RESTORE}:
        return None
    why: dict[str, str] = {}
    present = present_ids(audit, reads)
    if present is None:
        reason = f"the ids were not read back ({audit.error if audit and audit.error else 'no read-back'})"
        for m in ("rpo_writes", "lost_writes_before_backup", "lost_writes_after_restore"):
            why[m] = reason
    no_backup = _mark(events, BACKUP, "no_backup")
    failed_backup = _mark(events, BACKUP, "backup_failed")
    c_from, c_to = _mark(events, BACKUP, "consistent_from"), _mark(events, BACKUP, "consistent_to")
    disaster = _mark(events, DISASTER, "disaster")
    restored = _mark(events, RESTORE, "restored")
    failed_restore = _mark(events, RESTORE, "restore_failed")
    backup_ev = next((e for e in events if e.action == BACKUP), None)
    restore_ev = next((e for e in events if e.action == RESTORE), None)
    backup_error = backup_ev.detail if failed_backup is not None and backup_ev else None
    restore_error = restore_ev.detail if failed_restore is not None and restore_ev else None

    if disaster is None:
        why.update({m: "no drill.disaster took effect" for m in
                    ("rto", "rpo", "rpo_writes", "lost_writes_before_backup", "lost_writes_after_restore")})
    if c_from is None or c_to is None:
        if no_backup is not None:
            text = "the target declares no backup (x-continuum.backup): there is no recovery point"
        elif failed_backup is not None:
            text = f"the backup failed ({backup_error})"
        else:
            text = "no drill.backup ran"
        why.setdefault("rpo", text)
        why.setdefault("rpo_writes", text)
        # Without a consistent point, everything acknowledged by the time the backup was due
        # should have been saved: that is what the drill checks came back.
        due = no_backup if no_backup is not None else failed_backup
        c_from = c_to = due
    empty = WriteClass(0)
    classes = (empty, empty, empty, empty)
    if c_from is not None and c_to is not None and disaster is not None:
        classes = split(writes, present, c_from, c_to, disaster)
    before, flight, after, later = classes
    has_point = "rpo" not in why
    if not has_point:
        after = WriteClass(after.acked)         # no recovery point: nothing is "expected" lost
    rpo = rpo_seconds(writes, c_from, disaster) if has_point and c_from is not None and disaster is not None else None
    rto = None
    if disaster is not None:
        ev = next(e for e in events if e.action == DISASTER)
        rto = rto_seconds(timeline, ev, disaster, t_end, slo, window_s)
        if rto is None:
            why["rto"] = ("the SLO was never met again for good before the run ended"
                          + (f" ({restore_error})" if restore_error else ""))

    def off(t: float | None) -> float | None:
        return None if t is None else round(t - t0, 6)

    return DrillSummary(
        backup_declared=no_backup is None, backup_error=backup_error, restore_error=restore_error,
        consistent_from_s=off(c_from) if has_point else None,
        consistent_to_s=off(c_to) if has_point else None,
        disaster_s=off(disaster), restored_s=off(restored),
        rto_s=None if rto is None else round(rto, 6), rpo_s=None if rpo is None else round(rpo, 6),
        before=before, in_flight=flight, after=after, after_restore=later,
        audited=present is not None, why_unknown=why)
