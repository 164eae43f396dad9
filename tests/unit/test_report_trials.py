"""Trial sets in results.json and in `compare`: regressions only when intervals separate."""

from __future__ import annotations

import io
import json

import pytest

from harness.measure.trialset import summarize
from harness.report.compare import cmd_compare, compare_docs, format_comparison
from harness.report.results import load_results, results_to_json
from tests.trial_helpers import AVAIL, LOST, OUTAGES, trials, ttr

SLO = (AVAIL, ttr(6.0), LOST)


def doc(outages=OUTAGES, name="set", **kw):
    ts = trials(outages, slo=SLO, name=name, **kw)
    return results_to_json(ts, [summarize(ts)])


@pytest.fixture(scope="module")
def ref_a():
    return doc()


@pytest.fixture(scope="module")
def ref_b():
    # the same system, other luck: the same outages in another order, a little jitter
    return doc([o + d for o, d in zip(reversed(OUTAGES), [0.1, -0.1, 0.0, 0.2, -0.1, 0.0, 0.1, -0.2, 0.1, 0.0])])


def test_trial_set_section(ref_a, tmp_path):
    ts = ref_a["trial_sets"][0]
    assert ts["experiment"] == "set" and ts["trials"] == 10 and ts["judged"] == 10 and not ts["few_trials"]
    assert ts["verdict"] == ref_a["verdict"] == "PASS"
    assert len(ref_a["runs"]) == 10 and ts["run_ids"] == [r["run_id"] for r in ref_a["runs"]]
    a = {x["name"]: x for x in ts["assertions"]}
    assert a["slo.availability"]["method"] == "wilson" and a["slo.time_to_recover"]["method"] == "bootstrap"
    assert a["slo.lost_writes"]["method"] == "invariant" and a["slo.lost_writes"]["interval"] is None
    iv = a["slo.time_to_recover"]["interval"]
    assert iv["low"] <= iv["estimate"] <= iv["high"] < 6.0 and iv["n"] == 10
    assert a["slo.time_to_recover"]["passes"] == 10 and a["slo.time_to_recover"]["pass_share"]["high"] == 1.0
    assert set(ts["metrics"]) == {"availability", "latency_p99", "time_to_recover", "longest_outage", "lost_writes"}
    (tmp_path / "results.json").write_text(json.dumps(ref_a, allow_nan=False))
    assert load_results(tmp_path)["trial_sets"][0]["experiment"] == "set"


def test_a_flaky_trial_does_not_decide_the_suite():
    # one trial of ten misses the TTR threshold; the interval still meets it
    outs = [2.2] * 9 + [3.4]
    ttrs = sorted(t.time_to_recover_s for t in trials(outs))
    th = round((ttrs[-2] + ttrs[-1]) / 2, 3)        # between the nine and the one
    ts = trials(outs, slo=(AVAIL, ttr(th)))
    d = results_to_json(ts, [summarize(ts)])
    assert [r["verdict"] for r in d["runs"]].count("FAIL") >= 1
    assert d["verdict"] == d["trial_sets"][0]["verdict"]


def test_never_is_written_as_a_word_not_infinity():
    outs = list(OUTAGES)
    outs[2] = 30.0
    d = doc(outs)
    ttr_ = next(a for a in d["trial_sets"][0]["assertions"] if a["metric"] == "time_to_recover")
    assert ttr_["values"][2] == "never" and ttr_["interval"]["high"] == "never"
    json.dumps(d, allow_nan=False)      # no Infinity in the file


def test_two_trial_sets_of_the_same_system_do_not_regress(ref_a, ref_b):
    c = compare_docs(ref_a, ref_b)
    e = c.experiment("set")
    assert not c.regressed and e.trials == (10, 10)
    d = e.delta("time_to_recover")
    assert d.baseline_interval and d.candidate_interval


def test_a_fragile_candidate_regresses_with_intervals(ref_a):
    fragile = doc([o * 3 for o in OUTAGES], lost=1)
    c = compare_docs(ref_a, fragile)
    e = c.experiment("set")
    assert c.regressed
    bad = {d.metric for d in e.deltas if d.regressed}
    assert {"time_to_recover", "longest_outage", "availability", "lost_writes"} <= bad
    text = format_comparison(c)
    assert "intervals separate" in text and "[" in text and "10 vs 10 trials" in text


