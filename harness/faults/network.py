"""Network faults on the run's Toxiproxy links: toxics (latency, bandwidth, timeout,
reset_peer, slow_close, slicer, limit_data) and a link taken down (the proxy disabled).

Toxics are added and removed one by one, by name, and each removal is read back. We never
call Toxiproxy's global /reset: two overlapping faults on one link must not undo each other.
Toxiproxy's latency is one-directional: `stream: both` adds one toxic per direction.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, ValidationInfo, WithJsonSchema, field_validator, model_validator

from harness.errors import FaultError, ToxiproxyError
from harness.faults.base import MAX_FAULT_WINDOW_S, FaultContext, FaultSpec, Injection, Window
from harness.model.base import At
from harness.model.units import Bounded, Size, WholeDuration, got

LINK_PATTERN = r"^[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*->[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*$"
_LINK = re.compile(LINK_PATTERN)
Millis = WholeDuration(1000, "milliseconds", max_s=MAX_FAULT_WINDOW_S)
Micros = WholeDuration(1_000_000, "microseconds", max_s=MAX_FAULT_WINDOW_S)
SliceSize = Size(minimum=1, what="the minimum of 1 byte")


@dataclass(frozen=True)
class Toxic:
    """One Toxiproxy toxic, attributes in Toxiproxy's units (ms, KB/s, bytes, µs)."""

    type: str
    attributes: tuple[tuple[str, int], ...]
    stream: Literal["upstream", "downstream"] = "downstream"
    toxicity: float = 1.0


def resolve_links(target: Any, raw: Any) -> tuple[str, ...]:
    """`CLIENT->UPSTREAM` (UPSTREAM an instance or a whole service), a link's own name, or a
    list of those → the target's link (proxy) names, in order, without repeats."""
    exprs = [(raw, ())] if isinstance(raw, str) else [(r, (j,)) for j, r in enumerate(raw)]
    names = {l.name for l in target.links}
    valid = ", ".join(f"{l.client}->{l.upstream}" for l in target.links) or "none (x-continuum.links)"
    out: list[str] = []
    for expr, where in exprs:
        if not isinstance(expr, str) or len(expr) > 200:
            raise At(f"expected a link CLIENT->UPSTREAM, {got(expr)}", *where)
        if expr in names:
            found = [expr]
        else:
            if not _LINK.match(expr):
                raise At(f"{expr!r} is not valid; expected a link as CLIENT->UPSTREAM, e.g. "
                         "app->redis-1 or lb->app", *where)
            client, _, up = expr.partition("->")
            ups = target.expand(up)
            if ups is None:
                raise At(f"link {expr!r}: {up!r} is not a service or instance of target "
                         f"{target.name!r}; links: {valid}", *where)
            found = [l.name for l in target.links if l.client == client and l.upstream in ups]
            if not found:
                raise At(f"no link {expr!r} in target {target.name!r}; links: {valid}", *where)
        out.extend(n for n in found if n not in out)
    return tuple(out)


_LINK_SCHEMA = {"anyOf": [{"type": "string", "pattern": LINK_PATTERN},
                          {"type": "array", "items": {"type": "string", "pattern": LINK_PATTERN},
                           "minItems": 1}],
                "description": "a link CLIENT->UPSTREAM (e.g. app->redis-1) or a list of them"}


class _LinkFault(FaultSpec):
    links: Annotated[tuple[str, ...], WithJsonSchema(_LINK_SCHEMA)] = Field(alias="link")
    for_s: Window = Field(alias="for")

    @field_validator("links", mode="before")
    @classmethod
    def _resolve(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, list) and not value:
            raise ValueError("must have at least 1 item(s)")
        target = (info.context or {}).get("target")
        if target is None:          # built in Python: link names as given
            return (value,) if isinstance(value, str) else tuple(value)
        return resolve_links(target, value)

    def what(self) -> str:
        return ", ".join(self.links)

    def inject(self, ctx: FaultContext) -> Injection:
        tp = ctx.toxiproxy
        if tp is None:
            raise FaultError("this run has no Toxiproxy")
        done: list[tuple[str, str | None]] = []  # (link, toxic name | None for down)

        def revert() -> tuple[str, float]:
            errors = []
            restored_t = time.monotonic()
            for link, toxic_name in reversed(done):
                try:
                    restored_t = tp.set_enabled(link, True) if toxic_name is None else \
                        tp.remove_toxic(link, toxic_name)
                except ToxiproxyError as exc:
                    errors.append(str(exc))
            if errors:
                raise FaultError("; ".join(errors))
            return "restored: " + ", ".join(sorted({l for l, _ in done})), restored_t

        applied_t = time.monotonic()
        try:
            for link in self.links:
                if not self.toxics:
                    applied_t = tp.set_enabled(link, False)
                    done.append((link, None))
                    continue
                for i, toxic in enumerate(self.toxics):
                    toxic_name = f"continuum-{self.name}-{toxic.stream}-{i}"
                    applied_t = tp.add_toxic(link, toxic_name, toxic)
                    done.append((link, toxic_name))
        except ToxiproxyError as exc:
            revert_error = ""
            try:
                revert()
            except FaultError as e:
                revert_error = f" (and undoing the part applied failed: {e})"
            raise FaultError(f"{self.action} on {', '.join(self.links)} failed: {exc}{revert_error}") from exc
        return Injection(self, self.links, revert, applied_t=applied_t)

    @property
    def toxics(self) -> tuple[Toxic, ...]:
        return ()


