"""Known-answer tests for harness.measure metrics, on synthetic samples."""

from __future__ import annotations

import random

import pytest

from harness.measure.metrics import longest_outage, phase_metrics
from harness.measure.recovery import Span, charged, error_window, fault_start, spans, time_to_recover as _ttr
from harness.measure.synthetic import steady_samples
from harness.measure.timeline import Timeline, percentile
from harness.model import Assertion, FaultEvent, Sample

T0 = 1000.0


def error_windows(timeline, faults, t0, t_end):
    return {sp.fault.fault: error_window(charged(timeline, sp), t0) for sp in spans(faults, t_end)}


def time_to_recover(timeline, fault, end, window_s, bar):
    span = Span(fault, fault_start(fault), end)
    return _ttr(charged(timeline, span), span, window_s, bar)


def test_availability_1000_requests_7_failures_is_exactly_0_993():
    samples = [Sample(T0 + k * 0.01, 0.005, ok=k % 137 != 0 or k == 0, error="HTTP 503") for k in range(1000)]
    assert sum(not s.ok for s in samples) == 7
    pm = phase_metrics("overall", samples, T0, T0 + 10.0, T0)
    assert (pm.requests, pm.successes, pm.failures) == (1000, 993, 7)
    assert pm.availability == 0.993
    assert pm.error_rate == pytest.approx(0.007)
    assert pm.throughput_rps == 100.0
    assert pm.errors == (("HTTP 503", 7),)


def test_percentiles_nearest_rank_of_known_distribution():
    lat = [k / 1000 for k in range(1, 1001)]           # 1 ms .. 1000 ms
    random.Random(3).shuffle(lat)
    samples = [Sample(T0 + k * 0.001, v, ok=True) for k, v in enumerate(lat)]
    samples += [Sample(T0 + 0.5, 99.0, ok=False)]       # failures never count towards latency
    pm = phase_metrics("p", samples, T0, T0 + 1.0, T0)
    assert pm.latency_p50_s == 0.5
    assert pm.latency_p95_s == 0.95
    assert pm.latency_p99_s == 0.99
    assert pm.latency_max_s == 1.0


def test_percentile_edges():
    assert percentile([], 99) is None
    assert percentile([7.0], 99) == 7.0
    assert percentile([1.0, 2.0], 50) == 1.0
    assert percentile([1.0, 2.0], 51) == 2.0
    assert percentile([1.0, 2.0, 3.0], 100) == 3.0
    assert percentile([1.0, 2.0, 3.0], 0) == 1.0
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_empty_phase_is_unknown_not_zero():
    pm = phase_metrics("empty", [], T0, T0 + 1, T0)
    assert pm.requests == 0
    assert pm.availability is None and pm.error_rate is None
    assert pm.latency_p99_s is None and pm.latency_max_s is None
    assert pm.throughput_rps == 0.0


def test_all_failed_is_availability_zero_not_unknown():
    samples = [Sample(T0 + k * 0.01, 0.002, ok=False) for k in range(50)]
    pm = phase_metrics("x", samples, T0, T0 + 0.5, T0)
    assert pm.availability == 0.0
    assert pm.latency_p99_s is None


@pytest.mark.parametrize("latency,jitter", [(0.01, 0.0), (0.002, 0.0), (0.04, 0.0), (0.005, 0.05)])
def test_two_second_hole_at_500_rps_measures_two_seconds(latency, jitter):
    # A link down for exactly 2.0 s: every request in flight at any moment of [down, up) fails.
    down, up = T0 + 4.0, T0 + 6.0
    samples = steady_samples(T0, T0 + 10.0, 500, latency_s=latency, jitter_s=jitter,
                             fails=lambda t, lat: t < up and t + lat > down, seed=7)
    o = longest_outage(samples, T0, T0 + 10.0, T0)
    assert o.duration_s == pytest.approx(2.0, abs=0.05)
    assert o.start_s == pytest.approx(4.0, abs=0.05)
    assert o.end_s == pytest.approx(6.0, abs=0.05)


def test_outage_edges_count_and_no_success_is_whole_interval():
    # successes only in the middle: the gap from t0 (3 s) is the longest
    samples = [Sample(T0 + 3.0 + k * 0.01, 0.001, ok=True) for k in range(100)]
    o = longest_outage(samples, T0, T0 + 5.0, T0)
    assert o.duration_s == pytest.approx(3.0) and o.start_s == 0.0
    # ... and to t_end
    o = longest_outage(samples, T0, T0 + 8.0, T0)
    assert o.duration_s == pytest.approx(8.0 - 4.0 + 0.01 - 0.001, abs=1e-6)
    assert o.end_s == pytest.approx(8.0)
    failed = [Sample(T0 + k * 0.1, 0.01, ok=False) for k in range(10)]
    o = longest_outage(failed, T0, T0 + 2.0, T0)
    assert (o.duration_s, o.start_s, o.end_s) == (2.0, 0.0, 2.0)
    assert longest_outage([], T0, T0, T0) is None


