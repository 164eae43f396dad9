"""Shared fixtures. Integration tests need a real Docker engine; under CI its absence is a
failure, not a skip, so a broken set-up can never look like a green run."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"


def _docker_ok() -> bool:
    try:
        import docker

        docker.from_env(timeout=5).ping()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def docker_client():
    if not _docker_ok():
        if os.environ.get("CI"):
            pytest.fail("no Docker engine answers under CI: run `bash scripts/engine.sh` first")
        pytest.skip("no Docker engine (run `bash scripts/engine.sh`)")
    import docker

    return docker.from_env(timeout=30)


def continuum(*args: str, **kw) -> subprocess.CompletedProcess:
    """The real CLI as a subprocess (the way users and CI call it)."""
    kw.setdefault("timeout", 300)
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True, text=True, cwd=ROOT, **kw)


def spawn(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "harness", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT
    )


def run_objects(client, run_id: str) -> tuple[int, int]:
    f = {"label": f"io.continuum.run-id={run_id}"}
    return len(client.containers.list(all=True, filters=f)), len(client.networks.list(filters=f))


def wait_gone(client, run_id: str, timeout_s: float) -> float | None:
    """Seconds until the run has no objects left, or None if some remain after timeout_s."""
    t = time.monotonic()
    while time.monotonic() - t < timeout_s:
        if run_objects(client, run_id) == (0, 0):
            return time.monotonic() - t
        time.sleep(0.1)
    return None
