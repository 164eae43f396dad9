"""The exit-code contract on every command: whatever unexpected exception a command meets (a bug,
a Docker SDK error, a `requests` timeout, an OS error), it exits 3, prints one short line that
says it is the harness's error and where the traceback went, and that file holds the traceback.
The system's verdict (1) is never produced by a harness fault. No Docker needed: the faults are
injected by monkeypatching the layer the command calls.
"""

from __future__ import annotations

import errno
import re
import subprocess
import sys
import tempfile
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import docker.errors
import pytest
import requests

from harness import cli
from harness.measure import evaluate
from harness.measure.synthetic import make_experiment, make_record, steady_samples
from harness.model import Assertion
from harness.report import write_reports

ROOT = Path(__file__).resolve().parents[2]
ECHO_PASS = ROOT / "tests" / "fixtures" / "experiments" / "echo-pass.yaml"
WHERE = re.compile(r"(?:traceback|details) in (\S+\.log)")

FAULTS = {
    "bug": lambda: TypeError("'NoneType' object is not subscriptable"),
    "docker-notfound": lambda: docker.errors.NotFound("No such container: continuum-r1-app-2"),
    "docker-api": lambda: docker.errors.APIError("500 Server Error: Internal Server Error"),
    "requests-timeout": lambda: requests.exceptions.ReadTimeout("Read timed out. (read timeout=30)"),
    "requests-connection": lambda: requests.exceptions.ConnectionError("Connection aborted."),
    "disk-full": lambda: OSError(errno.ENOSPC, "No space left on device"),
}


