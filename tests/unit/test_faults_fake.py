"""Faults and the schedule loop on a fake backend (the httpx MockTransport habit): fast, and
exact about what was called in which order. The real engine is exercised in
tests/integration."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import pytest

from harness.errors import FaultError, ToxiproxyError
from harness.events import Events
from harness.faults import FaultContext, inject
from harness.faults.select import pick
from harness.live import LiveStats
from harness.model import (
    AbortRule,
    Experiment,
    FaultSpec,
    LinkSpec,
    LoadSpec,
    NetworkSpec,
    Sample,
    Selector,
    ServiceSpec,
    Target,
    Toxic,
)
from harness.undo import UndoStack


class FakeContainer:
    def __init__(self, name: str, log: list):
        self.name, self.status, self.log = name, "running", log
        self.labels = {"io.continuum.service": name.rsplit("-", 1)[0]}
        self.attrs = {"State": {"Pid": 0}, "HostConfig": {}, "NetworkSettings": {"Networks": {}}}

    def reload(self):
        pass

    def kill(self, signal="SIGKILL"):
        self.log.append(("kill", self.name))
        self.status = "exited"

    def stop(self, timeout=10):
        self.log.append(("stop", self.name))
        self.status = "exited"

    def start(self):
        self.log.append(("start", self.name))
        self.status = "running"

    def pause(self):
        self.log.append(("pause", self.name))
        self.status = "paused"

    def unpause(self):
        self.log.append(("unpause", self.name))
        self.status = "running"


class FakeToxiproxy:
    def __init__(self, log: list, fail_on: str | None = None):
        self.log, self.fail_on = log, fail_on
        self.enabled: dict[str, bool] = {}
        self.toxics: dict[str, set[str]] = {}

    def set_enabled(self, name, enabled):
        self.log.append(("enabled", name, enabled))
        self.enabled[name] = enabled
        return time.monotonic()

    def add_toxic(self, proxy, toxic_name, toxic):
        if proxy == self.fail_on:
            raise ToxiproxyError(f"boom on {proxy}")
        self.log.append(("add", proxy, toxic_name, toxic.type))
        self.toxics.setdefault(proxy, set()).add(toxic_name)
        return time.monotonic()

    def remove_toxic(self, proxy, toxic_name):
        self.log.append(("remove", proxy, toxic_name))
        self.toxics[proxy].discard(toxic_name)
        return time.monotonic()


TARGET = Target(
    name="fake",
    root=Path("/nonexistent"),
    services=(ServiceSpec("app", "img", networks=("n",), replicas=3), ServiceSpec("db", "img", networks=("n",))),
    networks=(NetworkSpec("n"),),
    links=(LinkSpec("lb-app-1", "lb", "app-1", 80), LinkSpec("lb-app-2", "lb", "app-2", 80)),
)


class FakeStack:
    def __init__(self, log, tp=None):
        self.target = TARGET
        self.toxiproxy = tp or FakeToxiproxy(log)
        self._c = {i: FakeContainer(i, log) for i, _ in TARGET.instances()}

    def container(self, name):
        return self._c[name]


def ctx(log, **kw):
    return FaultContext(stack=FakeStack(log, **kw), run_id="rtest")


def test_pick_is_seeded_and_replayable():
    log: list = []
    f = FaultSpec("k", "container.kill", 0.0, select=Selector(service="app", pick="one", seed=7))
    first = [pick(ctx(log), f) for _ in range(5)]
    assert len({tuple(p) for p in first}) == 1, "same seed must pick the same instance"
    counts = {tuple(pick(ctx(log), replace(f, select=replace(f.select, seed=s)))) for s in range(30)}
    assert len(counts) == 3, "different seeds must reach every replica"


@pytest.mark.parametrize(
    "sel, expected",
    [
        (Selector(service="app", pick="all"), 3),
        (Selector(service="app", pick="count", count=2), 2),
        (Selector(service="app", pick="percent", percent=50), 2),  # ceil(1.5)
        (Selector(service="app-3", pick="all"), 1),
        (Selector(service="db", pick="all"), 1),
    ],
)
def test_pick_sizes(sel, expected):
    assert len(pick(ctx([]), FaultSpec("f", "container.kill", 0.0, select=sel))) == expected


def test_pick_more_than_exist_is_a_fault_error():
    with pytest.raises(FaultError, match="wants 4"):
        pick(ctx([]), FaultSpec("f", "container.kill", 0.0, select=Selector(service="app", pick="count", count=4)))


def test_kill_with_window_restarts_on_revert():
    log: list = []
    c = ctx(log)
    inj = inject(c, FaultSpec("k", "container.kill", 0.0, for_s=1.0, select=Selector(service="db")))
    assert log == [("kill", "db")] and inj.reversible
    inj.revert()
    inj.revert()  # idempotent
    assert log == [("kill", "db"), ("start", "db")]
    assert c.stack.container("db").status == "running"


def test_pause_reverts_by_unpause():
    log: list = []
    inj = inject(ctx(log), FaultSpec("p", "container.pause", 0.0, for_s=1.0, select=Selector(service="app", pick="all")))
    assert [op for op, _ in log] == ["pause"] * 3
    inj.revert()
    assert [op for op, _ in log] == ["pause"] * 3 + ["unpause"] * 3


def test_toxics_added_per_link_and_stream_and_removed_by_name():
    log: list = []
    f = FaultSpec(
        "lat", "network.latency", 0.0, for_s=1.0, links=("lb-app-1", "lb-app-2"),
        toxics=(Toxic("latency", (("latency", 300),), "upstream"), Toxic("latency", (("latency", 300),), "downstream")),
    )
    c = ctx(log)
    inj = inject(c, f)
    assert sorted(x[1] for x in log if x[0] == "add") == ["lb-app-1", "lb-app-1", "lb-app-2", "lb-app-2"]
    inj.revert()
    assert all(not names for names in c.stack.toxiproxy.toxics.values())
    assert inj.restored_t is not None and inj.restored_t >= inj.applied_t


def test_link_down_and_up():
    log: list = []
    inj = inject(ctx(log), FaultSpec("d", "network.down", 0.0, for_s=1.0, links=("lb-app-1",)))
    inj.revert()
    assert log == [("enabled", "lb-app-1", False), ("enabled", "lb-app-1", True)]


def test_partial_network_failure_undoes_what_was_applied():
    log: list = []
    c = ctx(log, tp=FakeToxiproxy(log, fail_on="lb-app-2"))
    f = FaultSpec("lat", "network.latency", 0.0, for_s=1.0, links=("lb-app-1", "lb-app-2"),
                  toxics=(Toxic("latency", (("latency", 10),)),))
    with pytest.raises(FaultError, match="boom"):
        inject(c, f)
    assert ("remove", "lb-app-1", "continuum-lat-downstream-0") in log
    assert not c.stack.toxiproxy.toxics["lb-app-1"]


# ──────────────────────────────── the schedule loop ────────────────────────────────


class FakeLoad:
    """Produces one successful sample per poll, or failures while `failing` is set."""

    def __init__(self):
        self.failing = False

    def poll(self):
        return [Sample(time.monotonic(), 0.001, not self.failing)]


def _experiment(faults, duration=0.6, abort=None):
    return Experiment(
        name="loop", description="", target=Path("/x"), duration_s=duration,
        load=LoadSpec(profile="p"), faults=tuple(faults), abort_if=abort,
    )


def test_loop_injects_on_schedule_and_reverts_windows():
    from harness.run import _RunState, _loop, _revert_all

    log: list = []
    c = ctx(log)
    exp = _experiment([
        FaultSpec("down", "network.down", 0.1, for_s=0.2, links=("lb-app-1",)),
        FaultSpec("kill", "container.kill", 0.2, select=Selector(service="db"), revert=False),
    ])
    state, undo, events = _RunState(exp), UndoStack(), Events()
    fired = []
    events.fault_injected.add_listener(lambda fault, targets, t: fired.append((fault.name, round(t - state.t0, 2))))
    _loop(exp, c, FakeLoad(), state, undo, events, None)
    _revert_all(state, undo, events)
    assert [name for name, _ in fired] == ["down", "kill"]
    assert 0.1 <= fired[0][1] < 0.16 and 0.2 <= fired[1][1] < 0.26
    ev = {e.fault: e for e in state.schedule.events}
    assert abs((ev["down"].reverted_t - ev["down"].injected_t) - 0.2) < 0.05
    assert ev["kill"].reverted_t is None  # instantaneous, not reverted
    assert ("enabled", "lb-app-1", True) in log
    names = [p.name for p in state.phases(time.monotonic())]
    assert names[0] == "baseline" and "fault:down" in names and "fault:kill" in names


def test_abort_if_stops_the_loop_and_records_why():
    from harness.run import _RunState, _loop

    exp = _experiment([], duration=5.0, abort=AbortRule(availability_below=0.5, over_s=0.1))
    load = FakeLoad()
    load.failing = True
    state = _RunState(exp)
    # Plenty of failing samples so the window has enough evidence.
    load.poll = lambda: [Sample(time.monotonic(), 0.001, False) for _ in range(30)]
    t = time.monotonic()
    _loop(exp, ctx([]), load, state, UndoStack(), Events(), None)
    assert time.monotonic() - t < 1.0
    assert state.aborted and "below 50.00%" in state.aborted


def test_pacer_holds_a_fault_and_shifts_the_schedule():
    from harness.run import _RunState, _loop

    class Pacer:
        def __init__(self):
            self.asked = 0

        def ready(self, fault):
            self.asked += 1
            return self.asked > 4  # the operator says go on the fifth poll

        def notes(self):
            return ["looks fine"] if self.asked == 1 else []

        def abort_requested(self):
            return None

    exp = _experiment([FaultSpec("down", "network.down", 0.05, for_s=0.05, links=("lb-app-1",))], duration=0.3)
    state = _RunState(exp)
    _loop(exp, ctx([]), FakeLoad(), state, UndoStack(), Events(), Pacer())
    assert state.schedule.shift_s > 0, "held faults shift the rest of the schedule"
    assert [n.text for n in state.notes] == ["looks fine"]


def test_live_stats_rates():
    live = LiveStats(None)
    now = time.monotonic()
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
