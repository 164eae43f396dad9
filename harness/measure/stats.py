"""Intervals over repeated trials and the three-valued decisions they allow. Plain Python.

One run is an anecdote: the same commit measured 4.15 s and 6.26 s of failover in two runs. So a
metric measured over N trials gets a confidence interval, and an assertion is decided on the
whole interval:

    PASS          the whole interval meets the threshold
    FAIL          the whole interval misses it
    INCONCLUSIVE  the interval straddles it; `trials_needed` says roughly how many trials would
                  shrink the interval off the threshold if the estimate held

Why these methods (no numpy/scipy: a few dozen values per interval, the standard library's
`statistics.NormalDist` gives the quantiles):

* Ratios (availability, error rate, the share of trials that passed): the Wilson score interval.
  It stays inside [0, 1] and keeps its coverage near 0 and 1, where availability lives and where
  the normal ("Wald") interval collapses to a point. Requests are not independent coin flips,
  though: a failover fails a few seconds of them together, and trials differ from each other
  more than requests inside a trial do. So Wilson is given the *effective* number of requests,
  N·(binomial variance)/(between-trial variance of the pooled ratio) capped at N (Kish's design
  effect with the trial as the cluster). Ten trials that agree keep the precision of all their
  requests; ten that disagree count for about as much as their spread allows.
* Everything measured once per trial (time to recover, latency percentiles, longest outage,
  throughput): a percentile bootstrap of the mean over trials, seeded, so the same trials give
  the same interval on every machine. The distribution of these is skewed and unknown (a
  failover is a few seconds or much longer), which is what the bootstrap does not assume away.
  A trial that never recovered counts as +inf: any resample holding it has an infinite mean,
  so the interval is unbounded above, never quietly finite.

A statistic over nothing is unknown (None), never a pass.
"""

from __future__ import annotations

import math
import random
import statistics
from dataclasses import dataclass
from typing import Literal, Sequence

from harness.measure.result import Verdict

CONFIDENCE = 0.95
RESAMPLES = 4000        # bootstrap resamples: the 2.5% / 97.5% quantiles move by < 1% of the spread
SEED = 14               # fixed: an interval is a function of the trials, not of the clock
MIN_TRIALS = 2          # below this there is no spread to measure: the interval is unknown
FEW_TRIALS = 5          # percentile bootstrap intervals from fewer trials are too narrow (said so)

Method = Literal["wilson", "bootstrap"]


@dataclass(frozen=True)
class Interval:
    estimate: float             # pooled ratio (wilson) or mean over trials (bootstrap)
    low: float
    high: float                 # +inf when a trial's value was unbounded (never recovered)
    n: int                      # trials that contributed
    method: Method
    confidence: float = CONFIDENCE
    effective_n: float | None = None    # wilson: requests the interval was computed on

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high

    @property
    def bounded(self) -> bool:
        return math.isfinite(self.low) and math.isfinite(self.high)


