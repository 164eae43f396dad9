"""Probes: checks of the system that are not the load's own numbers, in the modes Litmus has.

    probes:
      - name: apps-up
        as: steady_state              # steady_state | slo | abort_if
        mode: edge                    # start | end | edge | continuous | during_fault
        promql: sum(up{job="app"})
        value: "== 3"                 # every series the query returns must meet it
      - name: lb-health
        as: slo
        mode: during_fault
        interval: 500ms
        http: {service: lb, port: 8404, path: /healthz}
        status: 200
      - name: replicas-attached
        as: steady_state
        cmd: [redis-cli, -p, "6379", info, replication]
        in: redis-1
        output_contains: "connected_slaves:2"

A probe is one of three kinds, told apart by which key it has: `promql` (an instant query on
the target's Prometheus, judged with `value`), `http` (a GET on a published port of a service,
judged on `status` and `body_contains`) and `cmd` (an argv run inside an instance, never by a
shell, judged on `exit_code` and `output_contains`).

Modes (Litmus: SOT, EOT, Edge, Continuous, OnChaos): `start` once at the end of the baseline,
just before the first fault; `end` once after the last fault was reverted and the run's
duration is over, while load still runs; `edge` both; `continuous` every `interval` from the
start of load; `during_fault` every `interval` while a fault is in effect.

What a probe is *for* (`as`): `steady_state` is judged on the baseline and on the recovery
phase, like the steady_state assertions; `slo` on every sample; `abort_if` stops the run at the
first sample that fails. A sample that could not be taken (Prometheus did not answer, the query
returned no series or NaN, a command could not be started) is *unknown*: it never passes, never
fails and never aborts.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, ClassVar, Literal, Union

from pydantic import BeforeValidator, Discriminator, Field, Tag, ValidationInfo, WithJsonSchema, model_validator

from harness.model.base import At, Model
from harness.model.target import Argv, UrlPath
from harness.model.units import Bounded, Duration, Name, Port, Text, got, short

ProbeMode = Literal["start", "end", "edge", "continuous", "during_fault"]
ProbeUse = Literal["steady_state", "slo", "abort_if"]
DEFAULT_MODE: dict[str, str] = {"steady_state": "edge", "slo": "continuous", "abort_if": "continuous"}
MODES: dict[str, tuple[str, ...]] = {
    "steady_state": ("start", "end", "edge", "continuous"),
    "slo": ("start", "end", "edge", "continuous", "during_fault"),
    "abort_if": ("continuous", "during_fault"),
}
MAX_PROBES = 50
MAX_PROBE_TIMEOUT_S = 30.0

# ─────────────────────────────────────── a unitless comparison ───────────────────────────────────────

COMPARISON_PATTERN = r"^ *(?:>=|<=|==|!=|>|<) *-?[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)? *$"
_COMPARISON = re.compile(r"(>=|<=|==|!=|>|<) *(-?[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?)")


class Comparison(Model):
    """`"<= 0.5"`: an operator and a plain number (a PromQL value has no unit)."""

    op: Literal[">=", ">", "<=", "<", "==", "!="]
    threshold: float
    text: str

    def holds(self, value: float) -> bool:
        return {">=": value >= self.threshold, ">": value > self.threshold,
                "<=": value <= self.threshold, "<": value < self.threshold,
                "==": value == self.threshold, "!=": value != self.threshold}[self.op]


def _comparison(value: Any) -> Any:
    if isinstance(value, Comparison):
        return value
    if not isinstance(value, str) or len(value) > 64:
        raise ValueError(f"expected a comparison such as \"<= 0.5\" or \"== 3\", {got(value)}")
    m = _COMPARISON.fullmatch(value.strip(" "))
    if m is None:
        raise ValueError(f"{short(value)} is not a comparison such as \"<= 0.5\", \"== 3\" or "
                         "\"> 0\" (an operator and a plain number; PromQL values have no unit)")
    threshold = float(m.group(2))
    if not math.isfinite(threshold):
        raise ValueError(f"{short(value)}: the number must be finite")
    return Comparison(op=m.group(1), threshold=threshold, text=value.strip(" "))  # type: ignore[arg-type]


ComparisonField = Annotated[Comparison, BeforeValidator(_comparison), WithJsonSchema(
    {"type": "string", "pattern": COMPARISON_PATTERN,
     "description": "an operator and a number, such as \"<= 0.5\", \"== 3\" or \"> 0\""})]


# ─────────────────────────────────────── the three kinds ───────────────────────────────────────


class _Probe(Model):
    name: Name
    as_: ProbeUse = Field(alias="as")
    mode: ProbeMode | None = None               # default by `as`: see DEFAULT_MODE
    interval_s: Duration(max_s=60.0, description="how often a continuous or during_fault probe "
                         "runs, such as 1s (at most 1m)") = Field(1.0, alias="interval")
    timeout_s: Duration(max_s=MAX_PROBE_TIMEOUT_S, description="how long one evaluation may "
                        "take, such as 2s (at most 30s)") = Field(2.0, alias="timeout")

    kind: ClassVar[str] = ""

    @model_validator(mode="after")
    def _mode(self) -> "_Probe":
        if self.mode is None:
            object.__setattr__(self, "mode", DEFAULT_MODE[self.as_])   # still being built
        elif self.mode not in MODES[self.as_]:
            raise At(f"a probe used as {self.as_} cannot run in mode {self.mode!r}; "
                     f"allowed: {', '.join(MODES[self.as_])}", "mode")
        if self.interval_s < 0.1 and self.mode in ("continuous", "during_fault"):
            raise At(f"{self.interval_s:g}s is shorter than the minimum 100ms", "interval")
        return self

    @property
    def use(self) -> str:
        return self.as_

    @property
    def repeats(self) -> bool:
        return self.mode in ("continuous", "during_fault")

    def check_text(self) -> str:
        """What a sample must show, for messages and reports."""
        raise NotImplementedError

    def describe(self) -> str:
        """One line for `plan` and reports."""
        raise NotImplementedError


class PromqlProbe(_Probe):
    """every series the instant query returns meets `value`; no series or NaN: unknown"""

    promql: Text(max_length=4000, min_length=1, description="an instant PromQL expression")
    value: ComparisonField
    kind: ClassVar[str] = "promql"

    def check_text(self) -> str:
        return f"value {self.value.text}"

    def describe(self) -> str:
        return f"promql {self.promql.strip()} {self.value.text}"


class HttpCheck(Model):
    service: Name                               # a service (each of its instances) or an instance
    port: Port
    path: UrlPath = "/"


class HttpProbe(_Probe):
    """each instance of `http.service` answers GET `path` on its published `port` with `status`
    (and `body_contains`) within `timeout`"""

    http: HttpCheck
    status: Bounded(int, ge=100, le=599, description="the HTTP status every answer must have") = 200
    body_contains: Text(max_length=1000, min_length=1) | None = None
    kind: ClassVar[str] = "http"

    def check_text(self) -> str:
        body = f" with {self.body_contains!r} in the body" if self.body_contains else ""
        return f"status {self.status}{body}"

    def describe(self) -> str:
        return f"GET {self.http.service}:{self.http.port}{self.http.path} → {self.check_text()}"


class CmdProbe(_Probe):
    """the argv, run in each instance of `in` (no shell), ends with `exit_code` (and prints
    `output_contains`); a command that cannot be started: unknown"""

    cmd: Annotated[Argv, Field(min_length=1, max_length=64)]
    in_: Name = Field(alias="in")               # a service (each of its instances) or an instance
    exit_code: Bounded(int, ge=0, le=255, description="the exit code the command must end with") = 0
    output_contains: Text(max_length=1000, min_length=1) | None = None
    kind: ClassVar[str] = "cmd"

    def check_text(self) -> str:
        out = f" and {self.output_contains!r} in its output" if self.output_contains else ""
        return f"exit {self.exit_code}{out}"

    def describe(self) -> str:
        return f"in {self.in_}: {' '.join(self.cmd)} → {self.check_text()}"


KINDS: dict[str, type[_Probe]] = {"promql": PromqlProbe, "http": HttpProbe, "cmd": CmdProbe}
# Tags are not keys of the data (problems.py skips parts with "["), so error paths stay exact.
_TAGS = {k: f"probe[{k}]" for k in KINDS}


def _kind(value: Any) -> str | None:
    if isinstance(value, _Probe):
        return _TAGS[value.kind]
    if not isinstance(value, dict):
        return None
    found = [k for k in KINDS if k in value]
    return _TAGS[found[0]] if len(found) == 1 else None


def _one_kind(value: Any) -> Any:
    if isinstance(value, dict):
        found = [k for k in KINDS if k in value]
        if len(found) != 1:
            what = "none" if not found else " and ".join(found)
            raise ValueError(f"a probe has exactly one of promql, http or cmd (this one has {what})")
    elif not isinstance(value, _Probe):
        raise ValueError(f"expected a probe (a mapping with promql, http or cmd), {got(value)}")
    return value


ProbeSpec = Annotated[
    Union[tuple(Annotated[cls, Tag(_TAGS[k])] for k, cls in KINDS.items())],  # type: ignore[misc]
    Discriminator(_kind), BeforeValidator(_one_kind)]


def check_probes(probes: tuple[Any, ...], info: ValidationInfo | None) -> None:
    """Names unique; services, instances and Prometheus exist on the target. Raises `At`."""
    target = (info.context or {}).get("target") if info is not None else None
    seen: dict[str, int] = {}
    for i, p in enumerate(probes):
        if p.name in seen:
            raise At(f"probe name {p.name!r} is already used by probes[{seen[p.name]}]", i, "name")
        seen[p.name] = i
        if target is None:
            continue
        if isinstance(p, PromqlProbe) and target.monitoring is None:
            raise At(f"a promql probe needs the target's Prometheus, but target {target.name!r} "
                     "declares no x-continuum.monitoring", i, "promql", key=True)
        if isinstance(p, HttpProbe):
            names = target.expand(p.http.service)
            if names is None:
                raise At(f"{p.http.service!r} is not a service or instance of target "
                         f"{target.name!r}", i, "http", "service")
            svc = target.service_of(names[0])
            if not any(pp.container_port == p.http.port and pp.protocol == "tcp" for pp in svc.ports):
                raise At(f"service {svc.name!r} does not publish container port {p.http.port}, "
                         "so the harness cannot reach it (add it to its ports)", i, "http", "port")
        if isinstance(p, CmdProbe) and target.expand(p.in_) is None:
            raise At(f"{p.in_!r} is not a service or instance of target {target.name!r}", i, "in")


__all__ = ["ProbeSpec", "PromqlProbe", "HttpProbe", "CmdProbe", "HttpCheck", "Comparison",
           "ProbeMode", "ProbeUse", "KINDS", "MAX_PROBES", "check_probes"]
