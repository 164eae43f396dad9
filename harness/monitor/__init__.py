"""The target's own monitoring, read during a run: Prometheus and Alertmanager over their HTTP
APIs, alerts followed from firing to resolved, and probes (PromQL, HTTP, command) in modes.

    PrometheusClient, AlertmanagerClient   the two APIs, a timeout on every call
    AlertTracker                           polls → alert episodes (fired, seen, resolved)
    take(probe, tools)                     one probe sample: ok, failed or unknown
    Monitor                                the run's stage: threads, events, abort_if probes

Knows nothing about Docker or Locust: the orchestrator hands in URLs and the way to reach an
instance (`ProbeTools`). Every failure to talk to a server is a `MonitorError` (a harness
error) or an unknown sample, never the system's FAIL. Matching alerts to faults, and the time
to detect, are measurements: `harness.measure.detection`.
"""

from harness.monitor.alertmanager import ActiveAlert, AlertmanagerClient
from harness.monitor.alerts import AlertTracker
from harness.monitor.monitor import Monitor
from harness.monitor.probes import ProbeTools, take
from harness.monitor.prometheus import PrometheusClient, QueryResult

__all__ = ["ActiveAlert", "AlertmanagerClient", "AlertTracker", "Monitor", "ProbeTools", "take",
           "PrometheusClient", "QueryResult"]
