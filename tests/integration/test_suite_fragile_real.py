"""The standard suite's claims on the reference's fragile twin, shortened for CI: it must fail
them, for the right reasons. One twin stack for the module, settled before each run
(tests/suite_helpers.py); see test_suite_real.py for the reference's side.
"""

from __future__ import annotations

import pytest

from harness.measure import Verdict
from tests.suite_helpers import ROOT, failed_in, run_on, shared_stack, shortened, window

pytestmark = pytest.mark.docker
FRAGILE = ROOT / "targets/reference-fragile"


@pytest.fixture(scope="module")
def fragile(docker_client):
    with shared_stack("targets/reference-fragile") as stack:
        yield stack


def test_app_kill_on_fragile_twin_costs_availability(fragile):
    # No abort_if: measure the whole outage, not just until the abort line.
    exp = shortened("experiments/fragile/app-replica-kill-fragile.yaml", abort_if=None)
    assert exp.target.root == FRAGILE
    record, result = run_on(fragile, exp)
    print(result.verdict, result.reasons, result.overall, result.longest_outage, sep="\n")

    assert result.harness_error is None
    [fault] = record.faults
    assert fault.targets == ("app",)
    window = fault.reverted_t - fault.injected_t
    # The only app is dead for the whole window: nothing succeeds until it is back and the
    # twin's HAProxy (inter 2 s, rise 2) takes it in again.
    outage = result.longest_outage
    assert outage.duration_s >= window - 0.5, (outage, window)
    assert outage.duration_s <= window + 15.0, (outage, window)
    assert abs((record.t0 + outage.start_s) - fault.injected_t) < 2.0
    assert failed_in(record, fault.injected_t, fault.reverted_t) > 100
    # How many requests fail depends on how fast each fails: a dead address is not refused, it
    # times out (no answer to ARP), as it would without the harness, so far fewer requests are
    # sent during the outage than when the proxy refused them at once (was < 90 %). What must
    # hold is that the twin misses its own bar.
    assert result.overall.availability < 0.995
    assert result.verdict == Verdict.FAIL
    assert any(r.startswith("availability") for r in result.reasons), result.reasons
    assert any(r.startswith("time_to_recover") for r in result.reasons), result.reasons


def test_slow_single_app_on_fragile_twin_fails_its_latency_experiment(fragile):
    exp = shortened("experiments/fragile/app-replica-latency-fragile.yaml", abort_if=None)
    assert exp.target.root == FRAGILE
    record, result = run_on(fragile, exp)
    fault, phase = window(record, result)
    print(result.verdict, result.reasons, phase, sep="\n")
    assert result.harness_error is None
    # The only app is slow: every request in the window is, and the load keeps coming (a closed
    # loop would have sent a sixth as many and let the run's percentiles hide it).
    assert phase.throughput_rps >= 0.9 * exp.load.rate
    assert phase.latency_p50_s >= 0.45
    assert result.verdict == Verdict.FAIL
    assert any(r.startswith("latency_p50@slow-app-1") for r in result.reasons), result.reasons


def test_fragile_primary_partition_read_back_only_once_the_old_primary_is_demoted(fragile):
    # The twin's isolated primary acknowledges writes alone; Sentinel demotes it (discarding
    # them) only ~10-15 s after the heal. This run ends 3 s after the heal: before the final read
    # waited for the roles to converge (harness.target.convergence), it read the old primary's
    # data back before that demotion, and the same loss read as 0 (2 runs of 2, 2026-12-02).
    exp = shortened("experiments/fragile/redis-primary-partition-fragile.yaml", at_s=4.0, for_s=8.0,
                    duration_s=14.0, abort_if=None)
    record, result = run_on(fragile, exp)
    print(result.verdict, result.reasons, result.durability, [n.text for n in record.notes], sep="\n")

    assert result.harness_error is None, result.harness_error
    [fault] = record.faults
    waited = [n.text for n in record.notes if n.text.startswith("final read-back waited")]
    assert waited, f"the read-back did not wait for the demotion: {[n.text for n in record.notes]}"
    assert float(waited[0].split()[3]) >= 2.0, waited
    d = result.durability
    assert d.audited and d.lost and d.lost > 0, d
    # Every lost write was acknowledged by the old primary alone: once it was cut off, and up to
    # its demotion (after the heal the apps still write to it; nothing tells them otherwise).
    acked = {w.id: w for w in record.writes if w.outcome == "acked"}
    assert all(acked[wid].t >= fault.injected_t - 1.0 for wid in d.lost_ids), (d.lost_ids, fault)
    print(f"lost {d.lost} of {d.acked} acknowledged; {waited[0]}")
    assert "lost_writes" in {o.metric for o in result.assertions if o.passed is False}
