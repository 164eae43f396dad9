"""Durability declarations: how the harness reads back what a system holds once load stopped
(`x-continuum.durability`), checked into the runtime `DurabilitySpec`.

The load tags each write with an id (`context={"write_id": id}`) and each read with the ids it
returned (`context={"read_id": id}`). After the run, one read-back the target declares says
which ids the system holds:

* `http`: GET (or POST) a path, either on instances directly (`among` + `port`: the read-back
  need not be served on the public entry point) or on the entry points; JSON; optionally paged
  (`page: {param, next}`: the answer names the next page's cursor until it is null);
* `exec`: a command in an instance (in turn until one exits 0): one id per line, or JSON;
* `function`: a Python function in a file of the target, run in a child process with the entry
  points; it returns the ids (a list) or a JSON document, and raises when it cannot read.

`ids` is the field holding the list (absent: the answer is the list); `match` keeps lines or
ids matching a pattern (its first group is the id). Named `invariants` compare a field of a
read-back with a value or another field (the ledger's `money_conserved` is `total_balance ==
expected_total`). A read-back that fails leaves its answers unknown, never a pass.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, model_validator

from harness.model.base import At, Bool, Model
from harness.model.roles import JsonPath, Names, Regex, Scalar, UrlPath, Command
from harness.model.units import Duration, Name, Port, Text
from harness.model.assertions import Op

MAX_READBACK_S = 600.0


class PageSpec(Model):
    param: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]    # query parameter for the cursor
    next: JsonPath                                                      # field of an answer naming the next cursor
    max_pages: Annotated[int, Field(ge=1, le=100000)] = 10000


class HttpRead(Model):
    among: Names | None = None      # instances asked directly, in turn; absent: the entry points
    port: Port | None = None        # with `among`: the port on the instance
    path: UrlPath
    method: Literal["GET", "POST"] = "GET"
    body: Annotated[str, Field(max_length=65536)] | None = None
    page: PageSpec | None = None
    timeout_s: Duration(max_s=MAX_READBACK_S) = Field(30.0, alias="timeout")

    @model_validator(mode="after")
    def _check(self) -> "HttpRead":
        if (self.among is None) != (self.port is None):
            raise At("'among' (the instances to ask) and 'port' go together; leave both out to "
                     "ask the entry points", "port" if self.port is None else "among", key=True)
        return self

    def describe(self) -> str:
        where = f"{', '.join(self.among or ())}:{self.port}" if self.among else "the entry points"
        paged = f", paged by {self.page.param}" if self.page else ""
        return f"http {self.method} {self.path} on {where}{paged}"


class ExecRead(Model):
    among: Names
    argv: Command
    format: Literal["lines", "json"] = "lines"
    timeout_s: Duration(max_s=MAX_READBACK_S) = Field(30.0, alias="timeout")

    def describe(self) -> str:
        return f"exec {' '.join(self.argv)} in {', '.join(self.among)} ({self.format})"


class FunctionRead(Model):
    file: Text(max_length=4096, min_length=1) | None = None   # default: the load's locustfile
    name: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")]
    timeout_s: Duration(max_s=MAX_READBACK_S) = Field(60.0, alias="timeout")

    def describe(self) -> str:
        return f"function {self.name}() in {self.file or 'the locustfile'}"


class ReadDecl(Model):
    http: HttpRead | None = None
    exec: ExecRead | None = None
    function: FunctionRead | None = None

    @model_validator(mode="after")
    def _one(self) -> "ReadDecl":
        given = [k for k in ("http", "exec", "function") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("a read-back is exactly one of: http, exec, function"
                             + (f" (got {', '.join(given)})" if given else ""))
        return self

    @property
    def source(self) -> HttpRead | ExecRead | FunctionRead:
        return self.http or self.exec or self.function  # type: ignore[return-value]


class InvariantDecl(Model):
    read: ReadDecl | None = None    # default: the durability read-back (one snapshot for both)
    value: JsonPath
    op: Op = "=="
    expected: Scalar | None = None
    expected_field: JsonPath | None = None

    @model_validator(mode="after")
    def _one(self) -> "InvariantDecl":
        if (self.expected is None) == (self.expected_field is None):
            raise ValueError("an invariant compares 'value' with exactly one of 'expected' (a "
                             "value) or 'expected_field' (another field of the answer)")
        return self


class DurabilityDecl(Model):
    read: ReadDecl | None = None
    ids: JsonPath | None = None
    match: Regex | None = None
    # A field of the answer that must be true for the read to count (a drain that says whether
    # it finished: `complete`); otherwise the read-back failed and durability is unknown.
    valid_when: JsonPath | None = None
    consumes: Bool = False          # the read-back removes what it reads (a queue drain)
    invariants: dict[Name, InvariantDecl] = {}

    @model_validator(mode="after")
    def _check(self) -> "DurabilityDecl":
        if self.read is None and (self.ids or self.match or self.valid_when):
            raise At("'ids', 'match' and 'valid_when' are about a read-back's answer; declare "
                     "'read'", "read")
        if self.read is None and any(i.read is None for i in self.invariants.values()):
            bad = next(n for n, i in self.invariants.items() if i.read is None)
            raise At("this invariant has no read-back: give it its own 'read', or declare "
                     "durability.read", "invariants", bad, "read")
        return self


# ─────────────────────────────────────── runtime ───────────────────────────────────────


class ReadSpec(Model):
    """A checked read-back: instances expanded, files absolute."""

    kind: Literal["http", "exec", "function"]
    http: HttpRead | None = None
    exec: ExecRead | None = None
    function: FunctionRead | None = None
    instances: tuple[str, ...] = ()     # http with among, exec: the instances, in order
    file: Path | None = None            # function: the module

    @property
    def timeout_s(self) -> float:
        src = self.http or self.exec or self.function
        return src.timeout_s  # type: ignore[union-attr]

    @property
    def at_container_addresses(self) -> bool:
        """Asked at the instances' own addresses (http with `among`): reachable from the engine's
        host only, so not from here on a remote engine (harness.stack.reach)."""
        return self.kind == "http" and bool(self.instances)

    def describe(self) -> str:
        src = self.http or self.exec or self.function
        return src.describe()  # type: ignore[union-attr]


class InvariantSpec(Model):
    name: str
    read: ReadSpec | None = None        # None: the durability read-back's answer
    value: str
    op: str = "=="
    expected: str | int | float | bool | None = None
    expected_field: str | None = None

    def describe(self) -> str:
        rhs = self.expected_field if self.expected_field else repr(self.expected)
        return f"{self.value} {self.op} {rhs}"


class DurabilitySpec(Model):
    read: ReadSpec | None = None
    ids: str | None = None
    match: str | None = None
    valid_when: str | None = None
    consumes: bool = False
    invariants: tuple[InvariantSpec, ...] = ()

    @property
    def reads_ids(self) -> bool:
        return self.read is not None

    def invariant(self, name: str) -> InvariantSpec | None:
        return next((i for i in self.invariants if i.name == name), None)


def ledger_audit(path: str) -> DurabilitySpec:
    """The original `x-continuum.audit: {path}` contract, on this model: GET <entry point><path>
    → {"transfer_ids": [...], "total_balance", "expected_total"}."""
    read = ReadSpec(kind="http", http=HttpRead(path=path))
    return DurabilitySpec(read=read, ids="transfer_ids", invariants=(
        InvariantSpec(name="money_conserved", value="total_balance", op="==",
                      expected_field="expected_total"),))


__all__ = ["DurabilityDecl", "DurabilitySpec", "ReadDecl", "ReadSpec", "InvariantDecl",
           "InvariantSpec", "HttpRead", "ExecRead", "FunctionRead", "PageSpec", "ledger_audit"]
