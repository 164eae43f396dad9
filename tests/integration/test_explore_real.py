"""`continuum explore` on the real engine: the fragile twin's single app instance, killed, is
found, confirmed and written as an experiment file that loads; the stack is gone afterwards.

Kept short for CI (about a minute): two candidates given in order (the app kill, then a
Prometheus kill that the twin's service survives), the window and load already at the shrinker's floors so
no shrink run is needed, one confirmation (three runs in all). The load is the candidates'
default open loop (25 requests/s at the floor). The settle before the Prometheus kill follows a
failed run, so it runs its load probe; the one before the confirmation follows a pass that
recovered and left the data tier alone, so it does not (the cheaper settle, on the real engine)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.events import Events
from harness.explore.candidates import Params, singles
from harness.explore.explorer import explore
from harness.explore.runner import StackRunner
from harness.explore.shrink import MIN_USERS, MIN_WINDOW_S
from harness.loader import load_experiment, load_target
from tests.helpers import run_objects

pytestmark = [pytest.mark.docker, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


def test_explore_finds_the_single_app_on_a_reused_stack(tmp_path, docker_client):
    target = load_target(ROOT / "targets" / "reference-fragile")
    by_name = {c.name: c for c in singles(target, 0)}
    cands = [by_name["x-kill-app"], by_name["x-kill-prometheus"]]
    params = Params(window_s=MIN_WINDOW_S, users=MIN_USERS, recovery_s=8.0)
    said: list[str] = []
    with StackRunner(target, "reused", Events()) as runner:
        s = explore(target, budget_s=1800, seed=0, out_dir=tmp_path, run=runner.run, params=params,
                    candidates=cands, confirm=2, say=said.append)
        ups = runner.ups
    log = [json.loads(x) for x in (tmp_path / "candidates.jsonl").read_text().splitlines()]
    assert s.tried == 2, said
    assert [f["what"] for f in s.findings] == ["container.kill app"], said
    f = s.findings[0]
    assert f["reproduced"] == 2 and f["confirmations"] == 2
    assert {"longest_outage"} <= set(f["failed"])      # a 4 s hole against the 3 s bar
    # the other candidate is judged, and a monitoring kill is no finding on the twin
    assert s.candidates[1]["name"] == "x-kill-prometheus" and s.candidates[1]["status"] != "fail", said
    exp = load_experiment(f["file"])
    assert exp.faults[0].action == "container.kill" and exp.faults[0].select.service == "app"
    assert exp.target.root == target.root
    assert exp.load.mode == "open" and exp.load.rate == MIN_USERS * params.open_rate_per_user
    # one stack for every run unless a settle failed (then said in the log)
    assert ups == 1 or any("replac" in x for x in said), said
    # the load probe only after a run that did not vouch for the stack
    assert [x["why"] for x in log] == ["candidate", "candidate", "confirm"], log
    assert log[1]["probed"] is True, log
    if log[1]["status"] == "pass" and log[2]["attempts"] == 1:
        assert log[2]["probed"] is (log[1]["recovered"] is not True), log
    for rid in {x["run_id"] for x in log if x["run_id"]}:
        assert run_objects(docker_client, rid) == (0, 0)
