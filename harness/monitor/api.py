"""JSON over HTTP with a timeout on every call, and the one place transport trouble becomes a
`MonitorError` (the Prometheus and Alertmanager clients are thin layers over this).

`parse_rfc3339` reads the APIs' timestamps as a `MonitorError` when malformed (the clocks
themselves are `harness.timestamps`).
"""

from __future__ import annotations

import threading
from typing import Any

import requests

from harness.errors import MonitorError
from harness.timestamps import parse_rfc3339 as _parse

CALL_TIMEOUT_S = 2.0
MAX_BODY = 8 * 1024 * 1024          # an answer larger than this is refused, not parsed


class JsonApi:
    """GET JSON from `base_url` (http://127.0.0.1:PORT), each call bounded by `timeout_s`."""

    def __init__(self, name: str, base_url: str, timeout_s: float = CALL_TIMEOUT_S):
        self.name = name                # "Prometheus", "Alertmanager": said in every error
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self._local = threading.local()         # a Session per thread: probes run in their own
        self._sessions: list[requests.Session] = []
        self._lock = threading.Lock()

    @property
    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
            with self._lock:
                self._sessions.append(session)
        return session

    def close(self) -> None:
        with self._lock:
            sessions, self._sessions = self._sessions, []
        for session in sessions:
            session.close()

    def get(self, path: str, params: dict[str, Any] | None = None, *,
            timeout_s: float | None = None) -> requests.Response:
        url = f"{self.base_url}{path}"
        limit = timeout_s if timeout_s is not None else self.timeout_s
        try:
            response = self._session.get(url, params=params, timeout=limit)
        except requests.Timeout as exc:
            raise MonitorError(f"{self.name} at {self.base_url} did not answer GET {path} "
                               f"within {limit:g} s") from exc
        except requests.RequestException as exc:
            raise MonitorError(f"{self.name} at {self.base_url} is unreachable "
                               f"({type(exc).__name__}): {_first_line(exc)}") from exc
        if len(response.content) > MAX_BODY:
            raise MonitorError(f"{self.name}: GET {path} answered {len(response.content)} bytes, "
                               f"more than {MAX_BODY}")
        return response

    def get_json(self, path: str, params: dict[str, Any] | None = None, *,
                 timeout_s: float | None = None, ok: tuple[int, ...] = (200,)) -> Any:
        response = self.get(path, params, timeout_s=timeout_s)
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code not in ok:
            detail = _error_text(body) or response.text[:200].strip()
            raise MonitorError(f"{self.name}: GET {path} → {response.status_code} {detail}")
        if body is None:
            raise MonitorError(f"{self.name}: GET {path} did not answer JSON: "
                               f"{response.text[:120]!r}")
        return body

    def ready(self, path: str = "/-/ready") -> bool:
        """True when the server says it is ready; False when it answers anything else or not."""
        try:
            return self.get(path).status_code == 200
        except MonitorError:
            return False


def _error_text(body: Any) -> str:
    if isinstance(body, dict):
        return str(body.get("error") or body.get("message") or "")[:300]
    return ""


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


def parse_rfc3339(text: Any) -> float:
    """An API's RFC 3339 timestamp → Unix seconds; MonitorError when malformed."""
    try:
        return _parse(text)
    except ValueError as exc:
        raise MonitorError(str(exc)) from None
