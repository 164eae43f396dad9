"""Backup and restore drills: a backup while writes go on, a disaster that really loses data, a
restore from the backup; measured as RTO and RPO by harness.measure.rpo.

* `drill.backup`: the target's declared backup steps (x-continuum.backup, harness.model.backup)
  run in its containers; the snapshot's consistent point is recorded on the run's clock as the
  marks `consistent_from` (its step was issued) and `consistent_to` (it returned); the files
  copied out are kept in the run's folder.
* `drill.disaster`: the instances named in `destroy` are removed with their volumes (this run's
  own only): the data they held is gone. Mark `disaster`: when the last removal returned.
* `drill.restore`: fresh containers for what the disaster removed (same names, addresses and
  ports, empty), the declared restore steps (files copied in before a first start, starts
  waited on until healthy, commands), then every instance of the target healthy. It runs in the
  background while load goes on; marks `restore_started` and `restored`.

A target that declares no backup is drilled all the same, as a team without backups would live
it: the backup step records that there is none (mark `no_backup`), the restore brings up empty
instances, and the verdict FAILs saying so (harness.measure.rpo). A step that fails (an exit
status, an output that does not match, an instance never healthy) is the target's backup or
restore failing: recorded (marks `backup_failed`, `restore_failed`) and judged as a FAIL. An
engine error is the harness's: an ERROR.

Cleanup holds on every exit path as for any container: a recreated one is registered on the
stack's undo stack the moment it exists and carries the run's labels (the reaper's key after a
SIGKILL); volumes are removed only when they carry this run's id.
"""

from __future__ import annotations

import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator

from harness.errors import FaultError, HarnessError
from harness.faults.base import FaultContext, FaultSpec, Injection
from harness.model.backup import CopyInStep, CopyOutStep, ExecStep, StartStep, Step, matches
from harness.model.roles import Names
from harness.model.units import Duration

BACKUP_KEY = "drill.backup"           # FaultContext.shared: {"files": {name: Path}, "fault": name}
DESTROYED_KEY = "drill.destroyed"     # FaultContext.shared: instances the disaster removed
MAX_RESTORE_S = 1800.0
STACK_HEALTHY_S = 120.0


class StepFailed(Exception):
    """A declared step did not do its job: the target's backup or restore failed (a FAIL)."""


def _artifacts(ctx: FaultContext, fault: str) -> Path:
    root = ctx.artifacts
    if root is None:        # run outside the CLI (pytest, the API): a folder of its own, named
        root = ctx.artifacts = Path(tempfile.mkdtemp(prefix=f"continuum-{ctx.run_id}-drill-"))
    out = root / fault
    out.mkdir(parents=True, exist_ok=True)
    return out


