"""evaluate(): verdict rules and assertion messages, on synthetic RunRecords."""

from __future__ import annotations

import pytest

from harness.measure import Verdict, evaluate, exit_code, suite_exit_code, worst_verdict
from harness.measure.synthetic import (
    demo_record,
    ledger_snapshot,
    make_experiment,
    make_record,
    steady_samples,
)
from harness.model import Assertion, AuditSnapshot, FaultEvent, Phase, Sample, WriteRecord

T0 = 1000.0
AVAIL = Assertion("availability", ">=", 0.999, ">= 99.9%")
P99 = Assertion("latency_p99", "<=", 0.2, "<= 200ms")
TTR = Assertion("time_to_recover", "<=", 2.0, "<= 2s")
LOST = Assertion("lost_writes", "==", 0, "== 0")


def record(samples, *, slo=(AVAIL,), steady=(), min_samples=100, **kw):
    exp = make_experiment(slo=slo, steady_state=steady, min_samples=min_samples)
    return make_record(samples, experiment=exp, t0=T0, t_end=T0 + 10.0, **kw)


def good(rate=100, **kw):
    return steady_samples(T0, T0 + 10.0, rate, **kw)


def test_pass():
    r = evaluate(record(good(), slo=(AVAIL, P99)))
    assert r.verdict is Verdict.PASS and r.reasons == ()
    assert r.exit_code == 0
    assert [a.passed for a in r.assertions] == [True, True]
    assert r.assertions[0].message == "availability 100.00% meets >= 99.9%"


def test_fail_message_text():
    # 1000 requests, 7 failures → 99.30%
    samples = good(fails=lambda t, lat: int(round((t - T0) * 100)) in {1, 10, 100, 200, 300, 400, 999})
    r = evaluate(record(samples))
    assert r.overall.availability == 0.993
    assert r.verdict is Verdict.FAIL and r.exit_code == 1
    a = r.assertions[0]
    assert (a.metric, a.op, a.threshold, a.measured, a.passed) == ("availability", ">=", 0.999, 0.993, False)
    assert a.message == "availability 99.30% < required >= 99.9%"
    assert r.reasons == ("availability 99.30% < required >= 99.9%",)


def test_fail_message_never_shows_equal_numbers():
    samples = good(fails=lambda t, lat: int(round((t - T0) * 100)) == 5)       # 999/1000 = 99.9%
    bar = Assertion("availability", ">", 0.999, "> 99.9%")
    r = evaluate(record(samples, slo=(bar,)))
    assert r.assertions[0].message == "availability 99.90% <= required > 99.9%"
    samples = good(rate=10000, fails=lambda t, lat: t - T0 < 0.01015)    # 102 of 100000: 99.898%
    r = evaluate(record(samples))
    assert r.overall.failures == 102
    assert r.assertions[0].message == "availability 99.898% < required >= 99.9%"


def test_latency_message_units():
    r = evaluate(record(good(latency_s=0.35), slo=(P99,)))
    assert r.assertions[0].message == "latency_p99 350 ms > required <= 200ms"


def test_inconclusive_on_zero_samples():
    r = evaluate(record([], slo=(AVAIL, P99)))
    assert r.verdict is Verdict.INCONCLUSIVE and r.exit_code == 4
    assert "only 0 requests" in r.reasons[0]
    assert all(a.passed is None and a.measured is None for a in r.assertions)
    assert r.overall.availability is None


def test_inconclusive_below_min_samples_even_if_failing():
    samples = steady_samples(T0, T0 + 10.0, 5, fails=lambda t, lat: True)
    r = evaluate(record(samples))
    assert r.verdict is Verdict.INCONCLUSIVE
    assert "fewer than min_samples 100" in r.reasons[0]
    assert r.assertions[0].passed is False                 # still reported


def test_all_failed_is_fail_not_unknown():
    r = evaluate(record(good(fails=lambda t, lat: True), slo=(AVAIL, P99)))
    assert r.verdict is Verdict.FAIL
    assert r.assertions[0].measured == 0.0 and r.assertions[0].passed is False
    assert r.assertions[1].passed is None                  # no successes: latency unknown
    assert "no successful requests" in r.assertions[1].message


def test_inconclusive_when_lost_writes_without_audit():
    writes = [WriteRecord("a", "acked", T0 + 1)]
    r = evaluate(record(good(), slo=(AVAIL, LOST), writes=writes))
    assert r.verdict is Verdict.INCONCLUSIVE
    assert r.reasons == ("lost_writes unknown: no durability read-back (required == 0)",)
    assert r.durability.lost is None


def test_lost_writes_fail_with_audit():
    writes = [WriteRecord("a", "acked", T0 + 1), WriteRecord("b", "acked", T0 + 2)]
    r = evaluate(record(good(), slo=(LOST,), writes=writes, audit=ledger_snapshot({"a"}, 5, 5)))
    assert r.verdict is Verdict.FAIL
    assert r.assertions[0].message == "lost_writes 1 != required == 0"


