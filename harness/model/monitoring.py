"""A target's monitoring, as declared and as a run records it.

A target that runs its own Prometheus (and Alertmanager) says where they answer:

    x-continuum:
      monitoring:
        prometheus:   {service: prometheus, port: 9090}
        alertmanager: {service: alertmanager, port: 9093}

Both must be single-instance services that publish that container port (on 127.0.0.1, like
every published port). The harness then reads the alerting rules, tracks every alert that
fires during the run, and can evaluate PromQL probes (harness.model.probes).

The run records (`MonitorRecord` and what it holds) are plain frozen dataclasses, like the rest
of `harness.model.record`: built by the harness, never parsed from a file. Times are
CLOCK_MONOTONIC seconds, the clock of every sample.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from harness.model.base import At, Model
from harness.model.units import Name, Port


# ─────────────────────────────────────── the target ───────────────────────────────────────


class ServicePort(Model):
    service: Name
    port: Port


class MonitoringSpec(Model):
    """x-continuum.monitoring: where the target's Prometheus and Alertmanager answer (the same
    shape at run time, once `check_monitoring` has checked it against the services)."""

    prometheus: ServicePort
    alertmanager: ServicePort | None = None


def check_monitoring(decl: MonitoringSpec, services: Mapping[str, Any]) -> MonitoringSpec:
    """Each named service (a `ServiceSpec` by name) exists, runs one instance and publishes the
    port. Raises `At`."""
    for key in ("prometheus", "alertmanager"):
        sp: ServicePort | None = getattr(decl, key)
        if sp is None:
            continue
        svc = services.get(sp.service)
        if svc is None:
            raise At(f"{key} service {sp.service!r} is not a service of this target "
                     f"(services: {', '.join(services)})", key, "service")
        if svc.replicas != 1:
            raise At(f"{key} service {sp.service!r} has {svc.replicas} replicas; the harness "
                     "reads one server", key, "service")
        if not any(p.container_port == sp.port and p.protocol == "tcp" for p in svc.ports):
            raise At(f"{key} service {sp.service!r} does not publish container port {sp.port} "
                     "(add it to its ports)", key, "port")
    return decl


# ─────────────────────────────────────── what a run records ───────────────────────────────────────


Labels = tuple[tuple[str, str], ...]


def label(labels: Labels, name: str) -> str | None:
    for k, v in labels:
        if k == name:
            return v
    return None


@dataclass(frozen=True)
class AlertRuleInfo:
    """An alerting rule as Prometheus loaded it."""

    name: str
    for_s: float                    # its `for:`: the least time from a fault to this alert firing
    interval_s: float               # its group's evaluation interval


@dataclass(frozen=True)
class AlertEpisode:
    """One alert from when it fired until it resolved, as Alertmanager held it."""

    name: str                       # alertname
    labels: Labels                  # every label, alertname included, sorted
    fingerprint: str
    fired_t: float                  # Alertmanager's startsAt: the evaluation at which it fired
    seen_t: float                   # when the harness first saw it in Alertmanager
    resolved_t: float | None        # first poll that no longer listed it; None: still firing
    summary: str = ""

    def label(self, name: str) -> str | None:
        return label(self.labels, name)

    def describe(self) -> str:
        inst = self.label("instance") or self.label("service")
        return f"{self.name}{{{inst}}}" if inst else self.name


@dataclass(frozen=True)
class ProbeSample:
    """One evaluation of a probe."""

    probe: str
    t: float                        # when it was taken (the request was sent)
    ok: bool | None                 # None: unknown (monitoring did not answer, no series, NaN)
    value: float | None = None      # the number it judged (PromQL), when there was one
    detail: str = ""


@dataclass(frozen=True)
class MonitorRecord:
    """Everything the monitor saw in one run."""

    prometheus: str                                 # base URLs, for the report
    alertmanager: str | None
    rules: tuple[AlertRuleInfo, ...]
    scrape_interval_s: float                        # the largest among the scrape targets
    scrape_timeout_s: float
    started_t: float                                # first successful Alertmanager poll
    observed_until_t: float                         # last successful poll
    alerts: tuple[AlertEpisode, ...] = ()
    probe_samples: tuple[ProbeSample, ...] = ()
    gaps: tuple[tuple[float, float], ...] = ()      # spans in which Alertmanager did not answer
    errors: tuple[str, ...] = ()                    # what went wrong, for the report

    def rule(self, name: str) -> AlertRuleInfo | None:
        """The rule that makes `name` (the slowest one if several groups define it)."""
        found = [r for r in self.rules if r.name == name]
        return max(found, key=lambda r: r.for_s) if found else None

    def bound_s(self, rule: AlertRuleInfo | None) -> float:
        """How late after a fault `rule` may fire and still be on time: its `for:`, plus one
        scrape interval (the first scrape that sees the fault), plus the scrape timeout (a
        target that hangs is down only when its scrape gives up), plus one evaluation interval
        (the first evaluation that sees that scrape). Without a rule: the slowest one's."""
        if rule is None:
            return max((self.bound_s(r) for r in self.rules), default=self.scrape_interval_s)
        return rule.for_s + self.scrape_interval_s + self.scrape_timeout_s + rule.interval_s

    @property
    def horizon_s(self) -> float:
        """How long after a fault an alert may still come: the slowest rule's bound."""
        return self.bound_s(None)

    @property
    def resolve_horizon_s(self) -> float:
        """How long after a fault ends its alert may still be listed: one scrape, its
        timeout and one evaluation (no `for:` on the way down), plus our poll."""
        interval = max((r.interval_s for r in self.rules), default=1.0)
        return self.scrape_interval_s + self.scrape_timeout_s + interval + 0.5
