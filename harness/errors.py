"""One exception tree.

ContinuumError
├── InputError            bad experiment/target file or flag        → exit 2, nothing touched
└── HarnessError          the harness or its environment broke      → verdict ERROR, exit 3,
    ├── DockerUnavailable                                              JUnit <error>
    ├── ImageError
    ├── StackError
    │   └── NameCollision
    ├── ToxiproxyError
    ├── FaultError
    ├── LoadError
    ├── AuditError
    ├── ReportWriteError  a report file could not be written (disk full): says which
    └── MonitorError      Prometheus / Alertmanager did not answer or answered nonsense

The system under test missing its SLOs is *not* an exception: it is a FAIL verdict computed
from measurements (see harness.measure.verdict). Any exception outside this tree that reaches
the CLI (a bug, a library error nobody translated) is a harness error too: exit 3, with the
traceback written to a log file (harness.cli.main); inside a run the orchestrator records it as
the run's ERROR first. Docker SDK, `requests`/`urllib3` and socket errors are translated at one
boundary, harness.stack.engine.docker_errors. Keeping the two apart is what lets the gate
say "your change made failover worse" without ever blaming the system for a broken harness.
"""

from __future__ import annotations


class ContinuumError(Exception):
    """Root of everything the harness raises on purpose."""

    exit_code = 3


class InputError(ContinuumError):
    """A file or flag the user gave is wrong. Raised before any Docker call."""

    exit_code = 2

    def __init__(self, message: str, *, where: str | None = None, field: str | None = None):
        self.where = where      # "path/to/file.yaml:12:5" when known
        self.field = field      # dotted field path, e.g. "faults[1].latency"
        prefix = f"{where}: " if where else ""
        suffix = f" (field {field})" if field else ""
        super().__init__(f"{prefix}{message}{suffix}")


class HarnessError(ContinuumError):
    """The harness or its environment failed; never the system under test's fault."""

    exit_code = 3


class DockerUnavailable(HarnessError):
    pass


class ImageError(HarnessError):
    pass


class StackError(HarnessError):
    pass


class NameCollision(StackError):
    pass


class ToxiproxyError(HarnessError):
    pass


class FaultError(HarnessError):
    pass


class LoadError(HarnessError):
    pass


class AuditError(HarnessError):
    pass


class ReportWriteError(HarnessError):
    """Writing the reports failed part-way (disk full, read-only file system). Each report file
    is written atomically, so every file is either its previous complete version or the new
    one; `incomplete` names the ones that are not up to date."""

    def __init__(self, message: str, *, written: tuple[str, ...] = (), incomplete: tuple[str, ...] = ()):
        self.written = written
        self.incomplete = incomplete
        super().__init__(message)


class MonitorError(HarnessError):
    """The target's monitoring (Prometheus, Alertmanager) failed to answer. Never the system's
    FAIL: a check that could not be read is unknown, and a monitor that never came up is ERROR."""


class Interrupted(ContinuumError):
    """SIGINT/SIGTERM: faults reverted and stack torn down, then exit 130."""

    exit_code = 130
