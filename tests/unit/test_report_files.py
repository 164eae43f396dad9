"""junit.xml, results.json and report.html written by write_reports, from synthetic runs."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.measure import Verdict, evaluate
from harness.measure.synthetic import demo_record, make_experiment, make_record, steady_samples
from harness.model import Assertion, WriteRecord
from harness.report import write_reports
from harness.report.html import cmd_report, render_html
from harness.report.results import SCHEMA_VERSION, ResultsFileError, load_results
from harness.report.files import atomic_write_text

T0 = 1000.0
AVAIL = Assertion("availability", ">=", 0.999, ">= 99.9%")
LOST = Assertion("lost_writes", "==", 0, "== 0")


def _run(name, samples, slo=(AVAIL,), **kw):
    rec = make_record(samples, experiment=make_experiment(name, slo=slo), t0=T0, t_end=T0 + 10, run_id=f"r-{name}", **kw)
    return evaluate(rec), rec


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    good = steady_samples(T0, T0 + 10, 100)
    runs = [
        _run("passes", good),
        _run("fails", steady_samples(T0, T0 + 10, 100, fails=lambda t, lat: t < T0 + 1)),
        _run("broken", good, harness_error="Docker went away"),
        _run("unknown", good, slo=(AVAIL, LOST), writes=[WriteRecord("a", "acked", T0)]),
        _run("empty", []),
    ]
    demo = demo_record()
    runs.append((evaluate(demo), demo))
    out = tmp_path_factory.mktemp("report")
    write_reports([r for r, _ in runs], [rec for _, rec in runs], out)
    return out, [r for r, _ in runs]


def test_files_written_without_temp_leftovers(suite):
    out, _ = suite
    assert sorted(p.name for p in out.iterdir()) == ["junit.xml", "report.html", "results.json"]


def test_junit_parses_with_right_counts(suite):
    out, results = suite
    root = ET.parse(out / "junit.xml").getroot()
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    assert set(suites) == {f"continuum.{r.name}" for r in results}

    def counts(name):
        s = suites[f"continuum.{name}"]
        cases = s.findall("testcase")
        return (len(cases), len([c for c in cases if c.find("failure") is not None]),
                len([c for c in cases if c.find("error") is not None]),
                len([c for c in cases if c.find("skipped") is not None]))

    assert counts("passes") == (2, 0, 0, 0)            # run + availability
    assert counts("fails") == (2, 1, 0, 0)
    assert counts("broken") == (2, 0, 1, 1)            # harness error on the run case, assertion not judged
    assert counts("unknown") == (3, 0, 0, 1)           # lost_writes unknown → skipped
    assert counts("empty") == (2, 0, 0, 2)             # too few samples: run and assertion skipped
    assert counts("link-down-demo") == (7, 2, 0, 0)
    assert suites["continuum.fails"].get("failures") == "1"
    fail = suites["continuum.fails"].find("testcase[@name='slo.availability']")
    assert fail.find("failure").get("message") == "availability 90.00% < required >= 99.9%"
    assert "measured: 0.9" in fail.find("system-out").text
    props = {p.get("name"): p.get("value") for p in suites["continuum.fails"].iter("property")}
    assert props["verdict"] == "FAIL" and props["slo.availability.measured"] == "0.9"
    err = suites["continuum.broken"].find("testcase[@name='run']/error")
    assert "Docker went away" in err.get("message")
    skipped = suites["continuum.unknown"].find("testcase[@name='slo.lost_writes']/skipped")
    assert "no durability read-back" in skipped.get("message")


def test_results_json_schema(suite):
    out, results = suite
    doc = load_results(out)
    assert doc["schema_version"] == SCHEMA_VERSION
    assert doc["verdict"] == "ERROR"
    runs = {r["experiment"]: r for r in doc["runs"]}
    d = runs["link-down-demo"]
    for key in ("run_id", "verdict", "reasons", "phases", "time_to_recover_s", "longest_outage", "durability",
                "assertions", "faults", "notes", "timeline", "config"):
        assert key in d
    assert d["verdict"] == "FAIL" and d["exit_code"] == 1
    assert [p["name"] for p in d["phases"]] == ["overall", "baseline", "fault:lb-app-down", "recovery"]
    assert d["faults"][0]["injected_s"] == 8.0 and d["faults"][0]["reverted_s"] == 10.0
    assert d["faults"][0]["recovered"] is True
    assert d["durability"] == {**d["durability"], "lost": 1, "unexpected": 1, "recovered": 1, "duplicates": 0}
    assert [(i["name"], i["holds"], i["value"]) for i in d["durability"]["invariants"]] == [
        ("money_conserved", True, 1_000_000)]
    assert d["notes"][0]["offset_s"] == 12.5
    assert len(d["timeline"]["ok"]) == 200 and d["timeline"]["step_s"] == 0.1
    assert sum(d["timeline"]["ok"]) + sum(d["timeline"]["failed"]) == 4000
    assert d["config"]["slo"][0] == {"metric": "availability", "op": ">=", "threshold": 0.999, "text": ">= 99.9%"}
    assert runs["empty"]["phases"][0]["availability"] is None
    assert runs["unknown"]["durability"]["lost"] is None
    json.dumps(doc, allow_nan=False)


def test_html_self_contained_one_plotly_copy(suite):
    out, results = suite
    html = (out / "report.html").read_text()
    assert html.count("Plotly.newPlot(") == len(results)
    # one inline copy of plotly.js (its licence banner appears once), no external resources
    assert html.count("plotly.js v") == 1
    assert not re.search(r"<script[^>]+src=", html)
    assert not re.search(r"<link[^>]+href=", html)
    assert "@import" not in html and "fonts.googleapis" not in html
    assert "availability 90.00% &lt; required &gt;= 99.9%" in html
    assert "dashboards show lb marked app-1 up again" in html


def test_html_baseline_table(suite, tmp_path):
    out, _ = suite
    doc = load_results(out)
    worse = json.loads(json.dumps(doc))
    for run in worse["runs"]:
        if run["experiment"] == "passes":
            run["phases"][0]["availability"] = 0.95
    html = render_html(worse, doc)
    assert "Against baseline" in html and "availability dropped" in html


def test_cmd_report_regenerates_and_rejects_bad_input(suite, tmp_path, capsys):
    out, _ = suite
    (tmp_path / "results.json").write_text((out / "results.json").read_text())
    assert cmd_report(tmp_path) == 0
    assert (tmp_path / "report.html").stat().st_size > 1_000_000
    assert cmd_report(tmp_path / "nowhere") == 2
    (tmp_path / "results.json").write_text("{not json")
    assert cmd_report(tmp_path) == 2
    assert "cannot read" in capsys.readouterr().err


def test_load_results_rejects_other_schema(tmp_path):
    (tmp_path / "results.json").write_text(json.dumps({"schema_version": 99, "runs": []}))
    with pytest.raises(ResultsFileError, match="schema_version 99"):
        load_results(tmp_path)
    assert ResultsFileError("x").exit_code == 2


def test_atomic_write_replaces(tmp_path):
    p = tmp_path / "f.txt"
    atomic_write_text(p, "one")
    atomic_write_text(p, "two")
    assert p.read_text() == "two" and [x.name for x in tmp_path.iterdir()] == ["f.txt"]


def test_records_must_pair(tmp_path):
    r, rec = _run("a", [])
    r2, rec2 = _run("b", [])
    with pytest.raises(ValueError):
        write_reports([r], [rec2], tmp_path)


def test_per_operation_figures_overview_and_yaml_as_written(tmp_path):
    from harness.model import FaultEvent

    reads = steady_samples(T0, T0 + 10, 100, name="balance")
    writes = steady_samples(T0 + 0.005, T0 + 10, 50, name="transfer", fails=lambda t, lat: T0 + 4 <= t < T0 + 5.5)
    f = FaultEvent("kill-primary", "container.kill", ("redis-1",), T0 + 4.05, T0 + 8.0, issued_t=T0 + 4.0)
    exp = make_experiment("two-ops", slo=(AVAIL, Assertion("longest_outage", "<=", 1.0, "<= 1s", operation="transfer")))
    exp = exp.model_copy(update={"source_text": "# as written\nname: two-ops\nslo: {transfer.longest_outage: '<= 1s'}\n"})
    rec = make_record(reads + writes, experiment=exp, t0=T0, t_end=T0 + 10, faults=[f], run_id="r-two")
    write_reports([evaluate(rec)], [rec], tmp_path)
    doc = load_results(tmp_path)
    [run] = doc["runs"]
    assert run["operations"] == ["balance", "transfer"]
    assert run["source_yaml"].startswith("# as written")
    overall = run["phases"][0]
    assert [o["operation"] for o in overall["operations"]] == ["balance", "transfer"]
    assert overall["operations"][1]["longest_outage"]["duration_s"] == pytest.approx(1.5, abs=0.03)
    assert run["faults"][0]["issued_s"] == 4.0
    assert run["faults"][0]["operations"][1]["error_window"]["failures"] == 75
    assert set(run["timeline"]["operations"]) == {"balance", "transfer"}
    a = run["assertions"][1]
    assert (a["name"], a["key"], a["operation"], a["phase"]) == (
        "slo.transfer.longest_outage", "transfer.longest_outage", "transfer", None)
    html = (tmp_path / "report.html").read_text()
    assert 'id="overview"' in html and 'href="#run-1"' in html
    assert "transfer.longest_outage 1.51 s &gt; required &lt;= 1s" in html
    assert html.count("Plotly.newPlot(") == 2                 # the timeline and the per-operation figure
    assert "# as written" in html and "&#34;metric&#34;" not in html
    props = {p.get("name"): p.get("value") for p in ET.parse(tmp_path / "junit.xml").getroot().iter("property")}
    assert props["slo.transfer.longest_outage.passed"] == "false"
    assert props["operation.balance.availability"] == "1.0" and props["operation.transfer.failures"] == "75"
    assert float(props["operation.transfer.longest_outage_s"]) == pytest.approx(1.5, abs=0.03)
    out = ET.parse(tmp_path / "junit.xml").getroot().find(".//testcase[@name='run']/system-out").text
    assert "operation transfer: requests 500 (75 failed)" in out and "longest stall" in out
