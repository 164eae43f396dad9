"""Attribution, error windows and time to recover (harness.measure.recovery), known answers."""

from __future__ import annotations

import pytest

from harness.measure import evaluate
from harness.measure.recovery import Span, charged, error_window, recovery_bar, spans, time_to_recover
from harness.measure.synthetic import make_experiment, make_record, steady_samples
from harness.measure.timeline import Timeline
from harness.model import Assertion, FaultEvent, Sample

T0 = 1000.0
BAR = Assertion("availability", ">=", 0.99, ">= 99%")


def test_failures_that_land_before_the_recorded_start_are_charged_to_the_fault():
    # A leader kill: issued at 5.0 s, the Docker call returns (injected) at 5.3 s. The requests in
    # flight from 4.9 s on and those sent while it landed fail; the fault's record must say so.
    samples = steady_samples(T0, T0 + 10.0, 100, latency_s=0.05,
                             fails=lambda t, lat: T0 + 5.0 <= t + lat and t < T0 + 5.3)
    f = FaultEvent("kill-leader", "container.kill", ("db-1",), T0 + 5.3, None, issued_t=T0 + 5.0)
    [span] = spans([f], T0 + 10.0)
    assert (span.start, span.end) == (T0 + 5.0, T0 + 10.0)
    hit = charged(Timeline(samples), span)
    window = error_window(hit, T0)
    failed = sum(not s.ok for s in samples)
    assert window is not None and window.failures == failed > 11
    assert window.first_s < 5.0 < window.last_s < 5.3       # the first was in flight when it was issued
    rec = time_to_recover(hit, span, 1.0, BAR)
    assert rec.recovered and rec.time_to_recover_s == pytest.approx(0.3, abs=0.101)
    # Only the injection time (the old rule) would have charged none of them and said TTR 0.
    late = Span(f, f.injected_t, T0 + 10.0)
    assert error_window([s for s in charged(Timeline(samples), late) if s.t >= f.injected_t], T0) is None


def test_a_request_that_completed_before_the_fault_was_issued_is_not_its_victim():
    samples = [Sample(T0 + 1.0, 0.5, ok=False), Sample(T0 + 1.8, 0.5, ok=False), Sample(T0 + 2.6, 0.1, ok=True)]
    f = FaultEvent("f", "container.kill", ("x",), T0 + 2.1, None, issued_t=T0 + 2.0)
    [span] = spans([f], T0 + 5.0)
    assert [s.t for s in charged(Timeline(samples), span)] == [T0 + 1.8, T0 + 2.6]


def test_spans_end_when_the_next_fault_is_issued():
    a = FaultEvent("a", "container.kill", ("x",), T0 + 2.2, None, issued_t=T0 + 2.0)
    b = FaultEvent("b", "network.down", ("l",), T0 + 6.1, T0 + 7.0, issued_t=T0 + 6.0)
    old = FaultEvent("c", "container.kill", ("y",), T0 + 8.0, None)          # no issued_t recorded
    assert [(s.fault.fault, s.start, s.end) for s in spans([b, old, a], T0 + 10.0)] == [
        ("a", T0 + 2.0, T0 + 6.0), ("b", T0 + 6.0, T0 + 8.0), ("c", T0 + 8.0, T0 + 10.0)]


def test_recovery_bar_per_operation():
    slo = (Assertion("availability", ">=", 0.999, ">= 99.9%"),
           Assertion("availability", ">=", 0.9, ">= 90%", operation="transfer"),
           Assertion("availability", ">=", 0.5, ">= 50%", phase="kill"))
    assert recovery_bar(slo).threshold == 0.999
    assert recovery_bar(slo, "transfer").threshold == 0.9
    assert recovery_bar(slo, "balance").threshold == 0.999
    assert recovery_bar(()).threshold == 0.99


def test_redis_primary_kill_writes_fail_over_reads_never_notice():
    # Reads at 140/s always succeed; writes at 60/s fail from 20.0 to 21.5 s (the failover).
    reads = steady_samples(T0, T0 + 40.0, 140, latency_s=0.004, name="balance")
    writes = steady_samples(T0 + 0.003, T0 + 40.0, 60, latency_s=0.006, name="transfer",
                            fails=lambda t, lat: T0 + 20.0 <= t < T0 + 21.5)
    kill = FaultEvent("kill-primary", "container.kill", ("redis-1",), T0 + 20.05, T0 + 30.0, issued_t=T0 + 20.0)
    exp = make_experiment("redis-primary-kill", duration_s=40.0, recovery_window_s=3.0, slo=(
        Assertion("availability", ">=", 0.98, ">= 98%"),
        Assertion("longest_outage", "<=", 1.0, "<= 1s"),
        Assertion("longest_outage", "<=", 1.0, "<= 1s", operation="transfer"),
        Assertion("longest_outage", "<=", 0.2, "<= 200ms", operation="balance"),
        Assertion("time_to_recover", "<=", 1.0, "<= 1s", operation="balance")))
    r = evaluate(make_record(reads + writes, experiment=exp, t0=T0, t_end=T0 + 40.0, faults=[kill]))
    overall = r.overall
    transfer, balance = overall.for_operation("transfer"), overall.for_operation("balance")
    # Over every request the outage is invisible (reads answer all along) ...
    assert overall.longest_outage.duration_s < 0.02
    # ... per operation it is not: the write outage matches the writes' error window.
    [fault] = r.faults
    w = fault.for_operation("transfer").error_window
    assert w.failures == 90 and w.duration_s == pytest.approx(1.5 - 1 / 60, abs=1e-6)
    assert transfer.longest_outage.duration_s == pytest.approx(w.duration_s, abs=2 / 60)
    assert balance.longest_outage.duration_s < 0.02 and fault.for_operation("balance").error_window is None
    assert fault.for_operation("balance").recovery.time_to_recover_s == 0.0
    assert fault.for_operation("transfer").recovery.time_to_recover_s == pytest.approx(1.5, abs=0.101)
    by_key = {a.key: a for a in r.assertions}
    assert by_key["longest_outage"].passed is True
    assert by_key["transfer.longest_outage"].passed is False
    assert by_key["transfer.longest_outage"].message.startswith("transfer.longest_outage 1.5")
    assert by_key["balance.longest_outage"].passed is True
    assert by_key["balance.time_to_recover"].passed is True
    assert r.verdict.value == "FAIL" and r.reasons == (by_key["transfer.longest_outage"].message,)