def _clip(text: str, n: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[:n] + "..."


def _exec(ctx: FaultContext, inst: Any, step: ExecStep) -> tuple[float, float, str]:
    """Run (or poll) one exec step; (issued, returned, output). StepFailed when it fails."""
    deadline = time.monotonic() + step.timeout_s
    while True:
        left = max(1.0, deadline - time.monotonic())
        issued = time.monotonic()
        code, out = inst.exec(list(step.argv), left)
        done = time.monotonic()
        ok = code == 0 and matches(step.expect, out)
        if ok and (step.until is None or matches(step.until, out)):
            return issued, done, out
        if step.until is None:
            why = f"exit status {code}" if code != 0 else f"output does not match /{step.expect}/"
            raise StepFailed(f"{step.describe()} in {inst.name}: {why}: {_clip(out)}")
        if done + step.every_s > deadline:      # a poll: not yet (or not answering yet)
            raise StepFailed(f"{step.describe()} in {inst.name}: no match within "
                             f"{step.timeout_s:g} s; last output: {_clip(out)}")
        time.sleep(step.every_s)


class DrillBackup(FaultSpec):
    action: Literal["drill.backup"] = "drill.backup"
    summary = ("the target's declared backup (x-continuum.backup) while load goes on; records "
               "its consistent point and keeps the files in the run's folder")

    def what(self) -> str:
        return "backup"

    def plan_line(self) -> str:
        return "the target's backup steps (x-continuum.backup); consistent point recorded"

    def inject(self, ctx: FaultContext) -> Injection:
        drill = ctx.target.drill
        if drill is None:
            inj = Injection(self, (), None, detail=f"{ctx.target.name} declares no backup "
                            "(x-continuum.backup): nothing was saved")
            inj.marks["no_backup"] = inj.applied_t
            return inj
        chosen: dict[str, Any] = {}     # among → the instance every step naming it uses
        files: dict[str, Path] = {}
        done: list[str] = []
        folder = _artifacts(ctx, self.name)
        marks: dict[str, float] = {}
        inj = Injection(self, (), None)
        try:
            for k, step in enumerate(drill.backup.steps):
                body = step.body
                among = body.among  # type: ignore[union-attr]
                candidates = [chosen[among]] if among in chosen else ctx.resolve(among)
                if not candidates:
                    raise StepFailed(f"{among}: no instance holds it now")
                last: StepFailed | None = None
                for name in candidates:
                    inst = ctx.instance(name)
                    try:
                        if isinstance(body, ExecStep):
                            issued, returned, _ = _exec(ctx, inst, body)
                            if k == drill.backup.consistent_index:
                                marks["consistent_from"], marks["consistent_to"] = issued, returned
                        else:
                            assert isinstance(body, CopyOutStep)
                            size = inst.copy_out(body.path, folder / body.file, body.timeout_s)
                            files[body.file] = folder / body.file
                            done.append(f"{body.file} ({size} bytes)")
                        chosen[among], last = name, None
                        break
                    except StepFailed as exc:
                        last = exc
                if last is not None:
                    raise last
        except StepFailed as exc:
            marks["backup_failed"] = time.monotonic()
            inj.detail = f"backup failed: {exc}"
        else:
            inj.detail = (f"backup of {', '.join(sorted(set(chosen.values())))}: "
                          f"{', '.join(done)} in {folder}")
            ctx.shared[BACKUP_KEY] = {"files": files, "fault": self.name}
        inj.targets = tuple(sorted(set(chosen.values())))
        inj.marks.update(marks)
        inj.applied_t = marks.get("consistent_to", inj.applied_t)
        return inj


class DrillDisaster(FaultSpec):
    action: Literal["drill.disaster"] = "drill.disaster"
    destroy: Names          # services (all their instances) or instances
    summary = ("the `destroy` instances removed with their volumes (this run's only): their data "
               "is gone until `drill.restore`")

    @field_validator("destroy")
    @classmethod
    def _known(cls, names: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        target = (info.context or {}).get("target")
        if target is None:
            return names
        out: list[str] = []
        for n in names:
            found = target.expand(n)
            if found is None:
                raise ValueError(f"{n!r} is neither a service nor an instance of {target.name}")
            out.extend(found)
        return tuple(dict.fromkeys(out))

    def what(self) -> str:
        return ", ".join(self.destroy)

    def plan_line(self) -> str:
        return f"remove {', '.join(self.destroy)} with their volumes (data lost)"

    def inject(self, ctx: FaultContext) -> Injection:
        names = [n for i in self.destroy for n in (ctx.target.expand(i) or (i,))]
        stack: Any = ctx.stack
        # All at once, as a lost host or zone takes them: removed one by one, the survivors
        # would fail over and keep the data the drill means to lose.
        with ThreadPoolExecutor(max_workers=max(1, min(8, len(names)))) as pool:
            removed = list(pool.map(stack.remove_instance, names))
        ended = time.monotonic()
        ctx.shared.setdefault(DESTROYED_KEY, [])
        ctx.shared[DESTROYED_KEY] = list(dict.fromkeys(ctx.shared[DESTROYED_KEY] + names))
        volumes = [v for vs in removed for v in vs]
        inj = Injection(self, tuple(names), None, applied_t=ended,
                        detail=f"removed {', '.join(names)}"
                        + (f" and volumes {', '.join(volumes)}" if volumes else " (no volumes)"))
        inj.marks["disaster"] = ended
        return inj


class DrillRestore(FaultSpec):
    action: Literal["drill.restore"] = "drill.restore"
    within_s: Duration(max_s=MAX_RESTORE_S) = Field(300.0, alias="within")
    summary = ("fresh instances for what the disaster removed, the target's restore steps "
               "(x-continuum.restore), then every instance healthy; in the background, bounded "
               "by `within`")

    def what(self) -> str:
        return "restore"

    def plan_line(self) -> str:
        return (f"recreate what the disaster removed, run the restore steps, wait until every "
                f"instance is healthy (within {self.within_s:g} s)")

    def inject(self, ctx: FaultContext) -> Injection:
        destroyed = list(ctx.shared.get(DESTROYED_KEY) or ())
        if not destroyed:
            raise FaultError(f"{self.name}: nothing to restore: no drill.disaster removed anything "
                             "before it (schedule the restore after the disaster)")
        stack: Any = ctx.stack
        drill = ctx.target.drill
        backup = ctx.shared.get(BACKUP_KEY)
        inj = Injection(self, tuple(destroyed), None)
        inj.marks["restore_started"] = time.monotonic()
        errors: list[str] = []
        said: list[str] = []
        deadline = time.monotonic() + self.within_s

        def run() -> None:
            try:
                for n in destroyed:
                    stack.recreate_instance(n)
                started: set[str] = set()
                steps: tuple[Step, ...] = drill.restore.steps if drill is not None else ()
                if drill is None:
                    said.append("no restore declared: fresh, empty instances")
                elif backup is None:
                    raise StepFailed("no backup was taken in this run to restore from")
                late: list[str] = []        # started, but not healthy within their step's timeout
                for step in steps:
                    _restore_step(ctx, step.body, destroyed, started, backup, deadline, late)
                rest = [n for n in destroyed if n not in started]
                _start_all(ctx, rest, max(1.0, deadline - time.monotonic()))
                if late:
                    # Every step was still carried out (a late instance may yet come up, and
                    # the RTO says when the service did); the restore itself missed its bound.
                    raise StepFailed("; ".join(late))
                one_shot = {d.name for s in ctx.target.services for d in s.needs
                             if d.condition == "service_completed_successfully"}
                for name, svc in ctx.target.instances():
                    if svc.name in one_shot:
                        continue        # ran to completion at the start; not a server
                    left = min(STACK_HEALTHY_S, deadline - time.monotonic())
                    ctx.instance(name).wait_healthy(max(1.0, left))
                inj.marks["restored"] = time.monotonic()
            except (StepFailed, FaultError) as exc:
                # Never healthy, a step that failed: the target's restore does not work.
                inj.marks["restore_failed"] = time.monotonic()
                said.append(f"restore failed: {exc}")
            except HarnessError as exc:
                errors.append(str(exc))
            except Exception as exc:    # a bug here must not vanish with its thread
                errors.append(f"unexpected {type(exc).__name__}: {exc}")

        thread = threading.Thread(target=run, name=f"restore-{self.name}", daemon=True)
        thread.start()

        def finish() -> str:
            thread.join(timeout=max(1.0, deadline - time.monotonic()) + 5)
            if thread.is_alive():
                raise FaultError(f"{self.name}: the restore did not finish within {self.within_s:g} s")
            if errors:
                raise FaultError(f"{self.name}: " + "; ".join(errors))
            took = inj.marks.get("restored")
            return "; ".join(said + ([f"healthy {took - inj.marks['restore_started']:.1f} s after "
                                      "the restore began"] if took else []))

        inj._revert = finish
        inj.background = thread
        return inj


def _start_all(ctx: FaultContext, names: list[str], timeout_s: float) -> None:
    for n in names:
        ctx.instance(n).start()
    for n in names:
        ctx.instance(n).wait_healthy(timeout_s)


def _restore_step(ctx: FaultContext, body: Any, destroyed: list[str], started: set[str],
                  backup: dict[str, Any], deadline: float, late: list[str]) -> None:
    if isinstance(body, CopyInStep):
        if body.into not in destroyed:
            raise StepFailed(f"copy_in into {body.into}, which the disaster did not remove: a "
                             "restore seeds only fresh instances")
        if body.into in started:
            raise StepFailed(f"copy_in into {body.into} after it started; copy before the start")
        ctx.instance(body.into).copy_in(backup["files"][body.file], body.path, body.timeout_s)
    elif isinstance(body, StartStep):
        todo = [n for n in body.instances if n not in started]
        try:
            _start_all(ctx, todo, min(body.timeout_s, max(1.0, deadline - time.monotonic())))
        except FaultError as exc:       # all started, one not healthy in time: go on with the rest
            late.append(str(exc))
        started.update(todo)
    elif isinstance(body, ExecStep):
        last: StepFailed | None = None
        for name in ctx.target.expand(body.among) or (body.among,):
            try:
                _exec(ctx, ctx.instance(name), body)
                return
            except StepFailed as exc:
                last = exc
        if last is not None:
            raise last
