"""How a target is backed up and restored (`x-continuum.backup`, `x-continuum.restore`), checked
into the runtime `DrillSpec` the drill faults (harness.faults.drill) carry out.

Every step is one of:

* `exec`: an argument list run in a container (never a shell), bounded by `timeout`; `expect`
  is a pattern its output must match (a reply such as "Background saving started"), and
  `until` makes it a poll: run again every `every` until the output matches, within `timeout`;
* `copy_out` (backup only): a file copied out of a container through the Docker API
  (get_archive) into the run's folder, under the name `file`;
* `copy_in` (restore only): a file the backup copied out, put into a fresh container through
  the Docker API (put_archive) before it first starts;
* `start` (restore only): fresh instances started, waited on until healthy within `timeout`.

`among` names a role (resolved when the step runs: the backup asks the primary of now), a
service (its instances in turn, the first that succeeds) or an instance; within one backup, every
step naming the same thing runs in the same instance. One backup step is the consistent point:
the one marked `consistent_point: true`, else the first `exec` step; the instant its snapshot
was taken lies between when it was issued and when it returned (docs/target-format.md).
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field, model_validator

from harness.model.base import At, Bool, Model
from harness.model.roles import Command, Names, Regex
from harness.model.units import Duration, Name

MAX_STEP_S = 600.0
MAX_STEPS = 32

# A file kept in the run's folder: a plain name, never a path.
ArtifactName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
                                    description="a file name in the run's folder (no path)")]


def _container_path(value: str) -> str:
    if ".." in value.split("/") or value.endswith("/"):
        raise ValueError(f"{value!r}: name a file by its absolute path, without '..'")
    return value


# A path inside a container: absolute, a file (not a directory), no "..", no NUL.
ContainerPath = Annotated[str, Field(pattern=r"^/[^\x00]{1,1023}$",
                                     description="an absolute path of a file inside the container"),
                          AfterValidator(_container_path)]
StepTimeout = Duration(max_s=MAX_STEP_S, description="how long the step may take (required), "
                       "such as 10s")


class ExecStep(Model):
    among: Name
    argv: Command
    timeout_s: StepTimeout = Field(alias="timeout")
    expect: Regex | None = None                 # the output must match (searched)
    until: Regex | None = None                  # poll until the output matches
    every_s: Duration(max_s=60.0) = Field(0.2, alias="every")
    consistent_point: Bool = False

    def describe(self) -> str:
        poll = f" until /{self.until}/" if self.until else ""
        return f"exec {' '.join(self.argv)} in {self.among}{poll}"


class CopyOutStep(Model):
    among: Name
    path: ContainerPath
    file: ArtifactName
    timeout_s: StepTimeout = Field(alias="timeout")

    def describe(self) -> str:
        return f"copy {self.among}:{self.path} out to {self.file}"


class CopyInStep(Model):
    into: Name
    file: ArtifactName
    path: ContainerPath
    timeout_s: StepTimeout = Field(alias="timeout")

    def describe(self) -> str:
        return f"copy {self.file} into {self.into}:{self.path}"


class StartStep(Model):
    instances: Names
    timeout_s: StepTimeout = Field(alias="timeout")

    def describe(self) -> str:
        return f"start {', '.join(self.instances)} and wait healthy"


_KINDS = ("exec", "copy_out", "copy_in", "start")


class Step(Model):
    exec: ExecStep | None = None
    copy_out: CopyOutStep | None = None
    copy_in: CopyInStep | None = None
    start: StartStep | None = None

    @model_validator(mode="after")
    def _one(self) -> "Step":
        given = [k for k in _KINDS if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("a step is exactly one of: " + ", ".join(_KINDS)
                             + (f" (got {', '.join(given)})" if given else ""))
        return self

    @property
    def kind(self) -> str:
        return next(k for k in _KINDS if getattr(self, k) is not None)

    @property
    def body(self) -> ExecStep | CopyOutStep | CopyInStep | StartStep:
        return getattr(self, self.kind)


def _only(steps: tuple[Step, ...], allowed: tuple[str, ...], what: str) -> None:
    for i, s in enumerate(steps):
        if s.kind not in allowed:
            raise At(f"a {what} step is one of: {', '.join(allowed)}; {s.kind!r} belongs to the "
                     f"{'restore' if what == 'backup' else 'backup'}", "steps", i, s.kind, key=True)


class BackupDecl(Model):
    steps: Annotated[tuple[Step, ...], Field(min_length=1, max_length=MAX_STEPS)]

    @model_validator(mode="after")
    def _check(self) -> "BackupDecl":
        _only(self.steps, ("exec", "copy_out"), "backup")
        marked = [i for i, s in enumerate(self.steps) if s.exec is not None and s.exec.consistent_point]
        if len(marked) > 1:
            raise At("only one step is the backup's consistent point", "steps", marked[1], "exec",
                     "consistent_point")
        if not any(s.exec is not None for s in self.steps):
            raise At("a backup needs an exec step that takes the snapshot (its consistent point)",
                     "steps")
        files = [s.copy_out.file for s in self.steps if s.copy_out is not None]
        if not files:
            raise At("a backup keeps something: add a copy_out step (the snapshot copied out of "
                     "the container into the run's folder)", "steps")
        for i, s in enumerate(self.steps):
            if s.copy_out is not None and files.count(s.copy_out.file) > 1:
                raise At(f"two copy_out steps write {s.copy_out.file!r}", "steps", i, "copy_out", "file")
        return self

    @property
    def consistent_index(self) -> int:
        marked = [i for i, s in enumerate(self.steps) if s.exec is not None and s.exec.consistent_point]
        return marked[0] if marked else next(i for i, s in enumerate(self.steps) if s.exec is not None)


class RestoreDecl(Model):
    steps: Annotated[tuple[Step, ...], Field(min_length=1, max_length=MAX_STEPS)]

    @model_validator(mode="after")
    def _check(self) -> "RestoreDecl":
        _only(self.steps, ("exec", "copy_in", "start"), "restore")
        return self


class DrillSpec(Model):
    """A target's backup and restore, names checked against its services, instances and roles."""

    backup: BackupDecl
    restore: RestoreDecl

    @property
    def files(self) -> tuple[str, ...]:
        return tuple(s.copy_out.file for s in self.backup.steps if s.copy_out is not None)


