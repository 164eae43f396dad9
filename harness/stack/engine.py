"""Connecting to the Docker engine, with a timeout on every call."""

from __future__ import annotations

import docker
from docker.errors import DockerException

from harness.errors import DockerUnavailable

DEFAULT_TIMEOUT_S = 30  # per API call; image builds pass their own longer timeout

HOW_TO_FIX = (
    "start one with `bash scripts/engine.sh` (Debian as root: installs docker.io and starts dockerd), "
    "or install Docker and check `docker info`"
)


def connect(timeout_s: float = DEFAULT_TIMEOUT_S) -> docker.DockerClient:
    try:
        client = docker.from_env(timeout=int(timeout_s))
        client.ping()
    except DockerException as exc:
        raise DockerUnavailable(f"no Docker engine answers ({exc}); {HOW_TO_FIX}") from exc
    return client
