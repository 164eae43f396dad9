"""The monitor stage: a `harness.monitor.Monitor` wired to the run's stack and event bus.

    monitor = monitor_stage(stages, experiment, stack, events)     # None: nothing to monitor
    ... monitor.start(t0, baseline_end)  ... pump(monitor, events) ... monitor.finish()

Monitoring is *required* when the experiment asks for it (a detection metric in its SLOs, or a
probe): then a Prometheus or Alertmanager that never comes up is a harness ERROR. When the
target merely has monitoring, alerts are still followed for the report, and monitoring that
fails to come up is a warning: the run goes on without it.
"""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any

from harness.errors import HarnessError
from harness.events import Events, FaultInjected, FaultReverted
from harness.model import MONITOR_METRICS
from harness.model.experiment import Experiment
from harness.monitor import Monitor, ProbeTools

START_PROBE_LEAD_S = 0.5        # a start probe runs this long before the baseline ends


def required(experiment: Experiment) -> bool:
    return bool(experiment.probes) or any(a.metric in MONITOR_METRICS for a in experiment.slo)


def monitor_stage(stages: ExitStack, experiment: Experiment, stack: Any, events: Events) -> Monitor | None:
    target = experiment.target
    mon = target.monitoring
    if mon is None and not experiment.probes:
        return None

    def url(service: str, port: int) -> str:
        return stack.published_url(target.expand(service)[0], port)

    tools = ProbeTools(
        prometheus=None,
        urls=lambda service, port: [(i, stack.published_url(i, port)) for i in (target.expand(service) or ())],
        instances=lambda name: list(target.expand(name) or ()),
        exec=lambda instance, argv, timeout_s: stack.instance(instance).exec(argv, timeout_s))
    prom = url(mon.prometheus.service, mon.prometheus.port) if mon is not None else None
    am = url(mon.alertmanager.service, mon.alertmanager.port) if mon is not None and mon.alertmanager else None
    monitor = Monitor(experiment.probes, prom, am, tools, say=events.say)
    try:
        stages.enter_context(monitor)
    except HarnessError as exc:
        if required(experiment):
            raise
        events.say(f"monitoring unavailable, run goes on without it: {exc}", "warning")
        return None
    listener = events.subscribe(monitor.on_event, FaultInjected, FaultReverted, name="monitor")
    stages.callback(events.unsubscribe, listener)
    waited = sum(monitor.timings.values())
    events.say(f"monitoring ready in {waited:.1f} s: {len(monitor.rules)} alert rule(s), "
               f"scrape every {monitor.scrape_interval_s:g} s")
    return monitor


def baseline_end(experiment: Experiment, t0: float) -> float:
    """When start probes run: just before the baseline ends (one request timeout before the
    first fault is due), or before the end of a run without faults."""
    if experiment.faults:
        end = min(f.at_s for f in experiment.faults) - experiment.load.request_timeout_s
    else:
        end = experiment.duration_s
    return t0 + max(0.0, end - START_PROBE_LEAD_S)


def pump(monitor: Monitor | None, events: Events) -> None:
    """Emit what the monitor's threads queued, on the caller's (the orchestrator's) thread."""
    if monitor is not None:
        for ev in monitor.drain():
            events.emit(ev)
