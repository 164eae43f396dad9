"""harness.loader / schema / plan: experiment files → Experiment, the suite, the plan."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from harness.errors import InputError
from harness.loader import load_experiment, load_experiments
from harness.model import parse_threshold
from harness.schema import experiment_schema
from harness.faults.network import Toxic
from harness.plan import cmd_plan, cmd_schema, cmd_validate, render_plan

CORPUS = Path(__file__).parent / "corpus"
REPO = Path(__file__).resolve().parents[2]
HEAD = f"""apiVersion: continuum/v1
kind: Experiment
description: test
target: {CORPUS / "targets" / "mini"}
load: {{profile: steady, users: 5, spawn_rate: 5, request_timeout: 1500ms}}
slo: {{availability: ">= 99.9%", latency_p99: "<= 800ms", lost_writes: "== 0"}}
"""


def write(tmp_path: Path, body: str, name: str = "e", file: str = "e.yaml") -> Path:
    f = tmp_path / file
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_text(f"name: {name}\n" + HEAD + body)
    return f


def test_full_experiment(tmp_path: Path) -> None:
    exp = load_experiment(write(tmp_path, """duration: 1m
steady_state: {availability: ">= 99%"}
abort_if: {availability_below: "50%", over: 5s}
recovery_window: 2s
min_samples: 10
faults:
  - {at: 10s, action: container.kill, select: {service: api, pick: one, seed: 7}}
  - {name: slow, at: 20s, for: 10s, action: network.latency, link: api->db-1, latency: 300ms, jitter: 50ms, stream: both, toxicity: 0.5}
  - {at: 20s, for: 5s, action: partition, groups: [[db-primary], [db-replicas, sentinel]], direction: one-way}
  - {at: 20s, for: 5s, action: network.slicer, link: web->api, average_size: 1KiB, size_variation: 100, delay: 10us}
  - {at: 20s, for: 5s, action: resource.memory, limit: 64MiB, select: {role: db-primary}}
  - {at: 20s, for: 5s, action: resource.cpu, cpus: 0.5, select: {service: api, pick: percent, percent: 50%}}
  - {at: 20s, for: 5s, action: network.loss, percent: 10, select: {service: db-1}}
  - {at: 20s, for: 5s, action: network.bandwidth, rate: 1MB/s, link: [web->api-1, api->db-2]}
  - {at: 20s, for: 5s, action: network.timeout, timeout: 1s, link: host->web}
  - {at: 20s, for: 5s, action: network.limit_data, bytes: 1024, link: web->api-2}
  - {at: 20s, for: 30s, action: container.rolling_restart, select: {service: api}}