def check_drill(backup: BackupDecl | None, restore: RestoreDecl | None, services: set[str],
                instances: set[str], roles: set[str]) -> DrillSpec | None:
    """Cross-check names (paths relative to x-continuum); At with the path on a problem."""
    if backup is None and restore is None:
        return None
    if backup is None or restore is None:
        missing = "backup" if backup is None else "restore"
        raise At(f"a target that declares {'restore' if backup is None else 'backup'} must "
                 f"declare {missing} too: a drill needs both", missing if backup is None else "backup",
                 key=True)
    for part, decl in (("backup", backup), ("restore", restore)):
        for i, s in enumerate(decl.steps):
            body = s.body
            at = (part, "steps", i, s.kind)
            if isinstance(body, (ExecStep, CopyOutStep)):
                if body.among not in services | instances | roles:
                    raise At(f"{body.among!r} is neither a service, an instance nor a role of the "
                             "target", *at, "among")
            if isinstance(body, CopyInStep):
                if body.into not in instances:
                    raise At(f"{body.into!r} is not an instance of the target (a restore copies "
                             "into a fresh instance, named as in `continuum ps`)", *at, "into")
                produced = [c.copy_out.file for c in backup.steps if c.copy_out is not None]
                if body.file not in produced:
                    raise At(f"no backup step copies out {body.file!r} (the backup keeps: "
                             f"{', '.join(produced)})", *at, "file")
            if isinstance(body, StartStep):
                for j, n in enumerate(body.instances):
                    if n not in instances:
                        raise At(f"{n!r} is not an instance of the target", *at, "instances",
                                 *((j,) if len(body.instances) > 1 else ()))
            if isinstance(body, ExecStep) and part == "restore" and body.among in roles:
                raise At("a restore step runs in fresh instances, before roles settle: name a "
                         "service or an instance, not a role", *at, "among")
    return DrillSpec(backup=backup, restore=restore)


def matches(pattern: str | None, text: str) -> bool:
    return pattern is None or re.search(pattern, text) is not None


__all__ = ["BackupDecl", "RestoreDecl", "DrillSpec", "Step", "ExecStep", "CopyOutStep",
           "CopyInStep", "StartStep", "check_drill", "matches"]
