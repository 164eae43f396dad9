"""Latency counted from when each request was due (harness.measure.omission), known answers."""

from __future__ import annotations

import pytest

from harness.measure.metrics import phase_metrics
from harness.measure.omission import corrected, due_latency, expected_interval, felt_latencies
from harness.measure.synthetic import steady_samples
from harness.model import Sample

T0 = 1000.0


def test_hdrhistogram_expected_interval_correction():
    assert list(corrected(1.0, 0.25)) == [1.0, 0.75, 0.5, 0.25]
    assert list(corrected(0.45, 0.25)) == [0.45]            # below 2 intervals: nothing held up
    assert list(corrected(1.0, None)) == [1.0]
    assert expected_interval(50, 6000, 10.0) == pytest.approx(50 / 600)
    assert expected_interval(50, 0, 10.0) is None


def test_open_loop_latency_counts_from_the_due_time():
    s = Sample(T0 + 1.3, 0.2, ok=True, due_t=T0 + 1.0)          # sent 300 ms late (no free user)
    assert due_latency(s) == pytest.approx(0.5)
    assert felt_latencies([s, Sample(T0, 0.1, ok=False, due_t=T0)], 0.01) == [pytest.approx(0.5)]


def test_a_closed_loop_slowdown_moves_the_percentiles_once_corrected():
    # 10 users at 100 req/s (interval 0.1 s each); for 2 s of a 20 s run every answer takes 1 s,
    # so the closed loop sends only 10 requests a second then: 20 slow of ~1800 (1.1%).
    fast = [s for s in steady_samples(T0, T0 + 20.0, 100, latency_s=0.01) if not T0 + 9 <= s.t < T0 + 11]
    slow = [Sample(T0 + 9 + k * 0.1, 1.0, ok=True) for k in range(20)]
    samples = fast + slow
    raw = phase_metrics("p", samples, T0, T0 + 20.0, T0)
    felt = phase_metrics("p", samples, T0, T0 + 20.0, T0, interval_s=0.1)
    assert raw.latency_p99_s == pytest.approx(1.0) and raw.latency_p95_s == pytest.approx(0.01)
    # each slow answer stood for 9 more requests (0.9 s ... 0.1 s): 200 of ~2000 values are slow
    assert felt.latency_p95_s >= 0.4
    assert felt.raw_latency_p99_s == raw.latency_p99_s and felt.requests == raw.requests