def test_error_on_harness_error_keeps_measurements():
    r = evaluate(record(good(fails=lambda t, lat: True), harness_error="Toxiproxy did not answer"))
    assert r.verdict is Verdict.ERROR and r.exit_code == 3
    assert r.reasons == ("harness error: Toxiproxy did not answer",)
    assert r.overall.requests == 1000 and r.assertions[0].passed is False


def test_interrupted_is_error():
    r = evaluate(record(good(), interrupted=True))
    assert r.verdict is Verdict.ERROR and r.reasons == ("interrupted",)


def test_abort_is_fail_with_reason():
    r = evaluate(record(good(), aborted="availability 42% < 90% over 5 s"))
    assert r.verdict is Verdict.FAIL
    assert r.reasons[0] == "aborted: availability 42% < 90% over 5 s"


def test_time_to_recover_and_never_recovered():
    f = FaultEvent("kill", "container.kill", ("app-1",), T0 + 2.0, None)
    ok = good(rate=200, fails=lambda t, lat: T0 + 2.0 <= t < T0 + 3.0)
    r = evaluate(record(ok, slo=(AVAIL, TTR), faults=[f]))
    assert r.time_to_recover_s == pytest.approx(1.0)
    assert r.faults[0].recovery.threshold == 0.999
    assert r.assertions[1].passed is True
    bad = good(rate=200, fails=lambda t, lat: t >= T0 + 2.0)
    r = evaluate(record(bad, slo=(TTR,), faults=[f]))
    assert r.verdict is Verdict.FAIL and r.time_to_recover_s is None
    assert r.unrecovered == ("kill",)
    assert "never recovered" in r.reasons[0]
    r = evaluate(record(good(), slo=(TTR,)))
    assert r.verdict is Verdict.INCONCLUSIVE and "no fault was injected" in r.reasons[0]


def test_steady_state_on_baseline_and_recovery_separately():
    f = FaultEvent("down", "network.down", ("lb-app-1",), T0 + 4.0, T0 + 5.0)
    samples = good(rate=200, fails=lambda t, lat: T0 + 4.0 <= t < T0 + 5.0 or (t > T0 + 8 and int(t * 200) % 10 == 0))
    steady = (Assertion("availability", ">=", 0.99, ">= 99%"),)
    r = evaluate(record(samples, slo=(), steady=steady, faults=[f]))
    scopes = {a.scope: a for a in r.assertions}
    assert set(scopes) == {"baseline", "recovery"}
    assert scopes["baseline"].passed is True
    assert scopes["recovery"].passed is False
    assert scopes["recovery"].message.startswith("recovery: availability ")
    assert r.verdict is Verdict.FAIL
    assert [p.name for p in r.phases] == ["overall", "baseline", "fault:down", "recovery"]
    assert scopes["recovery"].name == "steady_state.recovery.availability"


def test_steady_state_on_missing_phase_is_unknown():
    r = evaluate(record(good(), slo=(), steady=(AVAIL,), phases=[Phase("warmup", T0, T0 + 10)]))
    assert r.verdict is Verdict.INCONCLUSIVE
    assert "phase baseline was not recorded" in r.reasons[0]


def test_exit_codes_and_suite_order():
    assert [exit_code(v) for v in Verdict] == [0, 1, 3, 4]
    assert worst_verdict([Verdict.PASS, Verdict.INCONCLUSIVE]) is Verdict.INCONCLUSIVE
    assert worst_verdict([Verdict.INCONCLUSIVE, Verdict.FAIL]) is Verdict.FAIL
    assert worst_verdict([Verdict.FAIL, Verdict.ERROR, Verdict.PASS]) is Verdict.ERROR
    assert worst_verdict([]) is Verdict.PASS
    rs = [evaluate(record(good())), evaluate(record([]))]
    assert suite_exit_code(rs) == 4


def test_demo_record_fields():
    r = evaluate(demo_record())
    assert r.durability.lost == 1 and r.durability.unexpected == 1 and r.durability.recovered == 1
    assert r.longest_outage.duration_s == pytest.approx(2.0, abs=0.05)
    assert r.notes[0].offset_s == pytest.approx(12.5)
    assert len(r.timeline) == 200


def test_an_operation_the_run_never_sent_is_unknown_and_names_what_it_did_send():
    a = Assertion("availability", ">=", 0.99, ">= 99%", operation="transfr")
    r = evaluate(record(good(), slo=(AVAIL, a)))
    assert r.verdict is Verdict.INCONCLUSIVE
    assert r.reasons == ("transfr.availability unknown: no request named 'transfr' was sent "
                         "(the run's operations: transfer) (required >= 99%)",)
    assert r.assertions[1].name == "slo.transfr.availability" and r.assertions[1].operation == "transfr"


