"""The outcome of one experiment run: a verdict with its reasons and everything measured.

A `Result` is self-contained: reports (results.json, JUnit, HTML, console) are written from it
alone, and results.json holds enough of it to regenerate the HTML report and compare runs.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Iterable

from harness.measure.audit import Durability
from harness.measure.detection import MonitorSummary
from harness.measure.metrics import Outage, PhaseMetrics
from harness.measure.recovery import ErrorWindow, FaultRecovery
from harness.measure.rpo import DrillSummary
from harness.measure.stalls import Stall
from harness.measure.store import StoreInfo
from harness.measure.timeline import Step
from harness.measure.versions import VersionSummary
from harness.model.experiment import Experiment


class Verdict(str, enum.Enum):
    PASS = "PASS"
    FAIL = "FAIL"
    ERROR = "ERROR"
    INCONCLUSIVE = "INCONCLUSIVE"

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self]

    def __str__(self) -> str:
        return self.value


EXIT_CODES: dict[Verdict, int] = {Verdict.PASS: 0, Verdict.FAIL: 1, Verdict.ERROR: 3, Verdict.INCONCLUSIVE: 4}

# Worst first. A suite is as bad as its worst run: a broken harness (ERROR) says nothing about the
# system, so it outranks everything; a measured FAIL outranks a run we could not judge; and an
# INCONCLUSIVE run must never let a suite pass.
SEVERITY: tuple[Verdict, ...] = (Verdict.ERROR, Verdict.FAIL, Verdict.INCONCLUSIVE, Verdict.PASS)


def worst_verdict(verdicts: Iterable[Verdict]) -> Verdict:
    """The worst of `verdicts` in SEVERITY order; PASS for an empty suite."""
    vs = set(verdicts)
    for v in SEVERITY:
        if v in vs:
            return v
    return Verdict.PASS


def exit_code(verdict: Verdict) -> int:
    """0 pass, 1 fail, 3 error, 4 inconclusive."""
    return EXIT_CODES[verdict]


def suite_exit_code(results: Iterable["Result"]) -> int:
    """Exit code of the worst verdict among `results` (see SEVERITY)."""
    return exit_code(worst_verdict(r.verdict for r in results))


@dataclass(frozen=True)
class AssertionOutcome:
    kind: str                   # "slo" | "steady_state"
    scope: str                  # phase it was evaluated on: "overall", "baseline", "recovery", "fault:<name>"
    metric: str
    op: str
    threshold: float
    text: str                   # the assertion as written, e.g. ">= 99.9%"
    measured: float | None      # None: could not be measured (→ INCONCLUSIVE)
    passed: bool | None         # None: unknown
    message: str                # "availability 99.41% < required >= 99.9%"
    unit: str = ""              # METRICS kind: ratio, seconds, count, rate
    operation: str | None = None    # only requests of this name; None: every request
    phase: str | None = None        # the phase as written after "@" (None: not narrowed)

    @property
    def key(self) -> str:
        """The assertion's key as written: "availability", "transfer.longest_outage@kill-primary"."""
        return (f"{self.operation}." if self.operation else "") + self.metric + \
            (f"@{self.phase}" if self.phase else "")

    @property
    def name(self) -> str:
        """Stable identifier: "slo.availability", "slo.transfer.longest_outage@kill-primary",
        "steady_state.baseline.latency_p99"."""
        if self.kind == "slo":
            return f"slo.{self.key}"
        return f"{self.kind}.{self.scope}.{self.key}"


@dataclass(frozen=True)
class OperationRecovery:
    """One fault as one operation saw it."""

    operation: str
    recovery: FaultRecovery
    error_window: ErrorWindow | None


@dataclass(frozen=True)
class FaultSummary:
    fault: str
    action: str
    targets: tuple[str, ...]
    injected_s: float           # offsets relative to t0
    reverted_s: float | None
    detail: str
    recovery: FaultRecovery
    error_window: ErrorWindow | None
    issued_s: float | None = None                   # when the harness issued it (≤ injected_s)
    operations: tuple[OperationRecovery, ...] = ()  # per operation

    @property
    def start_s(self) -> float:
        """Where its span starts: when it was issued (see harness.measure.recovery)."""
        return self.injected_s if self.issued_s is None else self.issued_s

    def for_operation(self, operation: str) -> OperationRecovery | None:
        for o in self.operations:
            if o.operation == operation:
                return o
        return None


@dataclass(frozen=True)
class NoteSummary:
    offset_s: float
    text: str
    author: str


@dataclass(frozen=True)
class Result:
    experiment: Experiment
    run_id: str
    started_at: str
    duration_s: float                       # t_end - t0
    verdict: Verdict
    reasons: tuple[str, ...]                # why the verdict is what it is, most important first
    assertions: tuple[AssertionOutcome, ...]
    phases: tuple[PhaseMetrics, ...]        # "overall" first, then the record's phases in order
    faults: tuple[FaultSummary, ...]
    time_to_recover_s: float | None         # max over faults; None without faults or if one never recovered
    longest_outage: Outage | None           # over the whole run
    durability: Durability
    timeline: tuple[Step, ...]              # STEP_S buckets from t0 to t_end
    notes: tuple[NoteSummary, ...] = ()
    longest_stall: Stall | None = None      # over the whole run
    operations: tuple[str, ...] = ()        # request names seen, sorted
    operation_timelines: tuple[tuple[str, tuple[Step, ...]], ...] = ()  # per operation, as `timeline`
    aborted: str | None = None
    harness_error: str | None = None
    interrupted: bool = False
    too_few_samples: bool = False           # fewer requests than experiment.min_samples
    monitoring: MonitorSummary | None = None  # detection per fault, alerts, probe samples
    versions: VersionSummary | None = None  # which release answered (harness.measure.versions)
    drill: DrillSummary | None = None       # a backup and restore drill's RTO and RPO (harness.measure.rpo)
    measurement: StoreInfo | None = None    # how the samples were kept (harness.measure.store)

    @property
    def name(self) -> str:
        return self.experiment.name

    @property
    def overall(self) -> PhaseMetrics:
        return self.phase("overall")

    def phase(self, name: str) -> PhaseMetrics:
        for p in self.phases:
            if p.name == name:
                return p
        raise KeyError(name)

    @property
    def exit_code(self) -> int:
        return exit_code(self.verdict)

    @property
    def unrecovered(self) -> tuple[str, ...]:
        return tuple(f.fault for f in self.faults if not f.recovery.recovered)
