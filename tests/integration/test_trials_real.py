"""Repeated trials on the real engine (echo target): `run --trials`, and one stack reused with a
settle check between trials."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from harness.events import Events
from harness.loader import load_experiment
from harness.run.trials import run_trials
from tests.helpers import FIXTURES, continuum, run_objects

pytestmark = [pytest.mark.docker, pytest.mark.slow]

EXP = FIXTURES / "experiments"


def test_run_trials_cli_judges_the_set(tmp_path, docker_client):
    # Two trials, each on a fresh stack (the default): the fewest that make a set with intervals.
    out = tmp_path / "r"
    r = continuum("run", str(EXP / "echo-fail.yaml"), "--trials", "2", "--plain", "--report-dir", str(out), timeout=300)
    assert r.returncode == 1, r.stdout + r.stderr           # 2 s of 8 s down misses 99.9% on every trial
    out = out / "latest"                   # each run writes a folder of its own (harness.report.rundir)
    doc = json.loads((out / "results.json").read_text())
    ts = doc["trial_sets"][0]
    assert ts["experiment"] == "echo-fail" and ts["trials"] == 2 and ts["verdict"] == doc["verdict"] == "FAIL"
    assert len(doc["runs"]) == 2 and len(set(ts["run_ids"])) == 2
    a = ts["assertions"][0]
    assert a["method"] == "wilson" and a["interval"]["high"] < 0.999 and a["passes"] == 0
    assert "rests on 2 judged trials" in r.stdout
    suites = ET.parse(out / "junit.xml").getroot().findall("testsuite")
    assert [s.get("name") for s in suites] == ["continuum.echo-fail"]
    assert 'id="trials-0"' in (out / "report.html").read_text()
    for rid in ts["run_ids"]:
        assert run_objects(docker_client, rid) == (0, 0)


def test_a_reused_stack_settles_between_trials_and_is_removed(docker_client):
    exp = load_experiment(EXP / "echo-fail.yaml")
    said: list[str] = []
    events = Events()
    events.subscribe(lambda e: said.append(getattr(e, "text", "")), name="test")
    rec = run_trials(exp, 2, events=events, stack="reused")
    stack_id = rec.records[0].run_id.rsplit("-t", 1)[0]
    assert [r.run_id for r in rec.results] == [f"{stack_id}-t1", f"{stack_id}-t2"]
    assert any("settled in" in s for s in said), said
    ts = rec.summary()
    assert ts.stack == "reused" and len(ts.judged) == 2
    # each trial measured its own fault on its own clock, after the previous trial ended
    assert all(len(r.faults) == 1 and 2.5 < r.faults[0].injected_s < 4.0 for r in rec.results)
    assert rec.records[1].t0 > rec.records[0].t_end
    assert run_objects(docker_client, stack_id) == (0, 0)
