"""The durability read-back: what the system holds once load has stopped.

    snapshot = read_back(target.durability, stack, endpoints)    # never raises a read failure

One adapter per source a target declares (`harness.model.durability`): `http` (an entry point,
or instances directly at their own address, paged or not), `exec` (a command in an instance)
and `function` (a Python function of the target, run in a child process so that whatever it
imports, gevent included, stays out of the orchestrator). The answer is then reduced to the ids
(`ids`, `match`) and the named invariants. A read-back that does not answer within its timeout
leaves the ids (or the invariant) unknown, never empty: Jepsen's `:unknown` without a final
read.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Callable, Sequence

from harness.errors import HarnessError
from harness.model.durability import DurabilitySpec, InvariantSpec, ReadSpec
from harness.model.record import AuditSnapshot, InvariantReading
from harness.target.jsonpath import MissingField, field

CALL_TIMEOUT_S = 5.0
RETRY_S = 0.5
MAX_BODY = 256 * 1024 * 1024        # a read-back larger than this is refused, not swallowed
MAX_IDS = 10_000_000


class ReadbackFailed(Exception):
    """The read-back did not answer (or answered nonsense); durability stays unknown."""


# ─────────────────────────────────────── sources ───────────────────────────────────────


def _json_path(doc: Any, path: str) -> Any:
    try:
        return field(doc, path)
    except MissingField as exc:
        raise ReadbackFailed(f"the answer has no field {path!r} (missing at {exc.part!r})") from None


def _http_get(url: str, method: str, body: str | None, timeout_s: float) -> Any:
    data = body.encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json"} if data else {})
    with urllib.request.urlopen(req, timeout=timeout_s) as resp:
        raw = resp.read(MAX_BODY + 1)
    if len(raw) > MAX_BODY:
        raise ReadbackFailed(f"{url}: the answer is larger than {MAX_BODY} bytes")
    return json.loads(raw)


def _with_param(url: str, name: str, value: Any) -> str:
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    query = [(k, v) for k, v in query if k != name] + [(name, str(value))]
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def _http_pages(base: str, spec: ReadSpec, ids_path: str | None, deadline: float) -> Any:
    """One answer, or every page joined: the ids of all pages, the first page's other fields."""
    h = spec.http
    assert h is not None
    url = base.rstrip("/") + h.path
    timeout = max(0.5, min(CALL_TIMEOUT_S, deadline - time.monotonic()))
    first = _http_get(url, h.method, h.body, timeout)
    if h.page is None:
        return first
    pages, doc = 1, first
    items = list(_ids_of(doc, ids_path))
    while True:
        cursor = _json_path(doc, h.page.next) if _has(doc, h.page.next) else None
        if cursor in (None, "", False):
            break
        if pages >= h.page.max_pages:
            raise ReadbackFailed(f"{url}: more than {h.page.max_pages} pages")
        if time.monotonic() > deadline:
            raise ReadbackFailed(f"{url}: paging did not finish in {h.timeout_s:g} s "
                                 f"({pages} pages read)")
        doc = _http_get(_with_param(url, h.page.param, cursor), h.method, h.body, timeout)
        items.extend(_ids_of(doc, ids_path))
        pages += 1
    if isinstance(first, dict) and ids_path is not None:
        return _replace(first, ids_path, items)
    return items


def _has(doc: Any, path: str) -> bool:
    try:
        _json_path(doc, path)
        return True
    except ReadbackFailed:
        return False


def _replace(doc: dict, path: str, value: Any) -> dict:
    head, _, rest = path.partition(".")
    out = dict(doc)
    out[head] = _replace(out.get(head) or {}, rest, value) if rest else value
    return out


