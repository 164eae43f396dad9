"""The Prometheus and Alertmanager clients, probes and the Monitor stage against a fake server
on 127.0.0.1 (answers, errors, hangs); the real servers are tests/integration/test_monitoring_real.py."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qs, urlparse

import pytest

from harness.errors import MonitorError, StackError
from harness.events import FaultInjected, FaultReverted
from harness.model.probes import CmdProbe, HttpProbe, PromqlProbe
from harness.monitor import AlertmanagerClient, Monitor, ProbeTools, PrometheusClient, take
from harness.timestamps import WallClock, parse_rfc3339

Route = Callable[[dict[str, list[str]]], tuple[int, Any]]


class FakeServer:
    """Routes path → fn(query) → (status, body); body dicts/lists are sent as JSON."""

    def __init__(self, routes: dict[str, Route]):
        self.routes = routes
        self.calls: list[tuple[str, dict[str, list[str]]]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                url = urlparse(self.path)
                query = parse_qs(url.query)
                outer.calls.append((url.path, query))
                route = outer.routes.get(url.path)
                status, body = (404, {"error": "no route"}) if route is None else route(query)
                raw = body.encode() if isinstance(body, str) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *a: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    made: list[FakeServer] = []

    def make(routes: dict[str, Route]) -> FakeServer:
        made.append(FakeServer(routes))
        return made[-1]

    yield make
    for s in made:
        s.close()


def ok(data: Any) -> Route:
    return lambda q: (200, {"status": "success", "data": data})


def vector(*pairs: tuple[dict[str, str], str]) -> Route:
    return ok({"resultType": "vector", "result": [{"metric": m, "value": [1700000000.5, v]} for m, v in pairs]})


def test_rfc3339_both_precisions_and_zones():
    assert parse_rfc3339("2026-12-02T02:00:33.346Z") == pytest.approx(1796176833.346)
    assert parse_rfc3339("2026-12-02T02:00:21.347025211Z") == pytest.approx(1796176821.347025)
    assert parse_rfc3339("2026-12-02T03:00:21+01:00") == parse_rfc3339("2026-12-02T02:00:21Z")
    with pytest.raises(ValueError):
        parse_rfc3339("yesterday")
    clock = WallClock(offset_s=100.0)
    assert clock.to_mono(150.0) == 50.0 and clock.to_unix(50.0) == 150.0


def test_query_vector_scalar_empty_and_refusals(server):
    s = server({"/api/v1/query": lambda q: {
        "sum(up)": vector(({}, "3")),
        "up": vector(({"__name__": "up", "instance": "app-1"}, "1"), ({"instance": "app-2"}, "NaN")),
        "none": vector(),
        "scalar(1)": ok({"resultType": "scalar", "result": [1700000000.0, "+Inf"]}),
        "up[5s]": ok({"resultType": "matrix", "result": []}),
        "bad(": lambda q: (400, {"status": "error", "errorType": "bad_data", "error": "parse error: unclosed"}),
    }[q["query"][0]](q)})
    prom = PrometheusClient(s.url)
    assert prom.query("sum(up)").values[0].value == 3.0
    r = prom.query("up")
    assert [v.labels for v in r.values] == [(("instance", "app-1"),), (("instance", "app-2"),)]
    assert r.values[1].value != r.values[1].value            # NaN comes through as NaN
    assert prom.query("none").values == ()
    assert prom.query("scalar(1)").kind == "scalar" and prom.query("scalar(1)").values[0].value == float("inf")
    with pytest.raises(MonitorError, match="is a matrix"):
        prom.query("up[5s]")
    with pytest.raises(MonitorError, match="400 parse error: unclosed"):
        prom.query("bad(")
    # The server is told to give up a little before we do (2 s client timeout → 1800ms).
    assert s.calls[0][1]["timeout"] == ["1800ms"]


def test_every_call_is_bounded_and_unreachable_is_a_monitor_error(server):
    s = server({"/api/v1/query": lambda q: (time.sleep(1.5), (200, {}))[1]})
    t = time.monotonic()
    with pytest.raises(MonitorError, match="did not answer GET /api/v1/query within 0.3 s"):
        PrometheusClient(s.url, timeout_s=0.3).query("up")
    assert time.monotonic() - t < 1.2
    with pytest.raises(MonitorError, match="unreachable"):
        AlertmanagerClient("http://127.0.0.1:9").alerts()
    assert PrometheusClient("http://127.0.0.1:9").ready() is False


def test_rules_and_targets(server):
    s = server({
        "/api/v1/rules": ok({"groups": [{"name": "g", "interval": 1, "rules": [
            {"type": "alerting", "name": "AppDown", "query": "up == 0", "duration": 3, "labels": {"severity": "page"}},
            {"type": "recording", "name": "job:up", "query": "sum(up)"}]}]}),
        "/api/v1/targets": ok({"activeTargets": [
            {"labels": {"job": "app", "instance": "app-1"}, "health": "up", "scrapeInterval": "1s",
             "scrapeTimeout": "800ms", "lastError": ""}]}),
        "/api/v1/alerts": ok({"alerts": [{"labels": {"alertname": "AppDown"}, "state": "pending"}]}),
    })
    prom = PrometheusClient(s.url)
    [rule] = prom.alert_rules()
    assert (rule.name, rule.for_s, rule.interval_s, rule.labels) == ("AppDown", 3.0, 1.0, (("severity", "page"),))
    [t] = prom.scrape_targets()
    assert (t.job, t.instance, t.health, t.interval_s, t.timeout_s) == ("app", "app-1", "up", 1.0, 0.8)
    assert prom.pending_or_firing() == (("AppDown", "pending"),)


def am_alert(name: str, instance: str, starts: str, fp: str = "f1") -> dict[str, Any]:
    return {"labels": {"alertname": name, "instance": instance}, "annotations": {"summary": f"{instance} down"},
            "fingerprint": fp, "startsAt": starts, "endsAt": "2030-01-01T00:00:00Z", "updatedAt": starts,
            "status": {"state": "active", "silencedBy": [], "inhibitedBy": []}, "receivers": [{"name": "none"}]}


def test_alertmanager_alerts_parsed_and_malformed_refused(server):
    body: list[Any] = [am_alert("AppDown", "app-2", "2026-12-02T02:00:33.346Z")]
    s = server({"/api/v2/alerts": lambda q: (200, body)})
    [a] = AlertmanagerClient(s.url).alerts()
    assert a.name == "AppDown" and a.label("instance") == "app-2" and a.summary == "app-2 down"
    assert a.starts_unix == pytest.approx(1796176833.346) and a.state == "active"
    body[:] = [{"labels": {}}]
    with pytest.raises(MonitorError, match="malformed alert"):
        AlertmanagerClient(s.url).alerts()
    body[:] = [dict(am_alert("A", "x", "soon"))]
    with pytest.raises(MonitorError, match="not an RFC 3339"):
        AlertmanagerClient(s.url).alerts()


# ───────────────────────────── probes ─────────────────────────────


def promql(value: str, expr: str = "q") -> PromqlProbe:
    return PromqlProbe(name="p", **{"as": "slo"}, promql=expr, value=value)


def test_promql_probe_three_valued(server):
    answers: dict[str, Route] = {
        "three": vector(({}, "3")),
        "two": vector(({"instance": "a"}, "3"), ({"instance": "b"}, "2")),
        "none": vector(),
        "nan": vector(({}, "NaN")),
    }
    s = server({"/api/v1/query": lambda q: answers[q["query"][0]](q)})
    tools = ProbeTools(PrometheusClient(s.url), lambda *a: [], lambda n: [], lambda *a: (0, ""))
    good = take(promql("== 3", "three"), tools)
    assert (good.ok, good.value, good.detail) == (True, 3.0, "value 3 meets == 3")
    bad = take(promql("== 3", "two"), tools)
    assert bad.ok is False and bad.value == 2.0 and 'for {instance="b"}' in bad.detail
    assert take(promql("== 3", "none"), tools).ok is None           # a metric over nothing: unknown
    assert take(promql("== 3", "nan"), tools).ok is None
    assert "no series" in take(promql("== 3", "none"), tools).detail
    down = ProbeTools(PrometheusClient("http://127.0.0.1:9"), lambda *a: [], lambda n: [], lambda *a: (0, ""))
    gone = take(promql("== 3"), down)
    assert gone.ok is None and "unreachable" in gone.detail         # never the system's FAIL


def test_http_probe_every_instance_must_answer(server):
    s = server({"/healthz": lambda q: (200, "ok"), "/sick": lambda q: (503, "no")})
    urls = {"lb": [("lb-1", s.url), ("lb-2", "http://127.0.0.1:9")]}
    tools = ProbeTools(None, lambda svc, port: urls[svc], lambda n: [], lambda *a: (0, ""))
    one = HttpProbe(name="h", **{"as": "slo"}, http={"service": "lb", "port": 8080, "path": "/healthz"})
    urls["lb"] = [("lb-1", s.url)]
    assert take(one, tools).ok is True
    urls["lb"] = [("lb-1", s.url), ("lb-2", "http://127.0.0.1:9")]
    r = take(one, tools)
    assert r.ok is False and r.detail.startswith("lb-2: ConnectionError")     # the system did not answer
    sick = HttpProbe(name="h", **{"as": "slo"}, http={"service": "lb", "port": 8080, "path": "/sick"})
    urls["lb"] = [("lb-1", s.url)]
    assert take(sick, tools).detail == "lb-1: status 503"
    body = HttpProbe(name="h", **{"as": "slo"}, http={"service": "lb", "port": 8080, "path": "/healthz"},
                     body_contains="fine")
    assert "'fine' not in the body" in take(body, tools).detail

    def no_url(svc: str, port: int):
        raise StackError("lb-1 does not publish port 8080")

    assert take(one, ProbeTools(None, no_url, lambda n: [], lambda *a: (0, ""))).ok is None


def test_cmd_probe_judged_unless_it_cannot_run():
    runs: dict[str, tuple[int, str]] = {"redis-1": (0, "PONG\n"), "redis-2": (1, "Could not connect\n")}

    def run(instance: str, argv: list[str], timeout_s: float) -> tuple[int, str]:
        if instance == "gone":
            raise StackError("exec in gone: container is not running")
        return runs[instance]

    tools = ProbeTools(None, lambda *a: [], lambda n: {"redis": ["redis-1", "redis-2"]}.get(n, [n]), run)
    probe = lambda where: CmdProbe(name="c", **{"as": "slo"}, cmd=["redis-cli", "ping"], **{"in": where},  # noqa: E731
                                   output_contains="PONG")
    assert take(probe("redis-1"), tools).ok is True
    r = take(probe("redis"), tools)
    assert r.ok is False and r.detail == "redis-2: exit 1 (Could not connect)"
    assert take(probe("gone"), tools).ok is None


# ───────────────────────────── the stage ─────────────────────────────


def monitoring_server(server, alerts: list[Any], up: dict[str, str] | None = None, ready: list[bool] | None = None):
    up = up if up is not None else {"app-1": "up"}
    ready = ready if ready is not None else [True]
    return server({
        "/-/ready": lambda q: (200 if ready[0] else 503, "ready"),
        "/api/v1/rules": ok({"groups": [{"name": "g", "interval": 1, "rules": [
            {"type": "alerting", "name": "AppDown", "query": "up == 0", "duration": 3, "labels": {}}]}]}),
        "/api/v1/targets": lambda q: ok({"activeTargets": [
            {"labels": {"job": "app", "instance": i}, "health": h, "scrapeInterval": "1s", "scrapeTimeout": "800ms"}
            for i, h in up.items()]})(q),
        "/api/v1/alerts": ok({"alerts": []}),
        "/api/v1/query": vector(({}, "1")),
        "/api/v2/alerts": lambda q: (200, list(alerts)),
    })


def test_monitor_follows_alerts_and_queues_events(server):
    alerts: list[Any] = []
    s = monitoring_server(server, alerts)
    with Monitor((), s.url, s.url, poll_s=0.05) as m:
        assert [r.name for r in m.rules] == ["AppDown"] and m.scrape_interval_s == 1.0 and m.scrape_timeout_s == 0.8
        now = time.time()
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + ".250Z"
        alerts.append(am_alert("AppDown", "app-2", stamp))
        time.sleep(0.3)
        alerts.clear()
        time.sleep(0.3)
        m.finish()
        rec = m.record()
        names = [type(e).__name__ for e in m.drain()]
    assert names == ["AlertFired", "AlertResolved"]
    [ep] = rec.alerts
    assert ep.describe() == "AppDown{app-2}" and ep.resolved_t is not None and ep.seen_t < ep.resolved_t
    # fired_t is the alert's own startsAt on our clock, not when we happened to poll.
    assert WallClock().to_unix(ep.fired_t) == pytest.approx(parse_rfc3339(stamp), abs=0.05)
    assert rec.started_t is not None and rec.observed_until_t >= ep.resolved_t and rec.gaps == ()


def test_monitor_not_ready_is_a_monitor_error_and_not_quiet_is_a_warning(server):
    s = monitoring_server(server, [], ready=[False])
    with pytest.raises(MonitorError, match="not ready after 0 s"):
        Monitor((), s.url, None, ready_timeout_s=0.3).open()
    said: list[tuple[str, str]] = []
    s2 = monitoring_server(server, [], up={"app-1": "up", "app-2": "down"})
    with Monitor((), s2.url, None, quiet_timeout_s=0.3, say=lambda t, lvl="info": said.append((t, lvl))):
        pass
    assert said and said[0][1] == "warning" and "app/app-2" in said[0][0]


def test_probe_modes_and_abort(server):
    s = monitoring_server(server, [])
    probes = [
        PromqlProbe(name="cont", **{"as": "slo"}, mode="continuous", interval_s=0.1, promql="q", value="== 1"),
        PromqlProbe(name="fault", **{"as": "slo"}, mode="during_fault", interval_s=0.1, promql="q", value="== 1"),
        PromqlProbe(name="edge", **{"as": "steady_state"}, mode="edge", promql="q", value="== 1"),
        PromqlProbe(name="stop", **{"as": "abort_if"}, mode="during_fault", interval_s=0.1, promql="q", value="== 2"),
    ]
    fault = type("F", (), {"name": "kill"})()
    with Monitor(probes, s.url, None) as m:
        t0 = time.monotonic()
        m.start(t0, t0 + 0.2)
        time.sleep(0.45)
        assert m.abort_reason() is None                     # no fault yet: the during_fault probes wait
        m.on_event(FaultInjected(fault, ("app-1",), time.monotonic()))
        time.sleep(0.35)
        m.on_event(FaultReverted(fault, ("app-1",), time.monotonic()))
        t_rev = time.monotonic()
        time.sleep(0.3)
        m.finish()
        samples = m.record().probe_samples
    by = {n: [x for x in samples if x.probe == n] for n in ("cont", "fault", "edge", "stop")}
    assert len(by["cont"]) >= 6
    assert 2 <= len(by["fault"]) <= 5 and all(x.t < t_rev + 0.05 for x in by["fault"])
    assert len(by["edge"]) == 2 and by["edge"][0].t >= t0 + 0.2
    assert by["stop"] and by["stop"][0].ok is False
    assert m.abort_reason() == "abort_if: probe stop: value 1 is not == 2"


def test_instantaneous_fault_counts_as_in_effect_for_a_while():
    m = Monitor((), None, None)
    fault = type("F", (), {"name": "restart"})()
    m.on_event(FaultInjected(fault, ("app-1",), 100.0, reversible=False))
    assert m.fault_active(101.0) and m.fault_active(104.9) and not m.fault_active(105.1)


def test_a_monitor_thread_that_dies_of_a_bug_makes_the_run_an_error(server, monkeypatch):
    s = monitoring_server(server, [])
    probe = PromqlProbe(name="p", **{"as": "slo"}, interval_s=0.1, promql="q", value="== 1")
    import harness.monitor.monitor as mm

    monkeypatch.setattr(mm, "take", lambda p, tools: 1 / 0)
    with Monitor([probe], s.url, None) as m:
        m.start(time.monotonic(), time.monotonic())
        time.sleep(0.3)
        m.finish()
        with pytest.raises(MonitorError, match="monitor thread probe-p failed: ZeroDivisionError"):
            m.check()
