"""The explorer without Docker: the generator, the shrinker (against a fake runner with a known
minimal failing schedule), the search loop and its output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.explore.candidates import Candidate, Draft, Params, generate, pairs, singles, to_experiment
from harness.explore.explorer import explore
from harness.explore.findings import Finding, finding_text, write_finding
from harness.explore.runner import Outcome
from harness.explore.shrink import MIN_USERS, MIN_WINDOW_S, shrink, variants
from harness.loader import load_experiment, load_target

ROOT = Path(__file__).resolve().parents[2]
FRAGILE = ROOT / "targets" / "reference-fragile"
REFERENCE = ROOT / "targets" / "reference"


@pytest.fixture(scope="module")
def fragile():
    return load_target(FRAGILE)


@pytest.fixture(scope="module")
def reference():
    return load_target(REFERENCE)


# ─────────────────────────────── the generator ───────────────────────────────

def test_same_seed_same_candidates_other_seed_other_order(fragile):
    a = [c.name for c in generate(fragile, 7)]
    b = [c.name for c in generate(fragile, 7)]
    c = [c.name for c in generate(fragile, 8)]
    assert a == b
    assert a != c
    ones = lambda seed: [x.name for x in singles(fragile, seed)]  # noqa: E731
    assert sorted(ones(7)) == sorted(ones(8))       # the seed orders singles, it does not choose them


def test_every_family_is_generated(fragile, reference):
    for t in (fragile, reference):
        cands = generate(t, 0)
        actions = {d.action for c in cands for d in c.faults}
        assert {"container.kill", "container.stop", "container.pause", "partition",
                "network.down", "network.latency", "network.reset_peer"} <= actions
        assert {c.family for c in cands} >= {"kill", "stop", "pause", "partition", "link", "pair"}
        names = {c.name for c in cands}
        assert len(names) == len(cands)            # names are unique (they name the files)
        # every instance killed, every role killed
        killed = {c.faults[0].get("select").get("service") or c.faults[0].get("select").get("role")
                  for c in cands if c.family == "kill"}
        assert set(t.instance_names()) | {r.name for r in t.roles} == killed


def test_data_tier_splits_include_the_primary_isolated_and_a_client_with_a_minority(fragile):
    splits = {tuple(map(tuple, c.faults[0].get("groups"))) for c in singles(fragile, 0) if c.family == "partition"}
    assert (("redis-primary",), ("redis-replicas", "sentinel")) in splits
    assert (("app", "redis-1"), ("redis-2", "redis-3", "sentinel")) in splits
    # never a split cutting the clients off from the whole tier, nor one over monitoring
    for a, b in splits:
        assert not ({"app"} <= set(a) and {"redis-1", "redis-2", "redis-3"} <= set(b))
        assert not {"prometheus", "alertmanager", "redis-exporter"} & (set(a) | set(b))


def test_every_candidate_validates_as_an_experiment(fragile, reference):
    durability = {"lost_writes", "unexpected_writes", "money_conserved"}
    for t in (fragile, reference):
        for c in generate(t, 3):
            exp = to_experiment(c, t, Params())
            assert exp.faults and exp.target is t
            metrics = {a.metric for a in exp.slo}
            if c.judge == "durability":
                assert metrics == durability and exp.abort_if is None
            else:
                assert metrics == {"availability", "longest_outage", "longest_stall"} | durability


def test_clients_with_a_minority_of_the_data_are_judged_on_durability_only(fragile):
    by_name = {c.name: c for c in singles(fragile, 0)}
    assert by_name["x-app-with-redis-primary"].judge == "durability"
    assert by_name["x-app-with-redis-1"].judge == "durability"
    assert by_name["x-isolate-redis-primary"].judge == "all"      # the clients keep the primary


def test_data_loss_first_then_single_points_and_pairs_last(fragile, reference):
    """With a read-back the candidates that can lose acknowledged writes come first (the twin's
    4 167-write partition was 4th of 460 and never reached in 15 min when outages led); without
    one, the single points of failure lead as before."""
    f = generate(fragile, 5)
    data = [c for c in f if c.rank < 0]
    assert [c.name for c in f[:len(data)]] == [c.name for c in data] and len(data) == 9
    assert {c.name for c in f[:2]} == {"x-isolate-redis-primary", "x-isolate-redis-replicas"}
    assert {c.name for c in f[9:12]} == {"x-kill-lb", "x-kill-app", "x-down-lb-app"}
    first_pair = next(i for i, c in enumerate(f) if c.family == "pair")
    assert all(len(c.faults) == 1 for c in f[:first_pair]) and all(len(c.faults) == 2 for c in f[first_pair:])
    blind = generate(fragile.model_copy(update={"durability": None}), 5)
    assert {c.name for c in blind[:3]} == {"x-kill-lb", "x-kill-app", "x-down-lb-app"}
    assert not any(c.rank < 0 for c in blind)
    # the reference has no single point on its request path: the data tier, then roles
    r = generate(reference, 5)
    assert r[0].rank == -3 and not any(c.rank == 0 for c in r)


def test_pairs_never_hit_the_same_thing_twice(fragile):
    for c in pairs(singles(fragile, 0), 0):
        assert len(c.faults) == 2 and c.faults[0] != c.faults[1]
        assert not (c.faults[0].action == "partition" and c.faults[1].action == "partition")


def test_invariants_can_be_narrowed(fragile):
    c = generate(fragile, 0)[0]
    exp = to_experiment(c, fragile, Params(invariants=()))
    assert "money_conserved" not in {a.metric for a in exp.slo}


# ─────────────────────────────── the shrinker ───────────────────────────────

P = Params(window_s=16.0, users=40)


def _cand(*drafts: Draft) -> Candidate:
    return Candidate(tuple(drafts), "pair" if len(drafts) > 1 else "partition", 0)


PART = Draft("partition", (("groups", (("app", "redis-1"), ("redis-2", "redis-3", "sentinel"))),
                           ("direction", "both")), "split")
KILL = Draft("container.kill", (("select", {"service": "lb", "pick": "one", "seed": 1}),), "kill-lb")


def _fails_iff_known_minimum(c: Candidate) -> bool:
    """Known answer: fails when redis-1 is cut off from sentinel (any other members may come
    along), for a window of at least 4 s and at least 10 users; the kill is irrelevant."""
    window = c.window_s if c.window_s is not None else P.window_s
    users = c.users if c.users is not None else P.users
    parts = [d for d in c.faults if d.action == "partition"]
    cut = any("redis-1" in d.get("groups")[0] and "sentinel" in d.get("groups")[1] for d in parts)
    return cut and window >= 4 and users >= 10


def test_shrinker_finds_exactly_the_known_minimum():
    calls: list[Candidate] = []

    def fails(c):
        calls.append(c)
        return _fails_iff_known_minimum(c)

    start = _cand(KILL, PART)
    assert fails(start)
    out = shrink(start, P, fails)
    s = out.smallest
    assert out.complete
    assert len(s.faults) == 1 and s.faults[0].action == "partition"
    assert s.faults[0].get("groups") == (("redis-1",), ("sentinel",))
    assert s.window_s == 4.0 and s.users == 10
    # and nothing one step smaller still fails: it is a local minimum
    assert not any(_fails_iff_known_minimum(v) for v in variants(s, P))


def test_shrinker_treats_unknown_as_not_failing():
    """A harness error (None) never moves the shrink: the smallest stays what was seen to fail."""
    out = shrink(_cand(KILL, PART), P, lambda c: None)
    assert out.smallest == _cand(KILL, PART) and out.complete
    assert all(step.failed is None for step in out.steps)


def test_shrinker_stops_on_budget():
    n = {"k": 0}

    def more():
        n["k"] += 1
        return n["k"] <= 2

    out = shrink(_cand(KILL, PART), P, _fails_iff_known_minimum, more=more)
    assert not out.complete and len(out.steps) == 2


def test_variants_respect_floors():
    c = Candidate((KILL,), "kill", 0, window_s=MIN_WINDOW_S, users=MIN_USERS)
    assert list(variants(c, P)) == []


# ─────────────────────────────── output ───────────────────────────────

def test_written_finding_reloads_as_the_same_experiment(fragile, tmp_path):
    c = Candidate((PART,), "partition", 1, window_s=5.0, users=10, origin="x-big")
    f = Finding(c, "x-big", ("lost_writes",), 3, 3, (12, 40, 7), True, 33.0, 7, ("lost_writes 12 > 0",))
    path = write_finding(tmp_path / "found", f, fragile, Params())
    text = path.read_text()
    assert text.startswith("# Found by `continuum explore` (seed 7)")
    assert "in 3 of 3 runs" in text and "12, 40, 7" in text
    loaded = load_experiment(path)
    expected = to_experiment(c, fragile, Params())
    drop = {"target", "source", "source_text"}
    assert loaded.model_dump(exclude=drop) == expected.model_dump(exclude=drop)
    assert loaded.target.root == fragile.root
    # a second finding of the same name never overwrites the first
    again = write_finding(tmp_path / "found", f, fragile, Params())
    assert again != path and path.read_text() == text


def test_a_flaky_finding_says_so(fragile, tmp_path):
    f = Finding(Candidate((KILL,), "kill", 0), "x-kill-lb", ("availability",), 2, 3)
    assert "(not every time: a rate, not a certainty)" in finding_text(f, fragile, Params(), tmp_path)


# ─────────────────────────────── the search loop, on a fake runner ───────────────────────────────

class FakeClock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def _fake_run(clock, rule, cost=30.0):
    seen = []

    def run(exp):
        clock.t += cost
        seen.append(exp)
        return rule(exp)
    run.seen = seen  # type: ignore[attr-defined]
    return run


def _kills(exp, service):
    return any(f.action == "container.kill" and f.select.service == service for f in exp.faults)


def test_search_finds_the_single_point_shrinks_and_confirms(fragile, tmp_path):
    clock = FakeClock()

    def rule(exp):
        if _kills(exp, "app"):
            return Outcome("fail", frozenset({"availability"}), ("availability 60% < 98%",), 0, 30.0)
        return Outcome("pass", wall_s=30.0)

    run = _fake_run(clock, rule)
    s = explore(fragile, budget_s=3600, seed=1, out_dir=tmp_path, run=run, clock=clock,
                candidates=[c for c in generate(fragile, 1) if c.rank >= 0][:6])
    assert [f["what"] for f in s.findings] == ["container.kill app"]
    f = s.findings[0]
    assert f["reproduced"] == 3 and f["confirmations"] == 3
    # shrunk to the floors: the kill fails whatever the window and the load
    loaded = load_experiment(f["file"])
    assert loaded.faults[0].for_s == MIN_WINDOW_S and loaded.load.rate == MIN_USERS * Params().open_rate_per_user
    assert s.time_to_first_finding_s is not None
    data = json.loads((tmp_path / "summary.json").read_text())
    assert data["findings"][0]["name"] == f["name"] and data["tried"] == 6


def test_harness_errors_and_unsettled_runs_are_never_findings(fragile, tmp_path):
    clock = FakeClock()
    statuses = iter(["error", "unsettled", "inconclusive"] * 10)
    run = _fake_run(clock, lambda exp: Outcome(next(statuses), reasons=("docker fell over",)))
    s = explore(fragile, budget_s=3600, seed=1, out_dir=tmp_path, run=run, clock=clock,
                candidates=generate(fragile, 1)[:6])
    assert s.findings == [] and s.failed == 0
    assert (s.errors, s.unsettled, s.inconclusive) == (2, 2, 2)
    assert not (tmp_path / "found").exists()


def test_a_flake_is_not_a_finding(fragile, tmp_path):
    clock = FakeClock()
    calls = {"n": 0}

    def rule(exp):
        calls["n"] += 1
        if calls["n"] == 1:                 # fails once, never again
            return Outcome("fail", frozenset({"availability"}))
        return Outcome("pass")

    s = explore(fragile, budget_s=3600, seed=1, out_dir=tmp_path, run=_fake_run(clock, rule), clock=clock,
                candidates=generate(fragile, 1)[:2], confirm=3)
    assert s.findings == [] and len(s.unconfirmed) == 1
    assert (s.unconfirmed[0]["reproduced"], s.unconfirmed[0]["confirmations"]) == (1, 3)


def test_budget_stops_before_overrun_and_says_what_was_not_covered(fragile, tmp_path):
    clock = FakeClock()
    run = _fake_run(clock, lambda exp: Outcome("pass"), cost=100.0)
    s = explore(fragile, budget_s=350, seed=1, out_dir=tmp_path, run=run, clock=clock,
                candidates=generate(fragile, 1)[:10])
    assert s.tried == 3 and clock.t <= 350        # a 4th would end at 400 s
    assert s.stopped_because == "budget" and len(s.not_covered) == 7


def test_pairs_over_a_finding_are_skipped(fragile, tmp_path):
    clock = FakeClock()

    def rule(exp):
        if _kills(exp, "lb"):
            return Outcome("fail", frozenset({"availability"}))
        return Outcome("pass")

    ones = [c for c in singles(fragile, 1) if c.name in ("x-kill-lb", "x-kill-app")]
    cands = ones + pairs(ones, 1)
    s = explore(fragile, budget_s=36000, seed=1, out_dir=tmp_path, run=_fake_run(clock, rule), clock=clock,
                candidates=cands)
    assert s.skipped_superset == 1 and len(s.findings) == 1


def test_interrupt_keeps_what_was_found(fragile, tmp_path):
    from harness.errors import Interrupted

    clock = FakeClock()
    n = {"k": 0}

    def rule(exp):
        n["k"] += 1
        if n["k"] > 8:
            raise Interrupted("interrupted by SIGINT")
        if _kills(exp, "app"):              # an outage: queued, never investigated before the interrupt
            return Outcome("fail", frozenset({"availability"}))
        return Outcome("fail", frozenset({"lost_writes"}), lost_writes=3) if _kills(exp, "lb") else Outcome("pass")

    with pytest.raises(Interrupted) as info:
        explore(fragile, budget_s=36000, seed=1, out_dir=tmp_path, run=_fake_run(clock, rule), clock=clock,
                candidates=[c for c in singles(fragile, 1) if c.name in ("x-kill-lb", "x-kill-app")]
                + singles(fragile, 1)[3:8])
    s = info.value.summary
    assert s.interrupted and len(s.findings) == 1 and s.findings[0]["lost_writes"] == [3, 3, 3]
    assert [u["name"] for u in s.unconfirmed if u.get("pending")] == ["x-kill-app"]
    assert json.loads((tmp_path / "summary.json").read_text())["interrupted"] is True


def test_one_run_is_not_a_confirmation(fragile, tmp_path):
    """The budget leaves room for the failing run only: it is listed, never written as a finding."""
    clock = FakeClock()
    run = _fake_run(clock, lambda exp: Outcome("fail", frozenset({"availability"})), cost=100.0)
    s = explore(fragile, budget_s=150, seed=1, out_dir=tmp_path, run=run, clock=clock,
                candidates=generate(fragile, 1)[:1], confirm=3)
    assert s.findings == [] and len(s.unconfirmed) == 1
    assert (s.unconfirmed[0]["reproduced"], s.unconfirmed[0]["confirmations"]) == (1, 1)
    assert not (tmp_path / "found").exists()


def test_data_loss_is_investigated_before_outages(fragile, tmp_path):
    """The single LB's outage is seen first, but the lost writes are shrunk and confirmed first."""
    clock = FakeClock()

    def rule(exp):
        if _kills(exp, "lb"):
            return Outcome("fail", frozenset({"availability"}))
        if any(f.action == "partition" and "redis-primary" in f.groups[0] for f in exp.faults):
            return Outcome("fail", frozenset({"lost_writes"}), lost_writes=4000)
        return Outcome("pass")

    by = {c.name: c for c in singles(fragile, 1)}
    cands = [by["x-kill-lb"], by["x-kill-redis-2"], by["x-isolate-redis-primary"], by["x-kill-redis-3"]]
    s = explore(fragile, budget_s=36000, seed=1, out_dir=tmp_path, run=_fake_run(clock, rule), clock=clock,
                candidates=cands)
    assert [f["what"] for f in s.findings] == ["partition [redis-primary] | [sentinel]", "container.kill lb"]
    assert s.findings[0]["kind"] == "durability" and s.findings[1]["kind"] == "availability"


