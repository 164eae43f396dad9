"""Known answers for the longest stall (harness.measure.stalls), on synthetic samples."""

from __future__ import annotations

import pytest

from harness.measure.metrics import longest_outage
from harness.measure.stalls import longest_stall
from harness.measure.synthetic import steady_samples
from harness.model import Sample

T0 = 1000.0


def paused(t0: float, t_end: float, rate: float, pause: float, unpause: float, latency_s: float = 0.002,
           timeout_s: float = 5.0) -> list[Sample]:
    """Requests at `rate`; those in flight during [pause, unpause) hang until unpause, then succeed
    (a frozen container behind a request timeout longer than the pause)."""
    out = []
    for s in steady_samples(t0, t_end, rate, latency_s=latency_s):
        done = s.t + s.latency_s
        if s.t < unpause and done > pause:
            lat = unpause + latency_s - s.t
            out.append(Sample(s.t, lat, ok=lat < timeout_s, name=s.name))
        else:
            out.append(s)
    return out


@pytest.mark.parametrize("rate", [50, 500, 2000])
def test_a_two_second_pause_behind_a_long_timeout_is_a_two_second_stall_and_no_outage(rate):
    samples = paused(T0, T0 + 10.0, rate, T0 + 4.0, T0 + 6.0)
    stall = longest_stall(samples, T0, T0 + 10.0, T0)
    assert stall.duration_s == pytest.approx(2.0, abs=0.05)
    assert stall.start_s == pytest.approx(4.0, abs=0.05) and stall.end_s == pytest.approx(6.0, abs=0.05)
    # Successes kept *starting* inside the hole, so the outage does not see it.
    assert longest_outage(samples, T0, T0 + 10.0, T0).duration_s < 0.05


def test_a_two_second_link_down_with_fast_failures_is_still_a_two_second_stall():
    down, up = T0 + 4.0, T0 + 6.0
    samples = steady_samples(T0, T0 + 10.0, 500, latency_s=0.002,
                             fails=lambda t, lat: t < up and t + lat > down)
    assert longest_stall(samples, T0, T0 + 10.0, T0).duration_s == pytest.approx(2.0, abs=0.01)
    assert longest_outage(samples, T0, T0 + 10.0, T0).duration_s == pytest.approx(2.0, abs=0.01)


def test_no_demand_is_not_a_stall():
    # one request a second, each answered in 5 ms: the system waits for work, users wait for nothing
    samples = steady_samples(T0, T0 + 10.0, 1, latency_s=0.005)
    assert longest_stall(samples, T0, T0 + 10.0, T0).duration_s == pytest.approx(0.005)


def test_requests_still_hanging_at_the_end_count_to_the_end():
    samples = [Sample(T0 + k * 0.01, 0.005, ok=True) for k in range(100)]
    samples += [Sample(T0 + 1.5, 20.0, ok=False)]               # sent at 1.5 s, never answered in time
    stall = longest_stall(samples, T0, T0 + 3.0, T0)
    assert stall.duration_s == pytest.approx(1.5) and stall.end_s == pytest.approx(3.0)


def test_everything_failing_stalls_from_the_first_request_and_nothing_is_unknown():
    samples = [Sample(T0 + 0.5 + k * 0.1, 0.01, ok=False) for k in range(10)]
    stall = longest_stall(samples, T0, T0 + 2.0, T0)
    assert (stall.duration_s, stall.start_s, stall.end_s) == (pytest.approx(1.5), pytest.approx(0.5), 2.0)
    assert longest_stall([], T0, T0 + 2.0, T0) is None
    assert longest_stall(samples, T0, T0, T0) is None


def _stall_by_definition(samples, end):
    """The definition, spelled out quadratically: between consecutive successful completions (and
    after the last), from the later of that completion and the first start of a request still in
    flight after it, to the next completion (or the end)."""
    done = sorted(min(s.t + s.latency_s, end) for s in samples if s.ok)
    best, prev = 0.0, None
    for c in [*done, None]:
        alive = [s.t for s in samples if prev is None or min(s.t + s.latency_s, end) > prev]
        if alive:
            left = min(alive) if prev is None else max(prev, min(alive))
            best = max(best, (end if c is None else c) - left)
        prev = prev if c is None else c
    return best


def test_the_fast_algorithm_agrees_with_the_definition_on_random_runs():
    import random

    rng = random.Random(5)
    for _ in range(500):
        samples = [Sample(rng.uniform(0, 10), rng.choice([0.01, 0.5, 2.0, rng.uniform(0, 3)]), ok=rng.random() < 0.6)
                   for _ in range(rng.randint(1, 30))]
        assert longest_stall(samples, 0.0, 10.0, 0.0).duration_s == pytest.approx(_stall_by_definition(samples, 10.0))