class NetworkDown(_LinkFault):
    action: Literal["network.down"] = "network.down"
    summary = "the proxy is disabled: connections refused"

    def plan_line(self) -> str:
        return f"links {', '.join(self.links)} disabled"


class _ToxicFault(_LinkFault):
    stream: Literal["upstream", "downstream", "both"] = "downstream"
    toxicity: Bounded(float, ge=0, le=1) = 1.0
    toxic_type: ClassVar[str]
    units: ClassVar[dict[str, str]] = {}

    def attributes(self) -> tuple[tuple[str, int], ...]:
        raise NotImplementedError

    @property
    def toxics(self) -> tuple[Toxic, ...]:
        streams = ("upstream", "downstream") if self.stream == "both" else (self.stream,)
        return tuple(Toxic(self.toxic_type, self.attributes(), s, self.toxicity)  # type: ignore[arg-type]
                     for s in streams)

    def plan_line(self) -> str:
        attrs = ", ".join(f"{k} {v}{self.units.get(k, 'ms')}" for k, v in self.attributes())
        tox = f", toxicity {self.toxicity:g}" if self.toxicity != 1 else ""
        streams = "+".join(t.stream for t in self.toxics)
        return f"links {', '.join(self.links)}: {self.toxic_type} {attrs} ({streams}{tox})"


class NetworkLatency(_ToxicFault):
    action: Literal["network.latency"] = "network.latency"
    latency: Millis
    jitter: Millis = 0
    toxic_type = "latency"
    summary = "added delay on each direction named by `stream`; whole milliseconds"

    def attributes(self) -> tuple[tuple[str, int], ...]:
        return (("latency", self.latency), ("jitter", self.jitter))


def _rate(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"expected a bandwidth such as 64KB/s or 1MB/s (an integer means KB/s), {got(value)}")
    if isinstance(value, int):
        if not 0 <= value <= 2**31:
            raise ValueError(f"{value} is out of range for a bandwidth in KB/s")
        return value
    m = re.fullmatch(r"([0-9]{1,9}) ?(KB/s|MB/s)", value.strip())
    if not m:
        raise ValueError(f"{value!r} is not a bandwidth such as 64KB/s or 1MB/s")
    return int(m.group(1)) * (1000 if m.group(2) == "MB/s" else 1)


class NetworkBandwidth(_ToxicFault):
    action: Literal["network.bandwidth"] = "network.bandwidth"
    rate: Annotated[int, WithJsonSchema(
        {"anyOf": [{"type": "integer", "minimum": 0},
                   {"type": "string", "pattern": r"^[0-9]+ ?(?:KB/s|MB/s)$"}],
         "description": "a bandwidth such as 64KB/s or 1MB/s (an integer means KB/s)"})]
    toxic_type = "bandwidth"
    units = {"rate": "KB/s"}
    summary = "`rate`: `64KB/s`, `1MB/s` (= 1000 KB/s) or an integer KB/s"

    @field_validator("rate", mode="before")
    @classmethod
    def _rate(cls, value: Any) -> int:
        return _rate(value)

    def attributes(self) -> tuple[tuple[str, int], ...]:
        return (("rate", self.rate),)


class NetworkTimeout(_ToxicFault):
    action: Literal["network.timeout"] = "network.timeout"
    timeout: Millis
    toxic_type = "timeout"
    summary = "data stops; the connection is closed after `timeout` (0 = held for the window)"

    def attributes(self) -> tuple[tuple[str, int], ...]:
        return (("timeout", self.timeout),)


class NetworkResetPeer(_ToxicFault):
    action: Literal["network.reset_peer"] = "network.reset_peer"
    timeout: Millis = 0
    toxic_type = "reset_peer"
    summary = "TCP RST after `timeout`"

    def attributes(self) -> tuple[tuple[str, int], ...]:
        return (("timeout", self.timeout),)


class NetworkSlowClose(_ToxicFault):
    action: Literal["network.slow_close"] = "network.slow_close"
    delay: Millis
    toxic_type = "slow_close"
    summary = "the close of each connection is delayed"

    def attributes(self) -> tuple[tuple[str, int], ...]:
        return (("delay", self.delay),)


class NetworkSlicer(_ToxicFault):
    action: Literal["network.slicer"] = "network.slicer"
    average_size: SliceSize
    size_variation: Size() = 0
    delay: Micros = 0
    toxic_type = "slicer"
    units = {"average_size": "B", "size_variation": "B", "delay": "us"}
    summary = "data cut into slices; sizes in bytes, `size_variation < average_size`; delay in whole µs"

    @model_validator(mode="after")
    def _sizes(self) -> "NetworkSlicer":
        if self.size_variation >= self.average_size:
            raise At("size_variation must be smaller than average_size", "size_variation")
        return self

    def attributes(self) -> tuple[tuple[str, int], ...]:
        return (("average_size", self.average_size), ("size_variation", self.size_variation),
                ("delay", self.delay))


class NetworkLimitData(_ToxicFault):
    action: Literal["network.limit_data"] = "network.limit_data"
    bytes: Size()
    toxic_type = "limit_data"
    units = {"bytes": "B"}
    summary = "the connection is closed after that many bytes"

    def attributes(self) -> tuple[tuple[str, int], ...]:
        return (("bytes", self.bytes),)