def test_runner_lets_an_interrupt_through_and_counts_a_stack_bug_as_an_error(fragile, monkeypatch):
    from harness.errors import Interrupted
    from harness.explore.runner import StackRunner

    exp = to_experiment(generate(fragile, 0)[0], fragile, Params())
    runner = StackRunner(fragile, "reused")
    monkeypatch.setattr(runner, "_up", lambda: (_ for _ in ()).throw(TypeError("naive vs aware")))
    out = runner.run(exp)
    assert out.status == "error" and "TypeError" in out.reasons[0]
    monkeypatch.setattr(runner, "_up", lambda: (_ for _ in ()).throw(Interrupted("interrupted by SIGINT")))
    with pytest.raises(Interrupted):
        runner.run(exp)


def test_cli_bad_input_is_exit_2_and_nothing_written(tmp_path, capsys):
    from harness.cli import main

    out = tmp_path / "out"
    assert main(["explore", str(FRAGILE), "--invariants", "nope", "--out", str(out)]) == 2
    assert "--invariants: nope not declared" in capsys.readouterr().err and not out.exists()
    (out / "found").mkdir(parents=True)
    assert main(["explore", str(FRAGILE), "--out", str(out)]) == 2
    assert "not an empty directory" in capsys.readouterr().err
    assert main(["explore", str(tmp_path / "missing"), "--out", str(tmp_path / "o2")]) == 2
    with pytest.raises(SystemExit) as info:
        main(["explore", str(FRAGILE), "--budget", "0s"])
    assert info.value.code == 2


