"""When the harness's own world breaks mid-run, the answer is ERROR (exit 3, JUnit <error>),
never FAIL, and nothing of the run is left on the engine.

Each experiment here would FAIL if everything went to plan (a strict SLO over a real outage),
so a harness fault mistaken for the system's shows up as exit 1, not as a pass:

* the Docker engine restarted mid-fault (a second engine, tests/second_engine.py: the shared
  one is never restarted);
* the faulted container removed behind the harness's back mid-fault;
* the run's Toxiproxy killed mid-fault;
* the disk full while the reports are written (a small tmpfs): the previous reports of the
  suite stay intact and complete, and the message names the files that are not up to date.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.helpers import FIXTURES, ROOT, wait_gone

pytestmark = [pytest.mark.docker, pytest.mark.slow]

EXP = FIXTURES / "experiments"
LEAK_WAIT_S = 40        # the reaper's sweep retries for about this long after an engine hiccup


def journal(run_root: Path) -> list[dict]:
    path = run_root / "latest" / "journal.jsonl"
    out = []
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
    return out


def wait_event(proc: subprocess.Popen, run_root: Path, name: str, n: int = 1, timeout_s: float = 180) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = [e for e in journal(run_root) if e.get("event") == name]
        if len(found) >= n:
            return found[n - 1]
        if proc.poll() is not None:
            raise AssertionError(f"continuum exited {proc.returncode} before {name} #{n}")
        time.sleep(0.05)
    raise AssertionError(f"no {name} #{n} after {timeout_s} s")


def start(argv: list[str], log: Path, popen=None) -> subprocess.Popen:
    fh = log.open("w")
    try:
        if popen is not None:
            return popen([sys.executable, "-m", "harness", *argv], stdout=fh, stderr=subprocess.STDOUT, cwd=ROOT)
        return subprocess.Popen([sys.executable, "-m", "harness", *argv], stdout=fh, stderr=subprocess.STDOUT,
                                cwd=ROOT)
    finally:
        fh.close()


def check_error(run_root: Path, log: Path, code: int, runs: int = 1) -> dict:
    """Exit 3; results.json says ERROR for the last run; junit.xml has an <error>, no <failure>."""
    text = log.read_text()
    assert code == 3, f"exit {code}, expected 3 (harness error, never the system's FAIL):\n{text[-3000:]}"
    assert "Traceback" not in text, text[-3000:]
    doc = json.loads((run_root / "latest" / "results.json").read_text())
    assert len(doc["runs"]) == runs
    run = doc["runs"][-1]
    assert run["verdict"] == "ERROR" and run["harness_error"], run["reasons"]
    suites = ET.parse(run_root / "latest" / "junit.xml").getroot()
    last = list(suites.iter("testsuite"))[-1]
    assert last.find(".//error") is not None and last.find(".//failure") is None, ET.tostring(last)[:2000]
    return run


def leaked(client, run_id: str) -> int:
    gone = wait_gone(client, run_id, LEAK_WAIT_S)
    f = {"label": f"io.continuum.run-id={run_id}"}
    left = len(client.api.containers(all=True, filters=f)) + len(client.api.networks(filters=f))
    print(f"run {run_id}: {left} leaked objects ({'gone after %.1f s' % gone if gone is not None else 'left'})")
    return left


def test_engine_restarted_mid_fault_is_error_and_leaks_nothing(tmp_path, second_engine):
    out = tmp_path / "reports"
    log = tmp_path / "run.log"
    proc = start(["run", str(EXP / "echo-fail.yaml"), "--report-dir", str(out), "--plain"], log,
                 popen=second_engine.popen)
    try:
        run_id = wait_event(proc, out, "run_start")["run_id"]
        wait_event(proc, out, "fault_injected")
        took = second_engine.restart_dockerd()
        print(f"engine restarted in {took:.1f} s")
        code = proc.wait(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
    run = check_error(out, log, code)
    print("reasons:", run["reasons"])
    assert leaked(second_engine.client, run_id) == 0


def test_container_removed_mid_fault_is_error_and_leaks_nothing(tmp_path, docker_client):
    out = tmp_path / "reports"
    log = tmp_path / "run.log"
    proc = start(["run", str(EXP / "echo-pause-strict.yaml"), "--report-dir", str(out), "--plain"], log)
    try:
        run_id = wait_event(proc, out, "run_start")["run_id"]
        wait_event(proc, out, "fault_injected")
        docker_client.api.remove_container(f"continuum-{run_id}-web", force=True)   # behind its back
        code = proc.wait(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
    run = check_error(out, log, code)
    assert any("web" in r for r in run["reasons"]), run["reasons"]
    assert leaked(docker_client, run_id) == 0


def test_toxiproxy_killed_mid_fault_is_error_and_leaks_nothing(tmp_path, docker_client):
    out = tmp_path / "reports"
    log = tmp_path / "run.log"
    proc = start(["run", str(EXP / "echo-fail.yaml"), "--report-dir", str(out), "--plain"], log)
    try:
        run_id = wait_event(proc, out, "run_start")["run_id"]
        wait_event(proc, out, "fault_injected")
        docker_client.api.kill(f"continuum-{run_id}-toxiproxy")
        code = proc.wait(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
    run = check_error(out, log, code)
    assert any("oxiproxy" in r for r in run["reasons"]), run["reasons"]
    assert leaked(docker_client, run_id) == 0


@pytest.fixture
def small_disk(tmp_path):
    """An 8 MiB tmpfs: room for one run's reports (report.html is ~5 MB), then filled up."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m,mode=0755", "tmpfs", str(mnt)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        if os.environ.get("CI"):
            pytest.fail(f"cannot mount a tmpfs for the disk-full test: {r.stderr}")
        pytest.skip(f"cannot mount a tmpfs: {r.stderr}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def fill(mnt: Path) -> int:
    """Write until the file system is full; returns the bytes written."""
    written = 0
    fd = os.open(mnt / "filler", os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        while True:
            written += os.write(fd, b"\0" * 65536)
    except OSError:
        pass
    finally:
        os.close(fd)
    return written


def test_disk_full_while_writing_reports_is_error_and_keeps_the_previous_reports(tmp_path, small_disk,
                                                                                  docker_client):
    out = small_disk / "reports"
    log = tmp_path / "run.log"
    proc = start(["run", str(EXP / "echo-pass.yaml"), str(EXP / "echo-fail.yaml"), "--report-dir", str(out),
                  "--plain"], log)
    run_ids = []
    try:
        run_ids.append(wait_event(proc, out, "run_start")["run_id"])
        run_ids.append(wait_event(proc, out, "run_start", n=2)["run_id"])   # run 1's reports are written
        before = {n: (out / "latest" / n).read_bytes() for n in ("junit.xml", "results.json", "report.html")}
        print(f"filled {fill(small_disk) / 2**20:.1f} MiB")
        code = proc.wait(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
    text = log.read_text()
    assert code == 3, f"exit {code}:\n{text[-3000:]}"
    assert "Traceback" not in text
    # The message says which files are not up to date; each of them is still the complete
    # previous version (the first experiment's), byte for byte.
    assert "reports in" in text and "incomplete" in text, text[-2000:]
    for name, content in before.items():
        assert name in text[text.index("incomplete"):], name
        assert (out / "latest" / name).read_bytes() == content, f"{name} changed"
    doc = json.loads(before["results.json"])
    assert [r["experiment"] for r in doc["runs"]] == ["echo-pass"]
    ET.fromstring(before["junit.xml"])
    assert not list((out / "latest").glob(".*.tmp")), "a temp file was left behind"
    for rid in run_ids:
        assert leaked(docker_client, rid) == 0
