"""Backup and restore drills without Docker: the declarations (validated with positions), the
RPO split and RTO on known inputs, the verdict's reasons, and the drill faults on a fake stack
(what is called, in which order). The real engine: tests/integration/test_drill_real.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import FaultError, InputError
from harness.faults import FaultContext, build
from harness.loader import load_target
from harness.measure.rpo import rto_seconds, rpo_seconds, split, summarize_drill
from harness.measure.timeline import Timeline
from harness.model import Assertion, AuditSnapshot, FaultEvent, Sample, WriteRecord

ROOT = Path(__file__).resolve().parents[2]

BASE = """name: t
services:
  db: {image: 'db:1'}
  web: {image: 'web:1', deploy: {replicas: 2}}
x-continuum:
  roles:
    db-primary: {members: [db]}
"""
BACKUP = """  backup:
    steps:
      - exec: {among: db-primary, argv: [dbctl, snapshot], timeout: 5s}
      - copy_out: {among: db-primary, path: /data/snap.bin, file: snap.bin, timeout: 5s}
"""
RESTORE = """  restore:
    steps:
      - copy_in: {into: db, file: snap.bin, path: /data/restore.bin, timeout: 5s}
      - start: {instances: [db], timeout: 10s}
"""


def make(tmp_path: Path, body: str) -> Path:
    (tmp_path / "compose.yaml").write_text(body)
    return tmp_path


def test_a_declared_drill_loads(tmp_path: Path) -> None:
    t = load_target(make(tmp_path, BASE + BACKUP + RESTORE))
    assert t.drill is not None
    assert t.drill.files == ("snap.bin",)
    assert t.drill.backup.consistent_index == 0
    assert t.drill.backup.steps[0].exec.timeout_s == 5.0
    assert [s.kind for s in t.drill.restore.steps] == ["copy_in", "start"]


def test_the_reference_declares_its_redis_backup() -> None:
    t = load_target(ROOT / "targets" / "reference")
    assert t.drill is not None and t.drill.files == ("dump.rdb",)
    assert t.drill.backup.steps[0].exec.argv[-1] == "BGSAVE"
    assert load_target(ROOT / "targets" / "reference-fragile").drill is None


@pytest.mark.parametrize("edit, where, match", [
    # A step without a timeout: refused, at the step (each step is bounded; no default forever).
    (lambda b: b.replace(", timeout: 5s}\n      - copy_out", "}\n      - copy_out"), "10:", "timeout"),
    # A shell string is split into words, never run by a shell; an empty argv is refused.
    (lambda b: b.replace("argv: [dbctl, snapshot]", "argv: []"), "10:", "command"),
    (lambda b: b.replace("among: db-primary, argv", "among: nosuch, argv"), "10:",
     "neither a service, an instance nor a role"),
    (lambda b: b.replace("path: /data/snap.bin", "path: ../snap.bin"), "11:", "(?i)string should match"),
    (lambda b: b.replace("path: /data/snap.bin", "path: /data/../etc/passwd"), "11:", "without '..'"),
    (lambda b: b.replace("file: snap.bin, path", "file: other.bin, path"), "14:", "no backup step copies out"),
    (lambda b: b.replace("into: db,", "into: web,"), "14:", "is not an instance"),
    (lambda b: b.replace("instances: [db]", "instances: [nope]"), "15:", "is not an instance"),
    (lambda b: b.replace("      - copy_in", "      - copy_out: {among: db, path: /x, file: y, timeout: 1s}\n"
                         "      - copy_in"), "14:", "belongs to the"),
])
def test_bad_declarations_point_at_the_line(tmp_path: Path, edit, where: str, match: str) -> None:
    with pytest.raises(InputError, match=match) as info:
        load_target(make(tmp_path, edit(BASE + BACKUP + RESTORE)))
    assert f"compose.yaml:{where}" in str(info.value), str(info.value)


def test_a_backup_without_a_restore_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="must declare restore too"):
        load_target(make(tmp_path, BASE + BACKUP))


# ───────────────────────────── the RPO split, known answers ─────────────────────────────

def w(i: int, sent: float, acked: float | None, ok: bool = True) -> WriteRecord:
    return WriteRecord(f"w{i:03d}", "acked" if ok else "unknown", sent, acked)


def test_the_split_places_each_acknowledged_write_once() -> None:
    # Consistent point [10.0, 10.4]; disaster at 16.0.
    writes = [w(i, 1.0 + i * 0.1, 1.05 + i * 0.1) for i in range(80)]       # acked by 9.05: before
    writes += [w(100, 9.9, 10.2), w(101, 10.3, 10.5)]                         # overlapping: in flight
    writes += [w(200 + i, 10.5 + i * 0.1, 10.55 + i * 0.1) for i in range(50)]  # acked 10.55..15.45: after
    writes += [w(300, 15.9, 30.0)]                                            # acked after the disaster
    writes += [w(400, 12.0, 12.1, ok=False)]                                  # never acked: no class
    present = frozenset(x.id for x in writes[:80]) | {"w100", "w300"}
    before, flight, after, later = split(writes, present, 10.0, 10.4, 16.0)
    assert (before.acked, before.kept, before.lost) == (80, 80, 0)
    assert (flight.acked, flight.kept, flight.lost) == (2, 1, 1)
    assert (after.acked, after.kept, after.lost) == (50, 0, 50)              # exactly what was written
    assert (later.acked, later.lost) == (1, 0)
    # A write acknowledged before the point and missing is caught, by id.
    before, *_ = split(writes, present - {"w007"}, 10.0, 10.4, 16.0)
    assert (before.lost, before.lost_ids) == (1, ("w007",))


def test_a_retried_write_is_placed_by_its_first_send_and_first_ack() -> None:
    writes = [WriteRecord("r", "unknown", 9.0, 11.0), WriteRecord("r", "acked", 11.0, 11.2)]
    _, flight, after, _ = split(writes, frozenset(), 10.0, 10.4, 16.0)
    assert (flight.acked, after.acked) == (1, 0)     # first sent at 9.0, before the point ended


def test_rpo_in_time_runs_to_the_last_write_acknowledged_before_the_disaster() -> None:
    writes = [w(1, 9.0, 9.5), w(2, 12.0, 14.25), w(3, 15.0, 17.0)]
    assert rpo_seconds(writes, 10.0, 16.0) == pytest.approx(4.25)
    assert rpo_seconds([w(1, 9.0, 9.5)], 10.0, 16.0) == pytest.approx(6.0)   # none after: the disaster


def _samples(t0: float, t1: float, fails: tuple[float, float], every: float = 0.02) -> list[Sample]:
    out, t = [], t0
    while t < t1:
        out.append(Sample(t, 0.005, not (fails[0] <= t < fails[1]), "transfer"))
        t += every
    return out


def test_rto_is_from_the_disaster_to_the_slo_met_again_for_good() -> None:
    # Every request fails from 16.0 to 23.0, then all succeed: with a 3 s window at 99 %, the
    # first window from which every window meets the bar starts at 23.0: RTO 7.0 s (+ one
    # 0.1 s step at most, since a window starting at 22.9 still holds the failures before 23.0).
    tl = Timeline(_samples(0.0, 40.0, (16.0, 23.0)))
    ev = FaultEvent("disaster", "drill.disaster", ("db-1",), 16.0, None, issued_t=15.8)
    slo = [Assertion("availability", ">=", 0.99, ">= 99%")]
    assert rto_seconds(tl, ev, 16.0, 40.0, slo, 3.0) == pytest.approx(7.0, abs=0.1001)
    # Never back for good: None (and the verdict says so; it is a FAIL, not a pass).
    assert rto_seconds(Timeline(_samples(0.0, 40.0, (16.0, 40.0))), ev, 16.0, 40.0, slo, 3.0) is None


def _events(backup_marks: dict, disaster: float = 16.0, restored: float = 20.0) -> list[FaultEvent]:
    return [FaultEvent("backup", "drill.backup", ("db-1",), 10.4, None, "backup of db-1",
                       issued_t=10.0, marks=tuple(backup_marks.items())),
            FaultEvent("disaster", "drill.disaster", ("db-1",), disaster, None, issued_t=15.9,
                       marks=(("disaster", disaster),)),
            FaultEvent("restore", "drill.restore", ("db-1",), 16.5, 25.0, issued_t=16.5,
                       marks=(("restore_started", 16.5), ("restored", restored)))]


def test_summary_known_answer() -> None:
    writes = [w(i, 1.0 + i * 0.1, 1.05 + i * 0.1) for i in range(80)]
    writes += [w(200 + i, 10.5 + i * 0.1, 10.55 + i * 0.1) for i in range(50)]
    writes += [w(300 + i, 24.0 + i * 0.1, 24.05 + i * 0.1) for i in range(10)]
    held = tuple(x.id for x in writes[:80]) + tuple(x.id for x in writes[130:])
    tl = Timeline(_samples(0.0, 40.0, (16.0, 23.0)))
    slo = [Assertion("availability", ">=", 0.99, ">= 99%")]
    s = summarize_drill(_events({"consistent_from": 10.0, "consistent_to": 10.4}), writes,
                        AuditSnapshot(ids=held), (), tl, 0.0, 40.0, slo, 3.0)
    assert s is not None
    assert (s.lost_writes_before_backup, s.rpo_writes, s.lost_writes_after_restore) == (0, 50, 0)
    assert s.after.acked == 50
    assert s.rpo_s == pytest.approx(15.45 - 10.0)
    assert s.rto_s == pytest.approx(7.0, abs=0.1001)
    assert (s.consistent_from_s, s.disaster_s, s.restored_s) == (10.0, 16.0, 20.0)


def test_without_a_read_back_the_write_figures_are_unknown_never_zero() -> None:
    s = summarize_drill(_events({"consistent_from": 10.0, "consistent_to": 10.4}),
                        [w(1, 1.0, 1.1)], AuditSnapshot(ids=None, error="refused"), (),
                        Timeline([]), 0.0, 40.0, [], 3.0)
    assert s is not None and s.lost_writes_before_backup is None and s.rpo_writes is None
    assert "refused" in s.value("rpo_writes")[1]


def test_no_backup_fails_saying_so() -> None:
    from harness.measure.verdict import drill_outcome

    writes = [w(i, 1.0 + i * 0.1, 1.05 + i * 0.1) for i in range(80)]
    s = summarize_drill(_events({"no_backup": 10.0}), writes, AuditSnapshot(ids=()), (),
                        Timeline(_samples(0.0, 40.0, (16.0, 23.0))), 0.0, 40.0, [], 3.0)
    assert s is not None and not s.backup_declared
    assert s.lost_writes_before_backup == 80
    lost = drill_outcome(Assertion("lost_writes_before_backup", "==", 0, "== 0"), s)
    assert lost.passed is False and "declares no backup" in lost.message
    rpo = drill_outcome(Assertion("rpo", "<=", 8, "<= 8s"), s)
    assert rpo.passed is False and rpo.measured is None and "declares no backup" in rpo.message


def test_drill_metrics_need_a_disaster(tmp_path: Path) -> None:
    from harness.loader import load_experiment

    exp = tmp_path / "e.yaml"
    exp.write_text(f"apiVersion: continuum/v1\nkind: Experiment\nname: e\ndescription: d\n"
                   f"target: {ROOT / 'targets' / 'reference'}\nduration: 30s\nload: {{profile: ledger}}\n"
                   "faults:\n  - {name: b, at: 5s, action: drill.backup}\nslo:\n  rto: '<= 5s'\n")
    with pytest.raises(InputError, match="drill.disaster") as info:
        load_experiment(exp)
    assert "e.yaml:11:" in str(info.value)


# ─────────────────────────────── the faults on a fake stack ───────────────────────────────

class FakeInst:
    def __init__(self, name: str, log: list, outputs: dict):
        self.name, self.service, self.log, self.outputs = name, name.rsplit("-", 1)[0], log, outputs

    def exec(self, argv, timeout_s):
        self.log.append(("exec", self.name, tuple(argv)))
        return self.outputs.get(tuple(argv), (0, "OK"))

    def copy_out(self, path, dest, timeout_s):
        self.log.append(("copy_out", self.name, path))
        dest.write_bytes(b"snapshot")
        return 8

    def copy_in(self, src, path, timeout_s):
        self.log.append(("copy_in", self.name, src.read_bytes(), path))

    def start(self):
        self.log.append(("start", self.name))

    def wait_healthy(self, timeout_s):
        self.log.append(("healthy", self.name))


class FakeStack:
    def __init__(self, target, outputs=None):
        self.target, self.run_id, self.toxiproxy = target, "r1", None
        self.log: list = []
        self.outputs = outputs or {}

    def instance(self, name):
        return FakeInst(name, self.log, self.outputs)

    def remove_instance(self, name):
        self.log.append(("remove", name))
        return ()

    def recreate_instance(self, name):
        self.log.append(("recreate", name))
        return self.instance(name)


def _ctx(tmp_path: Path, body: str, outputs=None) -> tuple[FaultContext, FakeStack]:
    t = load_target(make(tmp_path, body.replace("exec: {argv: [true]}, among: db",
                                                "static: db-1") if "static" not in body else body))
    stack = FakeStack(t, outputs)
    return FaultContext(stack=stack, run_id="r1", artifacts=tmp_path / "art"), stack


def test_the_drill_backs_up_loses_and_restores_in_order(tmp_path: Path) -> None:
    body = BASE.replace("db-primary: {exec: {argv: [true]}, among: db}", "db-primary: {members: [db]}")
    ctx, stack = _ctx(tmp_path, body + BACKUP + RESTORE)
    t = ctx.target
    b = build("drill.backup", {}, t).inject(ctx)
    assert set(b.marks) == {"consistent_from", "consistent_to"}
    assert b.marks["consistent_from"] <= b.marks["consistent_to"] == b.applied_t
    assert (tmp_path / "art" / "py-drill-backup" / "snap.bin").read_bytes() == b"snapshot"
    d = build("drill.disaster", {"destroy": ["db"]}, t).inject(ctx)
    assert d.targets == ("db",) and "disaster" in d.marks
    r = build("drill.restore", {}, t).inject(ctx)
    detail = r.revert()
    assert "healthy" in detail and "restored" in r.marks
    ops = [e[:2] for e in stack.log]
    assert ops[:4] == [("exec", "db"), ("copy_out", "db"), ("remove", "db"), ("recreate", "db")]
    assert ops.index(("copy_in", "db")) < ops.index(("start", "db"))      # seeded before it starts
    assert ("copy_in", "db", b"snapshot", "/data/restore.bin") in stack.log


def test_a_failing_backup_step_is_the_targets_failure(tmp_path: Path) -> None:
    body = BASE.replace("db-primary: {exec: {argv: [true]}, among: db}", "db-primary: {members: [db]}")
    ctx, _ = _ctx(tmp_path, body + BACKUP + RESTORE, {("dbctl", "snapshot"): (1, "disk full")})
    b = build("drill.backup", {}, ctx.target).inject(ctx)
    assert "backup_failed" in b.marks and "disk full" in b.detail
    assert "consistent_from" not in b.marks


def test_a_restore_without_a_disaster_is_a_harness_error(tmp_path: Path) -> None:
    body = BASE.replace("db-primary: {exec: {argv: [true]}, among: db}", "db-primary: {members: [db]}")
    ctx, _ = _ctx(tmp_path, body + BACKUP + RESTORE)
    with pytest.raises(FaultError, match="nothing to restore"):
        build("drill.restore", {}, ctx.target).inject(ctx)


def test_a_target_without_backup_is_drilled_and_says_so(tmp_path: Path) -> None:
    body = BASE.replace("db-primary: {exec: {argv: [true]}, among: db}", "db-primary: {members: [db]}")
    ctx, stack = _ctx(tmp_path, body)
    b = build("drill.backup", {}, ctx.target).inject(ctx)
    assert "no_backup" in b.marks and "declares no backup" in b.detail
    build("drill.disaster", {"destroy": ["db"]}, ctx.target).inject(ctx)
    r = build("drill.restore", {}, ctx.target).inject(ctx)
    assert "fresh, empty" in r.revert()
    assert ("start", "db") in stack.log and not any(e[0] == "copy_in" for e in stack.log)


# ─────────────────────────── files through the engine's tar stream ───────────────────────────

class TarContainer:
    """get_archive / put_archive as the engine answers them: a tar stream of what `path` is."""

    def __init__(self, members: list):
        self.members = members
        self.put: list = []

    def get_archive(self, path, chunk_size=None):
        import io
        import tarfile

        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:") as tar:
            for info, body in self.members:
                tar.addfile(info, io.BytesIO(body) if body is not None else None)
        data = buf.getvalue()
        return iter([data[i:i + 1000] for i in range(0, len(data), 1000)]), {"size": len(data)}

    def put_archive(self, path, data):
        self.put.append((path, data))
        return True


def _member(name: str, body: bytes | None = None, kind: bytes | None = None):
    import tarfile

    info = tarfile.TarInfo(name)
    if kind is not None:
        info.type, info.linkname = kind, "/etc/passwd"
    else:
        info.size = len(body or b"")
    return info, body


def test_copy_out_keeps_one_regular_file_and_copy_in_puts_it_back(tmp_path: Path) -> None:
    import io
    import tarfile

    from harness.stack.archive import copy_in, copy_out

    c = TarContainer([_member("dump.rdb", b"REDIS0010" * 500)])
    assert copy_out(c, "redis-1", "/data/dump.rdb", tmp_path / "dump.rdb", 5.0) == 4500
    assert (tmp_path / "dump.rdb").read_bytes() == b"REDIS0010" * 500
    assert not list(tmp_path.glob("*.part"))
    copy_in(c, "redis-1", tmp_path / "dump.rdb", "/data/restore.rdb", 5.0)
    [(where, data)] = c.put
    [m] = tarfile.open(fileobj=io.BytesIO(data)).getmembers()
    assert (where, m.name, m.size, m.mode) == ("/data", "restore.rdb", 4500, 0o644)


@pytest.mark.parametrize("members", [
    [_member("dump.rdb", kind=b"2")],                       # a symlink: never followed
    [_member("data", kind=b"5")],                           # a directory
    [_member("a", b"1"), _member("b", b"2")],               # more than one file
])
def test_copy_out_refuses_anything_but_one_regular_file(tmp_path: Path, members) -> None:
    from harness.stack.archive import copy_out

    with pytest.raises(FaultError, match="not one regular file"):
        copy_out(TarContainer(members), "redis-1", "/data/x", tmp_path / "x", 5.0)
    assert not (tmp_path / "x").exists()


# ───────────────────────────── judged and shown: verdict, results.json, report ─────────────────────────────

def test_a_drill_run_is_judged_written_and_drawn(tmp_path: Path) -> None:
    import json

    from harness.measure import evaluate
    from harness.measure.synthetic import ledger_snapshot, make_experiment, make_record, steady_samples
    from harness.report import write_reports

    t0 = 1000.0
    samples = steady_samples(t0, t0 + 40.0, 50, fails=lambda t, lat: t0 + 16.0 <= t < t0 + 23.0)
    writes = [w(i, t0 + 1.0 + i * 0.1, t0 + 1.05 + i * 0.1) for i in range(80)]
    writes += [w(200 + i, t0 + 10.5 + i * 0.1, t0 + 10.55 + i * 0.1) for i in range(50)]
    held = [x.id for x in writes[:80]]
    events = [FaultEvent(e.fault, e.action, e.targets, e.injected_t + t0, None, e.detail,
                         issued_t=e.issued_t + t0, marks=tuple((k, v + t0) for k, v in e.marks))
              for e in _events({"consistent_from": 10.0, "consistent_to": 10.4})]
    slo = tuple(Assertion(m, op, v, text) for m, op, v, text in [
        ("lost_writes_before_backup", "==", 0, "== 0"), ("rpo_writes", "<=", 49, "<= 49"),
        ("rto", "<=", 10.0, "<= 10s"), ("rpo", "<=", 8.0, "<= 8s")])
    exp = make_experiment("drill", duration_s=40.0, slo=slo)
    record = make_record(samples, experiment=exp, t0=t0, t_end=t0 + 40.0, faults=events, writes=writes,
                         audit=ledger_snapshot(held, 1, 1), run_id="r-drill")
    result = evaluate(record)
    by = {o.metric: o for o in result.assertions}
    assert by["lost_writes_before_backup"].passed and by["rto"].passed and by["rpo"].passed
    assert by["rpo_writes"].passed is False and by["rpo_writes"].measured == 50   # 50 lost: the bar was 49
    assert result.verdict.value == "FAIL"
    write_reports([result], [record], tmp_path)
    doc = json.loads((tmp_path / "results.json").read_text())
    d = doc["runs"][0]["drill"]
    assert (d["rpo_writes"], d["lost_writes_before_backup"], d["after"]["acked"]) == (50, 0, 50)
    html = (tmp_path / "report.html").read_text()
    assert "Backup and restore drill" in html and "disaster" in html and "RTO" in html


def test_an_instance_late_to_be_healthy_fails_the_restore_but_the_rest_is_started(tmp_path: Path) -> None:
    body = BASE.replace("db-primary: {members: [db]}", "db-primary: {members: [db]}") + BACKUP + \
        RESTORE + "      - start: {instances: [web-1, web-2], timeout: 10s}\n"
    ctx, stack = _ctx(tmp_path, body)

    class Late(FakeInst):
        def wait_healthy(self, timeout_s):
            if self.name == "db":
                raise FaultError("db not healthy 10 s after restart (status starting)")

    stack.instance = lambda name: Late(name, stack.log, stack.outputs)      # type: ignore[method-assign]
    build("drill.backup", {}, ctx.target).inject(ctx)
    build("drill.disaster", {"destroy": ["db", "web"]}, ctx.target).inject(ctx)
    r = build("drill.restore", {}, ctx.target).inject(ctx)
    assert "restore failed: db not healthy" in r.revert()
    assert "restore_failed" in r.marks and "restored" not in r.marks
    assert {("start", "web-1"), ("start", "web-2")} <= {e[:2] for e in stack.log}
