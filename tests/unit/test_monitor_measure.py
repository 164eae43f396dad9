"""Alert episodes, detection per fault, the detection metrics and probe verdicts: known answers on
synthetic records (no Docker)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.loader import load_target
from harness.measure import Verdict, evaluate
from harness.measure.detection import about, subjects, summarize
from harness.measure.synthetic import make_experiment, make_record, steady_samples
from harness.model import Assertion, FaultEvent
from harness.model.monitoring import AlertEpisode, AlertRuleInfo, MonitorRecord, ProbeSample
from harness.model.probes import PromqlProbe
from harness.monitor.alertmanager import ActiveAlert
from harness.monitor.alerts import AlertTracker, Fired, Resolved
from harness.report.results import results_to_json
from harness.report.html import render_html
from harness.timestamps import WallClock

REF = load_target(Path(__file__).resolve().parents[2] / "targets" / "reference")
T0 = 1000.0
TTD = Assertion("time_to_detect", "<=", 6.0, "<= 6s")
TTRA = Assertion("time_to_resolve_alert", "<=", 10.0, "<= 10s")
AWF = Assertion("alerts_without_fault", "==", 0, "== 0")
RULES = (AlertRuleInfo("AppReplicaDown", 3.0, 1.0), AlertRuleInfo("LoadBalancerDown", 3.0, 1.0))


def ep(name: str, instance: str | None, fired: float, resolved: float | None, **labels: str) -> AlertEpisode:
    ls = {"alertname": name, **labels}
    if instance:
        ls["instance"] = instance
    return AlertEpisode(name, tuple(sorted(ls.items())), f"fp-{name}-{instance}", T0 + fired, T0 + fired + 0.1,
                        None if resolved is None else T0 + resolved)


def mon(*alerts: AlertEpisode, until: float = 60.0, gaps=(), samples=()) -> MonitorRecord:
    return MonitorRecord("http://p", "http://a", RULES, 1.0, 0.8, T0, T0 + until, tuple(alerts),
                         tuple(samples), tuple(gaps))


def kill(name: str, target: str, at: float, back: float | None) -> FaultEvent:
    return FaultEvent(name, "container.kill", (target,), T0 + at, None if back is None else T0 + back)


def run(faults, monitoring, slo=(TTD, TTRA, AWF), probes=(), duration=60.0):
    exp = make_experiment(duration_s=duration, slo=slo).model_copy(update={"target": REF, "probes": tuple(probes)})
    samples = steady_samples(T0, T0 + duration, 50)
    return make_record(samples, experiment=exp, t0=T0, t_end=T0 + duration, faults=faults, monitoring=monitoring)


# ───────────────────────────── the tracker ─────────────────────────────


def active(name: str, fp: str, starts: float) -> ActiveAlert:
    return ActiveAlert(name, (("alertname", name),), fp, starts, starts + 300, "active")


def test_tracker_episodes_from_polls():
    tr = AlertTracker(WallClock(offset_s=1_000_000.0))
    assert tr.observe([], 10.0) == []
    [c] = tr.observe([active("A", "f1", 1_000_012.0)], 12.5)
    assert isinstance(c, Fired) and c.episode.fired_t == 12.0 and c.episode.seen_t == 12.5
    assert tr.observe([active("A", "f1", 1_000_012.0)], 13.0) == []          # same episode
    tr.missed(13.5)
    tr.missed(14.0)
    [c] = tr.observe([], 15.0)                                                 # gone: resolved
    assert isinstance(c, Resolved) and c.episode.resolved_t == 15.0
    assert tr.gaps == [(13.0, 15.0)]                                           # from the last good poll
    [c] = tr.observe([active("A", "f1", 1_000_020.0)], 20.2)                   # fires again: new episode
    assert isinstance(c, Fired)
    eps = tr.episodes()
    assert [(e.fired_t, e.resolved_t) for e in eps] == [(12.0, 15.0), (20.0, None)]
    assert tr.first_poll_t == 10.0 and tr.last_poll_t == 20.2


# ───────────────────────────── matching ─────────────────────────────


def test_subjects_and_labels():
    link = FaultEvent("slow", "network.latency", ("lb-app-1",), T0, T0 + 5)
    assert subjects(link, REF) == ({"app-1"}, {"app"})
    part = FaultEvent("p", "partition", ("redis-1", "|", "redis-2", "sentinel-1"), T0, T0 + 5)
    assert subjects(part, REF) == ({"redis-1", "redis-2", "sentinel-1"}, {"redis-1", "redis-2", "sentinel"})
    inst, svc = {"app-2"}, {"app"}
    assert about(ep("AppReplicaDown", "app-2", 0, None), inst, svc)
    assert not about(ep("AppReplicaDown", "app-3", 0, None, service="app"), inst, svc)   # instance decides
    assert about(ep("AppErrors", None, 0, None, service="app"), inst, svc)               # no instance: service
    assert not about(ep("Watchdog", None, 0, None), inst, svc)


# ───────────────────────────── detection ─────────────────────────────


def test_detected_with_its_floor_bound_and_resolution():
    rec = run([kill("k", "app-2", 20.0, 35.0)], mon(ep("AppReplicaDown", "app-2", 24.2, 38.5, service="app")))
    m = summarize(rec)
    [d] = m.faults
    assert d.status == "detected" and d.alert == "AppReplicaDown{app-2}"
    assert d.time_to_detect_s == pytest.approx(4.2) and d.floor_s == 3.0 and d.bound_s == pytest.approx(5.8)
    assert d.resolve == "resolved" and d.time_to_resolve_s == pytest.approx(3.5)
    assert m.alerts_without_fault == 0 and m.alerts[0].fault == "k"
    r = evaluate(rec)
    assert r.verdict is Verdict.PASS, r.reasons
    msgs = {a.metric: a.message for a in r.assertions}
    assert msgs["time_to_detect"] == "time_to_detect 4.20 s (k: AppReplicaDown{app-2}) meets <= 6s"
    assert msgs["time_to_resolve_alert"] == "time_to_resolve_alert 3.50 s (k) meets <= 10s"


def test_a_fault_nobody_alerted_on_is_undetected_never_zero():
    # An alert about another instance, and one that fired before the fault, do not count.
    rec = run([kill("k", "lb-1", 20.0, 35.0)],
              mon(ep("LoadBalancerDown", "lb-2", 24.0, 30.0), ep("AppReplicaDown", "app-1", 5.0, 8.0)))
    [d] = summarize(rec).faults
    assert d.status == "undetected" and d.time_to_detect_s is None and "no alert about lb-1" in d.why
    r = evaluate(rec)
    assert r.verdict is Verdict.FAIL
    ttd = next(a for a in r.assertions if a.metric == "time_to_detect")
    assert ttd.passed is False and ttd.measured is None
    assert ttd.message.startswith("time_to_detect: fault k undetected: no alert about lb-1 fired in the 40.0 s")
    awf = next(a for a in r.assertions if a.metric == "alerts_without_fault")
    # lb-2's alert fired while a fault was in effect (time only); app-1's at 5 s fired without one.
    assert awf.measured == 1 and "AppReplicaDown{app-1}" in awf.message and awf.passed is False


def test_unknown_not_undetected_when_the_run_could_not_have_seen_it():
    late = run([kill("k", "app-2", 57.0, None)], mon(until=60.0))
    [d] = summarize(late).faults
    assert d.status == "unknown" and "the run ended 3.0 s after the fault" in d.why
    r = evaluate(late)
    assert r.verdict is Verdict.INCONCLUSIVE
    already = run([kill("k", "app-2", 20.0, 30.0)], mon(ep("AppReplicaDown", "app-2", 10.0, None)))
    assert "already firing when the fault began" in summarize(already).faults[0].why
    gap = run([kill("k", "app-2", 20.0, 30.0)], mon(gaps=[(21.0 + T0, 29.0 + T0)]))
    d = summarize(gap).faults[0]
    assert d.status == "unknown" and "did not answer for 8.0 s" in d.why
    assert summarize(gap).alerts_without_fault is None


def test_the_next_fault_on_the_same_subject_closes_the_window():
    faults = [kill("k1", "app-2", 10.0, 12.0), kill("k2", "app-2", 12.5, 20.0), kill("k3", "lb-1", 11.0, 20.0)]
    alerts = (ep("AppReplicaDown", "app-2", 16.0, 24.0), ep("LoadBalancerDown", "lb-1", 14.5, 23.0))
    m = summarize(run(faults, mon(*alerts)))
    d1, d3, d2 = m.faults                                   # in injection order
    # k1's window closed at 12.5 s, before any rule could have fired: unknown, not undetected.
    assert (d1.fault, d1.status) == ("k1", "unknown") and "next fault on the same instances came 2.5 s" in d1.why
    assert (d2.fault, d2.status, d2.time_to_detect_s) == ("k2", "detected", pytest.approx(3.5))
    # k3 on another subject is judged on its own: the app fault at 12.5 s does not cut it short.
    assert (d3.fault, d3.status, d3.time_to_detect_s) == ("k3", "detected", pytest.approx(3.5))


def test_alert_still_firing_after_the_fault_ended_fails_time_to_resolve():
    rec = run([kill("k", "app-2", 20.0, 30.0)], mon(ep("AppReplicaDown", "app-2", 23.5, None)))
    d = summarize(rec).faults[0]
    assert d.resolve == "still firing" and "still firing 30.0 s after" in d.why
    r = evaluate(rec)
    a = next(a for a in r.assertions if a.metric == "time_to_resolve_alert")
    assert a.passed is False and r.verdict is Verdict.FAIL
    # Just ended: too early to say.
    soon = run([kill("k", "app-2", 20.0, 59.0)], mon(ep("AppReplicaDown", "app-2", 23.5, None)))
    assert summarize(soon).faults[0].resolve == "unknown"


def test_no_monitoring_record_or_no_fault_is_unknown():
    r = evaluate(run([kill("k", "app-2", 20.0, 30.0)], None))
    assert r.verdict is Verdict.INCONCLUSIVE and all(a.passed is None for a in r.assertions if a.metric != "availability")
    r = evaluate(run([], mon(), slo=(TTD,)))
    assert r.assertions[0].message == "time_to_detect unknown: no fault was injected (required <= 6s)"


# ───────────────────────────── probes ─────────────────────────────


def sample(name: str, t: float, ok: bool | None, value: float | None = 3.0) -> ProbeSample:
    return ProbeSample(name, T0 + t, ok, value, "value 3 meets == 3" if ok else "value 2 is not == 3")


def test_steady_state_probe_is_judged_on_baseline_and_recovery():
    p = PromqlProbe(name="up", **{"as": "steady_state"}, promql="sum(up)", value="== 3")
    samples = [sample("up", 17.5, True), sample("up", 60.2, False, 2.0)]
    rec = run([kill("k", "app-2", 20.0, 30.0)], mon(samples=samples), slo=(Assertion("availability", ">=", 0.9, ">= 90%"),),
              probes=[p])
    r = evaluate(rec)
    got = {(a.kind, a.scope): (a.passed, a.measured) for a in r.assertions if a.metric == "probe:up"}
    assert got == {("steady_state", "baseline"): (True, 0.0), ("steady_state", "recovery"): (False, 1.0)}
    fail = next(a for a in r.assertions if a.scope == "recovery")
    assert fail.message == "recovery: probe up (edge) failed 1 of 1 sample(s); first at 60.2 s: value 2 is not == 3"
    assert r.verdict is Verdict.FAIL


def test_slo_probe_unknown_samples_never_pass():
    p = PromqlProbe(name="q", **{"as": "slo"}, promql="x", value="== 3")
    rec = run([], mon(samples=[sample("q", 1.0, True), sample("q", 2.0, None)]),
              slo=(Assertion("availability", ">=", 0.9, ">= 90%"),), probes=[p])
    r = evaluate(rec)
    a = next(a for a in r.assertions if a.metric == "probe:q")
    assert a.passed is None and "unknown in 1 of 2" in a.message and r.verdict is Verdict.INCONCLUSIVE
    none = evaluate(run([], mon(), slo=(Assertion("availability", ">=", 0.9, ">= 90%"),), probes=[p]))
    assert next(a for a in none.assertions if a.metric == "probe:q").message.endswith("unknown: no sample was taken")


# ───────────────────────────── reports ─────────────────────────────


def test_results_json_and_html_show_detection():
    rec = run([kill("k", "app-2", 20.0, 35.0), kill("l", "lb-1", 40.0, 50.0)],
              mon(ep("AppReplicaDown", "app-2", 24.2, 38.5), ep("SentinelDown", "sentinel-2", 2.0, 4.0)))
    r = evaluate(rec)
    doc = results_to_json([r])
    m = doc["runs"][0]["monitoring"]
    assert [f["status"] for f in m["faults"]] == ["detected", "undetected"]
    assert [(a["alert"], a["without_fault"]) for a in m["alerts"]] == [("SentinelDown{sentinel-2}", True),
                                                                        ("AppReplicaDown{app-2}", False)]
    assert m["alerts_without_fault"] == 1 and m["rules"][0]["for_s"] == 3.0
    html = render_html(doc, None)
    assert "Detection" in html and "AppReplicaDown{app-2}" in html and "undetected" in html
    assert "alerts without a fault: 1" in html
    # A results.json from before monitoring renders too.
    del doc["runs"][0]["monitoring"]
    assert "Detection" not in render_html(doc, None)


def test_journal_and_console_show_alerts_and_probe_changes(tmp_path):
    import io

    from rich.console import Console

    from harness.events import AlertFired, AlertResolved, Events, ProbeChanged
    from harness.report.console import ConsoleReporter
    from harness.report.journal import Journal, read_journal

    events = Events()
    out = io.StringIO()
    ConsoleReporter(events, live=False, console=Console(file=out, width=120))
    journal = Journal(tmp_path / "journal.jsonl").attach(events)
    fired = ep("AppReplicaDown", "app-2", 24.2, None, service="app")
    events.emit(AlertFired(fired))
    events.emit(AlertResolved(ep("AppReplicaDown", "app-2", 24.2, 38.5, service="app")))
    events.emit(ProbeChanged(ProbeSample("up", T0 + 3, False, 2.0, "value 2 is not == 3"), "abort_if"))
    journal.close()
    assert events.take_failures() == []
    lines = read_journal(tmp_path / "journal.jsonl")
    assert [l["event"] for l in lines] == ["alert_fired", "alert_resolved", "probe"]
    assert lines[0]["labels"]["instance"] == "app-2" and lines[0]["fired_t"] == T0 + 24.2
    assert lines[2]["ok"] is False and lines[2]["use"] == "abort_if"
    text = out.getvalue()
    assert "alert AppReplicaDown{app-2} firing" in text and "resolved" in text
    assert "probe up (abort_if) FAILED: value 2 is not == 3" in text
