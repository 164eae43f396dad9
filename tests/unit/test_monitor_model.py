"""Probes, detection metrics and x-continuum.monitoring as a file writes them: parsed once, errors at
their file:line:column."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness.errors import InputError
from harness.loader import load_experiment, load_target
from harness.model.probes import CmdProbe, HttpProbe, PromqlProbe

REPO = Path(__file__).resolve().parents[2]
REFERENCE = REPO / "targets" / "reference"
ECHO = REPO / "targets" / "echo"


def write(tmp_path: Path, body: str, target: Path = REFERENCE, slo: str = 'availability: ">= 99%"') -> Path:
    f = tmp_path / "e.yaml"
    f.write_text(f"""apiVersion: continuum/v1
kind: Experiment
name: e
description: test
target: {target}
duration: 30s
load: {{profile: {"ledger" if target == REFERENCE else "echo"}, users: 5}}
faults:
  - {{name: kill, at: 10s, for: 5s, action: container.kill, select: {{service: {"app" if target == REFERENCE else "web"}}}}}
slo: {{{slo}}}
""" + body)
    return f


def test_the_three_kinds_with_their_defaults(tmp_path: Path) -> None:
    exp = load_experiment(write(tmp_path, """probes:
  - {name: up, as: steady_state, promql: 'sum(up{job="app"})', value: "== 3"}
  - {name: lb, as: slo, mode: during_fault, interval: 500ms, timeout: 1s, http: {service: lb, port: 8080, path: /healthz}}
  - {name: ping, as: abort_if, cmd: [redis-cli, ping], in: redis-1, output_contains: PONG}
