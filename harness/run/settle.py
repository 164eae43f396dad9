"""Is a reused stack back to its steady state? Checked between trials on one stack.

A trial leaves the stack as the faults left it once reverted: a killed Redis primary restarted
as a replica, an app replica just back. The next trial's baseline must not measure the end of
the last one's recovery, so before it starts, everything the target declares must hold, twice,
`STABLE_S` apart (one good look can be a flicker):

* every instance is running, and healthy when it has a Docker health check;
* the run's Toxiproxy has every proxy enabled and no toxic left;
* every role resolves to running instances (e.g. Sentinel names a primary that answers), and
  has converged (harness.target.convergence: no old primary still awaiting its demotion);
* every entry point answers HTTP without a server error (any status below 500);
* then, given a `probe` (the trials pass `steady_probe`): a few seconds of the experiment's own
  load meet its steady state. The checks above are necessary, not sufficient: a stack whose
  containers are all up can still be failing writes (a replica not yet re-attached), and only
  traffic shows it.

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
    from harness.target.convergence import unconverged
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
        if not out:     # resolving is not converging: an old primary may still await demotion
            out.extend(unconverged(ctx, stack.target.roles))
        try:
            urls = stack.endpoints()
        except Exception as exc:  # noqa: BLE001 - an entry point that cannot be found is not settled
            return out + [f"entry points: {type(exc).__name__}: {exc}"]
        for url in urls:
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


PROBE_S = 5.0           # load per probe, after a 1 s warm-up that is not judged
PROBE_USERS = 10


def steady_probe(stack: Any, experiment: Any, seconds: float = PROBE_S) -> str:
    """'' when `seconds` of the experiment's own load profile (at most PROBE_USERS users) meet
    its availability bar (steady_state's, else the SLO's, else 99%); else why not."""
    from harness.load.runner import LoadGenerator
    from harness.measure.recovery import recovery_bar as recovery_threshold
    from harness.run.orchestrator import _endpoints

    bar = recovery_threshold(tuple(experiment.steady_state) + tuple(experiment.slo))
    endpoints = _endpoints(stack, experiment)
    users = min(experiment.load.users, PROBE_USERS)
    samples = []
    with LoadGenerator(experiment.target.load_profile, experiment.load.profile, host=endpoints[0], users=users,
                       spawn_rate=users, request_timeout_s=experiment.load.request_timeout_s,
                       max_duration_s=seconds + 30, env={"CONTINUUM_ENDPOINTS": ",".join(endpoints)}) as load:
        t0 = load.t_start or time.monotonic()
        while time.monotonic() < t0 + 1.0 + seconds:
            samples.extend(load.poll())
            time.sleep(0.1)
        load.stop()
        samples.extend(load.poll_final())
    judged = [x for x in samples if x.t >= t0 + 1.0]
    if not judged:
        return "probe: no request answered"
    ok = sum(1 for x in judged if x.ok) / len(judged)
    return "" if bar.holds(ok) else f"probe: availability {ok * 100:.2f}% over {seconds:g} s, needs {bar.text}"


def settle(stack: Any, *, timeout_s: float = TIMEOUT_S, stable_s: float = STABLE_S,
           check: Callable[[Any], list[str]] = problems, probe: Callable[[Any], str] | None = None,
           clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> Settled:
    """Wait until `check(stack)` is empty twice, `stable_s` apart, and then `probe(stack)` (if
    any) says nothing is wrong, or until `timeout_s` passes."""
    start = clock()
    first_good: float | None = None
    last: list[str] = []
    probed = ""                 # the last probe's complaint, said if time runs out after it
    while True:
        now = clock()
        last = check(stack)
        if not last:
            if first_good is None:
                first_good = now
            elif now - first_good >= stable_s:
                why = probe(stack) if probe is not None else ""
                if not why:
                    return Settled(True, clock() - start)
                probed, first_good = why, None
        else:
            first_good = None
        if now - start >= timeout_s:
            return Settled(False, now - start, "; ".join(last) or probed or "not stable")
        sleep(min(0.5, stable_s) if first_good is None else stable_s)
