"""harness.measure.trialset: a set of trials judged on intervals, on synthetic runs."""

from __future__ import annotations

import dataclasses
import math

import pytest

from harness.measure import Verdict
from harness.measure.synthetic import make_experiment
from harness.measure.trialset import summarize
from harness.model import Assertion
from tests.trial_helpers import AVAIL, LOST, OUTAGES, trial, trials, ttr

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


def test_aborted_trials_count_in_the_availability_interval_up_to_the_abort():
    # The fragile twin's app kill aborted in all 3 trials (2026-12-02): with aborted trials left
    # out, the set had no interval at all and compare had nothing to hold it against.
    ts_trials = [dataclasses.replace(r, verdict=Verdict.FAIL, aborted="availability below 20%")
                 for r in trials([6.0, 7.0, 8.0])]
    ts = summarize(ts_trials)
    [avail] = [a for a in ts.assertions if a.metric == "availability"]
    assert ts.verdict is Verdict.FAIL
    assert avail.interval is not None and avail.interval.n == 3
    pooled = sum(r.overall.successes for r in ts_trials) / sum(r.overall.requests for r in ts_trials)
    assert avail.interval.low <= pooled <= avail.interval.high
    assert avail.passed == (None, None, None)          # measured, not judged: no pass share
    spread = ts.spread("availability")
    assert spread.interval is not None and spread.values[0] == ts_trials[0].overall.availability
    # An ERROR trial still brings nothing: the harness broke, nothing was measured.
    broken = [dataclasses.replace(r, verdict=Verdict.ERROR, harness_error="boom") for r in ts_trials]
    assert [a for a in summarize(broken).assertions if a.metric == "availability"][0].interval is None


def test_one_trial_is_judged_as_one_run():
    one = trials(OUTAGES[:1], slo=(AVAIL, ttr(6.0)))
    ts = summarize(one)
    assert all(a.interval is None for a in ts.assertions)
    assert ts.verdict is one[0].verdict is Verdict.PASS
    assert [a.verdict for a in ts.assertions] == [Verdict.PASS, Verdict.PASS]
    assert ts.few_trials and ts.reasons[-1] == "rests on 1 trial: no interval"


def test_two_trials_that_measured_nothing_are_unknown():
    ts = summarize([trial(2.0, k=k, slo=(Assertion("latency_p99", "<=", 1.0, "<= 1s"),)) for k in range(2)])
    assert ts.verdict is Verdict.PASS       # both measured p99: an interval of two
    empty = [dataclasses.replace(t, assertions=tuple(dataclasses.replace(a, measured=None, passed=None)
                                                     for a in t.assertions)) for t in ts.trials]
    ts2 = summarize(empty)
    assert ts2.verdict is Verdict.INCONCLUSIVE and ts2.assertions[0].interval is None
    assert "an interval needs 2" in ts2.assertions[0].message


def test_few_trials_are_said_so():
    ts = summarize(trials(OUTAGES[:3], slo=(AVAIL, ttr(6.0))))
    assert ts.few_trials and any("rests on 3 judged trials" in r for r in ts.reasons)
    assert not summarize(trials(slo=(AVAIL,))).few_trials


def test_trials_of_different_experiments_are_refused():
    a = trial(2.0)
    b = dataclasses.replace(a, experiment=make_experiment("other", slo=(AVAIL,)))
    with pytest.raises(ValueError):
        summarize([a, b])
