"""Have the target's roles converged? Asked before the final read-back and between trials.

    why = unconverged(ctx, target.roles)         # [] once every role has converged
    c = wait_converged(ctx, target.roles, timeout_s=60)

A role can *resolve* while the system is still converging. After a partition heals, Sentinel
names the promoted primary at once, but the old primary still believes it is one: Sentinel
notices only when the old primary's INFO (every 10 s) reports it a master, and demotes it 8 s
later, discarding every write it acknowledged alone. A read-back before that demotion finds
those writes and the loss is never seen. Measured on the fragile twin, a 15 s partition of the
primary under 100 requests/s: read back 10 s after the heal, 0 writes lost in 2 runs; read
back 25 s after it, 758 lost. Jepsen's final reads come after the cluster has healed and
recovered for the same reason.

Converged means, per provider:

* Sentinel (either role of one master group, asked once): every running Sentinel names the
  same master, with no down flag and no failover in progress; every replica it lists that is an
  instance of the target is not down and is a replica of that master with its link up. The
  replica is asked itself (`redis-cli ROLE`: `slave`, the master, `connected`), because
  Sentinel's copy of it (`role-reported`, `master-link-status`) is refreshed only every 10 s;
  where the instance cannot answer (no redis-cli in its image, no REDISCLI_AUTH) Sentinel's copy
  is used. A replica entry whose address is no instance of the target is a stale one Sentinel
  keeps forever, and is left out.
* probe roles (http, exec, tcp): at least one running instance holds the role.
* static roles: always.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from harness.errors import HarnessError
from harness.model.roles import RoleSpec
from harness.target.roles import probe_once, running

TIMEOUT_S = 60.0        # Sentinel's worst case here is ~20 s (INFO period 10 s + 8 s); 3x that
POLL_S = 0.5
EXEC_TIMEOUT_S = 5.0
_DOWN = ("s_down", "o_down", "disconnected", "failover_in_progress", "promoted")


@dataclass(frozen=True)
class Converged:
    ok: bool
    seconds: float
    why: str = ""           # what still had not converged when it gave up


def _records(out: str) -> list[dict[str, str]]:
    """redis-cli's flat key/value lines (no TTY) as records; a record starts at each `name`."""
    lines = [x.strip() for x in out.splitlines()]
    out_: list[dict[str, str]] = []
    for i in range(0, len(lines) - 1, 2):
        key, value = lines[i], lines[i + 1]
        if key == "name" or not out_:
            out_.append({})
        out_[-1][key] = value
    return out_


class _Once:
    """A value computed by the first thread that asks; the others wait for it."""

    def __init__(self, fn: Callable[[], Any]):
        self._fn, self._lock, self._done, self._value = fn, threading.Lock(), False, None

    def get(self) -> Any:
        with self._lock:
            if not self._done:
                self._value, self._done = self._fn(), True
            return self._value


def _sentinel_view(ctx: Any, role: RoleSpec, sentinel: str, instances: dict[str, str],
                   asked: dict[str, _Once], asked_lock: threading.Lock) -> tuple[str, str]:
    """(master as ip:port, '' when converged in this Sentinel's view, else why not)."""
    base = ["redis-cli", "-p", str(role.port), "SENTINEL"]
    code, out = ctx.instance(sentinel).exec([*base, "master", role.master_name], timeout_s=EXEC_TIMEOUT_S)
    recs = _records(out) if code == 0 else []
    if not recs or "ip" not in recs[0]:
        return "", f"{sentinel}: SENTINEL master {role.master_name} gave {out.strip()[:120] or f'exit {code}'}"
    m = recs[0]
    master = f"{m['ip']}:{m.get('port', '')}"
    flags = set(m.get("flags", "").split(","))
    if flags & set(_DOWN):
        return master, f"{sentinel}: master {instances.get(m['ip'], m['ip'])} is {m.get('flags')}"
    code, out = ctx.instance(sentinel).exec([*base, "replicas", role.master_name], timeout_s=EXEC_TIMEOUT_S)
    if code != 0:
        return master, f"{sentinel}: SENTINEL replicas {role.master_name} exited {code}"
    for r in _records(out):
        name = instances.get(r.get("ip", ""))
        if name is None:
            continue                        # an address of no instance: a stale entry
        if set(r.get("flags", "").split(",")) & set(_DOWN):
            return master, f"{sentinel}: replica {name} is {r.get('flags')}"
        # One ROLE per replica per look, not one per Sentinel (the Sentinels are asked at once).
        with asked_lock:
            once = asked.setdefault(name, _Once(lambda n=name, port=r.get("port", "6379"): _role_of(ctx, n, port)))
        direct = once.get()
        if direct is not None:          # the instance's own word: Sentinel's copy lags ~10 s
            said, host, link = direct
            if said != "slave":
                return master, f"{name} still answers ROLE {said}"
            if instances.get(host) != instances.get(m["ip"]) or link != "connected":
                return master, f"{name} replicates from {host} ({link}), not yet from the master"
            continue
        if r.get("role-reported") != "slave":
            return master, f"{sentinel}: {name} still reports itself {r.get('role-reported')}"
        if r.get("master-link-status") != "ok":
            return master, f"{sentinel}: {name}'s link to the master is {r.get('master-link-status')}"
        if f"{r.get('master-host')}:{r.get('master-port')}" != master:
            return master, (f"{sentinel}: {name} replicates from {r.get('master-host')}:"
                            f"{r.get('master-port')}, not the master")
    return master, ""


