"""Faults and the scheduler on a fake backend (the httpx MockTransport habit): fast, and exact
about what was called in which order. The scheduler runs on a fake clock, so its timing is
checked exactly. The real engine is exercised in tests/integration."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import FaultError, InputError, ToxiproxyError
from harness.events import Events, FaultInjected, FaultReverted
from harness.faults import FaultContext, build
from harness.faults.select import pick
from harness.live import LiveStats
from harness.model.record import Sample
from harness.model.target import LinkSpec, NetworkSpec, RoleSpec, ServiceSpec, Target
from harness.run.phases import phases
from harness.run.scheduler import Scheduler
from harness.undo import UndoStack


class FakeInstance:
    def __init__(self, name: str, log: list):
        self.name, self.status_, self.log = name, "running", log
        self.service = name.rsplit("-", 1)[0] if name[-1].isdigit() else name
        self.config: dict = {}

    def status(self):
        return self.status_

    def kill(self):
        self.log.append(("kill", self.name))
        self.status_ = "exited"

    def stop(self, timeout_s):
        self.log.append(("stop", self.name))
        self.status_ = "exited"

    def start(self):
        self.log.append(("start", self.name))
        self.status_ = "running"

    def pause(self):
        self.log.append(("pause", self.name))
        self.status_ = "paused"

    def unpause(self):
        self.log.append(("unpause", self.name))
        self.status_ = "running"

    def restart(self, timeout_s):
        self.log.append(("restart", self.name))

    def wait_status(self, want, timeout_s):
        assert self.status_ in want
        return self.status_

    def wait_healthy(self, timeout_s):
        pass

    def host_config(self):
        return dict(self.config)

    def update(self, **kw):
        self.log.append(("update", self.name, tuple(sorted(kw))))
        if "mem_limit" in kw:
            self.config["Memory"] = kw["mem_limit"]
        if "cpu_quota" in kw:
            self.config["CpuQuota"] = kw["cpu_quota"]

    def exec(self, argv, timeout_s):
        self.log.append(("exec", self.name, tuple(argv)))
        return 0, "app-2\n6379\n"


class FakeToxiproxy:
    def __init__(self, log: list, fail_on: str | None = None):
        self.log, self.fail_on = log, fail_on
        self.enabled: dict[str, bool] = {}
        self.toxics: dict[str, set[str]] = {}
        self.now = 0.0

    def set_enabled(self, name, enabled):
        self.log.append(("enabled", name, enabled))
        self.enabled[name] = enabled
        return self.now

    def add_toxic(self, proxy, toxic_name, toxic):
        if proxy == self.fail_on:
            raise ToxiproxyError(f"boom on {proxy}")
        self.log.append(("add", proxy, toxic_name, toxic.type))
        self.toxics.setdefault(proxy, set()).add(toxic_name)
        return self.now

    def remove_toxic(self, proxy, toxic_name):
        self.log.append(("remove", proxy, toxic_name))
        self.toxics[proxy].discard(toxic_name)
        return self.now


TARGET = Target(
    name="fake",
    root=Path("/nonexistent"),
    services=(ServiceSpec(name="app", image="img", networks=("n",), deploy={"replicas": 3}),
              ServiceSpec(name="db", image="img", networks=("n",)),
              ServiceSpec(name="sentinel", image="img", networks=("n",))),
    networks=(NetworkSpec(name="n"),),
    links=(LinkSpec(name="lb-app-1", client="lb", upstream="app-1", port=80),
           LinkSpec(name="lb-app-2", client="lb", upstream="app-2", port=80)),
    roles=(RoleSpec(name="primary", kind="sentinel-primary", service="sentinel", master_name="m"),
           RoleSpec(name="pair", kind="static", members=("app-1", "app-2"))),
)


class FakeStack:
    def __init__(self, log, tp=None):
        self.target = TARGET
        self.run_id = "rtest"
        self.toxiproxy = tp or FakeToxiproxy(log)
        self._i = {i: FakeInstance(i, log) for i in TARGET.instance_names()}

    def instance(self, name):
        return self._i[name]


def ctx(log, **kw):
    return FaultContext(stack=FakeStack(log, **kw), run_id="rtest")


def spec(action, **fields):
    return build(action, fields, TARGET)


# ──────────────────────────────── specs built like the loader builds them ────────────────────────────────


def test_build_normalises_units_and_resolves_links():
    f = spec("network.latency", link="lb->app", latency="300ms", stream="both", **{"for": "2s"})
    assert f.links == ("lb-app-1", "lb-app-2") and f.for_s == 2.0
    assert [t.stream for t in f.toxics] == ["upstream", "downstream"]
    assert f.toxics[0].attributes == (("latency", 300), ("jitter", 0))


def test_build_refuses_what_a_file_would_refuse():
    with pytest.raises(InputError, match="no link 'lb->db'"):
        spec("network.down", link="lb->db", **{"for": "1s"})
    with pytest.raises(InputError, match="unknown service or instance 'nope'"):
        spec("container.kill", select={"service": "nope"})
    with pytest.raises(InputError, match="not one of"):
        spec("container.explode", select={"service": "app"})


# ──────────────────────────────── selection ────────────────────────────────


def test_pick_is_seeded_and_replayable():
    f = spec("container.kill", select={"service": "app", "pick": "one", "seed": 7})
    first = [pick(ctx([]), f) for _ in range(5)]
    assert len({tuple(p) for p in first}) == 1, "same seed must pick the same instance"
    picks = {tuple(pick(ctx([]), spec("container.kill", select={"service": "app", "seed": s})))
             for s in range(30)}
    assert len(picks) == 3, "different seeds must reach every replica"


@pytest.mark.parametrize("select, expected", [
    ({"service": "app", "pick": "all"}, 3),
    ({"service": "app", "pick": "count", "count": 2}, 2),
    ({"service": "app", "pick": "percent", "percent": 50}, 2),  # ceil(1.5)
    ({"service": "app-3", "pick": "all"}, 1),
    ({"service": "db", "pick": "all"}, 1),
    ({"role": "pair", "pick": "all"}, 2),
])
def test_pick_sizes(select, expected):
    assert len(pick(ctx([]), spec("container.kill", select=select))) == expected


def test_sentinel_role_is_asked_when_the_fault_fires():
    log: list = []
    assert pick(ctx(log), spec("container.kill", select={"role": "primary"})) == ["app-2"]
    assert log[0][0] == "exec" and log[0][1] == "sentinel"
    assert log[0][2][-2:] == ("get-master-addr-by-name", "m")


# ──────────────────────────────── each family's inject and revert ────────────────────────────────


def test_kill_with_window_restarts_on_revert():
    log: list = []
    c = ctx(log)
    inj = spec("container.kill", select={"service": "db"}, **{"for": "1s"}).inject(c)
    assert log == [("kill", "db")] and inj.reversible
    inj.revert()
    inj.revert()  # idempotent
    assert log == [("kill", "db"), ("start", "db")]
    assert c.instance("db").status() == "running"


def test_pause_reverts_by_unpause():
    log: list = []
    inj = spec("container.pause", select={"service": "app", "pick": "all"}, **{"for": "1s"}).inject(ctx(log))
    assert [op for op, _ in log] == ["pause"] * 3
    inj.revert()
    assert [op for op, _ in log] == ["pause"] * 3 + ["unpause"] * 3


def test_toxics_added_per_link_and_stream_and_removed_by_name():
    log: list = []
    c = ctx(log)
    inj = spec("network.latency", link="lb->app", latency="300ms", stream="both", **{"for": "1s"}).inject(c)
    assert sorted(x[1] for x in log if x[0] == "add") == ["lb-app-1", "lb-app-1", "lb-app-2", "lb-app-2"]
    inj.revert()
    assert all(not names for names in c.toxiproxy.toxics.values())
    assert inj.restored_t is not None and inj.restored_t >= inj.applied_t


def test_link_down_and_up():
    log: list = []
    inj = spec("network.down", link="lb->app-1", **{"for": "1s"}).inject(ctx(log))
    inj.revert()
    assert log == [("enabled", "lb-app-1", False), ("enabled", "lb-app-1", True)]


def test_partial_network_failure_undoes_what_was_applied():
    log: list = []
    c = ctx(log, tp=FakeToxiproxy(log, fail_on="lb-app-2"))
    f = spec("network.latency", name="lat", link="lb->app", latency="10ms", **{"for": "1s"})
    with pytest.raises(FaultError, match="boom"):
        f.inject(c)
    assert ("remove", "lb-app-1", "continuum-lat-downstream-0") in log
    assert not c.toxiproxy.toxics["lb-app-1"]


def test_memory_limit_restored_and_read_back():
    log: list = []
    c = ctx(log)
    inj = spec("resource.memory", select={"service": "db"}, limit="64MiB", **{"for": "1s"}).inject(c)
    assert c.instance("db").host_config()["Memory"] == 64 * 1024 * 1024
    inj.revert()
    assert c.instance("db").host_config()["Memory"] == 1 << 40


def test_dns_rules_cover_the_embedded_server_and_port_53(monkeypatch):
    f = spec("network.dns", select={"service": "db"}, **{"for": "2s"})
    rules = f._rules()
    assert len(rules) == 4 and all(j[0] == "REJECT" for _, j in rules)
    assert any("127.0.0.11" in m and "udp" in m for m, _ in rules)
    assert any("--dport" in m and "tcp" in m for m, _ in rules)
    drop = spec("network.dns", select={"service": "db"}, mode="timeout", **{"for": "2s"})
    assert all(j == ["DROP"] for _, j in drop._rules())
    assert "refused at once" in f.plan_line() and "time out" in drop.plan_line()


# ──────────────────────────────── the scheduler, on a fake clock ────────────────────────────────


class FakeClock:
    def __init__(self, t: float = 100.0):
        self.t = t

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += max(0.0, seconds)


def _run_schedule(faults, until_s, *, pacer=None, log=None):
    clock = FakeClock()
    log = [] if log is None else log
    c = ctx(log)
    events = Events()
    seen = []
    events.subscribe(lambda e: seen.append((type(e).__name__, e.fault.name, round(e.t - 100.0, 3))),
                     FaultInjected, FaultReverted)
    sched = Scheduler(faults, t0=clock.now(), inject=lambda f: _stamped(f.inject(c), clock),
                      undo=UndoStack(), events=events, clock=clock, pacer=pacer)
    phases_seen = []
    while clock.now() < sched.end_t(until_s):
        began = sched.tick()
        if began:
            phases_seen.append(began)
        clock.sleep(sched.wait(0.05))
    sched.revert_all()
    return sched, seen, phases_seen, clock


def _stamped(injection, clock):
    injection.applied_t = clock.now()
    return injection


def test_scheduler_fires_on_time_and_reverts_windows_exactly():
    down = spec("network.down", name="down", link="lb->app-1", at="1s", **{"for": "2s"})
    kill = spec("container.kill", name="kill", select={"service": "db"}, at="2s").model_copy(update={"revert": False})
    sched, seen, began, _ = _run_schedule([kill, down], 5.0)
    assert seen[0] == ("FaultInjected", "down", 1.0)
    assert seen[1] == ("FaultInjected", "kill", 2.0)
    assert ("FaultReverted", "down", 3.0) in seen
    ev = {e.fault: e for e in sched.fault_events}
    assert ev["down"].reverted_t - ev["down"].injected_t == pytest.approx(2.0)
    assert ev["kill"].reverted_t is None and ev["kill"].issued_t == pytest.approx(102.0)
    assert began == ["fault:down", "fault:kill", "recovery"]
    names = [p.name for p in phases(sched.fault_events, 100.0, 105.0, 0.5)]
    assert names[0] == "baseline" and "fault:down" in names and "fault:kill" in names


def test_pacer_holds_a_fault_and_shifts_the_rest():
    class Pacer:
        asked = 0

        def ready(self, fault):
            self.asked += 1
            return self.asked > 20   # the operator says go on the 21st poll (1 s at 50 ms ticks)

        def notes(self):
            return []

        def abort_requested(self):
            return None

    first = spec("network.down", name="first", link="lb->app-1", at="1s", **{"for": "1s"})
    second = spec("network.down", name="second", link="lb->app-2", at="2s", **{"for": "1s"})
    sched, seen, _, _ = _run_schedule([first, second], 4.0, pacer=Pacer())
    injected = {n: t for kind, n, t in seen if kind == "FaultInjected"}
    assert injected["first"] == pytest.approx(2.0, abs=0.06), "held for about a second"
    assert injected["second"] - injected["first"] == pytest.approx(1.0, abs=0.06), "the rest moved with it"
    assert sched.shift_s == pytest.approx(1.0, abs=0.06)


def test_a_failing_listener_is_recorded_not_silent():
    events = Events()
    events.subscribe(lambda e: (_ for _ in ()).throw(RuntimeError("disk full")), name="report")
    events.say("hello")
    events.say("again")            # detached after the first failure
    failures = events.take_failures()
    assert [str(f) for f in failures] == ["listener report failed on Message: RuntimeError: disk full"]


def test_live_stats_rates():
    live = LiveStats(None)
    now = 1000.0
    live.add([Sample(now - 0.5, 0.001, i % 4 != 0) for i in range(100)])
    rps, err = live.rates(now)
    assert rps == 100 and err == 0.25


def test_undo_runs_everything_newest_first_even_after_a_failure():
    order = []
    undo = UndoStack()
    undo.push("a", lambda: order.append("a"))
    undo.push("b", lambda: (_ for _ in ()).throw(RuntimeError("stuck")))
    undo.push("c", lambda: order.append("c"))
    failures = undo.unwind()
    assert order == ["c", "a"] and [f.description for f in failures] == ["b"]
    assert len(undo) == 0
