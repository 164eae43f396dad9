"""targets/patroni and its asynchronous twin through the harness itself (real engine, Toxiproxy
links, Locust worker), shortened for CI from experiments/patroni*/. Only the generic target
contract is used: roles from Patroni's REST API (http probes), the read-back by `exec
continuum-readback` on the nodes (only the leader answers), links by DNAT. Known answers:

* synchronous: the instance killed is the one that answered 200 on /primary when the fault
  fired; writes come back on another node and no acknowledged write is lost (PASS);
* asynchronous, the leader partitioned from its replicas and etcd while clients still reach it
  (split brain): it acknowledges writes alone until it demotes itself, and pg_rewind discards
  them when it rejoins. The harness must catch that as lost acknowledged writes (FAIL), with the
  lost writes all acknowledged after the cut began.

Each test brings up its own stack (20-45 s here) and runs ~35 s of load. The images are built
by scripts/setup.sh (`continuum images targets/patroni`).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.loader import load_experiment
from harness.measure import Verdict
from harness.run import run_experiment

pytestmark = pytest.mark.docker
ROOT = Path(__file__).resolve().parents[2]


def _short(path: Path, at: float, window: float, duration: float):
    exp = load_experiment(path)
    [fault] = exp.faults
    return exp.model_copy(update={"duration_s": duration, "steady_state": (), "abort_if": None,
                                  "faults": (fault.model_copy(update={"at_s": at, "for_s": window}),)})


def test_leader_kill_fails_over_and_loses_nothing(docker_client):
    exp = _short(ROOT / "experiments/patroni/leader-kill.yaml", at=8.0, window=14.0, duration=30.0)
    record, result = run_experiment(exp)
    print(result.verdict, result.reasons, result.durability, sep="\n")
    assert result.harness_error is None, result.harness_error
    [event] = record.faults
    [killed] = event.targets
    # The role was found by asking each node, and the node that answered 200 is the one killed.
    assert event.detail.startswith(f"role leader: {killed} (http GET :8008/primary (status 200)")
    assert f"{killed} 200" in event.detail
    d = result.durability
    assert d.audited and d.source == "exec continuum-readback in pg (lines)"
    assert d.acked > 100 and d.lost == 0 and d.unexpected == 0
    # Writes resumed on another node: some were acknowledged after the kill, and the fault
    # recovered (the window in which writes failed ended).
    assert any(w.outcome == "acked" and w.t > event.injected_t for w in record.writes)
    [charge] = result.faults
    assert charge.recovery.recovered
    assert result.verdict == Verdict.PASS, result.reasons


def test_async_twin_is_caught_losing_writes_under_split_brain(docker_client):
    exp = _short(ROOT / "experiments/patroni-async/leader-isolated.yaml", at=8.0, window=18.0,
                 duration=36.0)
    record, result = run_experiment(exp)
    print(result.verdict, result.reasons, result.durability, sep="\n")
    assert result.harness_error is None, result.harness_error
    [event] = record.faults
    d = result.durability
    assert d.audited and d.acked > 100
    assert d.lost > 0 and d.unexpected == 0
    # Every lost write was sent after the partition was issued (less one request timeout: `t` is
    # when a write started), none well before it: what was replicated before the cut survives.
    sent_t = {w.id: w.t for w in record.writes if w.outcome == "acked"}
    timeout = exp.load.request_timeout_s
    assert all(sent_t[i] >= event.issued_t - timeout for i in d.lost_ids), \
        sorted(sent_t[i] - event.issued_t for i in d.lost_ids)[:5]
    assert result.verdict == Verdict.FAIL
    assert any("lost_writes" in r for r in result.reasons), result.reasons
