"""The standard suite's claims on the real reference target, shortened for CI (its fragile twin:
test_suite_fragile_real.py).

Each test loads a suite experiment, shortens it (25 s of load, the fault at 8 s) and runs it on
real Docker, Toxiproxy and Locust, on one reference stack for the module, settled before each
run (tests/suite_helpers.py). Known-answer style: the assertions are on measured values (failed
requests, outage, time to writes, lost writes), not only on the verdict.

Shortened runs drop `steady_state`: an 8 s baseline of ~2 500 requests cannot carry a 99.9%
bar (two failed requests fail it) on a shared two-core machine; the full experiments keep it.
"""

from __future__ import annotations

import pytest

from harness.measure import Verdict
from tests.suite_helpers import failed_in, run_on, shared_stack, shortened, window

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def reference(docker_client):
    with shared_stack("targets/reference") as stack:
        yield stack


def test_app_replica_kill_reference_costs_nothing(reference):
    exp = shortened("experiments/app-replica-kill.yaml")
    record, result = run_on(reference, exp)
    print(result.verdict, result.reasons, result.overall, result.durability, sep="\n")

    assert result.harness_error is None
    [fault] = record.faults
    assert len(fault.targets) == 1 and fault.targets[0].startswith("app-")
    # HAProxy retries and redispatches: the killed replica's requests are replayed elsewhere.
    # Allow a handful (a request can die mid-response, which is not replayed).
    assert failed_in(record, fault.injected_t - 2.0, fault.reverted_t + 5.0) <= 5
    assert result.overall.availability >= 0.995
    assert result.time_to_recover_s is not None and result.time_to_recover_s <= 5.0
    assert result.longest_outage.duration_s < 1.0
    assert result.durability.audited and result.durability.lost == 0
    assert result.durability.money_conserved is True
    assert result.verdict == Verdict.PASS, result.reasons


def test_redis_primary_kill_reference_fails_writes_over_without_loss(reference):
    exp = shortened("experiments/redis-primary-kill.yaml", for_s=10.0)
    record, result = run_on(reference, exp)
    print(result.verdict, result.reasons, result.overall, result.durability, sep="\n")

    assert result.harness_error is None
    [fault] = record.faults
    assert fault.targets == ("redis-1",)      # the primary at start
    transfers_ok = [s for s in record.samples if s.name == "transfer" and s.ok and s.t >= fault.injected_t]
    assert transfers_ok, "no transfer succeeded after the primary was killed"
    time_to_writes = min(s.t + s.latency_s for s in transfers_ok) - fault.injected_t
    print(f"time to writes {time_to_writes:.2f} s")
    # Sentinel down-after 2 s + election + promotion + the apps re-finding the primary.
    assert 1.0 <= time_to_writes <= 8.0, time_to_writes
    # Reads are served by replicas meanwhile: balances keep succeeding through the failover.
    reads_ok = sum(1 for s in record.samples if s.name == "balance" and s.ok
                   and fault.injected_t <= s.t < fault.injected_t + time_to_writes)
    assert reads_ok > 0
    assert result.durability.audited and result.durability.lost == 0
    assert result.durability.unexpected == 0
    assert result.durability.money_conserved is True
    # Not the verdict: in 25 s instead of 60 s the same ~100-200 failed writes weigh 2.5x more
    # against the suite's availability bar (99%), so a slow election (6.3 s once in 20 kills)
    # would fail it here without saying anything new. Durability is what this test pins down.
    durability = [o for o in result.assertions if o.metric in ("lost_writes", "unexpected_writes", "money_conserved")]
    assert len(durability) == 3 and all(o.passed for o in durability), durability

    # Per operation (issue 13's known answer): the writes' outage matches their error window,
    # the reads show none, and the run's outage over every request would have hidden it.
    [summary] = result.faults
    assert summary.issued_s is not None and summary.issued_s <= summary.injected_s
    writes, reads = result.overall.for_operation("transfer"), result.overall.for_operation("balance")
    window = summary.for_operation("transfer").error_window
    print(f"transfer outage {writes.longest_outage.duration_s:.3f} s, error window {window.duration_s:.3f} s "
          f"({window.failures} failed); balance outage {reads.longest_outage.duration_s:.3f} s; "
          f"overall outage {result.longest_outage.duration_s:.3f} s")
    assert window.failures >= 10
    # A failed transfer takes up to the app's 1 s write budget, and its user sends the next one
    # after it: the two edges of the outage and of the window differ by about that much.
    assert abs(writes.longest_outage.duration_s - window.duration_s) <= 1.5, (writes.longest_outage, window)
    assert writes.longest_outage.duration_s >= 1.0
    assert reads.longest_outage.duration_s < 0.5
    assert result.longest_outage.duration_s < 0.5 < writes.longest_outage.duration_s
    # A few reads in flight on the dead primary fail at the kill. Since links reach a dead address
    # as they would without the harness (no instant refusal by the proxy), that is 11-13 in a
    # burst under 1 s in some runs (2026-12-02), where it used to be at most 5. Bounded
    # relative to the reads of the fault's phase (about 3000): at most 1 %. The known answer
    # itself is the outage above (reads < 0.5 s).
    read_window = summary.for_operation("balance").error_window
    reads_in_fault = result.phase(f"fault:{summary.fault}").for_operation("balance").requests
    assert read_window is None or read_window.failures <= 0.01 * reads_in_fault, (read_window, reads_in_fault)


def test_slow_app_on_reference_is_felt_by_a_third_of_requests_only(reference):
    exp = shortened("experiments/app-replica-latency.yaml")
    assert exp.load.mode == "open"
    record, result = run_on(reference, exp)
    fault, phase = window(record, result)
    print(result.verdict, result.reasons, phase, sep="\n")
    assert result.harness_error is None
    # Open loop: the offered rate holds through the fault, whatever the replica does.
    assert phase.throughput_rps >= 0.9 * exp.load.rate
    # Round robin over three replicas: a third of the window's requests carry +500 ms, so the
    # tail shows it and the median does not.
    assert phase.latency_p99_s >= 0.45
    assert phase.latency_p50_s <= 0.25
    by = {a.key: a for a in result.assertions}
    assert by["latency_p50@slow-app-1"].passed is True, by["latency_p50@slow-app-1"].message
    assert by["throughput@slow-app-1"].passed is True, by["throughput@slow-app-1"].message
