"""Detection, PromQL steady state and a PromQL abort on the real Prometheus 2.42 and Alertmanager
0.25 of the reference target and its fragile twin (issue 18).

Each test loads an experiment of experiments/monitoring/, shortens it and runs it end to end
(the two reference tests on one stack, each run after a settle: tests/suite_helpers.py; the
twin's on its own). Known answers with honest bounds:

* time to detect is at least the firing rule's `for:` less one scrape timeout (the first failed
  scrape is stamped when it *began*, which can be just before the kill) and at most its bound (for + scrape interval + scrape timeout + evaluation
  interval, from the rules and targets Prometheus reports) plus one more evaluation interval:
  a rule group whose evaluation overruns on a loaded machine skips a tick.
* a fault no rule covers is *undetected*, with no time at all.
* the PromQL abort stops the run within one scrape, its timeout, one probe interval and the
  probe's timeout (plus a second for the loop) of the moment the harness knew the kills were in
  effect (a during_fault probe cannot start before that).
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from harness.events import Aborted, AlertFired, AlertResolved, Events, FaultInjected, ProbeChanged
from harness.loader import load_experiment
from harness.measure import Verdict
from harness.run import run_experiment
from tests.suite_helpers import run_on, shared_stack

pytestmark = pytest.mark.docker
ROOT = Path(__file__).resolve().parents[2]


def shortened(path: str, *, at_s: float, for_s: float, duration_s: float, **changes):
    exp = load_experiment(ROOT / path)
    [fault] = exp.faults
    fault = fault.model_copy(update={"at_s": at_s, "for_s": for_s})
    return exp.model_copy(update={"duration_s": duration_s, "faults": (fault,), **changes})


@pytest.fixture(scope="module")
def reference(docker_client):
    with shared_stack("targets/reference") as stack:
        yield stack


def collect(events: Events) -> list:
    seen: list = []
    events.subscribe(seen.append, AlertFired, AlertResolved, ProbeChanged)
    return seen


# First: a module fixture lives to the module's end, and an idle reference (~0.9 cores) beside
# this run would slow it (70 s against 42 s).
def test_fragile_twin_has_no_rule_for_a_dead_lb_so_it_is_undetected(docker_client):
    exp = shortened("experiments/monitoring/fragile/lb-kill-detected-fragile.yaml", at_s=6.0, for_s=10.0,
                    duration_s=22.0)
    record, result = run_experiment(exp)
    assert result.harness_error is None, result.harness_error
    m = result.monitoring
    print(result.verdict, result.reasons, m.faults, sep="\n")
    [d] = m.faults
    assert d.status == "undetected" and d.time_to_detect_s is None and d.alert is None
    assert "no alert about lb fired" in d.why
    ttd = next(a for a in result.assertions if a.metric == "time_to_detect")
    assert ttd.passed is False and ttd.measured is None and "undetected" in ttd.message
    assert result.verdict == Verdict.FAIL


def test_app_kill_detected_within_its_rules_bound_with_promql_steady_state(reference):
    exp = shortened("experiments/monitoring/app-replica-kill-detected.yaml", at_s=10.0, for_s=8.0, duration_s=30.0)
    events = Events()
    seen = collect(events)
    record, result = run_on(reference, exp, events=events)
    assert result.harness_error is None, result.harness_error
    m = result.monitoring
    print(result.verdict, result.reasons, m.faults, [a.describe() for a in m.alerts], sep="\n")
    [victim] = record.faults[0].targets
    [d] = m.faults
    assert d.status == "detected" and d.alert == f"AppReplicaDown{{{victim}}}"
    assert d.floor_s == 3.0 and d.bound_s == pytest.approx(5.8)
    assert d.floor_s - m.scrape_timeout_s <= d.time_to_detect_s <= d.bound_s + 1.0
    assert d.resolve == "resolved" and d.time_to_resolve_s > 0
    assert m.alerts_without_fault == 0
    # The PromQL steady state held on the baseline and after recovery, on the real server.
    outcomes = {a.name: a for a in result.assertions}
    for scope in ("baseline", "recovery"):
        a = outcomes[f"steady_state.{scope}.probe:all-apps-up"]
        assert a.passed is True and a.measured == 0, a.message
    during = [p for p in m.probes if p.probe == "two-apps-up"]
    assert during and all(p.ok for p in during)
    assert all(d.injected_s - 0.1 <= p.offset_s <= record.faults[0].reverted_t - record.t0 + 1.5 for p in during)
    assert outcomes["slo.probe:lbs-answer"].passed is True
    # The journal and the console hear about it as it happens.
    kinds = [type(e).__name__ for e in seen]
    assert "AlertFired" in kinds and "AlertResolved" in kinds and "ProbeChanged" in kinds
    assert result.verdict == Verdict.PASS, result.reasons


def test_promql_abort_stops_the_run_within_a_scrape_and_a_probe_interval(reference):
    exp = shortened("experiments/monitoring/abort/promql-abort.yaml", at_s=8.0, for_s=15.0, duration_s=30.0)
    events = Events()
    told: list[float] = []                  # when the harness knew the kills were in effect
    events.subscribe(lambda e: told.append(time.monotonic()), FaultInjected)
    stopped: list[float] = []               # when it decided to stop (t_end comes after the revert)
    events.subscribe(lambda e: stopped.append(e.t), Aborted)
    record, result = run_on(reference, exp, events=events)
    assert result.harness_error is None, result.harness_error
    print(result.verdict, result.reasons, record.aborted, sep="\n")
    # "value 1" (the survivor); "value 0" when the survivor's own scrape also timed out on a
    # starved machine. Either way fewer than two.
    assert record.aborted and re.match(r"abort_if: probe two-apps-up: value [01] is not >= 2", record.aborted)
    assert result.verdict == Verdict.FAIL and result.reasons[0].startswith("aborted: abort_if: probe two-apps-up")
    [fault] = record.faults
    # A during_fault probe starts when the harness knows the fault is in effect: after the last
    # kill call returned, which on a loaded engine is seconds after the containers died. From the
    # later of the two: scrape 1 s + its timeout 0.8 s + probe interval 1 s + probe timeout 1 s
    # + 1 s for the loop.
    stopped_after = stopped[0] - max(fault.injected_t, told[0])
    print(f"stopped {stopped_after:.2f} s after the harness knew; it knew {told[0] - fault.injected_t:.2f} s "
          "after the last container died")
    assert 0 < stopped_after <= 4.8, stopped_after
    assert stopped[0] - record.t0 < exp.duration_s - 10              # well before the planned end
    assert fault.reverted_t is not None                              # the abort reverted the kills
