"""The pytest plugin for real: experiment files as items (pass, fail with the SLO message in the
JUnit XML, -k, -x), and the Python fixtures (stack, load, fault) on the echo target.

Each case runs pytest in a subprocess, as CI would, with the plugin loaded from its entry point.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET

import pytest

from tests.helpers import FIXTURES, ROOT

pytestmark = [pytest.mark.docker, pytest.mark.slow]

EXP = FIXTURES / "experiments"
PASS, FAIL = str(EXP / "echo-pass.yaml"), str(EXP / "echo-fail.yaml")


def pytest_run(*args: str, cwd=ROOT, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        capture_output=True, text=True, cwd=cwd, timeout=timeout,
    )


def cases(xml_path) -> dict[str, ET.Element]:
    root = ET.parse(xml_path).getroot()
    return {c.get("name"): c for c in root.iter("testcase")}


def suite_counts(xml_path) -> dict[str, int]:
    suite = ET.parse(xml_path).getroot().find("testsuite")
    return {k: int(suite.get(k)) for k in ("tests", "failures", "errors", "skipped")}


def test_experiments_as_items_with_junit(tmp_path, docker_client):
    xml = tmp_path / "out.xml"
    r = pytest_run("--continuum-experiments", PASS, FAIL, f"--junitxml={xml}")
    assert r.returncode == 1, r.stdout + r.stderr  # pytest: some tests failed
    assert "1 failed, 1 passed" in r.stdout
    assert suite_counts(xml) == {"tests": 2, "failures": 1, "errors": 0, "skipped": 0}
    got = cases(xml)
    assert set(got) == {"echo-pass", "echo-fail"}
    assert got["echo-pass"].find("failure") is None
    failure = got["echo-fail"].find("failure")
    assert failure is not None
    # The SLO message: what was measured against what was required.
    for text in (failure.get("message"), failure.text):
        assert text.startswith("FAIL: availability ") and "< required >= 99.9%" in text, text
    props = {p.get("name"): p.get("value") for p in got["echo-fail"].iter("property")}
    assert props["verdict"] == "FAIL"


def test_k_selects_by_experiment_name(tmp_path):
    r = pytest_run("--continuum-experiments", PASS, FAIL, "-k", "echo-pass", "--collect-only", "-q")
    assert r.returncode == 0, r.stdout + r.stderr
    listed = [line for line in r.stdout.splitlines() if "::" in line]
    assert listed == ["tests/fixtures/experiments/echo-pass.yaml::echo-pass"], r.stdout
    assert "1/2 tests collected (1 deselected)" in r.stdout


def test_x_stops_after_first_failure(tmp_path, docker_client):
    xml = tmp_path / "x.xml"
    r = pytest_run("--continuum-experiments", FAIL, PASS, "-x", f"--junitxml={xml}")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "1 failed" in r.stdout and "passed" not in r.stdout.splitlines()[-1]
    assert set(cases(xml)) == {"echo-fail"}
    assert suite_counts(xml)["tests"] == 1


def test_bad_experiment_is_a_collection_error_with_location(tmp_path):
    r = pytest_run("--continuum-experiments", str(EXP / "bad" / "syntax.yaml"), "--collect-only", "-q")
    assert r.returncode != 0
    assert "syntax.yaml:8:1" in r.stdout + r.stderr and "bogus_field" in r.stdout + r.stderr


PY_EXPERIMENT = '''
import time

ECHO = {echo!r}


def test_link_down_shows_up_as_failures(continuum_stack, continuum_load, continuum_fault):
    stack = continuum_stack(ECHO)
    load = continuum_load(stack, profile="echo", users=3, request_timeout_s=1.0)
    time.sleep(1.5)
    with continuum_fault(stack, "network.down", link="host->web") as injection:
        assert injection.targets == ("host-web",)
        time.sleep(1.0)
    time.sleep(1.5)
    result = load.finish()
    o = result.overall
    print(f"RESULT requests={{o.requests}} failures={{o.failures}} availability={{o.availability:.4f}}")
    assert o.requests > 50
    assert o.failures > 0 and o.availability < 0.99
    assert result.longest_outage.duration_s >= 0.5


def test_unknown_link_is_refused(continuum_stack, continuum_fault):
    import pytest
    from harness.errors import InputError

    stack = continuum_stack(ECHO)
    with pytest.raises(InputError, match="'host->nope'.*links: host->web"):
        with continuum_fault(stack, "network.down", link="host->nope"):
            pass
'''


def test_python_fixtures_measure_a_link_down(tmp_path, docker_client):
    (tmp_path / "test_py_experiment.py").write_text(
        textwrap.dedent(PY_EXPERIMENT.format(echo=str(ROOT / "targets" / "echo"))))
    r = pytest_run("-s", "-q", str(tmp_path / "test_py_experiment.py"), cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "2 passed" in r.stdout and "RESULT requests=" in r.stdout
    print(next(line for line in r.stdout.splitlines() if "RESULT" in line))
