"""Render a report from a synthetic run and open it in real headless Chromium: did the plot draw?

Needs /usr/bin/chromium (CI installs it: `apt-get install -y chromium`); skipped otherwise.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from harness.measure import evaluate
from harness.measure.synthetic import demo_record
from harness.report import write_reports

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)")

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-extensions", "--no-first-run",
         "--virtual-time-budget=10000", "--window-size=1400,2000"]


def _chromium(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([CHROMIUM, *FLAGS, *args], capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("browser")
    rec = demo_record()
    write_reports([evaluate(rec)], [rec], out)
    return out / "report.html"


def test_plot_renders_in_headless_chromium(report):
    dom = _chromium("--dump-dom", report.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    # plotly drew its SVG layers after the inline JS ran (offline: no network was available to it)
    assert 'class="main-svg"' in dom.stdout
    assert 'class="plot-container plotly"' in dom.stdout
    assert "link-down-demo" in dom.stdout and "lb-app-down (network.down)" in dom.stdout


def test_screenshot_is_a_nontrivial_png(report):
    shot = report.parent / "report.png"
    res = _chromium(f"--screenshot={shot}", report.as_uri())
    assert res.returncode == 0, res.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1400, 2000)
    assert len(data) > 50_000           # a blank page compresses to a few KB
