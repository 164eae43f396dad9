"""The etcd example (a system the project did not write, targets/etcd: a plain Compose file, then
`continuum init`), on the real engine, shortened for CI. Known answers:

* the leader role is found by asking each member (etcd's status names the leader) and the
  instance killed is the one that held it; with a quorum left, HAProxy hides the kill and no
  acknowledged put is lost (read back by `etcdctl` inside a member);
* the same Compose file with the data directory on tmpfs is a system known to lose writes: a
  killed member comes back empty. Killing the only member must then be caught as lost
  acknowledged writes, about every put acknowledged before the kill.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness.loader import load_experiment
from harness.measure import Verdict
from harness.run import run_experiment

pytestmark = pytest.mark.docker
ROOT = Path(__file__).resolve().parents[2]
ETCD = ROOT / "targets" / "etcd"


def test_leader_kill_finds_the_leader_and_loses_nothing(docker_client):
    exp = load_experiment(ETCD / "continuum" / "experiments" / "kill-etcd-leader.yaml")
    [fault] = exp.faults
    exp = exp.model_copy(update={"duration_s": 25.0, "steady_state": (), "faults": (
        fault.model_copy(update={"at_s": 8.0, "for_s": 8.0}),)})
    record, result = run_experiment(exp)
    print(result.verdict, result.reasons, result.durability, sep="\n")
    assert result.harness_error is None, result.harness_error
    [event] = record.faults
    [killed] = event.targets
    # The fault's detail says who held the role, and that is the instance that was killed.
    assert event.detail.startswith(f"role etcd-leader: {killed} (http POST :2379")
    assert killed in ("etcd1", "etcd2", "etcd3")
    d = result.durability
    assert d.audited and d.acked > 100 and d.lost == 0 and d.unexpected == 0
    assert d.source.startswith("exec etcdctl get --prefix --keys-only ids/")
    assert result.verdict == Verdict.PASS, result.reasons


def test_a_member_that_forgets_is_caught(docker_client, tmp_path: Path):
    # One member, its data on tmpfs: what it acknowledged does not survive a kill.
    shutil.copytree(ETCD, tmp_path / "etcd", ignore=shutil.ignore_patterns("README.md"))
    compose = tmp_path / "etcd" / "docker-compose.yml"
    text = compose.read_text()
    single = text[:text.index("  etcd2:")] + text[text.index("  haproxy:"):]
    single = (single.replace("etcd1=http://etcd1:2380,etcd2=http://etcd2:2380,etcd3=http://etcd3:2380",
                             "etcd1=http://etcd1:2380")
              .replace("volumes: [etcd1-data:/var/lib/etcd]", "tmpfs: [/var/lib/etcd]")
              .replace("depends_on: [etcd1, etcd2, etcd3]", "depends_on: [etcd1]"))
    compose.write_text(single)
    cfg = tmp_path / "etcd" / "haproxy" / "haproxy.cfg"
    cfg.write_text("\n".join(l for l in cfg.read_text().splitlines()
                             if "etcd2:2379" not in l and "etcd3:2379" not in l) + "\n")
    overlay = tmp_path / "etcd" / "continuum" / "continuum.yaml"
    # The example's live links: those that name etcd2 or etcd3 cannot exist with one member.
    kept = "\n".join(l for l in overlay.read_text().splitlines()
                     if not (l.lstrip().startswith("- {from:") and ("etcd2" in l or "etcd3" in l)))
    overlay.write_text(kept.replace('among: ["etcd1", "etcd2", "etcd3"]', 'among: ["etcd1"]')
                       .replace("among: [etcd1, etcd2, etcd3]", "among: [etcd1]"))
    exp = load_experiment(tmp_path / "etcd" / "continuum" / "experiments" / "kill-etcd-leader.yaml")
    kill = exp.faults[0].model_copy(update={"at_s": 8.0, "for_s": 5.0})
    exp = exp.model_copy(update={"duration_s": 22.0, "steady_state": (), "faults": (kill,),
                                 "abort_if": None})
    record, result = run_experiment(exp)
    print(result.verdict, result.reasons, result.durability, sep="\n")
    assert result.harness_error is None, result.harness_error
    [event] = record.faults
    def acked_before(t: float) -> int:
        return len({w.id for w in record.writes if w.outcome == "acked" and w.t < t})

    d = result.durability
    assert event.targets == ("etcd1",) and d.audited and acked_before(event.issued_t) > 100
    # Every put acknowledged before the kill is gone; those acknowledged after it are kept.
    assert acked_before(event.issued_t) <= d.lost <= acked_before(event.injected_t) + 20
    assert result.verdict == Verdict.FAIL
    assert any(r.startswith("lost_writes ") for r in result.reasons), result.reasons
