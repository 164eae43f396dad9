"""service.upgrade on a fake backend, its validation and plan line, and the version
measurements (mixed-version window, failed_requests) with known answers."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from harness.errors import FaultError, InputError
from harness.faults import FaultContext, build
from harness.load.worker import Recorder
from harness.loader import load_experiment
from harness.measure.verdict import evaluate
from harness.measure.versions import mixed_window, summarize
from harness.model import parse_threshold
from harness.model.assertions import parse_key
from harness.model.record import Phase, RunRecord, Sample, VersionRecord
from harness.model.target import NetworkSpec, ServiceSpec, Target
from harness.plan import render_plan

CORPUS = Path(__file__).parent / "corpus"
HEAD = f"""apiVersion: continuum/v1
kind: Experiment
name: e
description: test
target: {CORPUS / "targets" / "mini"}
load: {{profile: steady, users: 5, spawn_rate: 5, request_timeout: 1500ms}}
duration: 60s
"""
TARGET = Target(
    name="fake", root=Path("/nonexistent"),
    services=(ServiceSpec(name="app", image="img", networks=("n",), deploy={"replicas": 3},
                          stop_grace_period="2s"),),
    networks=(NetworkSpec(name="n"),),
)


def write(tmp_path: Path, body: str) -> Path:
    f = tmp_path / "e.yaml"
    f.write_text(HEAD + body + ("" if "slo:" in body else 'slo: {availability: ">= 99.9%"}\n'))
    return f


# ─────────────────────────────── validation and plan ───────────────────────────────


def test_an_upgrade_loads_and_plans(tmp_path: Path) -> None:
    exp = load_experiment(write(tmp_path, "faults:\n  - {name: up, at: 10s, for: 30s, action: service.upgrade, "
                                          "service: api, image: 'mini-api:2', strategy: blue-green, "
                                          "healthy_timeout: 20s}\n"
                                          "slo: {failed_requests@up: '== 0', mixed_version_window: '<= 5s'}\n"))
    f = exp.faults[0]
    assert (f.service, f.image, f.strategy, f.for_s, f.healthy_s, f.drain_s) == \
        ("api", "mini-api:2", "blue-green", 30.0, 20.0, None)
    plan = render_plan(exp)
    assert "service.upgrade: api → mini-api:2, blue-green" in plan
    assert "mixed_version_window <= 5s" in plan


@pytest.mark.parametrize("fault, match, where", [
    ("{at: 1s, for: 30s, action: service.upgrade, service: nope, image: 'x:2'}", "unknown service 'nope'", ":9:"),
    ("{at: 1s, for: 30s, action: service.upgrade, service: api-1, image: 'x:2'}", "an instance: upgrades replace a whole service", ":9:"),
    ("{at: 1s, for: 30s, action: service.upgrade, service: api, image: 'Bad Image'}", "image", ":9:"),
    ("{at: 1s, for: 30s, action: service.upgrade, service: api, image: 'x:2', strategy: canary}", "rolling", ":9:"),
    ("{at: 1s, action: service.upgrade, service: api, image: 'x:2'}", "missing required field 'for'", ":9:"),
    ("{at: 1s, for: 10s, action: service.upgrade, service: api, image: 'x:2', drain_timeout: 6s}",
     "cannot hold 2 drain\\(s\\) of 6s \\(rolling\\); give at least 12s", ":9:"),
    ("{at: 1s, for: 10s, action: service.upgrade, service: api, image: 'x:2', drain_timeout: 4s}",
     "shorter than api's stop_grace_period", ":9:"),
    ("{at: 1s, for: 40s, action: service.upgrade, service: api, image: 'x:2', drain_timeout: 1s, healthy_timeout: 11m}",
     "longer than the maximum 10m", ":9:"),
])
def test_bad_upgrades_say_where(tmp_path: Path, fault: str, match: str, where: str) -> None:
    with pytest.raises(InputError, match=match) as info:
        load_experiment(write(tmp_path, f"faults:\n  - {fault}\n"))
    assert f"e.yaml{where}" in str(info.value)


def test_drain_shorter_than_the_grace_period_is_refused() -> None:
    with pytest.raises(InputError, match="shorter than app's stop_grace_period"):
        build("service.upgrade", {"service": "app", "image": "img:2", "for": "30s", "drain_timeout": "1s"}, TARGET)


def test_version_metrics_take_no_phase() -> None:
    assert parse_key("failed_requests@up") == (None, "failed_requests", "up")
    assert parse_key("transfer.failed_requests") == ("transfer", "failed_requests", None)
    with pytest.raises(ValueError, match="whole run"):
        parse_key("mixed_version_window@up")
    assert parse_threshold("mixed_version_window", "<= 2500ms").threshold == 2.5
    assert parse_threshold("failed_requests", "== 0").threshold == 0


# ─────────────────────────────── the fake backend ───────────────────────────────


class FakeInstance:
    def __init__(self, name, log, healthy=True):
        self.name, self.log, self.healthy = name, log, healthy

    def wait_healthy(self, timeout_s):
        self.log.append(("healthy?", self.name))
        if not self.healthy:
            raise FaultError(f"{self.name} not healthy {timeout_s:.0f} s after restart")


class FakeStack:
    def __init__(self, log, bad_green=None, image=True):
        self.target, self.run_id, self.toxiproxy = TARGET, "rtest", None
        self.log, self.bad_green, self.image = log, bad_green, image

    def image_present(self, image):
        return self.image

    def instance(self, name):
        return FakeInstance(name, self.log)

    def replace_instance(self, name, image, grace_s):
        self.log.append(("replace", name, image, grace_s))

    def add_green(self, name, image):
        self.log.append(("green", name, image))
        return FakeInstance(name + "-green", self.log, healthy=name != self.bad_green)

    def switch_to_green(self, name):
        self.log.append(("switch", name))
        return time.monotonic()

    def retire_blue(self, name, grace_s):
        self.log.append(("retire", name, grace_s))

    def remove_green(self, name):
        self.log.append(("remove-green", name))

    def log_tail(self, name):
        return f"(log of {name})"


def upgrade(strategy, **kw):
    return build("service.upgrade", {"service": "app", "image": "img:2", "for": "60s",
                                     "strategy": strategy, **kw}, TARGET)


def test_rolling_goes_one_instance_at_a_time() -> None:
    log: list = []
    inj = upgrade("rolling").inject(FaultContext(stack=FakeStack(log), run_id="rtest"))
    detail = inj.revert()
    assert log == [("replace", "app-1", "img:2", 2.0), ("healthy?", "app-1"),
                   ("replace", "app-2", "img:2", 2.0), ("healthy?", "app-2"),
                   ("replace", "app-3", "img:2", 2.0), ("healthy?", "app-3")]
    assert "app-3 healthy" in detail


def test_blue_green_switches_only_when_every_green_is_healthy(monkeypatch) -> None:
    monkeypatch.setattr("harness.faults.upgrade.SWITCH_HOLD_S", 0.0)
    log: list = []
    inj = upgrade("blue-green", drain_timeout="3s").inject(FaultContext(stack=FakeStack(log), run_id="rtest"))
    inj.revert()
    assert sorted(log[:3]) == [("green", f"app-{i}", "img:2") for i in (1, 2, 3)]     # in parallel
    assert log[3:6] == [("healthy?", f"app-{i}-green") for i in (1, 2, 3)]
    assert log[6:9] == [("switch", f"app-{i}") for i in (1, 2, 3)]
    assert sorted(log[9:]) == [("retire", f"app-{i}", 3.0) for i in (1, 2, 3)]


def test_a_green_that_never_gets_healthy_leaves_blue_serving() -> None:
    log: list = []
    inj = upgrade("blue-green").inject(FaultContext(stack=FakeStack(log, bad_green="app-2"), run_id="rtest"))
    with pytest.raises(FaultError, match="app-2-green not healthy .*log of app-2-green"):
        inj.revert()
    assert not any(e[0] in ("switch", "retire") for e in log)
    assert [e for e in log if e[0] == "remove-green"] == [("remove-green", f"app-{i}") for i in (1, 2, 3)]


def test_a_missing_image_is_a_harness_error_before_anything_changes() -> None:
    log: list = []
    with pytest.raises(FaultError, match="not present on the engine"):
        upgrade("rolling").inject(FaultContext(stack=FakeStack(log, image=False), run_id="rtest"))
    assert log == []


# ─────────────────────────────── versions: known answers ───────────────────────────────


def test_mixed_window_known_answers() -> None:
    assert mixed_window([(0, 10), (5, 20)]) == (5.0, 5, 10)          # v1 until 10, v2 from 5
    assert mixed_window([(0, 5), (6, 9)]) == (0.0, None, None)       # a clean switch
    assert mixed_window([(0, 10), (2, 3), (4, 12)]) == (7.0, 2, 10)  # union of the overlaps
    assert mixed_window([(0, 10)]) == (0.0, None, None)


def test_summary_from_records() -> None:
    recs = [VersionRecord(100 + t, v, ok) for t, v, ok in
            [(0.5, "1", True), (3.2, "1", True), (2.0, "2", True), (4.9, "1", False), (6.0, "2", True)]]
    s = summarize(recs, 100.0, 110.0)
    assert s.versions == ("1", "2")
    one, two = s.spans
    assert (one.first_s, one.last_s, one.answers, one.failed) == (0.5, pytest.approx(4.9), 3, 1)
    assert (two.first_s, two.last_s, two.answers) == (2.0, 6.0, 2)
    assert s.mixed_window_s == pytest.approx(2.9) and s.mixed_start_s == 2.0
    assert [(st.t_s, st.counts) for st in s.steps] == [
        (0.0, (("1", 1),)), (2.0, (("2", 1),)), (3.0, (("1", 1),)), (4.0, (("1", 1),)), (6.0, (("2", 1),))]
    assert summarize([], 0, 10) is None


def test_recorder_ships_the_answering_version() -> None:
    rec = Recorder()
    rec.on_request(response_time=10.0, name="balance", context={"version": "2"})
    rec.on_request(response_time=10.0, name="balance", exception=OSError("x"), context={"version": "1"})
    rec.on_request(response_time=10.0, name="balance", context={})
    batch = rec.take_batch()
    names = [""] + batch["n"]
    assert [(names[v], ok) for _, v, ok in batch["v"]] == [("2", 1), ("1", 0)]


def _record(tmp_path: Path, versions) -> RunRecord:
    exp = load_experiment(write(tmp_path, "faults:\n  - {name: up, at: 10s, for: 30s, action: service.upgrade, "
                                          "service: api, image: 'mini-api:2'}\nmin_samples: 1\n"
                                          "slo: {failed_requests@up: '== 0', failed_requests: '<= 1', "
                                          "mixed_version_window: '<= 5s'}\n"))
    samples = tuple(Sample(float(t), 0.01, t != 20) for t in range(0, 60))
    phases = (Phase("baseline", 0, 10), Phase("fault:up", 10, 40), Phase("recovery", 45, 60))
    return RunRecord(experiment=exp, run_id="r", started_at="-", t0=0.0, t_end=60.0, samples=samples,
                     phases=phases, faults=(), versions=versions)


def test_verdict_judges_failed_requests_and_the_window(tmp_path: Path) -> None:
    versions = tuple(VersionRecord(float(t), "1" if t < 30 else "2", True) for t in range(0, 60)) + \
        (VersionRecord(33.0, "1", True),)
    r = evaluate(_record(tmp_path, versions))
    got = {a.key: (a.measured, a.passed) for a in r.assertions if a.kind == "slo"}
    assert got["failed_requests@up"] == (1.0, False)        # the one failure at t=20 is in the window
    assert got["failed_requests"] == (1.0, True)
    assert got["mixed_version_window"] == (3.0, True)       # first v2 at 30, last v1 at 33
    assert r.versions.versions == ("1", "2")


def test_a_window_over_nothing_is_unknown(tmp_path: Path) -> None:
    r = evaluate(_record(tmp_path, ()))
    (a,) = [a for a in r.assertions if a.key == "mixed_version_window"]
    assert a.passed is None and "no request said which version" in a.message
    assert r.verdict.value in ("FAIL", "INCONCLUSIVE")


def test_results_and_report_show_the_versions(tmp_path: Path) -> None:
    from harness.report.html import render_html
    from harness.report.results import load_results, run_to_json, write_results

    versions = tuple(VersionRecord(float(t), "1" if t < 30 else "2", True) for t in range(0, 60)) + \
        (VersionRecord(33.0, "1", False),)
    run = run_to_json(evaluate(_record(tmp_path, versions)))
    v = run["versions"]
    assert v["versions"] == ["1", "2"] and v["mixed_window_s"] == 3.0
    assert v["spans"][0] == {"version": "1", "first_s": 0.0, "last_s": 33.0, "answers": 31, "failed": 1}
    assert sum(v["counts"]["1"]) == 31 and sum(v["counts"]["2"]) == 30
    write_results([evaluate(_record(tmp_path, versions))], tmp_path / "results.json")
    doc = load_results(tmp_path / "results.json")        # read back = validated
    assert doc["runs"][0]["versions"] == v
    html = render_html(doc, None)
    assert "Mixed-version window: <b>3.00 s</b>" in html and 'id="versions-0"' in html
    assert run_to_json(evaluate(_record(tmp_path, ())))["versions"] is None
