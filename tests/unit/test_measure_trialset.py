"""harness.measure.trialset: a set of trials judged on intervals, on synthetic runs."""

from __future__ import annotations

import dataclasses
import math

import pytest

from harness.measure import Verdict, evaluate
from harness.measure.synthetic import make_experiment, make_record, steady_samples
from harness.measure.trialset import summarize
from harness.model import Assertion, AuditSnapshot, FaultEvent, WriteRecord

T0 = 1000.0
AVAIL = Assertion("availability", ">=", 0.80, ">= 80%")
LOST = Assertion("lost_writes", "==", 0, "== 0")


def ttr(th: float) -> Assertion:
    return Assertion("time_to_recover", "<=", th, f"<= {th:g}s")


def trial(outage_s: float, *, slo=(AVAIL,), lost: int = 0, k: int = 0, **kw):
    """A 20 s run at 50 req/s whose fault at 5 s fails everything for `outage_s` seconds."""
    exp = make_experiment("set", duration_s=20.0, slo=slo, recovery_window_s=1.0)
    down = T0 + 5.0
    samples = steady_samples(T0, T0 + 20.0, 50, fails=lambda t, lat: down <= t < down + outage_s, seed=k)
    writes = [WriteRecord(f"w{k}-{i}", "acked", T0 + i) for i in range(10)]
    present = frozenset(w.id for w in writes[lost:])
    fault = FaultEvent("kill", "container.kill", ("x",), down, None)
    rec = make_record(samples, experiment=exp, t0=T0, t_end=T0 + 20.0, faults=[fault], writes=writes,
                      audit=AuditSnapshot(present, 10, 10), run_id=f"r{k}", **kw)
    return evaluate(rec)


OUTAGES = [2.1, 2.4, 2.2, 3.0, 2.3, 2.6, 2.2, 3.4, 2.5, 2.3]


def trials(outages=OUTAGES, **kw):
    return [trial(o, k=k, **kw) for k, o in enumerate(outages)]


def test_pass_when_the_whole_interval_meets_the_threshold():
    ts = summarize(trials(slo=(AVAIL, ttr(6.0))))
    a = ts.assertions[1]
    assert a.metric == "time_to_recover" and a.method == "bootstrap"
    assert a.verdict is Verdict.PASS and ts.verdict is Verdict.PASS
    assert a.interval.high < 6.0 and a.interval.n == 10
    assert a.passes == a.judged == 10 and a.pass_share.low > 0.6
    assert "meets <= 6s over the whole interval" in a.message


def test_a_threshold_inside_the_interval_is_inconclusive_with_trials_needed():
    base = summarize(trials(slo=(AVAIL, ttr(6.0)))).assertions[1].interval
    inside = round((base.estimate + base.high) / 2, 2)
    ts = summarize(trials(slo=(AVAIL, ttr(inside))))
    a = ts.assertions[1]
    assert a.verdict is Verdict.INCONCLUSIVE and ts.verdict is Verdict.INCONCLUSIVE
    assert a.trials_needed is not None and a.trials_needed > 10
    assert "straddles" in a.message and f"about {a.trials_needed} trials would decide" in a.message
    # some single trials passed and some failed: on one run this verdict was luck
    assert 0 < a.passes < a.judged
    assert a.message in ts.reasons


def test_fail_when_the_whole_interval_misses():
    ts = summarize(trials(slo=(ttr(1.0),)))
    assert ts.assertions[0].verdict is Verdict.FAIL and ts.verdict is Verdict.FAIL
    assert "misses" in ts.reasons[0]


def test_availability_uses_wilson_on_pooled_requests():
    ts = summarize(trials())
    a = ts.assertions[0]
    assert a.method == "wilson"
    requests = sum(t.overall.requests for t in ts.trials)
    ok = sum(t.overall.successes for t in ts.trials)
    assert a.interval.estimate == pytest.approx(ok / requests)
    assert a.interval.low < a.interval.estimate < a.interval.high
    assert 0 < a.interval.effective_n <= requests


def test_one_lost_write_in_one_trial_fails_the_set():
    ts = summarize([trial(o, k=k, slo=(AVAIL, LOST), lost=1 if k == 3 else 0) for k, o in enumerate(OUTAGES)])
    a = ts.assertions[1]
    assert a.method == "invariant" and a.verdict is Verdict.FAIL and ts.verdict is Verdict.FAIL
    assert "trial 4 of 10" in a.message and a.passes == 9


def test_never_recovered_trial_makes_the_interval_unbounded():
    outs = list(OUTAGES)
    outs[5] = 30.0                  # still failing at the end of the run
    ts = summarize(trials(outs, slo=(ttr(6.0),)))
    a = ts.assertions[0]
    assert math.isinf(a.values[5]) and math.isinf(a.interval.high)
    assert a.verdict is Verdict.INCONCLUSIVE and "never" in a.message


def test_error_trial_makes_the_set_an_error():
    ts_trials = trials()
    ts_trials[2] = dataclasses.replace(ts_trials[2], verdict=Verdict.ERROR, reasons=("harness error: boom",),
                                       harness_error="boom")
    ts = summarize(ts_trials)
    assert ts.verdict is Verdict.ERROR and ts.reasons[0] == "trial 3: harness error: boom"
    assert ts.assertions[0].values[2] is None and ts.assertions[0].interval.n == 9


def test_an_aborted_trial_fails_the_set():
    ts_trials = trials()
    ts_trials[0] = dataclasses.replace(ts_trials[0], verdict=Verdict.FAIL, aborted="availability below 20%")
    ts = summarize(ts_trials)
    assert ts.verdict is Verdict.FAIL and ts.reasons[0].startswith("trial 1: aborted")


def test_one_trial_is_no_interval():
    ts = summarize(trials(OUTAGES[:1], slo=(AVAIL, ttr(6.0))))
    assert all(a.interval is None for a in ts.assertions)
    assert ts.verdict is Verdict.INCONCLUSIVE and ts.few_trials
    assert any("an interval needs 2" in r for r in ts.reasons)


def test_few_trials_are_said_so():
    ts = summarize(trials(OUTAGES[:3], slo=(AVAIL, ttr(6.0))))
    assert ts.few_trials and any("rests on 3 judged trials" in r for r in ts.reasons)
    assert not summarize(trials(slo=(AVAIL,))).few_trials


def test_trials_of_different_experiments_are_refused():
    a = trial(2.0)
    b = dataclasses.replace(a, experiment=make_experiment("other", slo=(AVAIL,)))
    with pytest.raises(ValueError):
        summarize([a, b])