def test_a_phase_scoped_slo_judges_only_that_fault_window():
    # +500 ms on every request for the 2 s window of a 10 s run: p99 over the run hides it at
    # <= 1 s, p50 over the window does not.
    f = FaultEvent("slow", "network.latency", ("lb-app",), T0 + 4.0, T0 + 6.0, issued_t=T0 + 3.99)
    samples = good(rate=200, latency=lambda t: 0.51 if T0 + 4.0 <= t < T0 + 6.0 else 0.01)
    slo = (Assertion("latency_p99", "<=", 1.0, "<= 1s"), Assertion("latency_p50", "<=", 0.25, "<= 250ms", phase="slow"),
           Assertion("throughput", ">=", 150.0, ">= 150/s", phase="slow"))
    r = evaluate(record(samples, slo=slo, faults=[f]))
    by = {o.key: o for o in r.assertions}
    assert by["latency_p99"].passed is True
    assert by["latency_p50@slow"].passed is False and by["latency_p50@slow"].scope == "fault:slow"
    # (closed-loop correction on: the window's 0.51 s answers also stand for 0.41, 0.31, ... s)
    assert by["latency_p50@slow"].message == "latency_p50@slow 310 ms > required <= 250ms"
    assert by["throughput@slow"].measured == pytest.approx(200.0, rel=0.01)
    assert r.verdict is Verdict.FAIL


def test_steady_state_naming_a_phase_is_judged_there_only_and_ttr_can_name_a_fault():
    a = FaultEvent("a", "network.down", ("l",), T0 + 2.0, T0 + 2.5, issued_t=T0 + 2.0)
    b = FaultEvent("b", "network.down", ("l",), T0 + 5.0, T0 + 5.5, issued_t=T0 + 5.0)
    samples = good(rate=200, fails=lambda t, lat: T0 + 2.0 <= t < T0 + 2.5 or T0 + 5.0 <= t < T0 + 5.3)
    steady = (Assertion("availability", ">=", 0.99, ">= 99%", phase="recovery"),)
    slo = (Assertion("time_to_recover", "<=", 0.4, "<= 400ms", phase="b"), Assertion("time_to_recover", "<=", 0.4, "<= 400ms"))
    r = evaluate(record(samples, slo=slo, steady=steady, faults=[a, b]))
    by = {o.name: o for o in r.assertions}
    assert set(by) == {"slo.time_to_recover@b", "slo.time_to_recover", "steady_state.recovery.availability@recovery"}
    assert by["slo.time_to_recover@b"].measured == pytest.approx(0.3) and by["slo.time_to_recover@b"].passed
    assert by["slo.time_to_recover"].measured == pytest.approx(0.5) and not by["slo.time_to_recover"].passed


def test_closed_loop_latency_is_corrected_from_the_baseline_pace():
    # 20 users (make_experiment's default load) at 200 req/s: each user every 0.1 s. A 1 s answer
    # stood for 9 more requests of its user.
    samples = good(rate=200) + [Sample(T0 + 5.0 + k * 0.01, 1.0, ok=True) for k in range(20)]
    r = evaluate(record(samples, slo=(P99,)))
    assert r.overall.raw_latency_p99_s == pytest.approx(0.01)
    assert r.overall.latency_p99_s >= 0.5


def test_invariant_assertion_fails_with_the_values_and_is_unknown_without_them():
    inv = Assertion("money_conserved", "==", 1, "== 1", invariant=True)
    r = evaluate(record(good(), slo=(inv,), audit=ledger_snapshot(set(), 99, 100)))
    assert r.verdict is Verdict.FAIL
    assert r.assertions[0].message == ("money_conserved does not hold (total_balance == "
                                       "expected_total: 99 == 100); required == 1")
    r = evaluate(record(good(), slo=(inv,), audit=ledger_snapshot(set(), 100, 100)))
    assert r.verdict is Verdict.PASS and r.assertions[0].measured == 1.0
    r = evaluate(record(good(), slo=(inv,), audit=AuditSnapshot(ids=None, error="timed out")))
    assert r.verdict is Verdict.INCONCLUSIVE and "money_conserved unknown: not read back" in r.reasons[0]


def test_failed_read_back_says_why_lost_writes_is_unknown():
    r = evaluate(record(good(), slo=(LOST,), writes=[WriteRecord("a", "acked", T0 + 1)],
                        audit=AuditSnapshot(ids=None, error="exec etcdctl: exit 1")))
    assert r.verdict is Verdict.INCONCLUSIVE
    assert r.reasons == ("lost_writes unknown: the read-back failed (exec etcdctl: exit 1) "
                         "(required == 0)",)
