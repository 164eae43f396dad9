"""targets/rabbitmq through the harness itself (real engine, Toxiproxy links on the Erlang
distribution port, Locust worker), shortened for CI from experiments/rabbitmq/queue-leader-kill.yaml.
Only the generic target contract is used: the queue-leader role by an exec probe in each node
(`continuum-rabbit role leader`), durability by a function read-back that drains the queue
(`consumes: true`), the consumers' deliveries as `read_id`s. Known answers:

* the node killed is the one whose probe said it held the queue's leader (exit 0), and only one
  node said so;
* a quorum queue loses no confirmed publish when one of three nodes dies: every confirmed id is
  delivered, during the run or by the drain, and nothing is delivered that was never published;
* the drain completed (durability audited, not unknown) and duplicates are counted (a number,
  at-least-once allows some), both during the run and by the drain.

One stack (30-60 s to come up here) and ~30 s of load. The image is built by scripts/setup.sh.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.loader import load_experiment
from harness.measure import Verdict
from harness.run import run_experiment

pytestmark = pytest.mark.docker
ROOT = Path(__file__).resolve().parents[2]


def test_queue_leader_kill_loses_no_confirmed_publish(docker_client):
    exp = load_experiment(ROOT / "experiments/rabbitmq/queue-leader-kill.yaml")
    [fault] = exp.faults
    exp = exp.model_copy(update={"duration_s": 28.0, "abort_if": None, "faults": (
        fault.model_copy(update={"at_s": 8.0, "for_s": 8.0}),)})
    record, result = run_experiment(exp)
    print(result.verdict, result.reasons, result.durability, sep="\n")
    assert result.harness_error is None, result.harness_error
    [event] = record.faults
    [killed] = event.targets
    # exec probe: exit 0 on the holder only; the detail lists every node's answer.
    assert event.detail.startswith(f"role queue-leader: {killed} (exec continuum-rabbit role leader")
    d = result.durability
    assert d.audited, d.error
    assert d.source.startswith("function readback")
    assert d.acked > 100 and d.read_during_run > 0
    assert d.lost == 0 and d.unexpected == 0
    assert isinstance(d.duplicates, int)
    # Publishes were confirmed again after the kill: a new leader was elected.
    assert any(w.outcome == "acked" and w.t > event.injected_t for w in record.writes)
    assert result.verdict == Verdict.PASS, result.reasons
