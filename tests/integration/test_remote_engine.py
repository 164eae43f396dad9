"""A target on a remote engine, reached over TCP with mutual TLS, with nothing else changed.

The remote engine is the second engine of tests/second_engine.py (Debian's docker.io in a
container) serving its API on tcp://ADDRESS:2376 with `--tlsverify`; the harness runs on this
host with only DOCKER_HOST, DOCKER_TLS_VERIFY and DOCKER_CERT_PATH set, as a user of a remote
engine would. What must hold there:

* the run's ports are published on the engine host's address, not on this host's 127.0.0.1
  (which the remote engine cannot bind), and the load reaches them;
* every namespace fault (partition, packet loss, DNS) works, through helper containers on the
  remote engine (the harness never enters a namespace from this host);
* a known-size link cut is measured as that size;
* SIGKILL of the harness leaks nothing on either engine (the reaper lives on the remote engine).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.faults import FaultContext
from harness.loader import load_target
from harness.stack.stack import Stack
from tests.helpers import FIXTURES
from tests.integration.test_faults_real import inject, lookup, reach

pytestmark = pytest.mark.docker
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def remote(second_engine):
    second_engine.enable_tls()
    client = second_engine.tls_client()
    assert client.ping()
    yield second_engine, client
    client.close()


def _env(engine) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    return {**env, **engine.tls_env}


def test_faults_work_on_a_remote_engine_through_its_helpers(remote):
    engine, client = remote
    address = engine.tls_env["DOCKER_HOST"].split("//")[1].split(":")[0]
    with Stack(load_target(FIXTURES / "pair"), client=client) as stack:
        assert stack.publish_ip == address
        [url] = stack.endpoints()
        assert url.startswith(f"http://{address}:"), url      # published on the remote host
        import urllib.request

        with urllib.request.urlopen(url + "/healthz", timeout=5) as resp:
            assert resp.status == 200
        ctx = FaultContext(stack=stack, run_id=stack.run_id)

        inj = inject(ctx, "partition", name="cut", groups=[["client-1"], ["server"]], **{"for": "1s"})
        try:
            assert not reach(stack, "client-1", "server")
            assert reach(stack, "client-2", "server")
        finally:
            inj.revert()
        assert reach(stack, "client-1", "server")

        inj = inject(ctx, "network.loss", name="loss", select={"service": "server"}, percent="100%",
                     **{"for": "1s"})
        try:
            assert not reach(stack, "client-1", "server")
        finally:
            inj.revert()
        assert reach(stack, "client-1", "server")

        inj = inject(ctx, "network.dns", name="nodns", select={"service": "client-1"}, **{"for": "1s"})
        try:
            code, out = lookup(stack, "client-1", "server")
            assert code != 0 and "name resolution" in out, out
        finally:
            inj.revert()
        assert lookup(stack, "client-1", "server")[0] == 0

        # The namespace helpers ran on the remote engine, none on this host's.
        helpers = client.containers.list(all=True, filters={"label": f"io.continuum.run-id={stack.run_id}",
                                                            "name": "netexec"})
        assert helpers, "no namespace helper on the remote engine"
        run_id = stack.run_id
    assert engine.run_objects(run_id) == (0, 0)


def test_a_two_second_cut_is_measured_as_two_seconds_on_a_remote_engine(remote, tmp_path):
    engine, _ = remote
    proc = subprocess.run(
        [sys.executable, "-m", "harness", "run", str(ROOT / "experiments/calibration/link-down-2s.yaml"),
         "--report-dir", str(tmp_path)],
        env=_env(engine), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    [run] = json.loads((tmp_path / "latest" / "results.json").read_text())["runs"]
    [fault] = run["faults"]
    window = fault["reverted_s"] - fault["injected_s"]
    outage = run["longest_outage"]["duration_s"]
    print(f"remote engine: window {window:.4f} s, outage {outage:.4f} s")
    assert abs(outage - window) <= 0.05, (outage, window)
    assert engine.run_objects(run["run_id"]) == (0, 0)


def test_sigkill_of_the_harness_leaks_nothing_on_either_engine(remote, tmp_path, docker_client):
    engine, client = remote
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness", "run", str(FIXTURES / "experiments/echo-long-fault.yaml"),
         "--report-dir", str(tmp_path)],
        env=_env(engine), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    run_id = None
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and run_id is None:   # the run's Toxiproxy is up: mid-run
            # The second engine is this session's alone, and its tests run one at a time.
            for c in client.containers.list(filters={"label": "io.continuum.service=toxiproxy"}):
                run_id = c.labels["io.continuum.run-id"]
            time.sleep(0.5)
        assert run_id, "the run never came up on the remote engine"
        time.sleep(3)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    deadline = time.monotonic() + 60
    while engine.run_objects(run_id) != (0, 0) and time.monotonic() < deadline:
        time.sleep(1)
    assert engine.run_objects(run_id) == (0, 0), "the remote engine kept objects of a SIGKILLed run"
    f = {"label": f"io.continuum.run-id={run_id}"}
    assert docker_client.containers.list(all=True, filters=f) == []     # nothing on the shared engine
    assert client.volumes.list(filters=f) == []


def test_an_engine_reached_over_ssh_runs_an_experiment_and_keeps_nothing(remote, tmp_path):
    """`DOCKER_HOST=ssh://root@ADDRESS`: the harness reaches the engine through this machine's
    `ssh` (no paramiko), and everything else is as over TLS: a 2 s cut of the echo target's
    way in is measured as 2 s, and the run leaves nothing on the remote engine."""
    engine, _ = remote
    ssh_env = engine.enable_ssh()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")} | ssh_env
    exp = tmp_path / "cut.yaml"
    exp.write_text(f"""apiVersion: continuum/v1
kind: Experiment
name: ssh-link-down
description: A 2 s cut of the echo target's way in, on an engine reached over SSH.
target: {ROOT / "targets" / "echo"}
duration: 9s
load: {{profile: echo, users: 5, spawn_rate: 5, request_timeout: 1s}}
faults:
  - {{name: cut, at: 3s, for: 2s, action: network.down, link: host->web}}
slo: {{availability: ">= 50%"}}
""")
    t = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "harness", "run", str(exp), "--report-dir", str(tmp_path / "r")],
                          env=env, capture_output=True, text=True, timeout=300)
    print(f"continuum run over ssh: {time.monotonic() - t:.1f} s; "
          + "; ".join(x.strip() for x in proc.stdout.splitlines() if " up in " in x))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    [run] = json.loads((tmp_path / "r" / "latest" / "results.json").read_text())["runs"]
    [fault] = run["faults"]
    window = fault["reverted_s"] - fault["injected_s"]
    outage = run["longest_outage"]["duration_s"]
    print(f"engine over ssh: window {window:.4f} s, outage {outage:.4f} s")
    assert abs(outage - window) <= 0.05, (outage, window)
    assert engine.run_objects(run["run_id"]) == (0, 0)
