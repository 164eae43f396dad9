"""`continuum run` as users and CI call it: a subprocess on short experiments against the echo
target, judged by its exit code, its four report files and what it leaves on the engine.

Every check on the engine is scoped to the run id read from the run's own journal (others may
share the engine), except the bad-input case, which has no run id and is checked through the
engine's event stream: no container may be created by that process at all.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.helpers import FIXTURES, ROOT, continuum, run_objects, wait_gone

pytestmark = [pytest.mark.docker, pytest.mark.slow]

EXP = FIXTURES / "experiments"
REPORT_FILES = ("junit.xml", "results.json", "journal.jsonl", "report.html")


def journal(report_dir: Path) -> list[dict]:
    """The journal's events; a torn last line (the writer was killed mid-write) is skipped."""
    path = report_dir / "latest" / "journal.jsonl"
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            pass
    return out


def events(report_dir: Path, name: str) -> list[dict]:
    return [e for e in journal(report_dir) if e.get("event") == name]


def start(*args: str) -> tuple[subprocess.Popen, Path]:
    """`continuum ARGS` in the background, output to a file (no pipe to fill up)."""
    log = Path(args[args.index("--report-dir") + 1]).with_suffix(".log")
    log.parent.mkdir(parents=True, exist_ok=True)
    fh = log.open("w")
    proc = subprocess.Popen([sys.executable, "-m", "harness", *args], stdout=fh, stderr=subprocess.STDOUT, cwd=ROOT)
    fh.close()
    return proc, log


def wait_for_event(proc: subprocess.Popen, report_dir: Path, name: str, timeout_s: float = 90) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = events(report_dir, name)
        if found:
            return found[0]
        if proc.poll() is not None:
            raise AssertionError(f"continuum exited {proc.returncode} before {name}")
        time.sleep(0.1)
    raise AssertionError(f"no {name} in the journal after {timeout_s} s")


def check_reports(report_dir: Path, verdict: str) -> dict:
    """All four files exist (in the run's own folder, which `latest` names) and parse; returns
    results.json."""
    report_dir = report_dir / "latest"
    for name in REPORT_FILES:
        assert (report_dir / name).is_file(), f"{name} missing"
    suites = ET.parse(report_dir / "junit.xml").getroot()
    assert suites.tag == "testsuites"
    props = {p.get("name"): p.get("value") for p in suites.iter("property")}
    assert props["verdict"] == verdict
    doc = json.loads((report_dir / "results.json").read_text())
    assert [r["verdict"] for r in doc["runs"]] == [verdict]
    lines = (report_dir / "journal.jsonl").read_text().splitlines()
    assert lines and all(isinstance(json.loads(line), dict) for line in lines)
    html = (report_dir / "report.html").read_text()
    assert html.lstrip().lower().startswith("<!doctype html") and doc["runs"][0]["experiment"] in html
    return doc


def test_pass_exits_0_with_four_reports(tmp_path, docker_client):
    out = tmp_path / "pass"
    r = continuum("run", str(EXP / "echo-pass.yaml"), "--report-dir", str(out), timeout=180)
    assert r.returncode == 0, r.stdout + r.stderr
    doc = check_reports(out, "PASS")
    run = doc["runs"][0]
    assert run["exit_code"] == 0 and run["phases"][0]["requests"] >= 50
    suites = ET.parse(out / "latest" / "junit.xml").getroot()
    assert suites.get("failures") == "0" and suites.get("errors") == "0"
    assert run_objects(docker_client, run["run_id"]) == (0, 0)


def test_slo_miss_exits_1_with_failure_in_junit(tmp_path, docker_client):
    out = tmp_path / "fail"
    r = continuum("run", str(EXP / "echo-fail.yaml"), "--report-dir", str(out), timeout=180)
    assert r.returncode == 1, r.stdout + r.stderr
    doc = check_reports(out, "FAIL")
    failures = [f.get("message") for f in ET.parse(out / "latest" / "junit.xml").getroot().iter("failure")]
    assert any("availability" in m and "99.9%" in m for m in failures), failures
    assert [e["fault"] for e in events(out, "fault_reverted")] == ["link-down"]
    assert run_objects(docker_client, doc["runs"][0]["run_id"]) == (0, 0)


def test_too_few_samples_exits_4(tmp_path, docker_client):
    out = tmp_path / "inconclusive"
    r = continuum("run", str(EXP / "echo-inconclusive.yaml"), "--report-dir", str(out), timeout=180)
    assert r.returncode == 4, r.stdout + r.stderr
    doc = check_reports(out, "INCONCLUSIVE")
    assert any("min_samples" in reason for reason in doc["runs"][0]["reasons"])
    skipped = list(ET.parse(out / "latest" / "junit.xml").getroot().iter("skipped"))
    assert skipped, "an unjudged run is <skipped> in junit.xml, never a pass"


