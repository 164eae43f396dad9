"""`continuum compare` and `run --baseline` on result dirs made by two real runs of the same
experiment on the echo target: a baseline under 20 ms of ingress latency and a candidate under
400 ms (tests/fixtures/experiments/compare/). The candidate must read as a p99 regression."""

from __future__ import annotations

import json
import re

import pytest

from tests.helpers import FIXTURES, continuum

pytestmark = [pytest.mark.docker, pytest.mark.slow]

CMP = FIXTURES / "experiments" / "compare"


@pytest.fixture(scope="module")
def result_dirs(tmp_path_factory, docker_client):
    """BASE from base.yaml; CAND from cand.yaml, run with --baseline BASE and an --image
    override naming the image the target already uses (accepted, and the run works)."""
    root = tmp_path_factory.mktemp("compare")
    base, cand = root / "base", root / "cand"
    r = continuum("run", str(CMP / "base.yaml"), "--report-dir", str(base), timeout=180)
    assert r.returncode == 0, r.stdout + r.stderr
    r = continuum("run", str(CMP / "cand.yaml"), "--report-dir", str(cand), "--baseline", str(base),
                  "--image", "web=continuum/echo-web:latest", timeout=180)
    assert r.returncode == 0, r.stdout + r.stderr  # its own SLO (availability) still holds
    return base, cand


def test_candidate_regression_exits_1_and_names_metric(result_dirs):
    base, cand = result_dirs
    r = continuum("compare", str(base), str(cand), timeout=60)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "echo-latency: PASS → PASS  [REGRESSION]" in r.stdout
    assert re.search(r"regression: latency_p99: p99 rose \+\d+% \(\d+ ms → \d+ ms\)", r.stdout), r.stdout
    assert "1 compared, 1 regressed" in r.stdout
    b = json.loads((base / "latest" / "results.json").read_text())["runs"][0]
    c = json.loads((cand / "latest" / "results.json").read_text())["runs"][0]
    # The numbers behind it: 400 ms of latency for 4 of 8 s puts p99 near 400 ms.
    p99 = lambda run: next(p for p in run["phases"] if p["name"] == "overall")["latency_p99_s"]  # noqa: E731
    assert p99(b) < 0.2 and p99(c) >= 0.4, (p99(b), p99(c))


def test_same_dir_is_no_regression(result_dirs):
    base, _ = result_dirs
    r = continuum("compare", str(base), str(base), timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "1 compared, 0 regressed" in r.stdout


def test_missing_or_invalid_dir_exits_2(result_dirs, tmp_path):
    base, _ = result_dirs
    r = continuum("compare", str(base), str(tmp_path / "nowhere"), timeout=60)
    assert r.returncode == 2 and "no results.json" in r.stderr and "Traceback" not in r.stderr
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "results.json").write_text("{not json")
    r = continuum("compare", str(bad), str(base), timeout=60)
    assert r.returncode == 2 and "cannot read" in r.stderr and "Traceback" not in r.stderr
    (bad / "results.json").write_text('{"runs": "nope"}')
    r = continuum("compare", str(bad), str(base), timeout=60)
    assert r.returncode == 2 and "not a Continuum results file" in r.stderr


def test_run_with_baseline_puts_comparison_in_report(result_dirs):
    _, cand = result_dirs
    html = (cand / "latest" / "report.html").read_text()
    assert "latency_p99" in html and "p99 rose" in html, "comparison table missing from report.html"
    run = json.loads((cand / "latest" / "results.json").read_text())["runs"][0]
    assert run["experiment"] == "echo-latency"


def test_image_override_with_unknown_service_exits_2(tmp_path):
    r = continuum("run", str(CMP / "cand.yaml"), "--image", "nosuch=continuum/echo-web:latest",
                  "--report-dir", str(tmp_path / "x"), timeout=60)
    assert r.returncode == 2 and "no service 'nosuch'" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "x").exists()
