"""harness.measure.stats: intervals with known answers, seeded bootstrap, three-valued decisions."""

from __future__ import annotations

import math

import pytest

from harness.measure import Verdict
from harness.measure.stats import (
    Interval,
    bootstrap_mean,
    closeness,
    decide,
    effective_n,
    ratio_interval,
    share_interval,
    trials_needed,
    wilson,
    z_score,
)


def test_z_score_95():
    assert z_score(0.95) == pytest.approx(1.959964, abs=1e-6)


@pytest.mark.parametrize("hits,n,low,high", [
    (0, 10, 0.0, 0.2775),        # published Wilson 95% bounds
    (5, 10, 0.2366, 0.7634),
    (10, 10, 0.7225, 1.0),
    (81, 263, 0.2553, 0.3662),   # Newcombe (1998) example
])
def test_wilson_known_answers(hits, n, low, high):
    lo, hi = wilson(hits, n)
    assert lo == pytest.approx(low, abs=1e-4) and hi == pytest.approx(high, abs=1e-4)


def test_wilson_over_nothing_is_unknown():
    assert wilson(0, 0) is None
    assert ratio_interval([(0, 0), (0, 0)]) is None
    assert share_interval(0, 0) is None


def test_wilson_rejects_impossible_counts():
    with pytest.raises(ValueError):
        wilson(11, 10)


def test_effective_n_agreeing_trials_keep_all_requests():
    assert effective_n([(990, 1000)] * 10) == 10_000


def test_effective_n_disagreeing_trials_count_for_less():
    # trials at 99.0% and 99.8%: much more spread than 1000 coin flips each would show
    counts = [(990, 1000), (998, 1000)] * 5
    n_eff = effective_n(counts)
    assert 100 < n_eff < 10_000
    iv_clustered = ratio_interval(counts)
    lo_naive, hi_naive = wilson(9940, 10_000)
    assert iv_clustered.low < lo_naive and iv_clustered.high > hi_naive     # wider, honestly
    assert iv_clustered.estimate == pytest.approx(0.994)


def test_ratio_interval_needs_two_trials():
    assert ratio_interval([(990, 1000)]) is None
    iv = ratio_interval([(990, 1000), (991, 1000)])
    assert iv is not None and iv.n == 2 and iv.method == "wilson"


def test_bootstrap_is_seeded_and_contains_the_mean():
    vals = [3.1, 3.4, 2.9, 4.2, 3.3, 3.8, 3.0, 5.9, 3.5, 3.2]
    a, b = bootstrap_mean(vals), bootstrap_mean(list(vals))
    assert a == b                                            # same trials, same interval
    assert a.low < a.estimate < a.high
    assert a.estimate == pytest.approx(sum(vals) / len(vals))
    assert min(vals) <= a.low and a.high <= max(vals)
    assert bootstrap_mean(vals, seed=1) != a                 # it is a bootstrap, seeded


def test_bootstrap_with_never_is_unbounded_above():
    iv = bootstrap_mean([3.0, 3.2, 3.1, math.inf, 3.3, 3.0, 2.9, 3.4, 3.1, 3.2])
    assert math.isinf(iv.high) and math.isfinite(iv.low) and math.isinf(iv.estimate)
    assert not iv.bounded


def test_bootstrap_below_two_values_is_unknown():
    assert bootstrap_mean([]) is None and bootstrap_mean([3.0]) is None


def test_bootstrap_of_identical_values_is_a_point():
    iv = bootstrap_mean([2.0] * 5)
    assert (iv.low, iv.high) == (2.0, 2.0)


def iv(est, lo, hi, n=10):
    return Interval(est, lo, hi, n, "bootstrap")


@pytest.mark.parametrize("op,th,interval,verdict", [
    ("<=", 6.0, iv(4.0, 3.5, 4.6), Verdict.PASS),
    ("<=", 3.0, iv(4.0, 3.5, 4.6), Verdict.FAIL),
    ("<=", 4.2, iv(4.0, 3.5, 4.6), Verdict.INCONCLUSIVE),
    ("<", 4.6, iv(4.0, 3.5, 4.6), Verdict.INCONCLUSIVE),     # the bound itself does not meet "<"
    (">=", 0.99, iv(0.998, 0.997, 0.999), Verdict.PASS),
    (">=", 0.999, iv(0.998, 0.997, 0.999), Verdict.INCONCLUSIVE),   # the bound meets ">="
    (">=", 0.9995, iv(0.998, 0.997, 0.999), Verdict.FAIL),
    ("==", 0.0, iv(0.0, 0.0, 0.0), Verdict.PASS),
    ("==", 0.0, iv(1.0, 0.5, 1.5), Verdict.FAIL),
    ("==", 1.0, iv(1.0, 0.5, 1.5), Verdict.INCONCLUSIVE),
    ("<=", 6.0, iv(math.inf, 3.0, math.inf), Verdict.INCONCLUSIVE),
    ("<=", 2.0, iv(math.inf, 3.0, math.inf), Verdict.FAIL),
])
def test_decide(op, th, interval, verdict):
    assert decide(op, th, interval).verdict is verdict


def test_decide_unknown_interval_is_inconclusive_never_pass():
    d = decide(">=", 0.99, None)
    assert d.verdict is Verdict.INCONCLUSIVE and d.trials_needed is None


def test_trials_needed_from_the_half_width():
    # estimate 4.0, upper half-width 0.6, threshold 4.2 (0.2 away): 10 · (0.6 / 0.2)² = 90
    assert trials_needed(4.2, iv(4.0, 3.5, 4.6)) == 90
    assert decide("<=", 4.2, iv(4.0, 3.5, 4.6)).trials_needed == 90
    # estimate below the threshold the other way: lower half-width 0.5, gap 0.4 → 16
    assert trials_needed(3.6, iv(4.0, 3.5, 4.6)) == 16
    assert trials_needed(4.0, iv(4.0, 3.5, 4.6)) is None          # on the threshold: none promised
    assert trials_needed(4.5, iv(math.inf, 3.0, math.inf)) is None
    assert trials_needed(4.59, iv(4.0, 3.99, 4.6)) == 11           # always more than we have


def test_closeness_orders_verdicts_by_how_near_the_threshold_they_are():
    near, far = closeness(4.1, iv(4.0, 3.5, 4.6)), closeness(4.5, iv(4.0, 3.5, 4.6))
    assert 0 < near < far
    assert closeness(4.0, iv(4.0, 3.5, 4.6)) == 0.0
    assert closeness(4.0, None) == 0.0