"""))
    up, lb, ping = exp.probes
    assert isinstance(up, PromqlProbe) and up.mode == "edge" and up.value.op == "==" and up.value.threshold == 3
    assert up.interval_s == 1.0 and up.timeout_s == 2.0 and up.use == "steady_state"
    assert isinstance(lb, HttpProbe) and lb.mode == "during_fault" and lb.interval_s == 0.5 and lb.status == 200
    assert lb.http.port == 8080 and lb.http.path == "/healthz"
    assert isinstance(ping, CmdProbe) and ping.mode == "continuous" and ping.cmd == ("redis-cli", "ping")
    assert ping.in_ == "redis-1" and ping.exit_code == 0
    assert up.check_text() == "value == 3" and "GET lb:8080/healthz" in lb.describe()
    # The experiment's config (reports) keeps the file's spelling.
    assert exp.config()["probes"][2]["as"] == "abort_if"


@pytest.mark.parametrize("body, where, words", [
    ("probes:\n  - {name: x, as: slo, value: '== 1'}\n", "12:5", "exactly one of promql, http or cmd (this one has none)"),
    ("probes:\n  - {name: x, as: slo, promql: up, cmd: [/bin/true], in: app, value: '== 1'}\n", "12:5",
     "this one has promql and cmd"),
    ("probes:\n  - {name: x, as: slo, promql: up, value: '~ 1'}\n", "12:43", "is not a comparison"),
    ("probes:\n  - {name: x, as: slo, promql: up, value: '<= 5ms'}\n", "12:43", "PromQL values have no unit"),
    ("probes:\n  - {name: x, as: abort_if, mode: end, promql: up, value: '== 1'}\n", "12:35",
     "cannot run in mode 'end'; allowed: continuous, during_fault"),
    ("probes:\n  - {name: x, as: steady_state, mode: during_fault, promql: up, value: '== 1'}\n", "12:39",
     "allowed: start, end, edge, continuous"),
    ("probes:\n  - {name: x, as: maybe, promql: up, value: '== 1'}\n", "12:19", "'steady_state', 'slo' or 'abort_if'"),
    ("probes:\n  - {name: x, as: slo, interval: 10ms, promql: up, value: '== 1'}\n", "12:34", "minimum 100ms"),
    ("probes:\n  - {name: x, as: slo, timeout: 1m, promql: up, value: '== 1'}\n", "12:33", "maximum 30s"),
    ("probes:\n  - {name: x, as: slo, http: {service: nope, port: 8080}}\n", "12:40", "not a service or instance"),
    ("probes:\n  - {name: x, as: slo, http: {service: app, port: 8080}}\n", "12:51", "does not publish container port 8080"),
    ("probes:\n  - {name: x, as: slo, cmd: [/bin/true], in: nope}\n", "12:46", "not a service or instance"),
    ("probes:\n  - {name: x, as: slo, cmd: [], in: app}\n", "12:29", "at least 1"),
    ("probes:\n  - {name: x, as: slo, promql: up, value: '== 1'}\n  - {name: x, as: slo, promql: up, value: '== 1'}\n",
     "13:12", "already used by probes[0]"),
    ("probes:\n  - {name: x, as: slo, promql: up, value: '== 1', colour: red}\n", "12:51", "unknown field 'colour'"),
])
def test_bad_probes_are_placed(tmp_path: Path, body: str, where: str, words: str) -> None:
    with pytest.raises(InputError) as e:
        load_experiment(write(tmp_path, body))
    assert f"e.yaml:{where}:" in str(e.value) and words in str(e.value)


def test_promql_and_detection_need_the_targets_monitoring(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="declares no x-continuum.monitoring"):
        load_experiment(write(tmp_path, "probes:\n  - {name: x, as: slo, promql: up, value: '== 1'}\n", ECHO))
    with pytest.raises(InputError, match="read from the target's Alertmanager") as e:
        load_experiment(write(tmp_path, "", ECHO, slo='time_to_detect: "<= 5s"'))
    assert "e.yaml:10:7:" in str(e.value)
    # An echo target can still use http and cmd probes.
    exp = load_experiment(write(tmp_path, "probes:\n  - {name: x, as: slo, cmd: [/bin/true], in: web}\n", ECHO))
    assert exp.probes[0].in_ == "web"


def test_detection_metrics_parse_with_their_units(tmp_path: Path) -> None:
    exp = load_experiment(write(tmp_path, "", slo='time_to_detect: "<= 6s", time_to_resolve_alert: "<= 1m", '
                                                 'alerts_without_fault: "== 0"'))
    got = {a.metric: a.threshold for a in exp.slo}
    assert got == {"time_to_detect": 6.0, "time_to_resolve_alert": 60.0, "alerts_without_fault": 0.0}
    with pytest.raises(InputError, match="is a time: give a unit"):
        load_experiment(write(tmp_path, "", slo='time_to_detect: "<= 6"'))
    with pytest.raises(InputError, match="put it under slo"):
        load_experiment(write(tmp_path, 'steady_state: {alerts_without_fault: "== 0"}\n'))


def test_steady_state_probe_needs_a_baseline(tmp_path: Path) -> None:
    f = write(tmp_path, "probes:\n  - {name: x, as: steady_state, promql: up, value: '== 1'}\n")
    f.write_text(f.read_text().replace("at: 10s", "at: 0s"))
    with pytest.raises(InputError, match="steady_state probe is checked on the baseline"):
        load_experiment(f)


def test_targets_monitoring_is_checked_against_its_services(tmp_path: Path) -> None:
    assert load_target(REFERENCE).monitoring.prometheus.port == 9090
    copy = tmp_path / "ref"
    shutil.copytree(REFERENCE, copy, ignore=shutil.ignore_patterns("app", "lb", "redis", "monitoring"))
    for d in ("app", "lb", "redis", "monitoring"):
        (copy / d).mkdir()
        (copy / d / "Dockerfile").write_text("FROM scratch\n")
    compose = copy / "compose.yaml"
    text = compose.read_text()
    for old, new, words in [
        ("alertmanager: {service: alertmanager, port: 9093}", "alertmanager: {service: alertmanager, port: 9094}",
         "does not publish container port 9094"),
        ("prometheus: {service: prometheus, port: 9090}", "prometheus: {service: nobody, port: 9090}",
         "prometheus service 'nobody' is not a service"),
        ("prometheus: {service: prometheus, port: 9090}", "prometheus: {service: app, port: 9090}",
         "has 3 replicas"),
    ]:
        compose.write_text(text.replace(old, new))
        with pytest.raises(InputError, match=words) as e:
            load_target(copy)
        assert "compose.yaml:" in str(e.value)


def test_monitoring_suites_load_and_fit_the_json_schema() -> None:
    import jsonschema
    import yaml

    from harness.loader import load_experiments
    from harness.schema import experiment_schema

    suite = REPO / "experiments" / "monitoring"
    ref = load_experiments([suite])
    assert sorted(e.name for e in ref) == ["app-replica-kill-detected", "lb-kill-detected",
                                           "redis-primary-kill-detected"]
    fragile = load_experiments([suite / "fragile"])
    assert {e.target.name for e in fragile} == {"reference-fragile"}
    (abort,) = load_experiments([suite / "abort"])
    assert [p.use for p in abort.probes] == ["abort_if"]
    for e in [*ref, *fragile, abort]:
        assert any(a.metric == "time_to_detect" for a in e.slo) or e is abort
        doc = yaml.safe_load(e.source.read_text())
        jsonschema.validate(doc, experiment_schema())
