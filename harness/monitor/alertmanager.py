"""An Alertmanager HTTP API client (v2): the alerts it holds right now.

    am = AlertmanagerClient("http://127.0.0.1:41235")
    am.alerts()      # (ActiveAlert(name="AppReplicaDown", labels=..., starts_unix=...), ...)

Alertmanager 0.25 lists an alert from the moment Prometheus sends it (at the evaluation that
found it firing: `startsAt` is that evaluation's timestamp, i.e. after the rule's `for:`) until
it is resolved; a resolved alert leaves the list. Silenced and inhibited alerts are listed too:
they fired, whatever a human chose to be told.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.errors import MonitorError
from harness.monitor.api import CALL_TIMEOUT_S, JsonApi, parse_rfc3339

MAX_ALERTS = 5000


@dataclass(frozen=True)
class ActiveAlert:
    name: str                               # the alertname label
    labels: tuple[tuple[str, str], ...]     # sorted, alertname included
    fingerprint: str
    starts_unix: float                      # when it started firing (Prometheus' evaluation time)
    ends_unix: float                        # when Alertmanager will call it resolved unless renewed
    state: str                              # "active" | "suppressed" | "unprocessed"
    summary: str = ""                       # the `summary` annotation, if any

    def label(self, name: str) -> str | None:
        return dict(self.labels).get(name)


class AlertmanagerClient:
    def __init__(self, base_url: str, timeout_s: float = CALL_TIMEOUT_S):
        self.api = JsonApi("Alertmanager", base_url, timeout_s)

    @property
    def base_url(self) -> str:
        return self.api.base_url

    def close(self) -> None:
        self.api.close()

    def ready(self) -> bool:
        return self.api.ready("/-/ready")

    def alerts(self) -> tuple[ActiveAlert, ...]:
        body = self.api.get_json("/api/v2/alerts", {"active": "true", "silenced": "true",
                                                    "inhibited": "true", "unprocessed": "true"})
        if not isinstance(body, list):
            raise MonitorError(f"Alertmanager: /api/v2/alerts answered {str(body)[:100]!r}, not a list")
        if len(body) > MAX_ALERTS:
            raise MonitorError(f"Alertmanager holds {len(body)} alerts, more than {MAX_ALERTS}")
        out: list[ActiveAlert] = []
        for item in body:
            try:
                labels = {str(k): str(v) for k, v in (item.get("labels") or {}).items()}
                out.append(ActiveAlert(
                    name=labels.get("alertname", ""),
                    labels=tuple(sorted(labels.items())),
                    fingerprint=str(item["fingerprint"]),
                    starts_unix=parse_rfc3339(item["startsAt"]),
                    ends_unix=parse_rfc3339(item["endsAt"]),
                    state=str((item.get("status") or {}).get("state", "")),
                    summary=str((item.get("annotations") or {}).get("summary", ""))[:300]))
            except (KeyError, TypeError, AttributeError) as exc:
                raise MonitorError(f"Alertmanager: malformed alert ({type(exc).__name__}: {exc})") from None
        return tuple(out)
