"""One finding per component and invariant (harness.explore.coverage) and what the search does
with it, on the fragile twin's topology with a fake runner whose weaknesses are known: every
fault that takes the single app away fails availability, and only the Redis primary cut off
from its replicas and Sentinel loses acknowledged writes."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.explore.candidates import Params, generate, singles, to_experiment
from harness.explore.coverage import AVAILABILITY, DURABILITY, Coverage, classes_failed
from harness.explore.explorer import explore
from harness.explore.runner import Outcome
from harness.loader import load_target

ROOT = Path(__file__).resolve().parents[2]
DATA = "data:redis-1,redis-2,redis-3"


@pytest.fixture(scope="module")
def fragile():
    return load_target(ROOT / "targets" / "reference-fragile")


@pytest.fixture(scope="module")
def by_name(fragile):
    return {c.name: c for c in singles(fragile, 0)}


class FakeClock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def _takes_app_away(exp) -> bool:
    for f in exp.faults:
        sel = getattr(f, "select", None)
        if sel is not None and sel.service == "app":
            return True
        if any(link.endswith("-app") for link in getattr(f, "links", ())):
            return True
    return False


def _isolates_primary(exp) -> bool:
    return any(f.action == "partition" and f.groups[0] == ("redis-primary",) and "sentinel" in f.groups[1]
               for f in exp.faults)


def _known_weaknesses(exp) -> Outcome:
    if _isolates_primary(exp):
        return Outcome("fail", frozenset({"lost_writes"}), ("lost_writes 812 != 0",), 812)
    if _takes_app_away(exp):
        return Outcome("fail", frozenset({"availability", "longest_outage", "aborted"}))
    return Outcome("pass", recovered=True)


def _run(clock, rule, cost=40.0):
    seen = []

    def run(exp):
        clock.t += cost
        seen.append(exp.name)
        return rule(exp)
    run.seen = seen  # type: ignore[attr-defined]
    return run


# ─────────────────────────────── coverage ───────────────────────────────

def test_components_follow_the_topology(fragile, by_name):
    cov = Coverage(fragile)
    comp = lambda n: set().union(*(cov.components(d) for d in by_name[n].faults))  # noqa: E731
    assert comp("x-kill-app") == comp("x-stop-app") == comp("x-pause-app") == {"app"}
    assert comp("x-down-lb-app") == {"app"}             # a link is the reachability of what it leads to
    assert comp("x-kill-redis-primary") == comp("x-kill-redis-2") == comp("x-kill-sentinel-1") == {DATA}
    assert comp("x-isolate-redis-primary") == {DATA}
    assert comp("x-app-with-redis-primary") == {"app", DATA}
    # a stateless service cannot lose a write; a durability-only split cannot show an outage
    assert cov.breaks(by_name["x-kill-lb"]) == {("lb", AVAILABILITY)}
    assert cov.breaks(by_name["x-app-with-redis-primary"]) == {(DATA, DURABILITY)}
    assert cov.breaks(by_name["x-kill-redis-primary"]) == {(DATA, AVAILABILITY), (DATA, DURABILITY)}


def test_a_finding_makes_only_the_same_component_and_class_a_repeat(fragile, by_name):
    cov = Coverage(fragile)
    cov.found("x-kill-app-w4-u5", by_name["x-kill-app"], {AVAILABILITY})
    for n in ("x-stop-app", "x-pause-app", "x-down-lb-app", "x-slow-lb-app", "x-reset-lb-app"):
        assert cov.duplicate(by_name[n]) == "x-kill-app-w4-u5", n
    assert cov.duplicate(by_name["x-kill-lb"]) is None
    assert cov.duplicate(by_name["x-isolate-redis-primary"]) is None
    cov.found("x-isolate-redis-primary-w4", by_name["x-isolate-redis-primary"], {DURABILITY})
    # losing writes again through the data tier says nothing new...
    assert cov.duplicate(by_name["x-app-with-redis-primary"]) == "x-isolate-redis-primary-w4"
    # ...but the data tier's availability is still open
    assert cov.duplicate(by_name["x-kill-redis-primary"]) is None
    # a failure judged by what it broke: a kill of the primary that lost writes repeats; an outage does not
    assert cov.duplicate(by_name["x-kill-redis-primary"], {DURABILITY}) == "x-isolate-redis-primary-w4"
    assert cov.duplicate(by_name["x-kill-redis-primary"], {AVAILABILITY}) is None
    cov.forget("x-isolate-redis-primary-w4")
    assert cov.duplicate(by_name["x-app-with-redis-primary"]) is None


def test_failed_keys_map_to_classes():
    inv = {"money_conserved"}
    assert classes_failed(frozenset({"availability", "aborted"}), None, inv) == {AVAILABILITY}
    assert classes_failed(frozenset({"lost_writes"}), 3, inv) == {DURABILITY}
    assert classes_failed(frozenset({"money_conserved", "transfer.longest_outage@x"}), 0, inv) == \
        {DURABILITY, AVAILABILITY}
    assert classes_failed(frozenset(), 5, inv) == {DURABILITY}      # lost writes count even unasserted


# ─────────────────────────────── the search ───────────────────────────────

def test_one_finding_per_component_and_the_write_loss_first(fragile, tmp_path):
    clock = FakeClock()
    run = _run(clock, _known_weaknesses)
    ones = singles(fragile, 0)
    s = explore(fragile, budget_s=10 ** 6, seed=0, out_dir=tmp_path, run=run, clock=clock,
                candidates=ones, confirm=3)
    kinds = sorted((f["kind"], f["what"]) for f in s.findings)
    assert kinds == [("availability", "container.kill app"),
                     ("durability", "partition [redis-primary] | [sentinel]")], kinds  # shrunk: the fake needs only Sentinel cut off
    assert s.findings[0]["kind"] == "durability" and s.findings[0]["at_s"] == 40.0   # the very first run
    # every other way of taking the app away was put off, then run, failed, and was not shrunk
    repeats = {d["name"] for d in s.duplicate_failures}
    assert {"x-stop-app", "x-pause-app", "x-down-lb-app", "x-slow-lb-app", "x-reset-lb-app"} <= repeats
    assert all(d["repeats"].startswith("x-kill-app") for d in s.duplicate_failures if "app" in d["name"])
    assert sum(s.deferred.values()) >= 5 and all(k.startswith("repeats ") for k in s.deferred)
    assert s.tried == len(ones) and s.stopped_because == "every candidate tried"
    # a queued outage's finding is dated when its candidate failed, not when it was investigated
    app = next(f for f in s.findings if f["kind"] == "availability")
    assert app["at_s"] == 40.0 * (run.seen.index("x-kill-app") + 1) < app["confirmed_at_s"]
    # the repeats ran once each (no shrink, no confirmation): runs = candidates + two investigations
    investigations = s.runs - s.tried
    assert investigations <= 2 * 12, investigations


def test_without_dedup_every_failure_is_investigated(fragile, tmp_path):
    clock = FakeClock()
    ones = [c for c in singles(fragile, 0) if c.name in ("x-kill-app", "x-stop-app", "x-down-lb-app")]
    s = explore(fragile, budget_s=10 ** 6, seed=0, out_dir=tmp_path, run=_run(clock, _known_weaknesses),
                clock=clock, candidates=ones, dedup=False)
    assert len(s.findings) == 3 and not s.deferred and not s.duplicate_failures
    clock2 = FakeClock()
    s2 = explore(fragile, budget_s=10 ** 6, seed=0, out_dir=tmp_path / "d", run=_run(clock2, _known_weaknesses),
                 clock=clock2, candidates=ones)
    assert len(s2.findings) == 1 and len(s2.duplicate_failures) == 2 and clock2.t < clock.t


def test_out_of_budget_lists_what_was_not_covered_per_family(fragile, tmp_path):
    clock = FakeClock()
    cands = generate(fragile, 0)
    s = explore(fragile, budget_s=1500, seed=0, out_dir=tmp_path, run=_run(clock, _known_weaknesses, cost=57.0),
                clock=clock, candidates=cands)
    assert s.stopped_because == "budget" and clock.t <= 1500
    assert sum(s.not_covered_by_family.values()) == len(s.not_covered) > 0
    assert s.not_covered_by_family.get("pair", 0) > 0
    # the put-off repeats are among what was not covered, and said as such
    assert 0 < s.not_covered_deferred <= len(s.not_covered)
    assert any(f["kind"] == "durability" for f in s.findings)       # reached in 25 min at 57 s a run


def test_open_loop_load_is_the_default_and_holds_the_rate_through_a_hang(fragile, by_name):
    exp = to_experiment(by_name["x-kill-app"], fragile, Params())
    assert exp.load.mode == "open" and exp.load.rate == 100.0
    # enough users that requests hung on the 2 s timeout never delay the next due one
    assert exp.load.users >= exp.load.rate * exp.load.request_timeout_s
    closed = to_experiment(by_name["x-kill-app"], fragile, Params(load_mode="closed"))
    assert closed.load.mode == "closed" and closed.load.users == 20 and closed.load.rate is None
    # the steady state is the baseline's only: the recovery is the system's answer, judged by the SLOs
    assert [a.phase for a in exp.steady_state] == ["baseline"]


def test_the_shrinker_does_not_rerun_a_smaller_form_of_what_passed(fragile, by_name):
    """The twin's partition: leaving Sentinel or the replicas out passes at 10 s, so after the
    window shrinks to 4 s those two are not run again, nor level 5 once it passed at 4 s
    (known answer: 5 runs; without the skip the greedy loop runs 10)."""
    from harness.explore.shrink import shrink

    ran = []

    def fails(v):
        ran.append(v.name)
        groups = v.faults[0].get("groups")
        return groups[1] == ("redis-replicas", "sentinel") and (v.users or 20) > 5

    s = shrink(by_name["x-isolate-redis-primary"], Params(), fails)
    assert s.smallest.window_s == 4.0 and s.smallest.users == 10
    assert ran == ["x-isolate-redis-primary-no-redis-replicas", "x-isolate-redis-primary-no-sentinel",
                   "x-isolate-redis-primary-w4", "x-isolate-redis-primary-w4-u5",
                   "x-isolate-redis-primary-w4-u10"], ran


def test_a_smallest_that_does_not_reproduce_falls_back_to_the_step_before(fragile, by_name, tmp_path):
    """As on the twin: the 4 s partition lost writes once (Sentinel's failover takes about as long
    as the window) and never again; the 10 s one every time. The finding is the 10 s partition,
    3 of 3, and the 4 s one is listed as unconfirmed with its rate."""
    clock = FakeClock()
    short_runs = {"n": 0}

    def rule(exp):
        if not _isolates_primary(exp) or exp.faults[0].groups[1] != ("redis-replicas", "sentinel"):
            return Outcome("pass", recovered=True)
        if exp.faults[0].for_s < 10:
            short_runs["n"] += 1
            if short_runs["n"] > 1:
                return Outcome("pass", recovered=True)
        return Outcome("fail", frozenset({"lost_writes"}), lost_writes=200)

    s = explore(fragile, budget_s=10 ** 6, seed=0, out_dir=tmp_path, run=_run(clock, rule), clock=clock,
                candidates=[by_name["x-isolate-redis-primary"]], confirm=3)
    assert [(f["name"], f["reproduced"], f["confirmations"]) for f in s.findings] == \
        [("x-isolate-redis-primary", 3, 3)]
    assert [(u["name"], u["reproduced"], u["confirmations"]) for u in s.unconfirmed] == \
        [("x-isolate-redis-primary-w4", 1, 3)]
    assert s.time_to_first_confirmed_s > s.time_to_first_finding_s == 40.0


def test_data_tier_partitions_get_the_longer_window(fragile, by_name):
    """The two sides diverge only once the split outlasts the failover: 15 s for data-tier
    partitions, the default 10 s for everything else (a kill of the primary included)."""
    w = lambda n: to_experiment(by_name[n], fragile, Params()).faults[0].for_s  # noqa: E731
    assert w("x-isolate-redis-primary") == w("x-app-with-redis-primary") == 15.0
    assert w("x-kill-redis-primary") == w("x-kill-app") == w("x-isolate-redis-1") == 10.0
