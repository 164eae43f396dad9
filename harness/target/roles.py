"""Roles resolved when a fault fires: which instances hold a role right now, and how we know.

    answer = resolve_role(ctx, role)       # RoleAnswer(role, holders, how)

Providers (declared in `x-continuum.roles`, see `harness.model.roles`):

* `http` / `tcp`: each running instance is asked at its own address, all at once; `http`
  decides by the status and/or a JSON field of the answer, `tcp` by a connection being accepted;
* `exec`: a command in each running instance; exit code and/or output decide;
* Redis Sentinel (`sentinel-primary`, `sentinel-replicas`): each live Sentinel is asked in turn,
  since one may be what an earlier fault killed;
* `static`: the members written in the file.

A live role with no holder (an election in progress) is asked again until `wait` has passed;
then the fault fails, which is the harness's failure to apply it (ERROR), not the system's.
The answer says who held the role and what each instance said; the fault's journal entry and
report carry it (`RoleAnswer.text`).
"""

from __future__ import annotations

import json
import re
import socket
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from harness.errors import FaultError, HarnessError
from harness.model.roles import ExecProbe, HttpProbe, RoleSpec, TcpProbe
from harness.target.jsonpath import field

EXEC_TIMEOUT_S = 5.0
POLL_S = 0.25
MAX_PARALLEL = 8
MAX_ANSWER = 1024 * 1024


@dataclass(frozen=True)
class RoleAnswer:
    role: str
    holders: tuple[str, ...]
    how: str                        # what was asked and what each instance said

    def text(self) -> str:
        who = ", ".join(self.holders) or "nobody"
        return f"role {self.role}: {who} ({self.how})"


def running(ctx: Any, instances: tuple[str, ...]) -> list[str]:
    out = []
    for n in instances:
        try:
            if ctx.instance(n).status() == "running":
                out.append(n)
        except HarnessError:
            continue
    return out


# ─────────────────────────────────────── probes ───────────────────────────────────────