"""))
    assert exp.name == "e" and exp.duration_s == 60.0 and exp.source == (tmp_path / "e.yaml")
    assert exp.target.root == (CORPUS / "targets" / "mini").resolve() and exp.target.name == "mini"
    assert exp.load.request_timeout_s == 1.5 and exp.load.users == 5
    assert exp.recovery_window_s == 2.0 and exp.min_samples == 10
    assert exp.abort_if is not None and exp.abort_if.availability_below == 0.5
    kill, slow, part, slicer, mem, cpu, loss, bw, to, limit, roll = exp.faults
    assert kill.name == "container.kill-1" and kill.for_s is None and kill.select.seed == 7
    assert slow.name == "slow" and slow.links == ("api-db-1",) and slow.end_s == 30.0
    assert slow.toxics == (
        Toxic("latency", (("latency", 300), ("jitter", 50)), "upstream", 0.5),
        Toxic("latency", (("latency", 300), ("jitter", 50)), "downstream", 0.5))
    assert part.groups == (("db-primary",), ("db-replicas", "sentinel")) and part.one_way
    assert slicer.links == ("web-api-1", "web-api-2")
    assert slicer.toxics[0].attributes == (("average_size", 1024), ("size_variation", 100),
                                           ("delay", 10))
    assert mem.limit == 64 * 1024 * 1024 and mem.select.role == "db-primary"
    assert cpu.cpus == 0.5 and cpu.select.percent == 50.0
    assert loss.percent == 10.0
    assert bw.links == ("web-api-1", "api-db-2") and bw.toxics[0].attributes == (("rate", 1000),)
    assert to.links == ("host-web-1", "host-web-2") and to.toxics[0].attributes == (("timeout", 1000),)
    assert limit.toxics[0].attributes == (("bytes", 1024),)
    assert roll.select.pick == "all"
    slo = {a.metric: a for a in exp.slo}
    assert slo["availability"].threshold == 0.999 and slo["latency_p99"].threshold == 0.8
    assert slo["lost_writes"].threshold == 0 and slo["lost_writes"].op == "=="


def test_network_down_has_no_toxics(tmp_path: Path) -> None:
    exp = load_experiment(write(tmp_path, "duration: 20s\nfaults: [{at: 10s, for: 2s, "
                                          "action: network.down, link: host->web-1}]\n"))
    (f,) = exp.faults
    assert f.links == ("host-web-1",) and f.toxics == () and f.end_s == 12.0


@pytest.mark.parametrize("metric,text,op,value", [
    ("availability", ">= 99.9%", ">=", 0.999), ("error_rate", "< 1%", "<", 0.01),
    ("latency_p99", "<= 800ms", "<=", 0.8), ("time_to_recover", "<= 1m", "<=", 60.0),
    ("lost_writes", "== 0", "==", 0.0), ("throughput", ">= 100/s", ">=", 100.0),
    ("duplicate_writes", "== 0", "==", 0.0)])
def test_thresholds(metric: str, text: str, op: str, value: float) -> None:
    a = parse_threshold(metric, text)
    assert (a.op, a.threshold, a.text) == (op, pytest.approx(value), text)


def test_invariant_thresholds() -> None:
    a = parse_threshold("money_conserved", "== 1", invariant=True)
    assert (a.op, a.threshold, a.invariant) == ("==", 1.0, True)
    for bad in ("== 2", ">= 1"):
        with pytest.raises(ValueError, match="invariant of the target"):
            parse_threshold("money_conserved", bad, invariant=True)
    with pytest.raises(ValueError, match="unknown metric"):
        parse_threshold("money_conserved", "== 1")


@pytest.mark.parametrize("metric,text", [("availability", ">= 0.999"), ("availability", ">= 101%"),
                                         ("latency_p99", "<= 800"), ("lost_writes", "== 0.5"),
                                         ("lost_writes", "== 0%"), ("throughput", ">= 100"),
                                         ("duplicate_writes", "== 0.5"), ("availability", "99%")])
def test_bad_thresholds(metric: str, text: str) -> None:
    with pytest.raises(ValueError):
        parse_threshold(metric, text)


def test_slo_range(tmp_path: Path) -> None:
    f = write(tmp_path, "duration: 20s\n").read_text().replace(
        'latency_p99: "<= 800ms"', 'longest_outage: [">= 1500ms", "<= 3s"]')
    (tmp_path / "e.yaml").write_text(f)
    exp = load_experiment(tmp_path / "e.yaml")
    assert [(a.metric, a.op, a.threshold) for a in exp.slo if a.metric == "longest_outage"] == [
        ("longest_outage", ">=", 1.5), ("longest_outage", "<=", 3.0)]


@pytest.mark.parametrize("body,match,where", [
    ("duration: 60s\nfaults: [{at: 10s, action: container.kill, select: {service: api, role: db-primary}}]\n",
     "exactly one of 'service' or 'role'", ":9:"),
    ("duration: 60s\nfaults: [{at: 10s, action: container.kill, select: {service: db-primary}}]\n",
     "is a role", ":9:"),
    ("duration: 60s\nfaults: [{at: 10s, action: container.kill, select: {service: api, count: 2}}]\n",
     "only goes with 'pick: count'", ":9:"),
    ("duration: 60s\nfaults:\n  - {at: 1s, action: container.restart, select: {service: api}}\n"
     "  - {at: 2s, action: container.restart, select: {service: api}, name: x}\n"
     "  - {at: 3s, action: container.restart, select: {service: api}, name: x}\n",
     "already used by faults\\[1\\]", ":12:"),
    ("duration: 60s\nfaults: [{at: 0s, action: container.restart, select: {service: api}}]\n"
     "steady_state: {availability: '>= 99%'}\n", "first fault starts at 0s", ":10:"),
    ("duration: 60s\nfaults: [{at: 1s, for: 1s, action: network.latency, link: web->api, latency: 1.5ms}]\n",
     "whole number of milliseconds", ":9:"),
    ("duration: 60s\nfaults: [{at: 1s, for: 1s, action: resource.memory, limit: 1MiB, select: {service: api}}]\n",
     "minimum of 6MiB", ":9:"),
    ("duration: 60s\nfaults: [{at: 1s, for: 1s, action: container.rolling_restart, select: {role: dbs}}]\n",
     "select a service, not a role", ":9:"),
    ("duration: 7h\n", "longer than the maximum 6h", ":8:"),
    ("duration: 0s\n", "longer than zero", ":8:"),
    ("duration: 60s\nabort_if: {availability_below: '0%', over: 5s}\n", "more than 0%", ":9:"),
    ("duration: 60s\nfaults: [{at: 1s, action: container.pause, select: {service: api}}]\n",
     "missing required field 'for'", ":9:"),
])
def test_semantic_errors(tmp_path: Path, body: str, match: str, where: str) -> None:
    with pytest.raises(InputError, match=match) as info:
        load_experiment(write(tmp_path, body))
    assert f"e.yaml{where}" in str(info.value)


def test_audit_metrics_need_an_audit(tmp_path: Path) -> None:
    tgt = tmp_path / "tgt"
    tgt.mkdir()
    (tgt / "l.py").write_text("")
    (tgt / "compose.yaml").write_text(
        "services:\n  a: {image: 'a:1', ports: ['80']}\nx-continuum:\n"
        "  entrypoints: [{service: a, port: 80}]\n  load: {locustfile: l.py, profiles: [p]}\n")
    f = tmp_path / "e.yaml"
    f.write_text("apiVersion: continuum/v1\nkind: Experiment\nname: e\ndescription: d\n"
                 "target: tgt\nduration: 10s\nload: {profile: p}\nslo: {lost_writes: '== 0'}\n")
    with pytest.raises(InputError, match="declares no x-continuum.durability.read"):
        load_experiment(f)


def test_suite_loading_and_duplicate_names(tmp_path: Path) -> None:
    write(tmp_path, "duration: 10s\n", name="b", file="b.yaml")
    write(tmp_path, "duration: 10s\n", name="a", file="a.yml")
    write(tmp_path, "duration: 10s\n", name="s", file="sub/s.yaml")       # a suite of its own
    write(tmp_path, "duration: 10s\n", name="z", file=".hidden.yaml")
    exps = load_experiments([tmp_path])
    assert [e.name for e in exps] == ["a", "b"]        # sorted by path, folder only, no dotfiles
    assert [e.name for e in load_experiments([tmp_path, tmp_path / "sub"])] == ["a", "b", "s"]
    write(tmp_path, "duration: 10s\n", name="a", file="c.yaml")
    with pytest.raises(InputError, match=r"c\.yaml:1:7: experiment name 'a' is also used by .*a\.yml"):
        load_experiments([tmp_path])
    err = io.StringIO()
    assert cmd_validate([str(tmp_path)], out=io.StringIO(), err=err) == 2
    assert "also used by" in err.getvalue()


def test_empty_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no \\*.yaml"):
        load_experiments([tmp_path])


def test_schema_is_valid_and_closed() -> None:
    schema = experiment_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if node.get("type") == "object" and "properties" in node:
                assert node.get("additionalProperties") is False, sorted(node["properties"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(schema)
    out = io.StringIO()
    assert cmd_schema(out=out) == 0
    assert json.loads(out.getvalue()) == schema


def test_plan_and_validate_output(tmp_path: Path) -> None:
    f = write(tmp_path, "duration: 60s\nsteady_state: {availability: '>= 99%'}\n"
                        "faults: [{at: 20s, for: 10s, action: network.latency, link: web->api-1, latency: 500ms}]\n")
    text = render_plan(load_experiment(f))
    for needle in ("baseline", "network.latency-1", "20s - 30s", "recovery", "30s - 60s",
                   "web-api-1", "latency 500ms", "availability       >= 99.9%"):
        assert needle in text, (needle, text)
    out = io.StringIO()
    assert cmd_plan([str(f)], out=out, err=io.StringIO()) == 0 and "baseline" in out.getvalue()
    out = io.StringIO()
    assert cmd_validate([str(f), str(CORPUS / "targets" / "mini")], out=out) == 0
    assert "ok    e" in out.getvalue() and "ok    target mini" in out.getvalue()
    assert cmd_validate([], err=io.StringIO()) == 2


def test_loading_never_imports_docker() -> None:
    code = (
        "import sys\n"
        "from harness.plan import cmd_validate, cmd_plan, render_plan\n"
        "from harness.loader import load_experiments\n"
        f"load_experiments([{str(CORPUS / 'targets' / 'mini')!r}] and [])\n"
        f"cmd_validate([{str(CORPUS / 'targets' / 'mini')!r}])\n"
        f"cmd_validate([{str(CORPUS / 'experiments')!r}])\n"
        "bad = sorted(m for m in sys.modules if m == 'docker' or m.startswith('docker.')\n"
        "             or m.startswith('harness.stack') or m == 'harness.load' or m.startswith('harness.load.') or m == 'locust'\n"
        "             or m == 'requests' or m.startswith('toxiproxy'))\n"
        "print('IMPORTED', bad)\n"
        "sys.exit(1 if bad else 0)\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                          timeout=60, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0, proc.stdout + proc.stderr


SUITE = REPO / "experiments"
STANDARD = ["app-replica-kill", "app-replica-latency", "lb-kill", "redis-primary-kill",
            "redis-primary-partition", "app-rolling-restart"]


def test_standard_suite_loads() -> None:
    if not (REPO / "targets" / "reference" / "compose.yaml").exists():
        pytest.skip("targets/reference/compose.yaml does not exist yet")
    exps = load_experiments([SUITE])  # the folder is the standard suite, subfolders are not
    assert sorted(e.name for e in exps) == sorted(STANDARD)
    for e in exps:
        assert 60.0 <= e.duration_s <= 90.0 and e.slo and e.abort_if is not None
        assert all(f.end_s <= e.duration_s for f in e.faults)
        assert "Traceback" not in render_plan(e)
    by = {e.name: e for e in exps}
    assert by["app-replica-latency"].faults[0].links == ("lb-app-1",)
    assert by["redis-primary-partition"].faults[0].groups == (
        ("redis-primary",), ("redis-replicas", "sentinel"))
    assert by["app-rolling-restart"].faults[0].action == "container.rolling_restart"


def test_calibration_suite_loads() -> None:
    if not (REPO / "targets" / "echo" / "compose.yaml").exists():
        pytest.skip("targets/echo/compose.yaml does not exist yet")
    (exp,) = load_experiments([SUITE / "calibration" / "link-down-2s.yaml"])
    (f,) = exp.faults
    assert (f.action, f.at_s, f.for_s, exp.duration_s) == ("network.down", 10.0, 2.0, 20.0)
    assert f.links == ("host-web",) and exp.load.profile == "echo"


def test_target_override_rechecks_the_experiment_against_the_new_target() -> None:
    if not (REPO / "targets" / "reference-fragile" / "compose.yaml").exists():
        pytest.skip("targets/reference-fragile is missing")
    (exp,) = load_experiments([SUITE / "app-replica-kill.yaml"], target=REPO / "targets" / "reference-fragile")
    assert exp.target.root == (REPO / "targets" / "reference-fragile").resolve()
    # the twin has a single `app` instance: a link to app-1 no longer exists, and says where
    with pytest.raises(InputError, match=r"app-replica-latency\.yaml:\d+:\d+: link 'lb->app-1'"):
        load_experiments([SUITE / "app-replica-latency.yaml"], target=REPO / "targets" / "reference-fragile")


def test_assertion_keys_name_an_operation_and_a_phase(tmp_path: Path) -> None:
    f = write(tmp_path, """duration: 60s