def test_bad_file_exits_2_with_location_and_no_container(tmp_path, docker_client):
    since = int(time.time()) - 1
    proc = subprocess.Popen([sys.executable, "-m", "harness", "run", str(EXP / "bad" / "syntax.yaml"),
                             "--report-dir", str(tmp_path / "bad")], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT)
    stdout, stderr = proc.communicate(timeout=60)
    until = int(time.time()) + 1
    assert proc.returncode == 2
    assert "syntax.yaml:8:1" in stderr and "bogus_field" in stderr
    assert "Traceback" not in stderr + stdout
    assert not (tmp_path / "bad").exists(), "nothing may be written for bad input"
    # The engine's own record: no container (not even a lease) was created in that interval by
    # this process, whose pid is in the owner label of everything it would have made.
    created = [
        e for e in docker_client.events(since=since, until=until, decode=True,
                                        filters={"type": "container", "event": "create",
                                                 "label": "io.continuum.run-id"})
        if f":{proc.pid}:" in e["Actor"]["Attributes"].get("io.continuum.owner", "")
    ]
    assert created == [], created


def test_bad_image_flag_exits_2_before_any_container(tmp_path):
    for value in ("web=", "web", "nosuch=continuum/echo-web:latest"):
        r = continuum("run", str(EXP / "echo-pass.yaml"), "--image", value, "--report-dir", str(tmp_path / "img"),
                      timeout=60)
        assert r.returncode == 2, (value, r.stderr)
        assert "--image" in r.stderr and "Traceback" not in r.stderr
        assert not (tmp_path / "img").exists(), value


def test_sigint_mid_fault_reverts_and_exits_130(tmp_path, docker_client):
    out = tmp_path / "sigint"
    proc, log = start("run", str(EXP / "echo-long-fault.yaml"), "--report-dir", str(out))
    try:
        run_id = wait_for_event(proc, out, "run_start")["run_id"]
        wait_for_event(proc, out, "fault_injected")
        proc.send_signal(signal.SIGINT)
        rc = proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert rc == 130, log.read_text()
    reverted = events(out, "fault_reverted")
    assert [e["fault"] for e in reverted] == ["link-down"] and reverted[0]["confirmed"] is True
    names = [e["event"] for e in journal(out)]
    assert names.index("fault_injected") < names.index("fault_reverted")
    assert "Traceback" not in log.read_text()
    assert run_objects(docker_client, run_id) == (0, 0)
    doc = json.loads((out / "latest" / "results.json").read_text())
    assert doc["runs"][0]["interrupted"] is True and doc["runs"][0]["verdict"] == "ERROR"


def sigkill_and_wait_gone(proc, docker_client, run_id: str, what: str, within_s: float = 15) -> float:
    """SIGKILL the harness and wait until the run's containers and networks are gone; returns
    how long that took after the kill."""
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    took = wait_gone(docker_client, run_id, within_s)
    print(f"\nSIGKILL {what} → run {run_id} gone in {took if took is None else round(took, 2)} s")
    assert took is not None, f"run {run_id} still has {run_objects(docker_client, run_id)} objects after {within_s:.0f} s"
    return took


