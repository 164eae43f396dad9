"""Connecting to the Docker engine, with a timeout on every call."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import docker
import requests
import urllib3.exceptions
from docker.errors import APIError, DockerException, NotFound

from harness.errors import DockerUnavailable, HarnessError, StackError

DEFAULT_TIMEOUT_S = 30  # per API call; image builds pass their own longer timeout

HOW_TO_FIX = (
    "start one with `bash scripts/engine.sh` (Debian as root: installs docker.io and starts dockerd), "
    "or install Docker and check `docker info`"
)


def connect(timeout_s: float = DEFAULT_TIMEOUT_S) -> docker.DockerClient:
    try:
        client = docker.from_env(timeout=int(timeout_s))
        client.ping()
    except (DockerException, requests.exceptions.RequestException) as exc:
        raise DockerUnavailable(f"no Docker engine answers ({exc}); {HOW_TO_FIX}") from exc
    return client


@contextmanager
def docker_errors(what: str, error: type[HarnessError] = StackError) -> Iterator[None]:
    """The one boundary where the Docker SDK's exceptions (and the `requests`, `urllib3` and
    socket errors it lets through when the engine stalls, restarts or dies) become the harness's
    own errors: a hiccup of the engine is a harness ERROR, never the system's FAIL."""
    try:
        yield
    except NotFound as exc:
        raise error(f"{what}: not found ({_explain(exc)})") from exc
    except APIError as exc:
        raise error(f"{what}: {_explain(exc)}") from exc
    except DockerException as exc:
        raise error(f"{what}: {exc}") from exc
    except requests.exceptions.RequestException as exc:
        raise DockerUnavailable(f"{what}: the Docker engine did not answer ({type(exc).__name__}: {exc})") from exc
    except urllib3.exceptions.HTTPError as exc:      # raw streams (attach, logs) bypass requests
        raise DockerUnavailable(f"{what}: the connection to the Docker engine broke ({type(exc).__name__}: {exc})") from exc
    except (ConnectionError, TimeoutError) as exc:   # the socket itself: engine restarted or gone
        raise DockerUnavailable(f"{what}: the connection to the Docker engine broke ({type(exc).__name__}: {exc})") from exc


def _explain(exc: APIError) -> str:
    text = exc.explanation if isinstance(exc.explanation, str) and exc.explanation else str(exc)
    return text.strip()[:300]
