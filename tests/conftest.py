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




@pytest.fixture(scope="session")
def second_engine(docker_client):
    """A second Docker engine (tests/second_engine.py) that a test may restart or cut off
    without touching the shared one; the echo target's images are copied into it. Its start-up
    figures are printed (`-s`): image build once ~80 s, API ready ~3-6 s, images ~20-50 s."""
    from tests.second_engine import SecondEngine

    from harness.stack.images import NETEXEC_IMAGE

    images = ["continuum/echo-web:latest", "ghcr.io/shopify/toxiproxy:2.12.0", "debian:bookworm-slim",
              NETEXEC_IMAGE]
    try:
        engine = SecondEngine.start(docker_client, images=images)
    except Exception as exc:  # noqa: BLE001
        if os.environ.get("CI"):
            pytest.fail(f"the second engine did not start: {exc}")
        pytest.skip(f"the second engine did not start: {exc}")
    print(f"second engine: {engine.timings}")
    yield engine
    engine.close()