def test_error_window_per_fault():
    fails = {T0 + 2.05, T0 + 2.5, T0 + 3.1, T0 + 7.2, T0 + 7.4}
    samples = [Sample(T0 + k * 0.05, 0.01, ok=(T0 + k * 0.05) not in fails) for k in range(200)]
    samples = [Sample(s.t, s.latency_s, ok=not any(abs(s.t - f) < 1e-9 for f in fails)) for s in samples]
    a = FaultEvent("a", "container.kill", ("app-1",), T0 + 2.0, None)
    b = FaultEvent("b", "network.down", ("lb-app-1",), T0 + 7.0, T0 + 8.0)
    c = FaultEvent("c", "network.down", ("lb-app-1",), T0 + 9.0, T0 + 9.5)
    w = error_windows(Timeline(samples), [b, a, c], T0, T0 + 10.0)
    assert w["a"].failures == 3
    assert w["a"].first_s == pytest.approx(2.05) and w["a"].last_s == pytest.approx(3.1)
    assert w["a"].duration_s == pytest.approx(1.05)
    assert w["b"].failures == 2 and w["b"].duration_s == pytest.approx(0.2)
    assert w["c"] is None


BAR = Assertion("availability", ">=", 0.999, ">= 99.9%")


def test_time_to_recover_known_answer():
    # failures from 2.0 to 3.5 s, 200 req/s, 1 s windows in 100 ms steps: first clean window
    # starts at the first step after the last failure, 3.5 s → TTR 1.5 s.
    samples = steady_samples(T0, T0 + 10.0, 200, fails=lambda t, lat: T0 + 2.0 <= t < T0 + 3.5)
    f = FaultEvent("kill", "container.kill", ("app-1",), T0 + 2.0, None)
    rec = time_to_recover(Timeline(samples), f, T0 + 10.0, 1.0, BAR)
    assert rec.recovered and rec.time_to_recover_s == pytest.approx(1.5)


def test_time_to_recover_zero_when_never_degraded_and_none_when_never_recovered():
    ok = steady_samples(T0, T0 + 10.0, 200)
    f = FaultEvent("lat", "network.latency", ("lb-app-1",), T0 + 2.0, T0 + 4.0)
    assert time_to_recover(Timeline(ok), f, T0 + 10.0, 1.0, BAR).time_to_recover_s == 0.0
    bad = steady_samples(T0, T0 + 10.0, 200, fails=lambda t, lat: t >= T0 + 2.0)
    rec = time_to_recover(Timeline(bad), f, T0 + 10.0, 1.0, BAR)
    assert not rec.recovered and rec.time_to_recover_s is None
    # a window with no request is not a recovery
    sparse = [s for s in ok if s.t < T0 + 2.0]
    assert not time_to_recover(Timeline(sparse), f, T0 + 10.0, 1.0, BAR).recovered


def test_timeline_steps():
    samples = steady_samples(T0, T0 + 1.0, 100, latency_s=0.02, fails=lambda t, lat: t >= T0 + 0.5)
    steps = Timeline(samples).steps(T0, T0 + 1.0)
    assert len(steps) == 10
    assert [s.ok for s in steps] == [10] * 5 + [0] * 5
    assert [s.failed for s in steps] == [0] * 5 + [10] * 5
    assert steps[0].p50_s == 0.02 and steps[0].p99_s == 0.02
    assert steps[9].p50_s is None
    assert steps[3].offset_s == pytest.approx(0.3)
    assert Timeline(samples).counts(T0, T0 + 0.5) == (50, 50)


def test_time_to_recover_is_sustained_later_damage_counts():
    # clean from 3.5 s, then failing again from 6.0 to 7.0 s: recovery only at 7.0 s (TTR 5.0)
    samples = steady_samples(
        T0, T0 + 10.0, 200, fails=lambda t, lat: T0 + 2.0 <= t < T0 + 3.5 or T0 + 6.0 <= t < T0 + 7.0
    )
    f = FaultEvent("part", "partition", ("a", "|", "b"), T0 + 2.0, T0 + 3.0)
    rec = time_to_recover(Timeline(samples), f, T0 + 10.0, 1.0, BAR)
    assert rec.recovered and rec.time_to_recover_s == pytest.approx(5.0)
    # judged only until the next fault lands: the caller passes that as the end
    rec = time_to_recover(Timeline(samples), f, T0 + 5.5, 1.0, BAR)
    assert rec.recovered and rec.time_to_recover_s == pytest.approx(1.5)