class Reader:
    """Runs one `ReadSpec` against a running stack, retrying until its timeout."""

    def __init__(self, stack: Any, endpoints: Sequence[str], *,
                 sleep: Callable[[float], None] = time.sleep, python: str | None = None):
        self.stack = stack
        self.endpoints = list(endpoints)
        self.sleep = sleep
        self.python = python or sys.executable

    def read(self, spec: ReadSpec, ids_path: str | None = None) -> Any:
        deadline = time.monotonic() + spec.timeout_s
        if spec.kind == "function":
            return self._function(spec, deadline)
        if spec.at_container_addresses and not getattr(self.stack, "engine_local", True):
            # Not even tried: on a remote engine a container's address here is someone else's
            # (measured: the remote suite's read-back went out of the default route and a
            # stranger answered 404). harness.stack.reach said so when the stack came up.
            raise ReadbackFailed(f"{spec.describe()}: asks instances at their container addresses, "
                                 "which this machine cannot reach on a remote engine; use an exec "
                                 "read-back there (docs/remote-engines.md)")
        last = "nothing was asked"
        while True:
            try:
                return self._once(spec, ids_path, deadline)
            except ReadbackFailed as exc:
                last = str(exc)
            if time.monotonic() + RETRY_S > deadline:
                raise ReadbackFailed(f"{spec.describe()}: no answer within {spec.timeout_s:g} s; "
                                     f"last: {last}")
            self.sleep(RETRY_S)

    def _running(self, names: Sequence[str]) -> list[str]:
        out = []
        for n in names:
            try:
                if self.stack.instance(n).status() == "running":
                    out.append(n)
            except HarnessError:
                continue
        return out

    def _once(self, spec: ReadSpec, ids_path: str | None, deadline: float) -> Any:
        errors: list[str] = []
        if spec.kind == "http":
            h = spec.http
            assert h is not None
            bases = self.endpoints if not spec.instances else [
                f"http://{ip}:{h.port}" for n in self._running(spec.instances)
                for ip in self.stack.instance(n).ips()[:1]]
            for base in bases:
                try:
                    return _http_pages(base, spec, ids_path, deadline)
                except (OSError, urllib.error.URLError, ValueError, ReadbackFailed) as exc:
                    errors.append(f"{base}{h.path}: {type(exc).__name__}: {exc}")
        else:
            e = spec.exec
            assert e is not None
            for n in self._running(spec.instances):
                left = max(1.0, min(e.timeout_s, deadline - time.monotonic()))
                try:
                    code, out, err = self.stack.instance(n).run(list(e.argv), timeout_s=left)
                except HarnessError as exc:
                    errors.append(f"{n}: {exc}")
                    continue
                if code != 0:
                    errors.append(f"{n}: exit {code}: {(err or out).strip()[:200]}")
                    continue
                if e.format == "lines":
                    return [line.strip() for line in out.splitlines() if line.strip()]
                try:
                    return json.loads(out)
                except ValueError as exc:
                    errors.append(f"{n}: output is not JSON: {exc}")
        raise ReadbackFailed("; ".join(errors) or "no instance is running to ask")

    def _function(self, spec: ReadSpec, deadline: float) -> Any:
        f = spec.function
        assert f is not None and spec.file is not None
        env = dict(os.environ)
        env["CONTINUUM_ENDPOINTS"] = ",".join(self.endpoints)
        root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        argv = [self.python, "-m", "harness.target.call", str(spec.file), f.name,
                repr(float(f.timeout_s))]
        try:
            proc = subprocess.run(argv, capture_output=True, timeout=f.timeout_s + 10, env=env,
                                  start_new_session=False)
        except subprocess.TimeoutExpired:
            raise ReadbackFailed(f"{spec.describe()} did not return within {f.timeout_s:g} s") \
                from None
        except OSError as exc:
            raise ReadbackFailed(f"cannot start {self.python}: {exc}") from None
        if proc.returncode != 0:
            tail = proc.stderr.decode(errors="replace").strip().splitlines()[-3:]
            raise ReadbackFailed(f"{spec.describe()} failed: {' | '.join(tail) or proc.returncode}")
        try:
            return json.loads(proc.stdout)
        except ValueError as exc:
            raise ReadbackFailed(f"{spec.describe()} printed no JSON: {exc}") from None


# ─────────────────────────────────────── reduction ───────────────────────────────────────


def _ids_of(doc: Any, path: str | None) -> list[str]:
    items = _json_path(doc, path) if path else doc
    if not isinstance(items, list):
        raise ReadbackFailed(f"expected a list of ids at {path or 'the top of the answer'}, got "
                             f"{type(items).__name__}")
    if len(items) > MAX_IDS:
        raise ReadbackFailed(f"more than {MAX_IDS} ids")
    out = []
    for item in items:
        if isinstance(item, bool) or not isinstance(item, (str, int)):
            raise ReadbackFailed(f"an id must be a string or an integer, got {item!r:.60}")
        out.append(str(item))
    return out


def ids_from(doc: Any, spec: DurabilitySpec) -> tuple[str, ...]:
    if spec.valid_when:
        ok = _json_path(doc, spec.valid_when)
        if ok is not True:
            why = doc.get("error") if isinstance(doc, dict) else None
            raise ReadbackFailed(f"the read-back says it is not valid ({spec.valid_when} is "
                                 f"{ok!r}{': ' + str(why) if why else ''})")
    ids = _ids_of(doc, spec.ids)
    if spec.match:
        rx = re.compile(spec.match)
        kept = []
        for i in ids:
            m = rx.search(i)
            if m:
                kept.append(m.group(1) if rx.groups else m.group(0))
        ids = kept
    return tuple(ids)


def _invariant(doc: Any, inv: InvariantSpec) -> InvariantReading:
    base = dict(name=inv.name, op=inv.op, description=inv.describe())
    try:
        value = _json_path(doc, inv.value)
        expected = inv.expected if inv.expected_field is None else _json_path(doc, inv.expected_field)
    except ReadbackFailed as exc:
        return InvariantReading(**base, error=str(exc))
    return InvariantReading(**base, value=value, expected=expected)


def read_back(spec: DurabilitySpec, stack: Any, endpoints: Sequence[str], *,
              reader: Reader | None = None) -> AuditSnapshot:
    """Read what the system holds. Failures are recorded in the snapshot (unknown), not raised."""
    reader = reader or Reader(stack, endpoints)
    doc: Any = None
    ids: tuple[str, ...] | None = None
    error: str | None = None
    if spec.read is not None:
        try:
            doc = reader.read(spec.read, spec.ids)
            ids = ids_from(doc, spec)
        except ReadbackFailed as exc:
            doc, error = None, str(exc)
    readings = []
    for inv in spec.invariants:
        if inv.read is None:
            readings.append(_invariant(doc, inv) if error is None else InvariantReading(
                inv.name, inv.op, error=f"the read-back failed: {error}", description=inv.describe()))
            continue
        try:
            readings.append(_invariant(reader.read(inv.read), inv))
        except ReadbackFailed as exc:
            readings.append(InvariantReading(inv.name, inv.op, error=str(exc),
                                             description=inv.describe()))
    source = spec.read.describe() if spec.read is not None else ""
    return AuditSnapshot(ids=ids, invariants=tuple(readings), source=source, error=error)