def poll_until(ready, timeout_s: float, why: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not ready():
        if time.monotonic() > deadline:
            raise AssertionError(why())
        time.sleep(0.05)


def test_sigkill_mid_fault_reaper_cleans_up(tmp_path, docker_client):
    out = tmp_path / "sigkill"
    proc, log = start("run", str(EXP / "echo-long-fault.yaml"), "--report-dir", str(out))
    try:
        run_id = wait_for_event(proc, out, "run_start")["run_id"]
        wait_for_event(proc, out, "fault_injected")
        assert run_objects(docker_client, run_id)[0] >= 2  # web + the run's Toxiproxy
    except BaseException:
        proc.kill()
        raise
    sigkill_and_wait_gone(proc, docker_client, run_id, "mid-fault")


def test_sigkill_mid_upgrade_reaper_cleans_up(tmp_path, docker_client):
    """A rolling upgrade creates containers from the harness's fault thread (the replacement
    of each instance): SIGKILL of the harness while it is at work leaves nothing either."""
    docker_client.images.get("continuum/echo-web:latest").tag("continuum-test/echo-web", "upgrade")
    exp = tmp_path / "upgrade.yaml"
    exp.write_text(f"""apiVersion: continuum/v1
kind: Experiment
name: echo-upgrade-killed
description: A rolling upgrade of the echo web, killed while it runs.
target: {ROOT / "targets" / "echo"}
duration: 40s
load: {{profile: echo, users: 3, spawn_rate: 3, request_timeout: 1s}}
faults:
  - {{name: upgrade-web, at: 2s, for: 35s, action: service.upgrade, service: web,
     image: "continuum-test/echo-web:upgrade", strategy: rolling}}
slo: {{failed_requests: "<= 1000"}}
""")
    out = tmp_path / "sigkill-upgrade"
    proc, log = start("run", str(exp), "--report-dir", str(out))
    try:
        run_id = wait_for_event(proc, out, "run_start")["run_id"]
        wait_for_event(proc, out, "fault_injected")
        # Kill once the replacement exists (the new container, from the new image), or the
        # old one is gone: the fault thread is mid-way.
        def replaced() -> bool:
            web = docker_client.containers.list(all=True, filters={
                "label": [f"io.continuum.run-id={run_id}", "io.continuum.service=web"]})
            return not web or any("continuum-test/echo-web:upgrade" in c.image.tags for c in web)
        poll_until(replaced, 30, lambda: f"the upgrade never replaced web: {log.read_text()[-2000:]}")
    except BaseException:
        proc.kill()
        raise
    sigkill_and_wait_gone(proc, docker_client, run_id, "mid-upgrade")


DRILL_TARGET = """\
# The echo web and one data container with a named volume, declared with a backup and a restore
# whose last step (a sleep) holds the restore open long enough to be killed in the middle.
services:
  web:
    image: continuum/echo-web:latest
    networks: [edge]
    ports: ["8080"]
    healthcheck:
      test: ["CMD", "curl", "-fsS", "-m", "1", "-o", "/dev/null", "http://127.0.0.1:8080/healthz"]
      interval: 1s
      timeout: 2s
      retries: 30
    stop_grace_period: 1s
  db:
    image: debian:bookworm-slim
    command: ["sleep", "infinity"]
    init: true
    stop_grace_period: 1s
    networks: [data]
    volumes: ["store:/data"]
    healthcheck: {test: ["CMD", "true"], interval: 500ms, timeout: 2s, retries: 10}
networks:
  edge: {internal: false}
  data: {internal: true}
volumes:
  store: {}
x-continuum:
  links:
    - {from: host, to: web, port: 8080}
  entrypoints: [{service: web, port: 8080}]
  load: {locustfile: locustfile.py, profiles: [echo]}
  backup:
    steps:
      - exec: {among: db, argv: [cp, /etc/hostname, /data/dump], timeout: 10s}
      - copy_out: {among: db, path: /data/dump, file: dump, timeout: 10s}
  restore:
    steps:
      - copy_in: {into: db, file: dump, path: /data/restored, timeout: 10s}
      - start: {instances: [db], timeout: 30s}
      - exec: {among: db, argv: [sleep, "30"], timeout: 60s}
"""


def test_sigkill_mid_restore_leaves_no_container_network_or_volume(tmp_path, docker_client):
    """A restore drill recreates the destroyed instance and its volume from the harness's fault
    thread: SIGKILL of the harness while the restore runs leaves none of the run's containers,
    networks or volumes (the recreated ones included)."""
    target = tmp_path / "drill-target"
    target.mkdir()
    (target / "compose.yaml").write_text(DRILL_TARGET)
    (target / "locustfile.py").write_text((ROOT / "targets" / "echo" / "locustfile.py").read_text())
    exp = tmp_path / "restore.yaml"
    exp.write_text(f"""apiVersion: continuum/v1
kind: Experiment
name: restore-killed
description: A backup, a disaster and a restore of a data container, killed while it restores.
target: {target}
duration: 40s
load: {{profile: echo, users: 2, spawn_rate: 2, request_timeout: 1s}}
faults:
  - {{name: backup, at: 1s, action: drill.backup}}
  - {{name: disaster, at: 2s, action: drill.disaster, destroy: [db]}}
  - {{name: restore, at: 3s, action: drill.restore, within: 60s}}
slo: {{failed_requests: "<= 1000"}}
""")
    out = tmp_path / "sigkill-restore"
    proc, log = start("run", str(exp), "--report-dir", str(out))
    try:
        run_id = wait_for_event(proc, out, "run_start")["run_id"]
        label = f"io.continuum.run-id={run_id}"
        first = docker_client.containers.list(all=True, filters={"label": [label, "io.continuum.service=db"]})
        assert len(first) == 1, f"expected the one db container, got {first}"
        # Kill once the restore's recreated db runs (a new container, so a new volume too) and
        # its last step has had time to start: the fault thread is inside the restore.
        def recreated() -> bool:
            db = docker_client.containers.list(filters={"label": [label, "io.continuum.service=db"]})
            return bool(db) and db[0].id != first[0].id
        poll_until(recreated, 40, lambda: f"the restore never recreated db: {log.read_text()[-2000:]}")
        time.sleep(1.0)
        volumes = docker_client.api.volumes(filters={"label": label}).get("Volumes") or []
        assert volumes, "the recreated db has no volume of the run: the test would prove nothing"
        assert proc.poll() is None, f"the run ended before the kill: {log.read_text()[-2000:]}"
    except BaseException:
        proc.kill()
        raise
    sigkill_and_wait_gone(proc, docker_client, run_id, "mid-restore")

    def volumes_left() -> list:
        return docker_client.api.volumes(filters={"label": f"io.continuum.run-id={run_id}"}).get("Volumes") or []
    # Volumes go after the containers that held them.
    poll_until(lambda: not volumes_left(), 5, lambda: f"volumes of run {run_id} left: "
               f"{[v['Name'] for v in volumes_left()]}")
