"""Two CI jobs on one engine, each in its own PID namespace (as two job containers sharing a
runner's Docker would be): one runs an experiment, the other runs `continuum down` in the
middle of it. The live run is untouched (same containers, all running, the experiment passes
and cleans up after itself); an orphan whose owner died with its whole namespace (harness and
reaper SIGKILLed at once, so nothing swept it) is the only thing removed.

A pid in another namespace means nothing here: judged from /proc, job A's owner would look dead
to job B (that was the bug); judged from the lease its reaper holds on the engine, it is alive.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import FIXTURES, ROOT, run_objects, wait_gone

pytestmark = [pytest.mark.docker, pytest.mark.slow]

UNSHARE = shutil.which("unshare")


def in_own_pid_namespace(*args: str, log: Path) -> subprocess.Popen:
    """`continuum ARGS` as a job would run it: a new PID namespace with its own /proc."""
    fh = log.open("w")
    try:
        return subprocess.Popen(
            [UNSHARE, "--pid", "--fork", "--mount-proc", sys.executable, "-m", "harness", *args],
            stdout=fh, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True)
    finally:
        fh.close()


def run_id_of(log: Path, report_dir: Path | None, timeout_s: float = 120) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if report_dir is not None:
            journal = report_dir / "latest" / "journal.jsonl"
            if journal.exists():
                for line in journal.read_text().splitlines():
                    try:
                        e = json.loads(line)
                    except ValueError:
                        continue
                    if e.get("event") == "run_start":
                        return e["run_id"]
        else:
            for line in log.read_text().splitlines():
                if line.startswith("run ") and " healthy in " in line:
                    return line.split()[1].rstrip(":")
        time.sleep(0.2)
    raise AssertionError(f"no run id after {timeout_s} s:\n{log.read_text()}")


def containers(client, run_id: str) -> dict[str, str]:
    found = client.api.containers(all=True, filters={"label": f"io.continuum.run-id={run_id}"})
    return {c["Id"]: c["State"] for c in found}


@pytest.mark.skipif(UNSHARE is None or os.geteuid() != 0, reason="needs unshare and root")
def test_down_in_one_job_leaves_the_other_jobs_run_untouched(tmp_path, docker_client):
    # Job C: a stack whose owner will die with its whole PID namespace, reaper included.
    orphan = in_own_pid_namespace("up", str(ROOT / "targets" / "echo"), "--hold", log=tmp_path / "c.log")
    orphan_id = run_id_of(tmp_path / "c.log", None)

    # Job A: a real run, 20 s of load with a fault in the middle. Its own janitor runs as it
    # starts, while C is still alive, and must leave C alone too.
    reports = tmp_path / "a-reports"
    job_a = in_own_pid_namespace("run", str(FIXTURES / "experiments" / "echo-long-fault.yaml"),
                                 "--report-dir", str(reports), "--plain", log=tmp_path / "a.log")
    try:
        run_a = run_id_of(tmp_path / "a.log", reports)
        assert run_objects(docker_client, orphan_id)[0] > 0, "A's janitor removed C's live stack"
        os.killpg(orphan.pid, signal.SIGKILL)          # harness and reaper at once: nobody sweeps
        orphan.wait(timeout=10)
        time.sleep(1.0)
        assert run_objects(docker_client, orphan_id)[0] > 0, "the orphan must still be there to be found"
        before = containers(docker_client, run_a)
        assert before and all(state == "running" for state in before.values()), before

        # Job B, while A is mid-run: `continuum down` with no run id, as the CI example does.
        job_b = subprocess.run(
            [UNSHARE, "--pid", "--fork", "--mount-proc", sys.executable, "-m", "harness", "down"],
            capture_output=True, text=True, cwd=ROOT, timeout=120)
        assert job_b.returncode == 0, job_b.stdout + job_b.stderr
        print(job_b.stdout)
        assert job_a.poll() is None, "job A ended before job B's down: the test proved nothing"
        assert f"removed run {orphan_id}" in job_b.stdout
        assert f"removed run {run_a}" not in job_b.stdout
        assert run_a in next(line for line in job_b.stdout.splitlines() if "owner alive" in line)

        after = containers(docker_client, run_a)
        assert after == before, "the live run's containers were touched"
        assert wait_gone(docker_client, orphan_id, 30) is not None, "the orphan was not removed"

        assert job_a.wait(timeout=180) == 0, (tmp_path / "a.log").read_text()
    finally:
        if job_a.poll() is None:
            os.killpg(job_a.pid, signal.SIGTERM)
            job_a.wait(timeout=60)
    doc = json.loads((reports / "latest" / "results.json").read_text())
    assert [r["verdict"] for r in doc["runs"]] == ["PASS"]
    assert wait_gone(docker_client, run_a, 30) is not None, "job A left objects behind"
