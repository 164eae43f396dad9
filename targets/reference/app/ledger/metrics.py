"""A few Prometheus counters, rendered in the text exposition format (no client library)."""

from __future__ import annotations

import threading
from collections import defaultdict


class Metrics:
    HELP = {
        "ledger_http_requests_total": ("counter", "HTTP requests by route and status code."),
        "ledger_transfers_total": ("counter", "Transfer outcomes: committed, replayed, rejected, unknown."),
        "ledger_redis_retries_total": ("counter", "Write/read attempts retried after a data-tier error."),
        "ledger_primary_changes_total": ("counter", "Times the discovered Redis primary changed."),
        "ledger_inflight_requests": ("gauge", "Requests being handled."),
        "ledger_ready": ("gauge", "1 when /readyz answers 200."),
    }

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, dict[tuple[tuple[str, str], ...], float]] = defaultdict(dict)
        for name in ("ledger_redis_retries_total", "ledger_primary_changes_total",
                     "ledger_inflight_requests", "ledger_ready"):
            self._values[name][()] = 0

    def inc(self, name: str, amount: float = 1, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        with self._lock:
            series = self._values[name]
            series[key] = series.get(key, 0) + amount

    def set(self, name: str, value: float, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        with self._lock:
            self._values[name][key] = value

    def get(self, name: str, **labels: str) -> float:
        with self._lock:
            return self._values.get(name, {}).get(tuple(sorted(labels.items())), 0)

    def render(self) -> str:
        lines: list[str] = []
        with self._lock:
            snapshot = {k: dict(v) for k, v in self._values.items()}
        for name, (kind, text) in self.HELP.items():
            lines.append(f"# HELP {name} {text}")
            lines.append(f"# TYPE {name} {kind}")
            series = snapshot.get(name, {})
            for labels, value in sorted(series.items()):
                if labels:
                    body = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
                    lines.append(f"{name}{{{body}}} {_num(value)}")
                else:
                    lines.append(f"{name} {_num(value)}")
        return "\n".join(lines) + "\n"


def _escape(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))
