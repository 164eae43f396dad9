"""Known-answer tests of the whole measuring chain on real parts, on the echo target.

* Its only path (host → Toxiproxy → web) is cut for exactly 2.0 s under Locust load: the harness
  must measure a 2.0 s outage (±50 ms) and a 2.0 s stall, and availability must equal the share
  of requests not sent into the hole.
* Its only instance is frozen for 2.0 s behind a 5 s request timeout: nothing fails, successes
  keep starting inside the hole (so the outage cannot see it), and the stall must read 2.0 s.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.loader import load_experiment
from harness.measure import Verdict
from tests.suite_helpers import run_on, shared_stack

pytestmark = pytest.mark.docker
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def echo(docker_client):
    """One echo stack for both known answers (each run settles first: tests/suite_helpers.py)."""
    with shared_stack("targets/echo") as stack:
        yield stack


def test_two_second_link_down_is_measured_as_two_seconds(echo):
    exp = load_experiment(ROOT / "experiments/calibration/link-down-2s.yaml")
    record, result = run_on(echo, exp)

    assert result.harness_error is None
    [fault] = record.faults
    # The fault itself: down for 2.0 s, as timed from when each Toxiproxy call took effect.
    # (±100 ms: on a loaded 2-core machine a Toxiproxy call can take that long; the measuring
    # below is held to ±50 ms against the window the system actually saw.)
    window = fault.reverted_t - fault.injected_t
    assert abs(window - 2.0) < 0.1, window

    outage = result.longest_outage
    print(f"fault window {window:.4f} s; measured outage {outage.duration_s:.4f} s; "
          f"availability {result.overall.availability:.4%}")
    assert abs(outage.duration_s - window) <= 0.05, (outage, window)

    # The hole sits where the fault was, not somewhere else in the run.
    assert abs((record.t0 + outage.start_s) - fault.injected_t) < 0.1

    # Availability matches the ratio of requests sent outside the outage window.
    start, end = record.t0 + outage.start_s, record.t0 + outage.start_s + outage.duration_s
    in_hole = sum(1 for s in record.samples if start <= s.t <= end)
    expected = 1 - in_hole / len(record.samples)
    assert abs(result.overall.availability - expected) < 0.002, (result.overall.availability, expected)

    # The stall starts where the outage does and ends when the first success after the hole
    # *completes*: one request latency after the outage ends (a reconnect through the proxy,
    # milliseconds on a quiet machine, up to a few hundred on a loaded one).
    stall = result.longest_stall
    first = min((s for s in record.samples if s.ok and s.t >= record.t0 + outage.end_s - 1e-9), key=lambda s: s.t)
    print(f"measured stall {stall.duration_s:.4f} s; first success after the hole took {first.latency_s * 1000:.1f} ms")
    # Within 25 ms, not 10: with refused connects failing at once (the load reaches Toxiproxy's
    # own address) a request in flight at the cut can complete just after the last success's
    # end; a clean-clone CI rehearsal measured 11.6 ms apart (outage 2.005 s, stall 1.999 s).
    assert abs(stall.start_s - outage.start_s) < 0.025, (stall, outage)
    assert stall.end_s <= (first.t + first.latency_s) - record.t0 + 1e-6
    assert abs(stall.duration_s - window) <= 0.05 + first.latency_s, (stall, window, first)
    assert result.verdict == Verdict.PASS, result.reasons


def test_two_second_pause_behind_a_long_timeout_is_a_two_second_stall(echo):
    exp = load_experiment(ROOT / "experiments/calibration/pause-2s.yaml")
    record, result = run_on(echo, exp)

    assert result.harness_error is None
    [fault] = record.faults
    # When the freezer took hold and let go is known only to within the Docker calls around it:
    # frozen no later than `injected_t` (pause and its confirmation returned), thawed no earlier
    # than the unpause the scheduler sent at injected_t + 2 s - lead and no later than its
    # confirmation (`reverted_t`). On a quiet machine that brackets 2.0 s within a few tens of ms.
    lead = min(fault.injected_t - fault.issued_t, 0.25)
    shortest, longest = 2.0 - lead, fault.reverted_t - fault.issued_t
    # In the fault's window (from its issue): a slow spell of a loaded machine just before the
    # pause is not the pause's (the whole run's stall would include it).
    stall, outage = result.phase("fault:freeze-web").longest_stall, result.longest_outage
    print(f"pause bracket {shortest:.4f}..{longest:.4f} s; measured stall {stall.duration_s:.4f} s, "
          f"outage {outage.duration_s:.4f} s; availability {result.overall.availability:.4%}")
    assert shortest - 0.05 <= stall.duration_s <= longest + 0.05, (stall, shortest, longest)
    assert fault.issued_t - 0.05 <= record.t0 + stall.start_s <= fault.injected_t + 0.05
    # Nothing failed and successes kept starting: an outage is not what this is.
    assert result.overall.failures == 0
    assert outage.duration_s < 0.5 * stall.duration_s
    # Not the verdict: the gate (2 s ± 100 ms) judges the pause the system saw, which on a loaded
    # machine is off by as much as the Docker calls around it (measured 2.13 s at load 35); what
    # this test pins down is that the stall measures that pause.
    by = {a.key: a for a in result.assertions}
    assert by["availability"].passed is True
    assert [a.measured for a in result.assertions if a.metric == "longest_stall"] == [stall.duration_s] * 2
    assert result.longest_stall.duration_s >= stall.duration_s