def _same(a: Any, b: Any) -> bool:
    """JSON values compare as written: 1 == "1" for ids that one API quotes and another not."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    return a == b or str(a) == str(b)


def ask_http(probe: HttpProbe, addresses: list[str]) -> tuple[bool, str]:
    """(holds, what it said) for one instance, trying its addresses in turn."""
    said = "no address"
    for ip in addresses:
        url = f"http://{ip}:{probe.port}{probe.path}"
        data = probe.body.encode() if probe.body is not None else None
        req = urllib.request.Request(url, data=data, method=probe.method,
                                     headers={"Content-Type": "application/json"} if data else {})
        try:
            with urllib.request.urlopen(req, timeout=probe.timeout_s) as resp:
                status, body = resp.status, resp.read(MAX_ANSWER)
        except urllib.error.HTTPError as exc:
            status, body = exc.code, exc.read(MAX_ANSWER) if exc.fp else b""
        except (OSError, urllib.error.URLError) as exc:
            said = f"{type(getattr(exc, 'reason', exc)).__name__}"
            continue
        ok_status = status in probe.status if probe.status else \
            (200 <= status < 300 if probe.field is not None else status == 200)
        if not ok_status or probe.field is None:
            return ok_status, str(status)
        try:
            doc = json.loads(body)
            value = field(doc, probe.field)
            want = probe.equals if probe.equals_field is None else field(doc, probe.equals_field)
        except (ValueError, KeyError) as exc:
            return False, f"{status}, no {exc}" if isinstance(exc, KeyError) else f"{status}, not JSON"
        holds = _same(value, want if want is not None else True)
        return holds, f"{status}, {probe.field}={value!r}"
    return False, said


def ask_tcp(probe: TcpProbe, addresses: list[str]) -> tuple[bool, str]:
    said = "no address"
    for ip in addresses:
        try:
            with socket.create_connection((ip, probe.port), timeout=probe.timeout_s):
                return True, "accepted"
        except OSError as exc:
            said = type(exc).__name__
    return False, said


def ask_exec(probe: ExecProbe, handle: Any) -> tuple[bool, str]:
    try:
        code, out, _err = handle.run(list(probe.argv), timeout_s=probe.timeout_s)
    except HarnessError as exc:
        return False, f"exec failed: {exc}"
    if code != probe.exit_code:
        return False, f"exit {code}"
    if probe.output_matches is not None:
        m = re.search(probe.output_matches, out[:MAX_ANSWER], re.MULTILINE)
        return m is not None, f"exit {code}, {'matched' if m else 'no match'}"
    return True, f"exit {code}"


def probe_once(ctx: Any, role: RoleSpec) -> tuple[list[str], dict[str, str]]:
    names = running(ctx, role.members)
    probe = role.probe

    def ask(name: str) -> tuple[str, bool, str]:
        handle = ctx.instance(name)
        if isinstance(probe, ExecProbe):
            holds, said = ask_exec(probe, handle)
        else:
            try:
                addresses = handle.ips()
            except HarnessError as exc:
                return name, False, f"no address ({exc})"
            holds, said = (ask_http(probe, addresses) if isinstance(probe, HttpProbe)
                           else ask_tcp(probe, addresses))  # type: ignore[arg-type]
        return name, holds, said

    said: dict[str, str] = {n: "not running" for n in role.members if n not in names}
    holders: list[str] = []
    if names:
        with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL, len(names))) as pool:
            for name, holds, what in pool.map(ask, names):
                said[name] = what
                if holds:
                    holders.append(name)
    return sorted(holders), said


def _probe(ctx: Any, role: RoleSpec) -> RoleAnswer:
    assert role.probe is not None
    deadline = time.monotonic() + role.wait_s
    while True:
        holders, said = probe_once(ctx, role)
        how = f"{role.probe.describe()}: " + "; ".join(f"{n} {said[n]}" for n in role.members)
        if holders:
            return RoleAnswer(role.name, tuple(holders), how)
        if time.monotonic() + POLL_S > deadline:
            raise FaultError(f"role {role.name}: no instance held it within {role.wait_s:g} s "
                             f"({how})")
        time.sleep(POLL_S)


# ─────────────────────────────────────── Sentinel ───────────────────────────────────────


def _not_sentinel(code: int, out: str) -> bool:
    text = out.lower()
    return ("unknown command" in text or ("err" in text and "sentinel" in text)
            or code in (126, 127) or "executable file not found" in text)


def _ask_sentinel(ctx: Any, role: RoleSpec, sentinel: str, argv: list[str]) -> str:
    code, out = ctx.instance(sentinel).exec(argv, timeout_s=EXEC_TIMEOUT_S)
    if _not_sentinel(code, out):
        raise FaultError(f"role {role.name}: {sentinel} does not answer as Redis Sentinel on port "
                         f"{role.port} ({out.strip()[:120] or f'exit {code}'}); is service "
                         f"{role.service!r} a Sentinel?")
    if code != 0:
        raise FaultError(f"{' '.join(argv)} in {sentinel} exited {code}: {out[:200]}")
    return out


def _sentinel_once(ctx: Any, role: RoleSpec) -> RoleAnswer:
    assert role.service is not None and role.master_name is not None
    instances = set(ctx.target.instance_names())
    last_error: Exception | None = None
    for sentinel in running(ctx, ctx.target.service(role.service).instance_names()):
        try:
            if role.kind == "sentinel-primary":
                out = _ask_sentinel(ctx, role, sentinel, [
                    "redis-cli", "-p", str(role.port), "SENTINEL", "get-master-addr-by-name",
                    role.master_name])
                _check_answer(role, sentinel, out)
                words = out.split()
                holder = _instance_of(ctx, words[0] if words else "", instances)
                return RoleAnswer(role.name, (holder,),
                                  f"{sentinel}: SENTINEL get-master-addr-by-name "
                                  f"{role.master_name} → {' '.join(words[:2])}")
            out = _ask_sentinel(ctx, role, sentinel, ["redis-cli", "-p", str(role.port),
                                                      "SENTINEL", "replicas", role.master_name])
            _check_answer(role, sentinel, out)
            words = out.split()
            holders = sorted(_instance_of(ctx, words[i + 1], instances)
                             for i, word in enumerate(words[:-1]) if word == "ip")
            return RoleAnswer(role.name, tuple(holders),
                              f"{sentinel}: SENTINEL replicas {role.master_name}")
        except HarnessError as exc:
            if "does not answer as Redis Sentinel" in str(exc):
                raise
            last_error = exc
    raise FaultError(f"could not resolve role {role.name}: no sentinel answered ({last_error})")


def _check_answer(role: RoleSpec, sentinel: str, out: str) -> None:
    if role.kind == "sentinel-primary" and out.strip() in ("", "(nil)"):
        raise FaultError(f"role {role.name}: Sentinel {sentinel} knows no master named "
                         f"{role.master_name!r}")


def _sentinel(ctx: Any, role: RoleSpec) -> RoleAnswer:
    deadline = time.monotonic() + role.wait_s
    while True:
        try:
            return _sentinel_once(ctx, role)
        except FaultError as exc:
            if "does not answer as Redis Sentinel" in str(exc) or time.monotonic() + POLL_S > deadline:
                raise
        time.sleep(POLL_S)


def _instance_of(ctx: Any, host: str, instances: set[str]) -> str:
    if host in instances:
        return host
    # Sentinel may report an address instead of a name: map it back through the instances.
    if re.fullmatch(r"[0-9.]{7,15}", host):
        for name in sorted(instances):
            if host in ctx.instance(name).ips():
                return name
    raise FaultError(f"role answer {host!r} is not an instance of the target")


# ─────────────────────────────────────── entry points ───────────────────────────────────────


def resolve_role(ctx: Any, role: RoleSpec) -> RoleAnswer:
    if role.kind == "static":
        return RoleAnswer(role.name, role.members, "fixed in the file")
    if role.kind.startswith("sentinel"):
        return _sentinel(ctx, role)
    return _probe(ctx, role)


def roles_used(experiment: Any) -> list[str]:
    """The roles an experiment's faults name (anywhere in their fields)."""
    names = {r.name for r in experiment.target.roles}
    found: set[str] = set()

    def walk(v: Any) -> None:
        if isinstance(v, str) and v in names:
            found.add(v)
        elif isinstance(v, dict):
            for x in v.values():
                walk(x)
        elif isinstance(v, (list, tuple)):
            for x in v:
                walk(x)

    for f in experiment.faults:
        walk(f.model_dump(exclude={"name", "action"}))
    return sorted(found)


def check_roles(ctx: Any, names: list[str]) -> list[RoleAnswer]:
    """Resolve each role once when the stack is up, so a role declared wrong (a Sentinel that
    is not one, a probe on the wrong port) stops the run before load, as a harness error."""
    out = []
    for name in names:
        role = ctx.target.role(name)
        if role is None or role.kind == "static":
            continue
        try:
            answer = resolve_role(ctx, role)
        except FaultError as exc:
            raise HarnessError(f"role {name} cannot be resolved on the running stack: {exc}") \
                from None
        out.append(answer)
        if getattr(ctx, "on_role", None) is not None:
            ctx.on_role(answer)
    return out