@pytest.fixture(autouse=True)
def _private_tmp(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()


def fake_stages(fail_until_s: float = 0.0):
    """An orchestrator stage that 'runs' without Docker: 6 s of samples, failing at first."""
    def stages(experiment, run, events, *a, **k):
        run.samples.extend(steady_samples(run.t0, run.t0 + 6, 20, fails=lambda t, lat: t < run.t0 + fail_until_s))
        run.t_end = run.t0 + 6
        run.run_id = "r-fake"
    return stages


def _raiser(make):
    def boom(*_a, **_k):
        raise make()
    return boom


def check_harness_error(code: int, err: str) -> Path:
    assert code == 3, err
    assert "harness error" in err and "Traceback" not in err, err
    m = WHERE.search(err)
    assert m, f"no log path in: {err}"
    log = Path(m.group(1))
    assert log.is_file() and "Traceback" in log.read_text(), log
    return log


def results_dir(tmp_path: Path) -> Path:
    exp = make_experiment("synthetic", slo=(Assertion("availability", ">=", 0.9, ">= 90%"),))
    rec = make_record(steady_samples(1000, 1010, 50), experiment=exp, t0=1000, t_end=1010, run_id="r-syn")
    out = tmp_path / "results"
    write_reports([evaluate(rec)], [rec], out)
    return out


# (command argv builder, what to break: module attribute the command reaches)
def _commands(tmp_path: Path):
    res = results_dir(tmp_path)
    return {
        "run": (["run", str(ECHO_PASS), "--report-dir", str(tmp_path / "reports"), "--plain"],
                "harness.run.orchestrator._stages"),
        "run-outside-the-run": (["run", str(ECHO_PASS), "--report-dir", str(tmp_path / "reports2"), "--plain"],
                                "harness.report.console.print_summary"),
        "gameday": (["gameday", str(ECHO_PASS), "--report-dir", str(tmp_path / "gd")],
                    "harness.run.orchestrator._stages"),
        "validate": (["validate", str(ECHO_PASS)], "harness.plan.load_experiment"),
        "plan": (["plan", str(ECHO_PASS)], "harness.plan.render_plan"),
        "schema": (["schema"], "harness.plan.experiment_schema"),
        "report": (["report", str(res)], "harness.report.html.render_html"),
        "compare": (["compare", str(res), str(res)], "harness.report.compare.compare_docs"),
        "up": (["up", str(ROOT / "targets" / "echo")], "harness.stack.engine.connect"),
        "down": (["down"], "harness.stack.cleanup.list_runs"),
        "down-run": (["down", "r1234abcd"], "harness.stack.engine.connect"),
        "ps": (["ps"], "harness.stack.cleanup.list_runs"),
        "images": (["images", str(ROOT / "targets" / "echo")], "harness.stack.engine.connect"),
        "doctor": (["doctor", str(ROOT / "targets" / "echo")], "harness.doctor.run_doctor"),
    }


COMMANDS = ["run", "run-outside-the-run", "gameday", "validate", "plan", "schema", "report", "compare",
            "up", "down", "down-run", "ps", "images", "doctor"]


# Every command meets a bug; the commands that talk to Docker or the disk meet every kind of fault.
CASES = [(c, "bug") for c in COMMANDS] + [
    (c, f) for c in ("run", "down", "up", "compare") for f in FAULTS if f != "bug"]


@pytest.mark.parametrize("command,fault", CASES)
def test_unexpected_exception_is_exit_3_with_traceback_in_a_log(tmp_path, monkeypatch, capsys, command, fault):
    argv, where = _commands(tmp_path)[command]
    module, _, attr = where.rpartition(".")
    monkeypatch.setattr(sys.modules[module] if module in sys.modules else __import__(module, fromlist=[attr]),
                        attr, _raiser(FAULTS[fault]))
    if command == "gameday":
        monkeypatch.setattr(sys, "stdin", open("/dev/null"))
    if command == "run-outside-the-run":
        from harness.run import orchestrator
        monkeypatch.setattr(orchestrator, "_stages", fake_stages())
    monkeypatch.setattr(sys, "stdout", sys.stdout)
    code = cli.main(argv)
    err = capsys.readouterr().err
    if command in ("run", "gameday"):
        # Inside a run the orchestrator records it: the verdict is ERROR, reports say so.
        assert code == 3, err
        run = next((tmp_path / ("reports" if command == "run" else "gd")).glob("2*"))
        suites = ET.parse(run / "junit.xml").getroot()
        assert suites.get("errors") != "0" and suites.get("failures") == "0"
        assert "harness error" in err and (run / "continuum.log").read_text().count("Traceback") >= 1
        return
    check_harness_error(code, err)


def test_a_missed_slo_is_still_exit_1(tmp_path, monkeypatch, capsys):
    """The one path to 1: a measured FAIL. The harness itself is faked, the verdict is not."""
    from harness.run import orchestrator

    monkeypatch.setattr(orchestrator, "_stages", fake_stages(fail_until_s=3))
    code = cli.main(["run", str(ECHO_PASS), "--report-dir", str(tmp_path / "r"), "--plain"])
    assert code == 1, capsys.readouterr().err


def test_pytest_plugin_reports_a_harness_error_as_error_and_exits_3(tmp_path):
    exp = tmp_path / "experiments" / "echo-pass.yaml"
    exp.parent.mkdir()
    exp.write_text(ECHO_PASS.read_text().replace("../../../targets/echo", str(ROOT / "targets" / "echo")))
    (tmp_path / "conftest.py").write_text(textwrap.dedent("""
        import docker.errors
        from harness.run import orchestrator

        def _boom(*a, **k):
            raise docker.errors.NotFound("No such container: continuum-r1-web")

        orchestrator._stages = _boom
    """))
    xml = tmp_path / "out.xml"
    r = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", str(exp), f"--junitxml={xml}",
                        "--continuum-report-dir", str(tmp_path / "reports")],
                       capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert r.returncode == 3, r.stdout + r.stderr
    suite = ET.parse(xml).getroot().find("testsuite")
    assert (suite.get("errors"), suite.get("failures")) == ("1", "0"), r.stdout
    error = next(suite.iter("error"))
    assert "ERROR (harness, not the system)" in error.get("message", "")
    assert (tmp_path / "reports" / "latest" / "results.json").is_file()


def test_pytest_plugin_bad_report_dir_is_exit_2(tmp_path):
    (tmp_path / "file").write_text("x")
    r = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--co", str(ECHO_PASS),
                        "--continuum-experiments", "--continuum-report-dir", str(tmp_path / "file")],
                       capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "--continuum-report-dir" in r.stdout + r.stderr and "not a directory" in r.stdout + r.stderr