faults: [{name: slow-api, at: 20s, for: 10s, action: network.latency, link: web->api-1, latency: 500ms}]
steady_state: {transfer.availability@recovery: ">= 99%"}
""")
    text = f.read_text().replace('slo: {availability: ">= 99.9%", latency_p99: "<= 800ms", lost_writes: "== 0"}', '''slo:
  availability: ">= 99.9%"
  transfer.longest_outage: "<= 5s"
  "GET /a.b.latency_p99": "<= 1s"
  latency_p50@slow-api: "<= 250ms"
  time_to_recover@slow-api: "<= 5s"
  throughput@slow-api: ">= 100/s"''')
    f.write_text(text)
    exp = load_experiment(f)
    got = [(a.operation, a.metric, a.phase, a.key) for a in exp.slo]
    assert got == [(None, "availability", None, "availability"),
                   ("transfer", "longest_outage", None, "transfer.longest_outage"),
                   ("GET /a.b", "latency_p99", None, "GET /a.b.latency_p99"),
                   (None, "latency_p50", "slow-api", "latency_p50@slow-api"),
                   (None, "time_to_recover", "slow-api", "time_to_recover@slow-api"),
                   (None, "throughput", "slow-api", "throughput@slow-api")]
    [steady] = exp.steady_state
    assert (steady.operation, steady.phase) == ("transfer", "recovery")
    # the file's own text travels with the experiment (reports show it as written)
    assert exp.source_text == text
    assert exp.config()["slo"][1] == {"metric": "longest_outage", "op": "<=", "threshold": 5.0, "text": "<= 5s",
                                      "operation": "transfer"}
    schema = experiment_schema()
    jsonschema.validate({"apiVersion": "continuum/v1", "kind": "Experiment", "name": "e", "description": "d",
                         "target": "t", "duration": "1m", "load": {"profile": "p", "mode": "open", "rate": "200/s"},
                         "slo": {"transfer.longest_outage@slow-api": "<= 5s"}}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"apiVersion": "continuum/v1", "kind": "Experiment", "name": "e", "description": "d",
                             "target": "t", "duration": "1m", "load": {"profile": "p"},
                             "slo": {"transfer.latncy": "<= 5s"}}, schema)


@pytest.mark.parametrize("slo,match", [
    ('{transfer.latncy_p99: "<= 1s"}', "unknown metric 'latncy_p99'"),
    ('{availability@nowhere: ">= 99%"}', "no fault has that name; the phase after '@' is one of: baseline, recovery, slow-api"),
    ('{lost_writes@slow-api: "== 0"}', "takes no operation or phase"),
    ('{time_to_recover@recovery: "<= 5s"}', "name a fault after '@'"),
])
def test_bad_assertion_keys_point_at_the_key(tmp_path: Path, slo: str, match: str) -> None:
    f = write(tmp_path, "duration: 60s\nfaults: [{name: slow-api, at: 20s, for: 10s, action: network.latency, "
                        "link: web->api-1, latency: 500ms}]\n")
    f.write_text(f.read_text().replace('slo: {availability: ">= 99.9%", latency_p99: "<= 800ms", lost_writes: "== 0"}',
                                       f"slo: {slo}"))
    with pytest.raises(InputError, match=match) as info:
        load_experiment(f)
    assert "e.yaml:7:" in str(info.value)


def test_steady_state_may_only_name_a_steady_phase(tmp_path: Path) -> None:
    f = write(tmp_path, "duration: 60s\nfaults: [{name: slow-api, at: 20s, for: 10s, action: network.latency, "
                        "link: web->api-1, latency: 500ms}]\nsteady_state: {availability@slow-api: '>= 99%'}\n")
    with pytest.raises(InputError, match="steady state is checked on the baseline and the recovery only") as info:
        load_experiment(f)
    assert "e.yaml:10:" in str(info.value)


@pytest.mark.parametrize("load,match,where", [
    ("{profile: steady, mode: open}", "give one, e.g. rate: 200/s", ":6:"),
    ("{profile: steady, rate: 200/s}", "rate is for open mode", ":6:"),
    ("{profile: steady, mode: open, rate: 200}", "requests per second such as \\\"200/s\\\"", ":6:"),
    ("{profile: steady, mode: open, rate: 0/s}", "more than 0/s", ":6:"),
    ("{profile: steady, mode: batch}", "closed", ":6:"),
])
def test_load_modes(tmp_path: Path, load: str, match: str, where: str) -> None:
    f = write(tmp_path, "duration: 60s\n")
    f.write_text(f.read_text().replace("load: {profile: steady, users: 5, spawn_rate: 5, request_timeout: 1500ms}",
                                       f"load: {load}"))
    with pytest.raises(InputError, match=match) as info:
        load_experiment(f)
    assert f"e.yaml{where}" in str(info.value)


def test_open_load_loads_and_plans(tmp_path: Path) -> None:
    f = write(tmp_path, "duration: 60s\n")
    f.write_text(f.read_text().replace("load: {profile: steady, users: 5, spawn_rate: 5, request_timeout: 1500ms}",
                                       "load: {profile: steady, mode: open, rate: 250/s, users: 100, spawn_rate: 250}"))
    exp = load_experiment(f)
    assert (exp.load.mode, exp.load.rate, exp.load.users) == ("open", 250.0, 100)
    assert "open loop, 250 requests/s due, at most 100 in flight" in render_plan(exp)