def z_score(confidence: float = CONFIDENCE) -> float:
    """Two-sided standard normal quantile: 1.96 for 95%."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence {confidence} outside (0, 1)")
    return statistics.NormalDist().inv_cdf(0.5 + confidence / 2.0)


def wilson(successes: float, n: float, confidence: float = CONFIDENCE) -> tuple[float, float] | None:
    """Wilson score interval (low, high) for successes out of n; None when n is 0."""
    if n <= 0:
        return None
    if not 0 <= successes <= n:
        raise ValueError(f"{successes} successes out of {n}")
    z = z_score(confidence)
    p = successes / n
    z2n = z * z / n
    centre = (p + z2n / 2.0) / (1.0 + z2n)
    half = z * math.sqrt(p * (1.0 - p) / n + z2n / (4.0 * n)) / (1.0 + z2n)
    return max(0.0, centre - half), min(1.0, centre + half)


def effective_n(counts: Sequence[tuple[int, int]]) -> float:
    """Requests the pooled ratio is worth, given how much the trials disagree (module docstring).

    `counts` is (hits, requests) per trial. The between-trial variance of the pooled ratio is
    the cluster-robust one, k/(k-1) · Σ (n_i/N)² (p_i − p)²; one trial has none to measure."""
    used = [(s, n) for s, n in counts if n > 0]
    total = sum(n for _, n in used)
    if total == 0:
        return 0.0
    p = sum(s for s, _ in used) / total
    k = len(used)
    if k < 2 or p in (0.0, 1.0):
        return float(total)
    var = k / (k - 1) * sum((n / total) ** 2 * (s / n - p) ** 2 for s, n in used)
    if var <= 0.0:
        return float(total)
    return min(float(total), p * (1.0 - p) / var)


def ratio_interval(counts: Sequence[tuple[int, int]], confidence: float = CONFIDENCE) -> Interval | None:
    """Wilson interval of the pooled ratio Σhits/Σrequests over trials, on the effective n.
    None over no requests or fewer than MIN_TRIALS trials that had any."""
    used = [(s, n) for s, n in counts if n > 0]
    total = sum(n for _, n in used)
    if total == 0 or len(used) < MIN_TRIALS:
        return None
    p = sum(s for s, _ in used) / total
    n_eff = effective_n(used)
    low, high = wilson(p * n_eff, n_eff, confidence)  # type: ignore[misc]
    return Interval(p, low, high, len(used), "wilson", confidence, n_eff)


def share_interval(hits: int, n: int, confidence: float = CONFIDENCE) -> Interval | None:
    """Wilson interval of a share of independent trials (e.g. the trials that passed)."""
    bounds = wilson(hits, n, confidence)
    if bounds is None:
        return None
    return Interval(hits / n, bounds[0], bounds[1], n, "wilson", confidence, float(n))


def _mean(values: Sequence[float]) -> float:
    if any(math.isinf(v) for v in values):
        return math.inf
    return math.fsum(values) / len(values)


def bootstrap_mean(values: Sequence[float], confidence: float = CONFIDENCE, resamples: int = RESAMPLES,
                   seed: int = SEED) -> Interval | None:
    """Percentile bootstrap interval of the mean over trials; None below MIN_TRIALS values.
    +inf values (never recovered) are allowed and make the upper bound infinite."""
    vals = [float(v) for v in values]
    if len(vals) < MIN_TRIALS:
        return None
    if any(math.isnan(v) for v in vals):
        raise ValueError("NaN among trial values")
    rng = random.Random(seed)
    k = len(vals)
    # sum() of floats with +inf is +inf (there is no -inf or NaN here), so a resample holding a
    # never-recovered trial has an infinite mean without a special case.
    means = sorted(sum(rng.choices(vals, k=k)) / k for _ in range(resamples))
    alpha = 1.0 - confidence
    lo_i = max(0, math.floor(alpha / 2.0 * resamples))
    hi_i = min(resamples - 1, math.ceil((1.0 - alpha / 2.0) * resamples) - 1)
    return Interval(_mean(vals), means[lo_i], means[hi_i], k, "bootstrap", confidence)


# ─────────────────────────────── decisions ───────────────────────────────

@dataclass(frozen=True)
class Decision:
    verdict: Verdict            # PASS, FAIL or INCONCLUSIVE (never ERROR: that is the harness's)
    trials_needed: int | None   # INCONCLUSIVE only: trials that would likely decide; None if none would


def _meets(op: str, value: float, threshold: float) -> bool:
    return {">=": value >= threshold, ">": value > threshold, "<=": value <= threshold,
            "<": value < threshold, "==": value == threshold}[op]


def decide(op: str, threshold: float, interval: Interval | None) -> Decision:
    """PASS when every value in the interval meets `op threshold`, FAIL when none does,
    INCONCLUSIVE otherwise (and when the interval is unknown)."""
    if interval is None:
        return Decision(Verdict.INCONCLUSIVE, None)
    lo, hi = interval.low, interval.high
    if op == "==":
        if lo == hi == threshold:
            return Decision(Verdict.PASS, None)
        if not interval.contains(threshold):
            return Decision(Verdict.FAIL, None)
    else:
        if _meets(op, lo, threshold) and _meets(op, hi, threshold):
            return Decision(Verdict.PASS, None)
        if not _meets(op, lo, threshold) and not _meets(op, hi, threshold):
            return Decision(Verdict.FAIL, None)
    return Decision(Verdict.INCONCLUSIVE, trials_needed(threshold, interval))


def trials_needed(threshold: float, interval: Interval) -> int | None:
    """How many trials would likely move the interval off the threshold if the estimate held:
    an interval's half-width shrinks as 1/√n, so n' = n · (half-width towards the threshold /
    distance of the estimate from it)². None when the estimate sits on the threshold or the
    interval is unbounded on that side (no number of trials is promised to decide)."""
    est = interval.estimate
    if not math.isfinite(est) or est == threshold:
        return None
    half = (est - interval.low) if threshold < est else (interval.high - est)
    if not math.isfinite(half):
        return None
    gap = abs(est - threshold)
    return max(interval.n + 1, math.ceil(interval.n * (half / gap) ** 2))


def closeness(threshold: float, interval: Interval | None) -> float:
    """How close a verdict is to its threshold, in half-widths (0: the estimate is on it). Used
    to spend a trial budget where another trial is most likely to change the answer; an unknown
    interval is as close as it gets."""
    if interval is None:
        return 0.0
    est = interval.estimate
    if not math.isfinite(est):
        return math.inf
    half = (est - interval.low) if threshold < est else (interval.high - est)
    if half <= 0:
        return math.inf if est != threshold else 0.0
    if not math.isfinite(half):
        return 0.0
    return abs(est - threshold) / half


__all__ = ["Interval", "Decision", "wilson", "effective_n", "ratio_interval", "share_interval",
           "bootstrap_mean", "decide", "trials_needed", "closeness", "z_score", "CONFIDENCE",
           "MIN_TRIALS", "FEW_TRIALS"]
