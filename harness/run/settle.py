"""Is a reused stack back to its steady state? Checked between trials on one stack.

A trial leaves the stack as the faults left it once reverted: a killed Redis primary restarted
as a replica, an app replica just back. The next trial's baseline must not measure the end of
the last one's recovery, so before it starts, everything the target declares must hold, twice,
`STABLE_S` apart (one good look can be a flicker):

* every instance is running, and healthy when it has a Docker health check;
* the run's Toxiproxy has every proxy enabled and no toxic left;
* every role resolves to running instances (e.g. Sentinel names a primary that answers);
* every entry point answers HTTP without a server error (any status below 500).

Bounded: `settle()` gives up after `timeout_s` and says what did not hold; the caller then
replaces the stack with a fresh one rather than measure a system that has not come back.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, Callable

from harness.errors import HarnessError

STABLE_S = 2.0
TIMEOUT_S = 60.0
HTTP_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class Settled:
    ok: bool
    seconds: float
    why: str = ""               # what still did not hold when it gave up


def problems(stack: Any) -> list[str]:
    """What does not hold right now (empty: settled at this instant)."""
    from harness.faults.base import FaultContext
    from harness.target.roles import resolve_role

    out: list[str] = []
    for ref in stack.instances():
        c = stack.container(ref.name)
        try:
            c.reload()
        except Exception as exc:  # noqa: BLE001 - a vanished container is a finding, not a crash
            out.append(f"{ref.name}: {type(exc).__name__}")
            continue
        state = c.attrs.get("State", {})
        health = (state.get("Health") or {}).get("Status")
        if state.get("Status") != "running":
            out.append(f"{ref.name} is {state.get('Status')}")
        elif health not in (None, "healthy"):
            out.append(f"{ref.name} is {health}")
    tp = getattr(stack, "toxiproxy", None)
    if tp is not None:
        try:
            for name, proxy in tp.proxies().items():
                if not proxy.get("enabled", True):
                    out.append(f"link {name} is disabled")
                if proxy.get("toxics"):
                    out.append(f"link {name} still has toxics")
        except HarnessError as exc:
            out.append(f"toxiproxy: {exc}")
    if not out:     # roles and entry points only mean something once every instance is up
        ctx = FaultContext(stack=stack, run_id=stack.run_id)
        for role in stack.target.roles:
            try:
                if not resolve_role(ctx, role):
                    out.append(f"role {role.name} has no member")
            except HarnessError as exc:
                out.append(f"role {role.name}: {exc}")
        for url in stack.endpoints():
            why = _answers(url)
            if why:
                out.append(why)
    return out


def _answers(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT_S) as resp:
            status = resp.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (OSError, ValueError) as exc:
        return f"{url}: {type(exc).__name__}"
    return f"{url}: HTTP {status}" if status >= 500 else ""


def settle(stack: Any, *, timeout_s: float = TIMEOUT_S, stable_s: float = STABLE_S,
           check: Callable[[Any], list[str]] = problems, clock: Callable[[], float] = time.monotonic,
           sleep: Callable[[float], None] = time.sleep) -> Settled:
    """Wait until `check(stack)` is empty twice, `stable_s` apart, or `timeout_s` passes."""
    start = clock()
    first_good: float | None = None
    last: list[str] = []
    while True:
        now = clock()
        last = check(stack)
        if not last:
            if first_good is None:
                first_good = now
            elif now - first_good >= stable_s:
                return Settled(True, now - start)
        else:
            first_good = None
        if now - start >= timeout_s:
            return Settled(False, now - start, "; ".join(last) or "not stable")
        sleep(min(0.5, stable_s) if first_good is None else stable_s)
