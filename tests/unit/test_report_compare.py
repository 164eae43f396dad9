import copy
import io
import json

import pytest

from harness.measure import evaluate
from harness.measure.synthetic import demo_record
from harness.report.compare import Thresholds, cmd_compare, compare, compare_docs, format_comparison
from harness.report.results import results_to_json


@pytest.fixture(scope="module")
def base():
    return results_to_json([evaluate(demo_record())])


def _with(doc, **changes):
    d = copy.deepcopy(doc)
    run = d["runs"][0]
    for k, v in changes.items():
        if k in ("availability", "latency_p99_s"):
            run["phases"][0][k] = v
        elif k == "lost":
            run["durability"]["lost"] = v
        elif k == "outage":
            run["longest_outage"]["duration_s"] = v
        else:
            run[k] = v
    return d


def test_no_regression_against_itself(base):
    c = compare_docs(base, base)
    assert not c.regressed
    e = c.experiment("link-down-demo")
    assert e.delta("availability").delta == 0 and e.delta("time_to_recover").delta == 0


@pytest.mark.parametrize("changes,metric", [
    ({"availability": 0.898 - 0.0011}, "availability"),
    ({"latency_p99_s": 0.0497 * 1.3}, "latency_p99"),
    ({"time_to_recover_s": 3.01}, "time_to_recover"),
    ({"outage": 3.1}, "longest_outage"),
    ({"lost": 2}, "lost_writes"),
])
def test_each_threshold(base, changes, metric):
    c = compare_docs(base, _with(base, **changes))
    e = c.experiment("link-down-demo")
    assert c.regressed and [d.metric for d in e.deltas if d.regressed] == [metric]


def test_within_thresholds_is_not_a_regression(base):
    cand = _with(base, availability=0.898 - 0.0009, latency_p99_s=0.0497 * 1.2, time_to_recover_s=2.9, outage=2.9)
    assert not compare_docs(base, cand).regressed


def test_pass_to_fail_and_never_recovered(base):
    b = _with(base, verdict="PASS")
    c = compare_docs(b, _with(base, verdict="FAIL"))
    assert c.experiments[0].regressions[0] == "verdict: PASS → FAIL"
    cand = copy.deepcopy(base)
    cand["runs"][0]["time_to_recover_s"] = None
    cand["runs"][0]["faults"][0]["recovered"] = False
    e = compare_docs(base, cand).experiments[0]
    assert e.delta("time_to_recover").regressed and "never recovered from lb-app-down" in e.regressions[0]


def test_unknown_is_reported_not_judged(base):
    cand = _with(base, lost=None)
    e = compare_docs(base, cand).experiments[0]
    assert not e.regressed and e.delta("lost_writes").note == "not comparable: unknown on candidate"


def test_missing_experiments_reported(base):
    other = copy.deepcopy(base)
    other["runs"][0]["experiment"] = "renamed"
    c = compare_docs(base, other)
    assert c.only_in_baseline == ("link-down-demo",) and c.only_in_candidate == ("renamed",)
    assert c.experiments == ()
    # a candidate that lacks an experiment of the baseline is never a pass
    assert c.regressed
    assert "link-down-demo: missing in candidate (present in baseline): not a pass" in format_comparison(c)


def test_cmd_compare_exit_codes(base, tmp_path, capsys):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "results.json").write_text(json.dumps(base))
    (tmp_path / "b" / "results.json").write_text(json.dumps(_with(base, time_to_recover_s=9.0)))
    out = io.StringIO()
    assert cmd_compare(tmp_path / "a", tmp_path / "a", out=out) == 0
    assert "1 compared, 0 regressed" in out.getvalue()
    out = io.StringIO()
    assert cmd_compare(tmp_path / "a", tmp_path / "b", out=out) == 1
    assert "time to recover rose 7.00 s" in out.getvalue()
    assert cmd_compare(tmp_path / "a", tmp_path / "b", max_ttr_increase_s=10, out=io.StringIO()) == 0
    assert cmd_compare(tmp_path / "a", tmp_path / "missing", out=io.StringIO()) == 2
    assert "no results.json" in capsys.readouterr().err
    (tmp_path / "b" / "results.json").write_text("[]")
    assert cmd_compare(tmp_path / "a", tmp_path / "b", out=io.StringIO()) == 2
    assert "not a Continuum results file" in capsys.readouterr().err
    assert not compare(tmp_path / "a", tmp_path / "a", Thresholds()).regressed
