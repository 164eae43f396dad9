"""What a run records: samples, phases, fault events, writes and reads, the read-back, notes.

Plain frozen dataclasses (slots where there are many): these are built by the harness at run
time, never parsed from a file, so they need speed rather than validation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from harness.model.experiment import Experiment
    from harness.model.monitoring import MonitorRecord


@dataclass(frozen=True, slots=True)
class Sample:
    """One request as the load generator saw it. `t` is CLOCK_MONOTONIC seconds (system-wide)."""

    t: float                        # when the request started
    latency_s: float
    ok: bool
    name: str = ""                  # request name in the profile, e.g. "transfer"
    error: str = ""                 # short error class when not ok
    due_t: float | None = None      # open-loop load: when the request was due (<= t); else None
    # How many requests this one stands for: 1 for a request as sent; more for the stand-ins of
    # a long run's quiet stretches (harness.measure.store keeps counts there, not every request).
    weight: int = 1


@dataclass(frozen=True)
class Phase:
    name: str                       # "baseline", "fault:<fault name>", "recovery"
    start_t: float                  # CLOCK_MONOTONIC seconds, same clock as Sample.t
    end_t: float


@dataclass(frozen=True)
class FaultEvent:
    fault: str                      # the fault's name
    action: str
    targets: tuple[str, ...]        # instance or link names it hit
    injected_t: float               # when the change took effect
    reverted_t: float | None        # None: instantaneous, or never reverted (then detail says why)
    detail: str = ""
    issued_t: float | None = None   # when the harness issued the action (before it took effect)
    # Named instants the fault recorded on the run's clock (a backup's consistent point, when a
    # restore was healthy): harness.faults.drill sets them, harness.measure.rpo reads them.
    marks: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class WriteRecord:
    """A write the load generator attempted. The id is the client's idempotency key."""

    id: str
    outcome: Literal["acked", "unknown"]    # unknown: error/timeout, the write may or may not exist
    t: float
    end_t: float | None = None              # when the answer (or the error) came back, if known


@dataclass(frozen=True, slots=True)
class ReadRecord:
    """An id the load generator read back during the run (a consumer's delivery, a read that
    returned a written item): `context={"read_id": id}` on a successful request."""

    id: str
    t: float


@dataclass(frozen=True, slots=True)
class VersionRecord:
    """Which release of the system answered one request (`context={"version": ...}`, set by
    the profile from the answer, e.g. the reference's X-App-Version header)."""

    t: float                        # when the request started (same as its Sample.t)
    version: str
    ok: bool


@dataclass(frozen=True)
class InvariantReading:
    """One named invariant as read back: a value and what it should be (unknown on error)."""

    name: str
    op: str = "=="
    value: str | int | float | bool | None = None
    expected: str | int | float | bool | None = None
    error: str | None = None        # why it could not be read (then it is unknown)
    description: str = ""           # "total_balance == expected_total"


@dataclass(frozen=True)
class AuditSnapshot:
    """What the target's durability read-back returned after load stopped."""

    ids: tuple[str, ...] | None     # every id the system holds, repeats kept; None: not read
    invariants: tuple[InvariantReading, ...] = ()
    source: str = ""                # how it was read: "http GET /audit on app-1:8080"
    error: str | None = None        # why `ids` is None

    @property
    def present_ids(self) -> frozenset[str] | None:
        """The distinct ids held; None when they could not be read (never an empty set)."""
        return None if self.ids is None else frozenset(self.ids)


@dataclass(frozen=True)
class Note:
    t: float
    text: str
    author: str = "operator"


@dataclass(frozen=True)
class RunRecord:
    """Everything measured in one experiment run; input to harness.measure.evaluate()."""

    experiment: "Experiment"
    run_id: str
    started_at: str                 # ISO-8601 wall clock, for humans
    t0: float                       # monotonic time load started; offsets in reports are t - t0
    t_end: float                    # monotonic time load stopped
    samples: tuple[Sample, ...]
    phases: tuple[Phase, ...]
    faults: tuple[FaultEvent, ...]
    writes: tuple[WriteRecord, ...] = ()
    audit: AuditSnapshot | None = None
    reads: tuple[ReadRecord, ...] = ()
    notes: tuple[Note, ...] = ()
    aborted: str | None = None      # why abort_if stopped the run
    harness_error: str | None = None  # a HarnessError message: verdict ERROR whatever was measured
    interrupted: bool = False
    monitoring: "MonitorRecord | None" = None  # alerts and probe samples (harness.model.monitoring)
    versions: tuple[VersionRecord, ...] = ()    # which release answered, when the profile says
    # A real run's requests in bounded form (harness.measure.store.SampleStore, finished; typed
    # loosely because the model layer imports nothing from measure): then `samples` are the
    # store's (every sample of a run under its cap; past it, those kept raw and the stand-ins
    # of quiet steps) and percentiles come from its histograms. Records built from samples
    # (tests, tools) leave it None.
    store: Any = None