def test_a_point_difference_inside_overlapping_intervals_is_not_a_regression(ref_a):
    # a candidate whose mean TTR is 1.2 s worse (past the 1 s threshold) but with trials so
    # spread that the intervals overlap: not evidence of a regression
    spread = doc([1.0, 6.0, 1.5, 5.5, 2.0, 6.5, 1.0, 7.0, 2.5, 5.0])
    e = compare_docs(ref_a, spread).experiment("set")
    d = e.delta("time_to_recover")
    assert not d.regressed and "intervals overlap" in d.note


def test_a_candidate_missing_experiments_is_never_a_pass(ref_a, tmp_path):
    empty = {**ref_a, "runs": [], "trial_sets": []}
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "results.json").write_text(json.dumps(ref_a))
    (tmp_path / "b" / "results.json").write_text(json.dumps(empty))
    out = io.StringIO()
    assert cmd_compare(tmp_path / "a", tmp_path / "b", out=out) == 1
    assert "0 compared, 1 regressed, 1 missing in candidate" in out.getvalue()
    # and nothing to compare at all is bad input, not a pass
    assert cmd_compare(tmp_path / "b", tmp_path / "b", out=io.StringIO()) == 2


def test_report_html_puts_trials_side_by_side(ref_a, ref_b):
    from harness.report.html import render_html

    html = render_html(ref_b, ref_a)
    assert 'id="trials-0"' in html and "10 trials · fresh stack" in html
    assert html.count('<details class="trial">') == 10 and "trial 10 of 10" in html
    assert "1 experiment · 10 runs in 1 trial set" in html
    assert "Against baseline: PASS → PASS" in html
    assert "slo.time_to_recover" in html and "bootstrap" in html and "invariant" in html


def test_never_recovered_candidate_trial_is_a_regression(ref_a):
    outs = list(OUTAGES)
    outs[4] = 30.0
    c = compare_docs(ref_a, doc(outs))
    d = c.experiment("set").delta("time_to_recover")
    assert d.regressed and "never recovered in trial 5" in d.note
    assert "never" in format_comparison(c)


def test_junit_judges_the_set_not_each_trial():
    import xml.etree.ElementTree as ET

    from harness.report.junit import junit_string

    outs = [2.2] * 9 + [3.4]
    ttrs = sorted(t.time_to_recover_s for t in trials(outs))
    ts = trials(outs, slo=(AVAIL, ttr(round((ttrs[-2] + ttrs[-1]) / 2, 3))))
    s = summarize(ts)
    root = ET.fromstring(junit_string(ts, [s]))
    suites = root.findall("testsuite")
    assert len(suites) == 1 and suites[0].get("name") == "continuum.set"
    case = next(c for c in suites[0].findall("testcase") if c.get("name") == "slo.time_to_recover")
    assert (case.find("failure") is not None) == (s.assertions[1].verdict.value == "FAIL")
    assert any(r.verdict.value == "FAIL" for r in ts)          # a trial failed; the suite's verdict is the set's


def test_a_candidate_with_no_judged_trial_is_never_a_pass(ref_a, tmp_path):
    # Measured on the real engine: the fragile twin's app kill aborted (abort_if) in all 3 of
    # its trials; every metric was "not comparable" and compare said 0 regressed, exit 0.
    cand = json.loads(json.dumps(ref_a))
    [ts] = cand["trial_sets"]
    ts.update(verdict="FAIL", judged=0)
    for m in ts["metrics"].values():
        m.update(values=[None] * len(m.get("values", [])), interval=None)
    e = compare_docs(ref_a, cand).experiment("set")
    assert e.regressed and e.regressions[0].startswith("judged trials: 0 of"), e.regressions
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    (tmp_path / "a" / "results.json").write_text(json.dumps(ref_a))
    (tmp_path / "b" / "results.json").write_text(json.dumps(cand))
    out = io.StringIO()
    assert cmd_compare(tmp_path / "a", tmp_path / "b", out=out) == 1, out.getvalue()
    # The same set against itself is not a regression.
    assert not compare_docs(ref_a, ref_a).experiment("set").regressed
