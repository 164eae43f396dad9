"""Assertions: a metric, a comparison and a threshold in the metric's base unit.

The metric catalogue (`METRICS`) and the threshold grammar live here and nowhere else: the
loader, the JSON Schema, the verdict and the docs table all read them.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, WithJsonSchema

from harness.model.base import At, Model
from harness.model.units import MAX_TEXT, got, short

Op = Literal[">=", ">", "<=", "<", "=="]
UnitKind = Literal["ratio", "seconds", "count", "rate"]

# Metric name → unit kind. The loader accepts only these; the verdict knows how to compute each.
METRICS: dict[str, UnitKind] = {
    "availability": "ratio",
    "error_rate": "ratio",
    "latency_p50": "seconds",
    "latency_p95": "seconds",
    "latency_p99": "seconds",
    "latency_max": "seconds",
    "time_to_recover": "seconds",
    "longest_outage": "seconds",
    "throughput": "rate",
    "lost_writes": "count",
    "unexpected_writes": "count",
    "money_conserved": "count",     # 1 when the audit's invariant holds, 0 when not
    "time_to_detect": "seconds",    # fault in effect → the first matching alert firing (max over faults)
    "time_to_resolve_alert": "seconds",  # fault undone → that alert resolved (max over faults)
    "alerts_without_fault": "count",     # alerts that fired while no fault was in effect
}
# Metrics computed from the durability read-back; a target must declare one to use them.
AUDIT_METRICS = ("lost_writes", "unexpected_writes", "money_conserved")
# Metrics read from the target's Alertmanager; a target must declare x-continuum.monitoring.
MONITOR_METRICS = ("time_to_detect", "time_to_resolve_alert", "alerts_without_fault")

# One way to match: an operator, optional single spaces, a number, an optional unit.
THRESHOLD_PATTERN = r"^ *(?:>=|<=|==|>|<) *[0-9]+(?:\.[0-9]+)? *(?:%|ms|s|m|/s)? *$"
_THRESHOLD = re.compile(r"(>=|<=|==|>|<) *([0-9]+(?:\.[0-9]+)?) *(%|ms|s|m|/s)?")
THRESHOLD_HELP = "a comparison such as \">= 99.9%\", \"<= 800ms\" or \"== 0\""


class Assertion(Model):
    metric: str
    op: Op
    threshold: float                # in the metric's base unit (ratio, seconds, count, per second)
    text: str                       # as written, for messages: ">= 99.9%"

    def __init__(self, metric: str | None = None, op: str | None = None, threshold: float | None = None,
                 text: str | None = None, **kw: Any):
        # Positional construction reads naturally in code: Assertion("availability", ">=", 0.999, ">= 99.9%").
        given = {k: v for k, v in (("metric", metric), ("op", op), ("threshold", threshold), ("text", text))
                 if v is not None}
        super().__init__(**given, **kw)

    def holds(self, value: float) -> bool:
        return {
            ">=": value >= self.threshold,
            ">": value > self.threshold,
            "<=": value <= self.threshold,
            "<": value < self.threshold,
            "==": value == self.threshold,
        }[self.op]


def parse_threshold(metric: str, text: Any) -> Assertion:
    """`"<op> <number><unit>"` for a metric → Assertion in the metric's base unit.

    ratio: a percentage ("99.9%" → 0.999); seconds: ms|s|m; count: a bare integer; rate: "/s".
    Raises ValueError with a readable reason. Linear in the input (bounded, then matched once).
    """
    kind = METRICS.get(metric)
    if kind is None:
        raise ValueError(f"unknown metric {metric!r}; known: {', '.join(METRICS)}")
    if not isinstance(text, str):
        raise ValueError(f"expected {THRESHOLD_HELP}, {got(text)}")
    stripped = text.strip(" ") if len(text) <= MAX_TEXT else ""
    m = _THRESHOLD.fullmatch(stripped)
    if not m:
        raise ValueError(f"{short(text)} is not a comparison such as \">= 99.9%\", \"<= 800ms\" "
                         "or \"== 0\"")
    op, number, unit = m.group(1), m.group(2), m.group(3) or ""
    value = float(number)
    if kind == "ratio":
        if unit != "%":
            example = f"{value * 100:g}%" if not unit and value <= 1 else f"{number}%"
            raise ValueError(f"{metric} is a ratio: write it as a percentage, e.g. \"{op} "
                             f"{example}\"")
        if value > 100:
            raise ValueError(f"{metric}: {number}% is more than 100%")
        threshold = round(value / 100.0, 12)
    elif kind == "seconds":
        if unit not in ("ms", "s", "m"):
            raise ValueError(f"{metric} is a time: give a unit (ms, s or m), e.g. \"{op} "
                             f"{number}ms\"")
        threshold = value * {"ms": 0.001, "s": 1.0, "m": 60.0}[unit]
    elif kind == "count":
        if unit or "." in number:
            raise ValueError(f"{metric} is a count: write a whole number without a unit, "
                             f"e.g. \"{op} {number.split('.')[0]}\"")
        threshold = float(int(number))
        if metric == "money_conserved" and threshold not in (0.0, 1.0):
            raise ValueError("money_conserved is 1 when money is conserved and 0 when not; "
                             "write \"== 1\"")
    else:  # rate
        if unit != "/s":
            raise ValueError(f"{metric} is a rate: write it per second, e.g. \"{op} {number}/s\"")
        threshold = value
    return Assertion(metric=metric, op=op, threshold=threshold, text=stripped)  # type: ignore[arg-type]


def _assertions(value: Any) -> tuple[Assertion, ...]:
    """{metric: threshold | [low, high]} → assertions, each error placed on its value."""
    if isinstance(value, tuple) and all(isinstance(a, Assertion) for a in value):
        return value
    if not isinstance(value, dict):
        raise ValueError(f"expected a mapping of metric to threshold, {got(value)}")
    out: list[Assertion] = []
    for metric, spec in value.items():
        if metric not in METRICS:
            raise At(f"{metric!r} is not an accepted key here; expected one of: "
                     f"{', '.join(sorted(METRICS))}", metric, key=True)
        if isinstance(spec, list):
            if not 1 <= len(spec) <= 2:
                raise At("a range is a list of one or two thresholds", metric)
            texts = [(t, (metric, j)) for j, t in enumerate(spec)]
        else:
            texts = [(spec, (metric,))]
        for text, path in texts:
            try:
                out.append(parse_threshold(metric, text))
            except ValueError as exc:
                raise At(str(exc), *path) from None
    return tuple(out)


_ASSERTIONS_SCHEMA = {
    "type": "object",
    "propertyNames": {"enum": sorted(METRICS)},
    "additionalProperties": {
        "anyOf": [{"type": "string", "pattern": THRESHOLD_PATTERN},
                  {"type": "array", "minItems": 1, "maxItems": 2,
                   "items": {"type": "string", "pattern": THRESHOLD_PATTERN}}],
        "description": f"{THRESHOLD_HELP}, or a list of two (a range: "
                       "[\">= 1500ms\", \"<= 2500ms\"])",
    },
}

Assertions = Annotated[tuple[Assertion, ...], BeforeValidator(_assertions),
                       WithJsonSchema(_ASSERTIONS_SCHEMA)]
