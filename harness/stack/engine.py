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


class _EngineAPI(docker.APIClient):
    """The SDK's API client with the engine's own CA winning over REQUESTS_CA_BUNDLE and
    CURL_CA_BUNDLE: requests lets those override a session's `verify` unless each request names
    one (docker-py issue #2433, open), so a TLS engine fails with "unable to get local issuer
    certificate" on any machine that sets them (this one does)."""

    def merge_environment_settings(self, url, proxies, stream, verify, cert):  # noqa: D102
        if verify is None and isinstance(self.verify, str):
            verify = self.verify
        return super().merge_environment_settings(url, proxies, stream, verify, cert)


class EngineClient(docker.DockerClient):
    """docker.DockerClient over `_EngineAPI`; everything else is the SDK's."""

    def __init__(self, **kwargs):  # noqa: D107 - DockerClient's own __init__ is this one line
        self.api = _EngineAPI(**kwargs)


def connect(timeout_s: float = DEFAULT_TIMEOUT_S, environ: dict[str, str] | None = None) -> docker.DockerClient:
    """The engine `docker` would use (harness.stack.reach): DOCKER_HOST and its TLS variables as
    the SDK reads them, else the current Docker context (remote over TLS or SSH included)."""
    from harness.stack.reach import engine_address

    engine = engine_address(environ)
    try:
        if engine.source in ("DOCKER_HOST", "default"):
            kwargs = docker.utils.kwargs_from_env(environment=environ)
        else:
            kwargs = {"base_url": engine.host, "tls": engine.tls}
        if str(kwargs.get("base_url", "")).startswith("ssh://"):
            kwargs["use_ssh_client"] = _ssh_client()
        client = EngineClient(timeout=int(timeout_s), **kwargs)
        client.ping()
    except (DockerException, requests.exceptions.RequestException) as exc:
        raise DockerUnavailable(f"no Docker engine answers at {engine.host} ({engine.source}): {exc}; "
                                f"{HOW_TO_FIX}") from exc
    return client


def _ssh_client() -> bool:
    """An `ssh://` engine is reached through the machine's own `ssh` (as the docker CLI does:
    the user's ~/.ssh/config, agent, known hosts and ProxyJump apply), running `docker system
    dial-stdio` on the remote host; the SDK's paramiko transport is not installed."""
    import shutil

    if shutil.which("ssh") is None:
        raise DockerUnavailable("an ssh:// engine needs the OpenSSH client (`ssh`) on this machine: "
                                "install openssh-client")
    return True


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
