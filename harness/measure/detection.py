"""Did the system's own alerting notice each fault, and how fast? (From a `MonitorRecord`.)

Definitions (also in docs/results-schema.md):

* A fault's *subjects* are the instances it hit and their services; a link fault's subject is
  the link's upstream instance (a slow link to app-1 looks like a slow app-1 to its clients).
* An alert is *about* a fault when its `instance` label names one of the subjects, or, when it
  has no `instance` label, its `service` label names one of their services.
* time to detect = the first alert about the fault that fired at or after the fault took
  effect and before the next fault on the same subjects (or the end of observation), minus
  when the fault took effect. "Fired" is Alertmanager's `startsAt`: the Prometheus evaluation
  at which the rule's `for:` was met. Its floor is that rule's `for:`; it is on time within
  `for:` + scrape interval + scrape timeout + evaluation interval (`MonitorRecord.bound_s`).
* No such alert: the fault is *undetected* (never a time of zero), unless the run could not
  have seen one: fewer seconds observed after the fault than the slowest rule needs, an alert
  about the same subjects already firing when the fault began, or Alertmanager not answering
  during the window; then it is *unknown*.
* time to resolve the alert = when the last alert about the fault that fired in its window
  left Alertmanager, minus when the fault was reverted (or took effect, for an instantaneous
  fault). Still firing a resolve horizon after that: "still firing" (a failure when asserted).
* An alert fired *without a fault* when it fired while no fault was in effect: outside every
  fault's span from its injection to its revert (an instantaneous fault: 5 s) plus the slowest
  rule's bound. Alerts already firing when the run started count too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Sequence

from harness.model.monitoring import AlertEpisode, AlertRuleInfo, MonitorRecord
from harness.model.record import FaultEvent, RunRecord
from harness.model.target import Target

INSTANT_FAULT_S = 5.0       # an instantaneous fault is in effect this long (as the run's phases)

DetectStatus = Literal["detected", "undetected", "unknown"]
ResolveStatus = Literal["resolved", "still firing", "unknown", "-"]


@dataclass(frozen=True)
class FaultDetection:
    fault: str
    status: DetectStatus
    injected_s: float                       # offsets relative to t0
    alert: str | None = None                # the detecting alert, e.g. AppReplicaDown{app-2}
    fired_s: float | None = None
    time_to_detect_s: float | None = None
    floor_s: float | None = None            # its rule's `for:`
    bound_s: float | None = None            # for + scrape interval + scrape timeout + eval interval
    resolve: ResolveStatus = "-"
    resolved_s: float | None = None
    time_to_resolve_s: float | None = None
    why: str = ""                           # why undetected or unknown, in words


@dataclass(frozen=True)
class AlertSummary:
    name: str
    labels: tuple[tuple[str, str], ...]
    fired_s: float
    seen_s: float
    resolved_s: float | None                # None: still firing when the run ended
    fault: str | None                       # the fault it is about (labels and time)
    during: str | None                      # a fault in effect when it fired (time only)
    summary: str = ""

    @property
    def without_fault(self) -> bool:
        return self.fault is None and self.during is None

    def describe(self) -> str:
        d = dict(self.labels)
        inst = d.get("instance") or d.get("service")
        return f"{self.name}{{{inst}}}" if inst else self.name


@dataclass(frozen=True)
class ProbePoint:
    probe: str
    offset_s: float
    ok: bool | None
    value: float | None
    detail: str


@dataclass(frozen=True)
class MonitorSummary:
    faults: tuple[FaultDetection, ...]
    alerts: tuple[AlertSummary, ...]
    alerts_without_fault: int | None        # None: unknown (why in `without_fault_unknown`)
    without_fault_unknown: str
    rules: tuple[AlertRuleInfo, ...]
    scrape_interval_s: float
    scrape_timeout_s: float
    probes: tuple[ProbePoint, ...] = ()
    errors: tuple[str, ...] = ()

    def fault(self, name: str) -> FaultDetection | None:
        return next((f for f in self.faults if f.fault == name), None)


def subjects(fault: FaultEvent, target: Target) -> tuple[set[str], set[str]]:
    """(instances, services) a fault hit."""
    instances: set[str] = set()
    names = set(target.instance_names())
    for name in fault.targets:
        if name in names:
            instances.add(name)
            continue
        try:
            instances.add(target.link(name).upstream)
        except KeyError:
            continue                        # "|" between partition sides, or a name we cannot place
    services = set()
    for inst in instances:
        try:
            services.add(target.service_of(inst).name)
        except KeyError:
            pass
    return instances, services


def about(episode: AlertEpisode, instances: set[str], services: set[str]) -> bool:
    inst = episode.label("instance")
    if inst is not None:
        return inst in instances
    svc = episode.label("service")
    return svc is not None and svc in services


def summarize(record: RunRecord) -> MonitorSummary | None:
    """The monitoring measurements of a run; None when the run had no monitor."""
    mon = record.monitoring
    if mon is None:
        return None
    t0 = record.t0
    target = record.experiment.target
    faults = sorted(record.faults, key=lambda f: f.injected_t)
    subj = {f.fault: subjects(f, target) for f in faults}
    observed = mon.observed_until_t if mon.observed_until_t is not None else record.t_end

    detections = [_detect(f, faults, subj, mon, observed, t0) for f in faults]
    attributed: dict[tuple[str, float], str] = {}
    for f in faults:
        inst, svc = subj[f.fault]
        end = _window_end(f, faults, subj, observed)
        for e in mon.alerts:
            if f.injected_t <= e.fired_t <= end and about(e, inst, svc):
                attributed.setdefault((e.fingerprint, e.fired_t), f.fault)

    def during(e: AlertEpisode) -> str | None:
        for f in faults:
            end = (f.reverted_t if f.reverted_t is not None else f.injected_t + INSTANT_FAULT_S)
            if f.injected_t <= e.fired_t <= end + mon.horizon_s:
                return f.fault
        return None

    alerts = tuple(AlertSummary(
        name=e.name, labels=e.labels, fired_s=e.fired_t - t0, seen_s=e.seen_t - t0,
        resolved_s=None if e.resolved_t is None else e.resolved_t - t0,
        fault=attributed.get((e.fingerprint, e.fired_t)), during=during(e), summary=e.summary)
        for e in sorted(mon.alerts, key=lambda e: (e.fired_t, e.name)))
    unknown = ""
    if mon.started_t is None:
        unknown = "Alertmanager was never read"
    else:
        gap = _longest_gap(mon, t0, observed)
        if gap > max(_eval_interval(mon), mon.scrape_interval_s, 1.0):
            unknown = f"Alertmanager did not answer for {gap:.1f} s during the run"
    count = None if unknown else sum(1 for a in alerts if a.without_fault)
    probes = tuple(ProbePoint(s.probe, s.t - t0, s.ok, s.value, s.detail) for s in mon.probe_samples)
    return MonitorSummary(tuple(detections), alerts, count, unknown, mon.rules, mon.scrape_interval_s,
                          mon.scrape_timeout_s, probes, mon.errors)


def _window_end(f: FaultEvent, faults: Sequence[FaultEvent], subj: dict, observed: float) -> float:
    """A fault is judged until a later fault hits one of its subjects, or observation ends."""
    inst, svc = subj[f.fault]
    later = [g.injected_t for g in faults if g.injected_t > f.injected_t
             and (subj[g.fault][0] & inst or (not inst and subj[g.fault][1] & svc))]
    return min([observed, *later])


def _detect(f: FaultEvent, faults: Sequence[FaultEvent], subj: dict, mon: MonitorRecord,
            observed: float, t0: float) -> FaultDetection:
    inst, svc = subj[f.fault]
    start, end = f.injected_t, _window_end(f, faults, subj, observed)
    base = FaultDetection(fault=f.fault, status="unknown", injected_s=start - t0)
    if mon.started_t is None:
        return _with(base, why="Alertmanager was never read")
    if not inst:
        return _with(base, why="the fault names no instance an alert could be about")
    mine = [e for e in mon.alerts if about(e, inst, svc)]
    hits = sorted((e for e in mine if start <= e.fired_t <= end), key=lambda e: e.fired_t)
    if not hits:
        what = ", ".join(sorted(inst))
        already = [e for e in mine if e.fired_t < start and (e.resolved_t is None or e.resolved_t > start)]
        if already:
            return _with(base, why=f"{already[0].describe()} was already firing when the fault began")
        if end - start < mon.horizon_s:
            cut = "the next fault on the same instances came" if end < observed else "the run ended"
            return _with(base, why=f"{cut} {end - start:.1f} s after the fault, before the slowest rule "
                                   f"could fire ({mon.horizon_s:.1f} s)")
        gap = _longest_gap(mon, start, end)
        if gap > _eval_interval(mon):
            return _with(base, why=f"Alertmanager did not answer for {gap:.1f} s after the fault")
        return _with(base, status="undetected",
                     why=f"no alert about {what} fired in the {end - start:.1f} s after the fault")
    first, last = hits[0], hits[-1]
    rule = mon.rule(first.name)
    det = _with(base, status="detected", alert=first.describe(), fired_s=first.fired_t - t0,
                time_to_detect_s=first.fired_t - start,
                floor_s=rule.for_s if rule else None, bound_s=mon.bound_s(rule) if rule else None)
    over = f.reverted_t if f.reverted_t is not None else start
    if last.resolved_t is not None:
        return _with(det, resolve="resolved", resolved_s=last.resolved_t - t0,
                     time_to_resolve_s=last.resolved_t - over)
    if observed - over >= mon.resolve_horizon_s:
        return _with(det, resolve="still firing",
                     why=f"{last.describe()} still firing {observed - over:.1f} s after the fault ended")
    return _with(det, resolve="unknown",
                 why=f"only {max(0.0, observed - over):.1f} s observed after the fault ended")


def _with(d: FaultDetection, **kw) -> FaultDetection:
    from dataclasses import replace

    return replace(d, **kw)


def _eval_interval(mon: MonitorRecord) -> float:
    return max((r.interval_s for r in mon.rules), default=1.0)


def _longest_gap(mon: MonitorRecord, start: float, end: float) -> float:
    longest = 0.0
    for a, b in mon.gaps:
        overlap = min(b, end) - max(a, start)
        longest = max(longest, overlap)
    return longest
