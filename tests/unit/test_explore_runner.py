"""A candidate's run on a reused stack without Docker: how a result is classified (only the
baseline says "unsettled"), and when the settle runs its load probe (only when the last run did
not vouch for the stack), with the engine, the settle and the run replaced by fakes."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from harness.explore.candidates import Params, singles, to_experiment
from harness.explore.runner import StackRunner, classify
from harness.loader import load_target
from harness.measure.result import AssertionOutcome, Verdict
from harness.model.assertions import Assertion

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def fragile():
    return load_target(ROOT / "targets" / "reference-fragile")


@pytest.fixture(scope="module")
def exp(fragile):
    return to_experiment({c.name: c for c in singles(fragile, 0)}["x-slow-lb-app"], fragile, Params())


@pytest.fixture(scope="module")
def data_exp(fragile):
    return to_experiment({c.name: c for c in singles(fragile, 0)}["x-isolate-redis-primary"], fragile, Params())


def _outcome(kind, scope, key, passed):
    return AssertionOutcome(kind=kind, scope=scope, metric=key, op=">=", threshold=0.99, text=">= 99%",
                            measured=0.5 if passed is False else 1.0, passed=passed,
                            message=f"{key} on {scope}: {'ok' if passed else 'missed'}")


def _result(exp, verdict, assertions, recovery_availability=1.0, aborted=None):
    phases = {"recovery": SimpleNamespace(availability=recovery_availability, requests=400)}

    def phase(name):
        if name not in phases:
            raise KeyError(name)
        return phases[name]
    return SimpleNamespace(verdict=verdict, harness_error=None, reasons=tuple(a.message for a in assertions
                                                                              if a.passed is False),
                           assertions=tuple(assertions), aborted=aborted, durability=SimpleNamespace(lost=0),
                           phase=phase, experiment=exp)


def test_only_the_baseline_makes_a_run_unsettled(exp):
    base = _outcome("steady_state", "baseline", "availability", False)
    assert classify(_result(exp, Verdict.FAIL, [base])).status == "unsettled"
    # a recovery that misses the steady state is the system's answer: a failure, never an excuse
    rec = _outcome("steady_state", "recovery", "availability", False)
    out = classify(_result(exp, Verdict.FAIL, [_outcome("steady_state", "baseline", "availability", True), rec]))
    assert out.status == "fail" and out.failed == {"steady_state@recovery"}


def test_recovered_reads_the_recovery_phase_against_the_steady_bar(exp):
    ok = [_outcome("slo", "overall", "availability", True)]
    assert classify(_result(exp, Verdict.PASS, ok, recovery_availability=0.995)).recovered is True
    assert classify(_result(exp, Verdict.PASS, ok, recovery_availability=0.98)).recovered is False   # 99 %, not 97 %
    assert classify(_result(exp, Verdict.FAIL, ok, aborted="availability below 20%")).recovered is None


class _Fakes:
    """The engine, the settle and the run, replaced: each run answers the next queued result."""

    def __init__(self, monkeypatch, exp, results):
        import harness.run.orchestrator as orch
        import harness.run.settle as settle_mod

        self.probed: list[bool] = []
        self.results = list(results)
        self.exp = exp

        self.settles: list = []         # queued answers of the settle (default: settled)

        def settle(stack, *, timeout_s, probe=None, **kw):
            self.probed.append(probe is not None)
            return self.settles.pop(0) if self.settles else settle_mod.Settled(True, 0.1)

        def run_experiment(experiment, **kw):
            return SimpleNamespace(run_id="r1"), self.results.pop(0)
        monkeypatch.setattr(settle_mod, "settle", settle)
        monkeypatch.setattr(orch, "run_experiment", run_experiment)


def test_the_probe_runs_only_when_the_last_run_did_not_vouch_for_the_stack(fragile, exp, monkeypatch):
    ok = [_outcome("slo", "overall", "availability", True)]
    passed = _result(exp, Verdict.PASS, ok)
    failed = _result(exp, Verdict.FAIL, [_outcome("slo", "overall", "availability", False)])
    fakes = _Fakes(monkeypatch, exp, [failed, passed, passed, failed, passed])
    runner = StackRunner(fragile, "reused")
    monkeypatch.setattr(runner, "_up", lambda: SimpleNamespace(run_id="r1", __exit__=lambda *a: None))
    outs = [runner.run(exp) for _ in range(5)]
    assert [o.status for o in outs] == ["fail", "pass", "pass", "fail", "pass"]
    # the first run needs no settle (a new stack); after a failure: probe; after a recovered pass: none
    assert fakes.probed == [True, False, False, True]
    assert [o.probed for o in outs] == [False, True, False, False, True]


def test_an_unsettled_baseline_is_run_again_after_a_probed_settle_on_the_same_stack(fragile, exp, monkeypatch):
    ok = [_outcome("slo", "overall", "availability", True)]
    unsettled = _result(exp, Verdict.FAIL, [_outcome("steady_state", "baseline", "availability", False)])
    fakes = _Fakes(monkeypatch, exp, [_result(exp, Verdict.PASS, ok), unsettled, _result(exp, Verdict.PASS, ok)])
    runner = StackRunner(fragile, "reused")
    ups = []
    monkeypatch.setattr(runner, "_up", lambda: ups.append(1) or SimpleNamespace(run_id="r1", __exit__=lambda *a: None))
    runner.run(exp)
    out = runner.run(exp)
    assert out.status == "pass" and out.probed and out.attempts == 2 and len(ups) == 1   # no fresh stack
    assert fakes.probed == [False, True]


def test_a_pass_on_the_data_tier_does_not_vouch_for_the_stack(fragile, data_exp, monkeypatch):
    ok = [_outcome("slo", "overall", "availability", True)]
    fakes = _Fakes(monkeypatch, data_exp, [_result(data_exp, Verdict.PASS, ok)] * 3)
    runner = StackRunner(fragile, "reused")
    monkeypatch.setattr(runner, "_up", lambda: SimpleNamespace(run_id="r1", __exit__=lambda *a: None))
    outs = [runner.run(data_exp) for _ in range(3)]
    assert all(o.recovered for o in outs) and fakes.probed == [True, True]
    from harness.explore.coverage import Coverage
    cov = Coverage(fragile)
    by = {c.name: c for c in singles(fragile, 0)}
    touches = {n: cov.touches_data(to_experiment(by[n], fragile, Params()))
               for n in ("x-down-app-redis-1", "x-kill-sentinel-2", "x-pause-redis-primary", "x-kill-app", "x-down-lb-app")}
    assert touches == {"x-down-app-redis-1": True, "x-kill-sentinel-2": True, "x-pause-redis-primary": True,
                       "x-kill-app": False, "x-down-lb-app": False}


def test_a_settle_that_fails_is_said_on_the_next_outcome_as_the_previous_runs(fragile, exp, monkeypatch):
    import harness.run.settle as settle_mod

    ok = [_outcome("slo", "overall", "availability", True)]
    fakes = _Fakes(monkeypatch, exp, [_result(exp, Verdict.PASS, ok)] * 3)
    fakes.settles = [settle_mod.Settled(False, 60.0, "app-1 is unhealthy")]
    runner = StackRunner(fragile, "reused")
    ups = []
    monkeypatch.setattr(runner, "_up", lambda: ups.append(1) or SimpleNamespace(run_id="r1", __exit__=lambda *a: None))
    monkeypatch.setattr(runner, "close", lambda: None)
    outs = [runner.run(exp) for _ in range(3)]
    assert [o.previous_unsettled for o in outs] == ["", "did not settle in 60 s: app-1 is unhealthy", ""]
    assert [o.status for o in outs] == ["pass"] * 3 and len(ups) == 2      # replaced once
