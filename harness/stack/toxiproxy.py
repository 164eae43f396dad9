"""The run's Toxiproxy, through toxiproxy-python.

toxiproxy-python keeps the server address in class attributes of `APIConsumer` and sends no
timeouts; we give each client its own `APIConsumer` subclass (so two servers never share an
address) and pass a timeout on every call (its methods forward keyword arguments to requests).
We use its transport and its error mapping (409 → ProxyExists, 404 → NotFound,
400 → InvalidToxic) and nothing global: never `/reset`, which would hit every proxy at once.

A proxy is enabled when the faults want it (`set_enabled`) *and* nothing holds it down
(`hold`): the stack holds down the links to an upstream that stopped (harness.stack.links), so
a link-down fault and a killed upstream compose, and neither undoes the other.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

import requests
from toxiproxy.api import APIConsumer
from toxiproxy.exceptions import InvalidToxic, NotFound, ProxyExists

from harness.errors import ToxiproxyError

if TYPE_CHECKING:
    from harness.faults.network import Toxic

CALL_TIMEOUT_S = 5.0


class ToxiproxyClient:
    def __init__(self, host: str, port: int, timeout_s: float = CALL_TIMEOUT_S):
        self.address = f"{host}:{port}"
        self.timeout_s = timeout_s
        self._api = type("RunAPIConsumer", (APIConsumer,), {"host": host, "port": port})
        self._wanted: dict[str, bool] = {}          # proxy → what the faults asked for
        self._holds: dict[str, set[str]] = {}       # proxy → reasons it is held down
        self._posted: dict[str, bool] = {}          # proxy → last state sent to the server
        self._state = threading.Lock()

    # One place turns transport trouble into a clear harness error instead of a hang.
    def _call(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        try:
            response = getattr(self._api, method)(url, timeout=self.timeout_s, **kwargs)
        except (ProxyExists, NotFound, InvalidToxic) as exc:
            raise ToxiproxyError(f"Toxiproxy at {self.address} refused {method.upper()} {url}: {exc}") from exc
        except requests.Timeout as exc:
            raise ToxiproxyError(
                f"Toxiproxy at {self.address} did not answer {method.upper()} {url} within {self.timeout_s:.0f} s"
            ) from exc
        except requests.RequestException as exc:
            raise ToxiproxyError(f"Toxiproxy at {self.address} is unreachable ({type(exc).__name__}): {exc}") from exc
        if response.status_code >= 400:
            raise ToxiproxyError(
                f"Toxiproxy at {self.address}: {method.upper()} {url} → {response.status_code} {response.text[:200]}"
            )
        return response

    def wait_ready(self, timeout_s: float = 15.0) -> str:
        deadline = time.monotonic() + timeout_s
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                return self._call("get", "/version").text.strip()
            except ToxiproxyError as exc:
                last = exc
                time.sleep(0.1)
        raise ToxiproxyError(f"Toxiproxy at {self.address} not ready after {timeout_s:.0f} s: {last}")

    def proxies(self) -> dict[str, dict]:
        return self._call("get", "/proxies").json()

    def proxy(self, name: str) -> dict:
        return self._call("get", f"/proxies/{name}").json()

    def create_proxy(self, name: str, listen: str, upstream: str) -> dict:
        return self._call(
            "post", "/proxies", json={"name": name, "listen": listen, "upstream": upstream, "enabled": True}
        ).json()

    def set_enabled(self, name: str, enabled: bool) -> float:
        """What a fault wants. Returns when the change took effect, before the read-back: the
        middle of the POST, the best estimate of when the server acted on it (or now, when a
        hold keeps the proxy as it already is)."""
        with self._state:
            self._wanted[name] = enabled
            t, effective = self._sync(name)
        if self.proxy(name)["enabled"] is not effective:  # read back: a revert is only done when seen
            raise ToxiproxyError(f"proxy {name} did not become enabled={effective}")
        return t

    def hold(self, name: str, reason: str) -> float:
        """Keep the proxy disabled for `reason` until `release(name, reason)`."""
        with self._state:
            self._holds.setdefault(name, set()).add(reason)
            return self._sync(name)[0]

    def release(self, name: str, reason: str) -> float:
        with self._state:
            self._holds.get(name, set()).discard(reason)
            return self._sync(name)[0]

    def held(self, name: str) -> frozenset[str]:
        with self._state:
            return frozenset(self._holds.get(name, ()))

    def _sync(self, name: str) -> tuple[float, bool]:
        effective = self._wanted.get(name, True) and not self._holds.get(name)
        if self._posted.get(name, True) is effective:
            return time.monotonic(), effective
        t_sent = time.monotonic()
        self._call("post", f"/proxies/{name}", json={"enabled": effective})
        self._posted[name] = effective
        return (t_sent + time.monotonic()) / 2, effective

    def add_toxic(self, proxy: str, toxic_name: str, toxic: "Toxic") -> float:
        t_sent = time.monotonic()
        self._call(
            "post",
            f"/proxies/{proxy}/toxics",
            json={
                "name": toxic_name,
                "type": toxic.type,
                "stream": toxic.stream,
                "toxicity": toxic.toxicity,
                "attributes": dict(toxic.attributes),
            },
        )
        return (t_sent + time.monotonic()) / 2

    def toxic_names(self, proxy: str) -> set[str]:
        return {t["name"] for t in self._call("get", f"/proxies/{proxy}/toxics").json()}

    def remove_toxic(self, proxy: str, toxic_name: str) -> float:
        """Returns when the removal took effect (middle of the DELETE), before the read-back."""
        t_sent = time.monotonic()
        try:
            self._call("delete", f"/proxies/{proxy}/toxics/{toxic_name}")
        except ToxiproxyError as exc:
            if not isinstance(exc.__cause__, NotFound):
                raise
        t = (t_sent + time.monotonic()) / 2
        if toxic_name in self.toxic_names(proxy):
            raise ToxiproxyError(f"toxic {toxic_name} on {proxy} is still there after removal")
        return t
