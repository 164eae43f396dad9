"""The models: the one source of the experiment's and the target's shape.

* `harness.model.units`       field types with units (durations, sizes, percentages, names)
* `harness.model.assertions`  metrics, thresholds, `Assertion`
* `harness.model.target`      the Compose file, x-continuum, and the runtime `Target`
* `harness.model.compose`     which Compose keys are honoured, warned or refused, and their types
* `harness.model.roles`       role providers (http, exec, tcp, Sentinel, static)
* `harness.model.durability`  read-backs and invariants
* `harness.model.experiment`  `Experiment` (faults come from the registry in `harness.faults`)
* `harness.model.record`      what a run records: samples, phases, fault events, writes

Everything read from a file is a frozen Pydantic model, parsed once by `harness.loader`.
This package imports neither `experiment` (which needs the fault registry) nor Docker, so fault
families can use the unit and target types without an import circle.
"""

from harness.model.assertions import AUDIT_METRICS, METRICS, MONITOR_METRICS, Assertion, parse_threshold
from harness.model.record import (
    AuditSnapshot,
    FaultEvent,
    InvariantReading,
    Note,
    Phase,
    ReadRecord,
    RunRecord,
    Sample,
    WriteRecord,
)
from harness.model.durability import DurabilitySpec
from harness.model.target import (
    BuildSpec,
    Endpoint,
    HealthCheck,
    LinkSpec,
    NetworkSpec,
    PortSpec,
    RoleSpec,
    ServiceSpec,
    Target,
)
from harness.model.units import NAME_MAX, NAME_RE

__all__ = ["AUDIT_METRICS", "METRICS", "MONITOR_METRICS", "Assertion", "parse_threshold", "AuditSnapshot",
           "FaultEvent", "InvariantReading", "Note", "Phase", "ReadRecord", "RunRecord", "Sample",
           "WriteRecord", "DurabilitySpec",
           "BuildSpec", "Endpoint", "HealthCheck", "LinkSpec", "NetworkSpec", "PortSpec",
           "RoleSpec", "ServiceSpec", "Target", "NAME_MAX", "NAME_RE"]
