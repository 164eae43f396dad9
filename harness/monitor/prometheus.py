"""A Prometheus HTTP API client (v1): instant queries, alerting rules, scrape targets.

    prom = PrometheusClient("http://127.0.0.1:41234")
    prom.query('sum(up{job="app"})')       # QueryResult: one value per series; empty = unknown
    prom.alert_rules()                      # the rules as loaded: name, `for:`, group interval
    prom.scrape_targets()                   # each target's health, interval and timeout

Every call has a timeout; anything but a well-formed success is a `MonitorError`. A query that
returns no series is not an error: it is an answer with no values, which a probe reads as
*unknown* (a metric over nothing is never a pass).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from harness.errors import MonitorError
from harness.monitor.api import CALL_TIMEOUT_S, JsonApi

MAX_SERIES = 1000       # a probe query answering more series than this is refused


@dataclass(frozen=True)
class SeriesValue:
    labels: tuple[tuple[str, str], ...]     # sorted (name, value) pairs, without __name__
    value: float                            # may be NaN or ±Inf, as Prometheus answers

    def label(self, name: str) -> str | None:
        return dict(self.labels).get(name)

    def describe(self) -> str:
        inner = ",".join(f'{k}="{v}"' for k, v in self.labels)
        return "{" + inner + "}" if inner else "{}"


@dataclass(frozen=True)
class QueryResult:
    kind: str                               # "vector" | "scalar" (matrices are refused)
    values: tuple[SeriesValue, ...]
    at_unix: float                          # the evaluation timestamp Prometheus used


@dataclass(frozen=True)
class AlertRule:
    name: str
    expr: str
    for_s: float                            # the rule's `for:` (0 when it has none)
    group: str
    interval_s: float                       # how often its group is evaluated
    labels: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class ScrapeTarget:
    job: str
    instance: str
    health: str                             # "up" | "down" | "unknown"
    interval_s: float
    timeout_s: float
    last_error: str


class PrometheusClient:
    def __init__(self, base_url: str, timeout_s: float = CALL_TIMEOUT_S):
        self.api = JsonApi("Prometheus", base_url, timeout_s)

    @property
    def base_url(self) -> str:
        return self.api.base_url

    def close(self) -> None:
        self.api.close()

    def ready(self) -> bool:
        return self.api.ready("/-/ready")

    def _data(self, path: str, params: dict[str, Any] | None = None, timeout_s: float | None = None) -> Any:
        body = self.api.get_json(path, params, timeout_s=timeout_s)
        if not isinstance(body, dict) or body.get("status") != "success":
            raise MonitorError(f"Prometheus: GET {path} did not succeed: "
                               f"{str(body.get('error') if isinstance(body, dict) else body)[:300]}")
        return body.get("data")

    def query(self, expr: str, timeout_s: float | None = None) -> QueryResult:
        """Evaluate `expr` now. A range vector or a string result is a MonitorError (a probe
        needs numbers); an empty vector is a result with no values."""
        limit = timeout_s if timeout_s is not None else self.api.timeout_s
        # The server gives up a little before we do, so a slow query says why, not just "timeout".
        data = self._data("/api/v1/query", {"query": expr, "timeout": f"{max(100, int(limit * 900))}ms"},
                          timeout_s=limit)
        if not isinstance(data, dict):
            raise MonitorError(f"Prometheus: query answered {str(data)[:100]!r}")
        kind, result = data.get("resultType"), data.get("result")
        if kind == "scalar":
            at, value = _point(result)
            return QueryResult("scalar", (SeriesValue((), value),), at)
        if kind != "vector":
            raise MonitorError(f"Prometheus: {expr!r} is a {kind}, not a number per series; "
                               "write an instant vector or a scalar (no [range] at the end)")
        if not isinstance(result, list):
            raise MonitorError("Prometheus: vector result is not a list")
        if len(result) > MAX_SERIES:
            raise MonitorError(f"Prometheus: {expr!r} answered {len(result)} series, more than "
                               f"{MAX_SERIES}; aggregate it (sum, max, ...)")
        values, at = [], 0.0
        for item in result:
            if not isinstance(item, dict):
                raise MonitorError("Prometheus: malformed vector element")
            at, value = _point(item.get("value"))
            metric = item.get("metric") or {}
            labels = tuple(sorted((str(k), str(v)) for k, v in metric.items() if k != "__name__"))
            values.append(SeriesValue(labels, value))
        return QueryResult("vector", tuple(values), at)

    def alert_rules(self) -> tuple[AlertRule, ...]:
        data = self._data("/api/v1/rules", {"type": "alert"})
        out: list[AlertRule] = []
        for group in (data or {}).get("groups", []):
            interval = _number(group.get("interval"), "group interval")
            for rule in group.get("rules", []):
                if rule.get("type") != "alerting":
                    continue
                labels = tuple(sorted((str(k), str(v)) for k, v in (rule.get("labels") or {}).items()))
                out.append(AlertRule(name=str(rule.get("name")), expr=str(rule.get("query", "")),
                                     for_s=_number(rule.get("duration", 0), "rule duration"),
                                     group=str(group.get("name")), interval_s=interval, labels=labels))
        return tuple(out)

    def pending_or_firing(self) -> tuple[tuple[str, str], ...]:
        """(alertname, "pending" | "firing") of every alert Prometheus holds now."""
        data = self._data("/api/v1/alerts")
        return tuple((str((a.get("labels") or {}).get("alertname", "")), str(a.get("state", "")))
                     for a in (data or {}).get("alerts", []))

    def scrape_targets(self) -> tuple[ScrapeTarget, ...]:
        data = self._data("/api/v1/targets", {"state": "active"})
        out: list[ScrapeTarget] = []
        for t in (data or {}).get("activeTargets", []):
            labels = t.get("labels") or {}
            out.append(ScrapeTarget(
                job=str(labels.get("job", t.get("scrapePool", ""))), instance=str(labels.get("instance", "")),
                health=str(t.get("health", "unknown")),
                interval_s=_go_duration(t.get("scrapeInterval")), timeout_s=_go_duration(t.get("scrapeTimeout")),
                last_error=str(t.get("lastError") or "")))
        return tuple(out)


def _point(pair: Any) -> tuple[float, float]:
    if not (isinstance(pair, list) and len(pair) == 2):
        raise MonitorError(f"Prometheus: malformed sample {str(pair)[:80]!r}")
    at = _number(pair[0], "timestamp")
    try:
        value = float(pair[1])              # "NaN", "+Inf" and "-Inf" parse too
    except (TypeError, ValueError):
        raise MonitorError(f"Prometheus: sample value {str(pair[1])[:40]!r} is not a number") from None
    return at, value


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise MonitorError(f"Prometheus: {what} {value!r} is not a number")
    return float(value)


def _go_duration(text: Any) -> float:
    """Prometheus' own duration strings ("1s", "800ms", "1m30s") → seconds; 0 when absent."""
    from harness.model.units import parse_duration

    if text in (None, ""):
        return 0.0
    try:
        return parse_duration(text)
    except ValueError:
        raise MonitorError(f"Prometheus: {text!r} is not a duration") from None