def test_a_tight_budget_investigates_the_queue_then_sweeps_on(fragile, tmp_path):
    """The queue is drained when the budget runs short, and the sweep resumes after it."""
    clock = FakeClock()

    def rule(exp):
        return Outcome("fail", frozenset({"availability"})) if _kills(exp, "lb") else Outcome("pass")

    by = {c.name: c for c in singles(fragile, 1)}
    cands = [by["x-kill-lb"], by["x-kill-redis-2"], by["x-kill-redis-3"], by["x-kill-sentinel-1"]]
    s = explore(fragile, budget_s=1000, seed=1, out_dir=tmp_path, run=_fake_run(clock, rule, cost=100.0),
                clock=clock, candidates=cands, confirm=3)
    assert [f["what"] for f in s.findings] == ["container.kill lb"]
    assert s.tried >= 3 and clock.t <= 1000, (s.tried, clock.t)


def test_a_stack_left_unsettled_is_charged_to_the_run_before_not_the_next(fragile, tmp_path):
    clock = FakeClock()
    cands = [c for c in generate(fragile, 1) if c.rank >= 0][:3]
    n = {"i": 0}

    def rule(exp):
        n["i"] += 1      # the 2nd run's settle found the stack the 1st left broken, and replaced it
        why = "did not settle in 60 s: app is unhealthy" if n["i"] == 2 else ""
        return Outcome("pass", wall_s=30.0, previous_unsettled=why)

    s = explore(fragile, budget_s=3600, seed=1, out_dir=tmp_path, run=_fake_run(clock, rule), clock=clock,
                candidates=cands)
    assert [u["name"] for u in s.unrecovered] == [cands[0].name]
    assert s.unrecovered[0]["why"].endswith("app is unhealthy") and s.unrecovered[0]["status"] == "pass"
    assert s.findings == [] and s.passed == 3           # said, not a finding; the next one is not blamed
    assert json.loads((tmp_path / "summary.json").read_text())["unrecovered"][0]["name"] == cands[0].name
