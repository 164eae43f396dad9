"""Roles: which instances hold a part (the leader, the primary, the replicas), declared in
`x-continuum.roles` and resolved by `harness.target.roles` when a fault fires.

Providers, one per role:

* `http`: each instance is asked (`GET :8008/primary`, `POST :2379/v3/maintenance/status`);
  the status code and/or a JSON field of the answer say whether it holds the role (Patroni's
  `/primary` answers 200 only on the leader; etcd's status names the leader's member id, which
  is the instance's own id only on the leader).
* `exec`: a command (an argument list, never a shell string) in each instance; the exit code
  and/or a pattern in its output decide (`redis-cli role` starting with `master`).
* `tcp`: the instances accepting a connection on a port.
* `sentinel`: Redis Sentinel is asked which instance is the master (or its replicas).
* `members`: a fixed set written in the file, never asked (`plan` says so).

The declaration models here are what a file may write; `RoleSpec` is the checked runtime form.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, WithJsonSchema, model_validator

from harness.model.base import At, Bool, Model
from harness.model.units import Duration, Name, Port, got, short

PROBE_KINDS = ("http", "exec", "tcp")
MAX_WAIT_S = 120.0


def _pattern(max_length: int, description: str, rx: str) -> Any:
    compiled = re.compile(rx)

    def parse(value: Any) -> str:
        if not isinstance(value, str) or len(value) > max_length or not compiled.match(value):
            raise ValueError(f"expected {description}, {got(value)}")
        return value

    return Annotated[str, BeforeValidator(parse), WithJsonSchema(
        {"type": "string", "pattern": rx, "maxLength": max_length, "description": description})]


MasterName = _pattern(64, "a Sentinel master name", r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
UrlPath = _pattern(1024, "a URL path such as /primary (a query string may follow ?)",
                   r"^/[A-Za-z0-9._~/%:@!$&'()*+,;=-]*(?:\?[A-Za-z0-9._~/%:@!$&'()*+,;=?-]*)?$")
JsonPath = _pattern(256, "a JSON field path such as header.member_id (list items by number)",
                    r"^[A-Za-z0-9_$@-]+(?:\.[A-Za-z0-9_$@-]+)*$")


def _regex(value: Any) -> str:
    if not isinstance(value, str) or not value or len(value) > 256:
        raise ValueError(f"expected a regular expression of at most 256 characters, {got(value)}")
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"{short(value)} is not a regular expression: {exc}") from None
    return value


Regex = Annotated[str, BeforeValidator(_regex), WithJsonSchema(
    {"type": "string", "maxLength": 256, "description": "a regular expression (Python syntax)"})]


def _argv(value: Any) -> tuple[str, ...]:
    from harness.model.compose import split_words

    if isinstance(value, str):
        try:
            words = split_words(value)
        except ValueError as exc:
            raise ValueError(f"cannot split into words: {exc}") from None
    elif isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        words = tuple(value)
    else:
        raise ValueError(f"expected a list of strings (or one string, split into words; never "
                         f"run by a shell), {got(value)}")
    if not words or len(words) > 256 or any(len(w) > 4096 or "\x00" in w for w in words):
        raise ValueError("expected a command: 1 to 256 words, each at most 4096 characters")
    return words


Command = Annotated[tuple[str, ...], BeforeValidator(_argv), WithJsonSchema(
    {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}],
     "description": "an argument list (or one string split into words); never run by a shell"})]

Scalar = Annotated[str | int | float | bool, Field(union_mode="left_to_right")]


def _names(value: Any) -> tuple[str, ...]:
    """One name or a list of them (services or instances)."""
    from harness.model.units import check_name

    items = [value] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not items:
        raise ValueError(f"expected a service or instance name, or a list of them, {got(value)}")
    out = []
    for i, n in enumerate(items):
        try:
            out.append(check_name(n))
        except ValueError as exc:
            raise At(str(exc), *(() if isinstance(value, str) else (i,))) from None
    return tuple(dict.fromkeys(out))


Names = Annotated[tuple[str, ...], BeforeValidator(_names), WithJsonSchema(
    {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}],
     "description": "a service or instance name, or a list of them"})]


# ─────────────────────────────────────── probes ───────────────────────────────────────


class HttpProbe(Model):
    """Asked of each instance at its own address; holds when the answer says so."""

    port: Port
    path: UrlPath = "/"
    method: Literal["GET", "POST", "HEAD"] = "GET"
    body: Annotated[str, Field(max_length=65536)] | None = None   # sent as application/json
    timeout_s: Duration(max_s=30.0) = Field(2.0, alias="timeout")
    status: Annotated[tuple[int, ...], BeforeValidator(
        lambda v: (v,) if isinstance(v, int) and not isinstance(v, bool) else v)] | None = None
    field: JsonPath | None = None
    equals: Scalar | None = None
    equals_field: JsonPath | None = None

    @model_validator(mode="after")
    def _check(self) -> "HttpProbe":
        if (self.equals is not None or self.equals_field is not None) and self.field is None:
            raise At("'equals' and 'equals_field' compare a 'field' of the answer; give 'field'",
                     "field")
        if self.equals is not None and self.equals_field is not None:
            raise At("give 'equals' or 'equals_field', not both", "equals_field", key=True)
        for code in self.status or ():
            if not 100 <= code <= 599:
                raise At(f"{code} is not an HTTP status code", "status")
        return self

    def decides(self) -> str:
        parts = []
        if self.status:
            parts.append(f"status {'/'.join(map(str, self.status))}")
        if self.field is not None:
            rhs = self.equals_field if self.equals_field else repr(self.equals) \
                if self.equals is not None else "true"
            parts.append(f"{self.field} == {rhs}")
        return " and ".join(parts) or "status 2xx"

    def describe(self) -> str:
        return f"http {self.method} :{self.port}{self.path} ({self.decides()})"


class ExecProbe(Model):
    """A command in each instance; holds when it exits with `exit_code` (and its output matches)."""

    argv: Command
    timeout_s: Duration(max_s=60.0) = Field(5.0, alias="timeout")
    exit_code: Annotated[int, Field(ge=0, le=255)] = 0
    output_matches: Regex | None = None

    def describe(self) -> str:
        how = f"exit {self.exit_code}"
        if self.output_matches:
            how += f" and output matches {self.output_matches!r}"
        return f"exec {' '.join(self.argv)} ({how})"


class TcpProbe(Model):
    """The instances accepting a TCP connection on `port`."""

    port: Port
    timeout_s: Duration(max_s=30.0) = Field(1.0, alias="timeout")

    def describe(self) -> str:
        return f"tcp :{self.port} (accepts a connection)"


# ─────────────────────────────────────── declarations ───────────────────────────────────────


class RoleDecl(Model):
    """One of: `among` + `http`/`exec`/`tcp`; `sentinel` + `master`; or `members`."""

    among: Names | None = None      # services or instances asked (probe roles)
    http: HttpProbe | None = None
    exec: ExecProbe | None = None
    tcp: TcpProbe | None = None
    wait_s: Duration(max_s=MAX_WAIT_S) = Field(10.0, alias="wait")
    sentinel: Name | None = None
    master: MasterName | None = None
    port: Port = 26379
    replicas: Bool = False
    members: Annotated[tuple[Name, ...], Field(min_length=1)] | None = None

    def provider(self) -> str:
        """Which provider the declaration names (checked by the target builder)."""
        given = [k for k in (*PROBE_KINDS, "sentinel", "members") if getattr(self, k) is not None]
        return given[0] if len(given) == 1 else ",".join(given)


# ─────────────────────────────────────── runtime ───────────────────────────────────────

RoleKind = Literal["sentinel-primary", "sentinel-replicas", "static", "http", "exec", "tcp"]


class RoleSpec(Model):
    """A role of the target, checked: resolved when a fault fires, or a static set."""

    name: str
    kind: RoleKind
    service: str | None = None      # the Sentinel service to ask (sentinel kinds)
    master_name: str | None = None  # the Sentinel master group name
    port: int = 26379
    members: tuple[str, ...] = ()   # static: the instances; probe kinds: the instances asked
    probe: HttpProbe | ExecProbe | TcpProbe | None = None
    wait_s: float = 10.0            # how long to wait for at least one holder when a fault fires

    @property
    def resolved_live(self) -> bool:
        return self.kind != "static"

    def describe(self) -> str:
        """How the role is found, for `plan` and for the journal."""
        if self.kind == "static":
            return f"fixed in the file: {', '.join(self.members)} (never asked)"
        if self.kind.startswith("sentinel"):
            what = "its master" if self.kind == "sentinel-primary" else "the master's replicas"
            return (f"Sentinel {self.service}:{self.port} asked for {what} of {self.master_name!r} "
                    "when a fault fires")
        assert self.probe is not None
        return (f"{self.probe.describe()} asked of each of {', '.join(self.members)} when a "
                "fault fires")
