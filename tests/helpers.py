"""Helpers for tests: the real CLI as a subprocess, counting a run's Docker objects."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"


def continuum(*args: str, **kw) -> subprocess.CompletedProcess:
    """The real CLI as a subprocess (the way users and CI call it)."""
    kw.setdefault("timeout", 300)
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True, text=True, cwd=ROOT, **kw)


def spawn(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "harness", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT
    )


def run_objects(client, run_id: str, helpers: bool = True) -> tuple[int, int]:
    """(containers, networks) labelled with the run. `helpers=False` leaves out the namespace
    helpers (harness.stack.netexec), which start in the background after `up` and remove
    themselves when their harness exits: how many exist at one moment is a race, not a fact
    about the stack."""
    f = {"label": f"io.continuum.run-id={run_id}"}
    containers = client.api.containers(all=True, filters=f)
    if not helpers:
        containers = [c for c in containers if (c.get("Labels") or {}).get("io.continuum.service") != "netexec"]
    return len(containers), len(client.api.networks(filters=f))


def wait_gone(client, run_id: str, timeout_s: float) -> float | None:
    """Seconds until the run has no objects left, or None if some remain after timeout_s."""
    t = time.monotonic()
    while time.monotonic() - t < timeout_s:
        if run_objects(client, run_id) == (0, 0):
            return time.monotonic() - t
        time.sleep(0.1)
    return None
