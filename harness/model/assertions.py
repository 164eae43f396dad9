"""Assertions: a metric, a comparison and a threshold in the metric's base unit, optionally
narrowed to one operation (a request name of the load profile) and one phase.

The metric catalogue (`METRICS`), the key grammar and the threshold grammar live here and
nowhere else: the loader, the JSON Schema, the verdict and the docs table all read them.

A key is ``[OPERATION.]METRIC[@PHASE]``:

* ``availability``                  every request, the whole run (an SLO) or each steady phase;
* ``transfer.longest_outage``       only the requests named ``transfer`` (writes only);
* ``latency_p50@slow-app-1``        only requests that started in that fault's window;
* ``transfer.availability@recovery`` both. PHASE is ``baseline``, ``recovery`` or a fault's name.

Which phases exist depends on the experiment's faults, so `harness.model.experiment` checks
the phase names; an operation cannot be checked before the run (a locustfile names its
requests when it runs), so an operation that sent nothing measures as unknown, never a pass.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (BeforeValidator, Field, SerializerFunctionWrapHandler, ValidationInfo, WithJsonSchema,
                      model_serializer)

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
    "longest_stall": "seconds",
    "throughput": "rate",
    "lost_writes": "count",
    "unexpected_writes": "count",
    "duplicate_writes": "count",
    "time_to_detect": "seconds",    # fault in effect → the first matching alert firing (max over faults)
    "time_to_resolve_alert": "seconds",  # fault undone → that alert resolved (max over faults)
    "alerts_without_fault": "count",     # alerts that fired while no fault was in effect
    "failed_requests": "count",          # requests that were not a success (per phase, operation)
    "mixed_version_window": "seconds",   # two or more releases answering at once (harness.measure.versions)
    # Backup and restore drills (harness.measure.rpo defines them).
    "rto": "seconds",                    # disaster → the SLO met again for good
    "rpo": "seconds",                    # the backup's consistent point → the last write acked before the disaster
    "rpo_writes": "count",               # acked after the consistent point, before the disaster, lost
    "lost_writes_before_backup": "count",  # acked before the consistent point and lost: must be 0
    "lost_writes_after_restore": "count",  # acked by the restored system and lost
}
# Metrics computed from the durability read-back; a target must declare one to use them.
AUDIT_METRICS = ("lost_writes", "unexpected_writes", "duplicate_writes")
# Besides these, each invariant a target declares (x-continuum.durability.invariants, e.g. the
# ledger's money_conserved) is a metric of its own: 1 when it holds, 0 when not ("== 1").
# Metrics read from the target's Alertmanager; a target must declare x-continuum.monitoring.
MONITOR_METRICS = ("time_to_detect", "time_to_resolve_alert", "alerts_without_fault")
# Metrics from which release answered each request (the profile's context "version").
VERSION_METRICS = ("mixed_version_window",)
# Metrics of a backup and restore drill (the drill.* faults); judged over the whole run.
DRILL_METRICS = ("rto", "rpo", "rpo_writes", "lost_writes_before_backup", "lost_writes_after_restore")
# Phases every run with faults has; any other phase in a key names a fault (its window).
STEADY_PHASES = ("baseline", "recovery")
MAX_OPERATION = 100

# [OPERATION.]METRIC[@PHASE]. The operation may hold dots (request names are free text), so the
# metric is the last dotted word before "@"; "@" itself is not allowed in an operation.
_METRIC_ALT = "|".join(sorted(METRICS, key=len, reverse=True))
PHASE_PATTERN = r"[a-z][a-z0-9._-]*"
KEY_PATTERN = rf"^(?:[^@]{{1,{MAX_OPERATION}}}\.)?(?:{_METRIC_ALT})(?:@{PHASE_PATTERN})?$"
_KEY = re.compile(rf"(?:(?P<op>[^@]{{1,{MAX_OPERATION}}})\.)?(?P<metric>[a-z][a-z0-9_-]*)(?:@(?P<phase>{PHASE_PATTERN}))?")
KEY_HELP = ("METRIC, OPERATION.METRIC (requests of that name only), METRIC@PHASE (baseline, "
            "recovery or a fault's name) or OPERATION.METRIC@PHASE")

# One way to match: an operator, optional single spaces, a number, an optional unit.
THRESHOLD_PATTERN = r"^ *(?:>=|<=|==|>|<) *[0-9]+(?:\.[0-9]+)? *(?:%|ms|s|m|/s)? *$"
_THRESHOLD = re.compile(r"(>=|<=|==|>|<) *([0-9]+(?:\.[0-9]+)?) *(%|ms|s|m|/s)?")
THRESHOLD_HELP = "a comparison such as \">= 99.9%\", \"<= 800ms\" or \"== 0\""


class Assertion(Model):
    metric: str
    op: Op
    threshold: float                # in the metric's base unit (ratio, seconds, count, per second)
    text: str                       # as written, for messages: ">= 99.9%"
    operation: str | None = None    # only requests with this name; None: every request
    phase: str | None = None        # "baseline", "recovery" or a fault's name; None: see verdict

    # The metric names an invariant of the target. Not dumped: the metric name says it.
    invariant: bool = Field(False, exclude=True)
    def __init__(self, metric: str | None = None, op: str | None = None, threshold: float | None = None,
                 text: str | None = None, **kw: Any):
        # Positional construction reads naturally in code: Assertion("availability", ">=", 0.999, ">= 99.9%").
        given = {k: v for k, v in (("metric", metric), ("op", op), ("threshold", threshold), ("text", text))
                 if v is not None}
        super().__init__(**given, **kw)

    @model_serializer(mode="wrap")
    def _compact(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # An assertion over every request of the whole run dumps as it always did (reports, compare).
        data = handler(self)
        for k in ("operation", "phase"):
            if data.get(k) is None:
                data.pop(k, None)
        return data

    @property
    def key(self) -> str:
        """The key as written: ``transfer.availability@recovery``."""
        return (f"{self.operation}." if self.operation else "") + self.metric + \
            (f"@{self.phase}" if self.phase else "")

    def holds(self, value: float) -> bool:
        return {
            ">=": value >= self.threshold,
            ">": value > self.threshold,
            "<=": value <= self.threshold,
            "<": value < self.threshold,
            "==": value == self.threshold,
        }[self.op]


def parse_threshold(metric: str, text: Any, *, invariant: bool = False) -> Assertion:
    """`"<op> <number><unit>"` for a metric → Assertion in the metric's base unit.

    ratio: a percentage ("99.9%" → 0.999); seconds: ms|s|m; count: a bare integer; rate: "/s";
    an invariant: "== 1" (holds) or "== 0". Raises ValueError with a readable reason. Linear in
    the input (bounded, then matched once).
    """
    kind = "count" if invariant else METRICS.get(metric)
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
        if invariant and (op != "==" or threshold not in (0.0, 1.0)):
            raise ValueError(f"{metric} is an invariant of the target: 1 when it holds, 0 when "
                             "not; write \"== 1\"")
    else:  # rate
        if unit != "/s":
            raise ValueError(f"{metric} is a rate: write it per second, e.g. \"{op} {number}/s\"")
        threshold = value
    return Assertion(metric=metric, op=op, threshold=threshold, text=stripped,  # type: ignore[arg-type]
                     invariant=invariant)


def parse_key(key: Any, invariants: tuple[str, ...] = ()) -> tuple[str | None, str, str | None]:
    """``[OPERATION.]METRIC[@PHASE]`` → (operation, metric, phase); METRIC may also be one of the
    target's `invariants`. ValueError with the reason."""
    if not isinstance(key, str) or len(key) > MAX_OPERATION + 64:
        raise ValueError(f"expected {KEY_HELP}, {got(key)}")
    m = _KEY.fullmatch(key)
    if not m:
        raise ValueError(f"{key!r} is not an accepted key here; expected {KEY_HELP}, with METRIC "
                         f"one of: {', '.join(sorted(METRICS))}")
    op, metric, phase = m.group("op"), m.group("metric"), m.group("phase")
    if metric not in METRICS and metric not in invariants:
        declared = f"; invariants of the target: {', '.join(invariants)}" if invariants else ""
        raise ValueError(f"{key!r} is not an accepted key here: unknown metric {metric!r}; expected "
                         f"one of: {', '.join(sorted(METRICS))}{declared}")
    if op is not None and op != op.strip():
        raise ValueError(f"{key!r}: the operation {op!r} starts or ends with a space")
    if (metric in AUDIT_METRICS or metric in MONITOR_METRICS or metric in VERSION_METRICS
            or metric in DRILL_METRICS
            or metric not in METRICS) and (op or phase):
        raise ValueError(f"{key!r}: {metric} is judged over the whole run; it takes no "
                         "operation or phase")
    if metric == "time_to_recover" and phase in STEADY_PHASES:
        raise ValueError(f"{key!r}: time_to_recover is measured per fault; name a fault after "
                         f"'@', not {phase!r}")
    return op, metric, phase


