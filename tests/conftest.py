"""Shared fixtures. Integration tests need a real Docker engine; under CI its absence is a
failure, not a skip, so a broken set-up can never look like a green run."""

from __future__ import annotations

import os

import pytest



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


