"""harness.run.trials on a fake runner: N trials, reused-stack labels, the budget, the CLI flags."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from harness.cli import build_parser
from harness.errors import Interrupted
from harness.measure import Verdict
from harness.report.console import print_trial_summary
from harness.run import settle as settle_mod
from harness.run.trials import TrialRecorder, next_to_run, run_budgeted, run_suite_trials, run_trials
from tests.trial_helpers import AVAIL, OUTAGES, trial, ttr


class FakeRunner:
    """run_experiment stand-in: trial k of experiment e has outage outages[e][k]."""

    def __init__(self, outages: dict[str, list[float]], slo=(AVAIL, ttr(6.0)), wall_s: float = 60.0, clock=None):
        self.outages = outages
        self.slo = slo
        self.calls: list[tuple[str, dict]] = []
        self.wall_s = wall_s
        self.clock = clock

    def __call__(self, experiment, **kw):
        name = experiment.name
        k = sum(1 for n, _ in self.calls if n == name)
        self.calls.append((name, kw))
        if self.clock is not None:
            self.clock.t += self.wall_s
        from harness.measure.synthetic import make_record

        r = trial(self.outages[name][k % len(self.outages[name])], k=k, slo=self.slo, name=name)
        return make_record((), experiment=experiment, run_id=r.run_id), r


class Clock:
    t = 0.0

    def __call__(self):
        return self.t


def exp(name="set"):
    return trial(2.0, name=name).experiment


def test_run_trials_runs_n_and_judges_them():
    fake = FakeRunner({"set": OUTAGES})
    seen = []
    rec = run_trials(exp(), 10, run_one=fake, on_trial=lambda r: seen.append(len(r.results)))
    assert len(rec.results) == 10 and seen == list(range(1, 11))
    ts = rec.summary()
    assert ts.verdict is Verdict.PASS and ts.stack == "fresh" and len(ts.wall_s) == 10
    assert all("stack" not in kw for _, kw in fake.calls)      # fresh: run_experiment makes its own


def test_reused_stack_is_passed_and_trials_are_labelled(monkeypatch):
    made = []

    class FakeShared:
        def __init__(self, *a):
            self.stack = object()

        def get(self):
            made.append(self.stack)
            return self.stack

        def close(self):
            made.append("closed")

    monkeypatch.setattr("harness.run.trials._ReusedStack", FakeShared)

    def run_one(experiment, **kw):
        from harness.measure.synthetic import make_record

        assert kw["stack"] is made[-1]
        return make_record((), experiment=experiment, run_id="abc"), trial(2.0, k=len(made))

    rec = run_trials(exp(), 3, stack="reused", run_one=run_one)
    assert made[-1] == "closed" and len({id(m) for m in made[:-1]}) == 1
    assert [r.run_id for r in rec.results] == ["abc-t1", "abc-t2", "abc-t3"]
    assert [r.run_id for r in rec.records] == ["abc-t1", "abc-t2", "abc-t3"]


def test_interrupted_trials_keep_what_finished():
    fake = FakeRunner({"set": OUTAGES})

    def run_one(experiment, **kw):
        if len(fake.calls) == 2:
            raise Interrupted("interrupted by SIGTERM")
        return fake(experiment, **kw)

    with pytest.raises(Interrupted) as info:
        run_trials(exp(), 5, run_one=run_one)
    assert len(info.value.recorder.results) == 2


def test_budget_goes_where_the_verdict_is_closest_to_its_threshold():
    # "decided" passes far from the threshold; "close" straddles it
    clock = Clock()
    fake = FakeRunner({"decided": [1.0, 1.1, 1.0], "close": [1.5, 3.5, 2.0, 4.0, 2.5]},
                      slo=(AVAIL, ttr(2.5)), wall_s=60.0, clock=clock)
    recs = run_budgeted([exp("decided"), exp("close")], budget_s=600, initial=3, run_one=fake, clock=clock)
    by = {r.experiment.name: len(r.results) for r in recs}
    assert by["decided"] == 3                       # decided: no more spent on it
    assert by["close"] == 7                         # 600 s buys 10 trials: 3 + 3 first, then all 4 on "close"
    assert clock.t <= 600


def test_budget_stops_when_everything_is_decided():
    clock = Clock()
    fake = FakeRunner({"a": [1.0, 1.1, 1.0], "b": [1.2, 1.0, 1.1]}, slo=(AVAIL, ttr(6.0)), clock=clock)
    recs = run_budgeted([exp("a"), exp("b")], budget_s=3600, initial=3, run_one=fake, clock=clock)
    assert [len(r.results) for r in recs] == [3, 3]


def test_next_to_run_skips_trials_that_do_not_fit():
    fake = FakeRunner({"close": [1.5, 3.5, 2.0]}, slo=(AVAIL, ttr(2.5)))
    r = TrialRecorder(exp("close"))
    run_trials(r.experiment, 3, recorder=r, run_one=fake)
    assert r.summary().verdict is Verdict.INCONCLUSIVE
    assert next_to_run([r], remaining_s=1e9) is r
    assert next_to_run([r], remaining_s=r.mean_wall_s / 2) is None


def test_suite_trials_uses_the_files_count_unless_the_flag_says_otherwise():
    e = exp().model_copy(update={"trials": 4})
    fake = FakeRunner({"set": OUTAGES})
    assert [len(r.results) for r in run_suite_trials([e], run_one=fake)] == [4]
    assert [len(r.results) for r in run_suite_trials([e], trials=2, run_one=FakeRunner({"set": OUTAGES}))] == [2]


def test_cli_flags_parse():
    p = build_parser()
    a = p.parse_args(["run", "x.yaml", "--trials", "10", "--trial-budget", "30m"])
    assert a.trials == 10 and a.trial_budget == 1800.0
    assert p.parse_args(["run", "x.yaml"]).trials is None
    for bad in (["--trials", "0"], ["--trials", "ten"], ["--trial-budget", "-5m"], ["--trial-budget", "soon"]):
        with pytest.raises(SystemExit) as info:
            p.parse_args(["run", "x.yaml", *bad])
        assert info.value.code == 2


def test_console_says_when_a_verdict_rests_on_too_few_trials():
    rec = run_trials(exp(), 3, run_one=FakeRunner({"set": OUTAGES}))
    buf = io.StringIO()
    print_trial_summary([rec.summary()], console=Console(file=buf, width=200))
    out = buf.getvalue()
    assert "rests on 3 judged trials" in out and "slo.time_to_recover" in out and "3/3" in out


def test_settle_needs_two_good_looks_and_gives_up_bounded():
    clock = Clock()

    def sleep(s):
        clock.t += s

    looks = iter([["app-1 is exited"], [], ["flicker"], [], [], []])
    s = settle_mod.settle(None, check=lambda _: next(looks), clock=clock, sleep=sleep, stable_s=2.0)
    assert s.ok and s.seconds >= 2.0
    clock.t = 0.0
    s = settle_mod.settle(None, check=lambda _: ["redis-1 is unhealthy"], clock=clock, sleep=sleep, timeout_s=5.0)
    assert not s.ok and s.why == "redis-1 is unhealthy" and s.seconds >= 5.0


class _C:
    def __init__(self, status="running", health=None):
        self.attrs = {"State": {"Status": status, **({"Health": {"Status": health}} if health else {})}}

    def reload(self):
        pass


class _Ref:
    def __init__(self, name):
        self.name = name


class _Tox:
    def __init__(self, proxies):
        self._p = proxies

    def proxies(self):
        return self._p


class _Target:
    roles = ()


class FakeStack:
    run_id = "rfake"
    target = _Target()

    def __init__(self, containers, proxies=None, endpoints=()):
        self._c = containers
        self.toxiproxy = _Tox(proxies or {})
        self._e = list(endpoints)

    def instances(self):
        return [_Ref(n) for n in self._c]

    def container(self, name):
        return self._c[name]

    def endpoints(self):
        return self._e


def test_settle_problems_name_what_does_not_hold(monkeypatch):
    ok = FakeStack({"app-1": _C(), "redis-1": _C(health="healthy")}, {"lb-app": {"enabled": True, "toxics": []}})
    assert settle_mod.problems(ok) == []
    bad = FakeStack({"app-1": _C("exited"), "redis-1": _C(health="starting")},
                    {"lb-app": {"enabled": False, "toxics": [{"name": "lat"}]}})
    assert settle_mod.problems(bad) == ["app-1 is exited", "redis-1 is starting", "link lb-app is disabled",
                                        "link lb-app still has toxics"]
    monkeypatch.setattr(settle_mod, "_answers", lambda url: f"{url}: HTTP 503")
    down = FakeStack({"app-1": _C()}, endpoints=["http://127.0.0.1:1"])
    assert settle_mod.problems(down) == ["http://127.0.0.1:1: HTTP 503"]


def test_settle_waits_for_the_probe_too():
    clock = Clock()

    def sleep(s):
        clock.t += s

    verdicts = iter(["probe: availability 80.00% over 5 s, needs >= 99.5%", ""])
    s = settle_mod.settle(None, check=lambda _: [], probe=lambda _: next(verdicts), clock=clock, sleep=sleep,
                          stable_s=2.0)
    assert s.ok and s.seconds >= 4.0
    clock.t = 0.0
    s = settle_mod.settle(None, check=lambda _: [], probe=lambda _: "probe: no request answered", clock=clock,
                          sleep=sleep, timeout_s=10.0)
    assert not s.ok and s.why == "probe: no request answered"


def test_a_reused_stack_that_cannot_be_made_runs_the_trial_fresh(monkeypatch):
    from harness.errors import StackError

    class Broken:
        def __init__(self, *a):
            pass

        def get(self):
            raise StackError("redis-1 not healthy after 90 s")

        def close(self):
            pass

    monkeypatch.setattr("harness.run.trials._ReusedStack", Broken)
    fake = FakeRunner({"set": OUTAGES})
    rec = run_trials(exp(), 2, stack="reused", run_one=fake)
    assert len(rec.results) == 2 and all("stack" not in kw for _, kw in fake.calls)