def invariant_names(info: Any) -> tuple[str, ...]:
    """The invariants the experiment's target declares (validation context), if any."""
    target = ((getattr(info, "context", None) or {}) if info is not None else {}).get("target")
    durability = getattr(target, "durability", None)
    return tuple(i.name for i in durability.invariants) if durability is not None else ()


def _assertions(value: Any, info: ValidationInfo) -> tuple[Assertion, ...]:
    """{key: threshold | [low, high]} → assertions, each error placed on its key or value."""
    if isinstance(value, tuple) and all(isinstance(a, Assertion) for a in value):
        return value
    if not isinstance(value, dict):
        raise ValueError(f"expected a mapping of metric to threshold, {got(value)}")
    invariants = invariant_names(info)
    out: list[Assertion] = []
    for key, spec in value.items():
        try:
            op, metric, phase = parse_key(key, invariants)
        except ValueError as exc:
            raise At(str(exc), key, key=True) from None
        if isinstance(spec, list):
            if not 1 <= len(spec) <= 2:
                raise At("a range is a list of one or two thresholds", key)
            texts = [(t, (key, j)) for j, t in enumerate(spec)]
        else:
            texts = [(spec, (key,))]
        for text, path in texts:
            try:
                a = parse_threshold(metric, text, invariant=metric not in METRICS)
            except ValueError as exc:
                raise At(str(exc), *path) from None
            out.append(a.model_copy(update={"operation": op, "phase": phase}) if op or phase else a)
    return tuple(out)


_ASSERTIONS_SCHEMA = {
    "type": "object",
    # [OPERATION.]METRIC[@PHASE] over the metric catalogue, or an invariant the target declares.
    "propertyNames": {"anyOf": [{"pattern": KEY_PATTERN, "description": KEY_HELP},
                                {"pattern": r"^[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*$"}]},
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
