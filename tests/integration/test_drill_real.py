"""The restore drill on the real reference: a Redis RDB snapshot under load, the whole Redis tier
removed, restored from the snapshot. Known answer, checked against the read-back of the real
system: every write acknowledged before the snapshot's consistent point is there, every write
sent after it and acknowledged before the disaster is gone, and the drill's RPO in writes is
exactly that number as the load recorded it. Then nothing of the run is left in the engine.

One stack, about 30 s of load (shortened from experiments/drills/redis-backup-restore.yaml).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import RUN_LABEL
from harness.loader import load_experiment
from harness.measure.rpo import acknowledged
from harness.run import run_experiment

pytestmark = pytest.mark.docker
ROOT = Path(__file__).resolve().parents[2]


def _mark(record, action: str, name: str) -> float:
    [event] = [e for e in record.faults if e.action == action]
    return dict(event.marks)[name]


def test_restore_drill_loses_exactly_what_came_after_the_backup(docker_client, tmp_path):
    exp = load_experiment(ROOT / "experiments/drills/redis-backup-restore.yaml")
    at = {"backup": 6.0, "disaster": 11.0, "restore": 12.0}
    faults = tuple(f.model_copy(update={"at_s": at[f.name]}) for f in exp.faults)
    exp = exp.model_copy(update={"duration_s": 32.0, "faults": faults})
    record, result = run_experiment(exp, artifacts_dir=tmp_path)
    print(result.verdict, result.reasons, result.drill, sep="\n")

    assert result.harness_error is None, result.harness_error
    d = result.drill
    assert d is not None and d.audited
    # The snapshot is in the run's folder, as the backup copied it out.
    dump = tmp_path / record.run_id / "backup" / "dump.rdb"
    assert dump.read_bytes()[:5] == b"REDIS"

    # The known answer, from the load's own records and the system's read-back.
    c_from = _mark(record, "drill.backup", "consistent_from")
    c_to = _mark(record, "drill.backup", "consistent_to")
    disaster = _mark(record, "drill.disaster", "disaster")
    present = set(record.audit.ids)
    acked = acknowledged(record.writes)
    before = [w for w in acked if w.acked_at <= c_from]
    after = [w for w in acked if w.sent >= c_to and w.acked_at <= disaster]
    assert len(before) > 20 and len(after) > 20         # the drill had something to lose and keep
    assert [w.id for w in before if w.id not in present] == []
    assert [w.id for w in after if w.id in present] == []
    assert d.lost_writes_before_backup == 0
    assert d.rpo_writes == len(after) == d.after.acked          # exactly what the load recorded
    assert d.after.kept == 0
    assert d.lost_writes_after_restore == 0 and d.after_restore.acked > 0   # writes resumed
    # RPO in time: the consistent point to the last write acknowledged before the disaster; under
    # load that never stopped, within the request timeout of the disaster itself. (Not a fixed
    # figure: the consistent point moves with how long the snapshot took to start.)
    last = max(w.acked_at for w in acked if w.acked_at <= disaster)
    assert d.rpo_s == pytest.approx(last - c_from, abs=1e-5)
    assert disaster - c_from - exp.load.request_timeout_s <= d.rpo_s <= disaster - c_from
    assert d.rto_s is not None and d.restored_s is not None
    assert result.durability.money_conserved is True
    assert result.verdict.value == "PASS", result.reasons

    # Nothing of the run is left: the recreated containers went with the stack.
    label = {"label": f"{RUN_LABEL}={record.run_id}"}
    assert docker_client.containers.list(all=True, filters=label) == []
    assert docker_client.volumes.list(filters=label) == []