def _role_of(ctx: Any, name: str, port: str) -> tuple[str, str, str] | None:
    """(role, master host, link state) from `redis-cli ROLE` in the instance itself; None when
    it cannot say (no redis-cli there, no password in its environment): Sentinel's view then."""
    try:
        code, out = ctx.instance(name).exec(["redis-cli", "-p", port, "ROLE"], timeout_s=EXEC_TIMEOUT_S)
    except HarnessError:
        return None
    words = out.split()
    if code != 0 or not words or words[0] not in ("master", "slave"):
        return None
    if words[0] == "master":
        return "master", "", ""
    return "slave", words[1] if len(words) > 1 else "", words[3] if len(words) > 3 else ""


def _addresses(ctx: Any) -> dict[str, str]:
    """Every way Sentinel may name an instance (its name, with announce-hostnames, or an
    address) → the instance."""
    out: dict[str, str] = {}
    for name in ctx.target.instance_names():
        out[name] = name
        try:
            for ip in ctx.instance(name).ips():
                out[ip] = name
        except HarnessError:
            continue
    return out


def _sentinel_unconverged(ctx: Any, role: RoleSpec) -> str:
    assert role.service is not None
    sentinels = running(ctx, ctx.target.service(role.service).instance_names())
    if not sentinels:
        return f"role {role.name}: no Sentinel of {role.service} is running"
    instances = _addresses(ctx)
    asked: dict[str, _Once] = {}
    asked_lock = threading.Lock()

    def view(s: str) -> tuple[str, str]:
        try:
            return _sentinel_view(ctx, role, s, instances, asked, asked_lock)
        except HarnessError as exc:
            return "", f"{s}: {exc}"

    with ThreadPoolExecutor(max_workers=len(sentinels)) as pool:
        views = list(pool.map(view, sentinels))
    for _master, why in views:
        if why:
            return f"role {role.name}: {why}"
    masters = {m for m, _ in views}
    if len(masters) > 1:
        return f"role {role.name}: the Sentinels name different masters ({', '.join(sorted(masters))})"
    return ""


def unconverged(ctx: Any, roles: Sequence[RoleSpec]) -> list[str]:
    """Why the roles have not converged right now; empty when they have."""
    out: list[str] = []
    asked: set[tuple[str | None, str | None, int]] = set()
    for role in roles:
        if role.kind == "static":
            continue
        if role.kind.startswith("sentinel"):
            group = (role.service, role.master_name, role.port)
            if group in asked:          # the primary and replicas roles of one group: one look
                continue
            asked.add(group)
            why = _sentinel_unconverged(ctx, role)
        else:
            try:
                holders, _said = probe_once(ctx, role)
                why = "" if holders else f"role {role.name}: no instance holds it"
            except HarnessError as exc:
                why = f"role {role.name}: {exc}"
        if why:
            out.append(why)
    return out


def wait_converged(ctx: Any, roles: Sequence[RoleSpec], *, timeout_s: float = TIMEOUT_S,
                   poll_s: float = POLL_S, clock: Callable[[], float] = time.monotonic,
                   sleep: Callable[[float], None] = time.sleep,
                   check: Callable[[Any, Sequence[RoleSpec]], list[str]] = unconverged) -> Converged:
    """Ask until every role has converged or `timeout_s` has passed."""
    start = clock()
    while True:
        why = check(ctx, roles)
        now = clock()
        if not why:
            return Converged(True, now - start)
        if now - start + poll_s > timeout_s:
            return Converged(False, now - start, "; ".join(why))
        sleep(poll_s)


__all__ = ["Converged", "unconverged", "wait_converged", "TIMEOUT_S"]
