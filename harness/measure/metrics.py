"""Metrics over samples: per phase counts, availability, latency, throughput, outages, recovery.

Definitions (also in docs/results-schema.md):

* A sample belongs to the phase in which it *started* (`Sample.t` in `[start, end)`; the overall
  phase `[t0, t_end]` includes t_end).
* availability = successes / requests; None over 0 requests (unknown, never 0 or 1).
* latency percentiles are nearest-rank over *successful* requests only, from the raw samples
  (not Locust's rounded histogram); None when there were no successes.
* throughput = requests / phase length (started requests per second).
* longest outage: the longest interval in which nothing succeeded, measured from the moment the
  system was last seen answering (the latest *completion*, t + latency, of any success so far) to
  the *start* of the next successful request. Using completion on the left edge removes the bias of
  one request latency that start-to-start gaps carry (a request in flight when a link goes down
  fails, so the last success before the hole started one latency before it). The gaps from t0 to
  the first success and from the last completion to t_end count too; with no success at all the
  outage is the whole interval.
* error window per fault: first to last failure that started between the fault's injection and
  the next fault's injection (or t_end).
* time to recover per fault: slide a window of `recovery_window_s` in 100 ms steps from the
  fault's injection; the first window with >= 1 request whose availability meets the threshold
  (the SLO's availability assertion, or >= 99% without one) marks recovery; TTR = window start -
  injected_t. 0 when the first window already meets it (never degraded). Not recovered when no
  window that fits before t_end meets it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Sequence

from harness.measure.timeline import Timeline, percentile
from harness.model import Assertion, FaultEvent, Sample

RECOVERY_STEP_S = 0.1
DEFAULT_RECOVERY_AVAILABILITY = 0.99


@dataclass(frozen=True)
class Outage:
    duration_s: float
    start_s: float              # offsets relative to t0
    end_s: float


@dataclass(frozen=True)
class PhaseMetrics:
    name: str                   # "overall", "baseline", "fault:<name>", "recovery"
    start_s: float              # offsets relative to t0
    end_s: float
    requests: int
    successes: int
    failures: int
    availability: float | None
    error_rate: float | None
    latency_p50_s: float | None
    latency_p95_s: float | None
    latency_p99_s: float | None
    latency_max_s: float | None
    throughput_rps: float | None
    errors: tuple[tuple[str, int], ...]     # failure class → count, most frequent first
    longest_outage: Outage | None

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


@dataclass(frozen=True)
class ErrorWindow:
    first_s: float              # offsets relative to t0
    last_s: float
    failures: int

    @property
    def duration_s(self) -> float:
        return self.last_s - self.first_s


@dataclass(frozen=True)
class FaultRecovery:
    fault: str
    recovered: bool
    time_to_recover_s: float | None     # None when not recovered before t_end
    threshold: float                    # availability a window had to meet
    window_s: float


def phase_metrics(name: str, samples: Sequence[Sample], start: float, end: float, t0: float) -> PhaseMetrics:
    """Metrics of the samples that started in the phase [start, end) (already selected)."""
    requests = len(samples)
    ok_lat = sorted(s.latency_s for s in samples if s.ok)
    successes = len(ok_lat)
    failures = requests - successes
    length = end - start
    errors = Counter((s.error or "error") for s in samples if not s.ok)
    return PhaseMetrics(
        name=name,
        start_s=start - t0,
        end_s=end - t0,
        requests=requests,
        successes=successes,
        failures=failures,
        availability=successes / requests if requests else None,
        error_rate=failures / requests if requests else None,
        latency_p50_s=percentile(ok_lat, 50),
        latency_p95_s=percentile(ok_lat, 95),
        latency_p99_s=percentile(ok_lat, 99),
        latency_max_s=ok_lat[-1] if ok_lat else None,
        throughput_rps=requests / length if length > 0 else None,
        errors=tuple(sorted(errors.items(), key=lambda kv: (-kv[1], kv[0]))),
        longest_outage=longest_outage(samples, start, end, t0),
    )


def longest_outage(samples: Sequence[Sample], start: float, end: float, t0: float | None = None) -> Outage | None:
    """The longest interval in [start, end] with no success (see module docstring).

    Samples must be those that started in [start, end]; offsets are relative to `t0`
    (default `start`). None when the interval is empty or no request was sent in it: an
    outage measured over nothing is unknown, not "the whole span" (all requests failing is).
    """
    if end <= start or not samples:
        return None
    origin = start if t0 is None else t0
    best = (0.0, start, start)
    seen_until = start          # latest moment the system was last seen answering
    for s in sorted((s for s in samples if s.ok), key=lambda s: s.t):
        gap = s.t - seen_until
        if gap > best[0]:
            best = (gap, seen_until, s.t)
        seen_until = max(seen_until, min(s.t + s.latency_s, end))
    tail = end - seen_until
    if tail > best[0]:
        best = (tail, seen_until, end)
    return Outage(duration_s=best[0], start_s=best[1] - origin, end_s=best[2] - origin)


def error_windows(timeline: Timeline, faults: Sequence[FaultEvent], t0: float, t_end: float) -> dict[str, ErrorWindow | None]:
    """Per fault: first to last failure between its injection and the next injection (or t_end)."""
    ordered = sorted(faults, key=lambda f: f.injected_t)
    out: dict[str, ErrorWindow | None] = {}
    for k, f in enumerate(ordered):
        stop = ordered[k + 1].injected_t if k + 1 < len(ordered) else t_end + 1e-9
        failed = [s.t for s in timeline.between(f.injected_t, stop) if not s.ok]
        out[f.fault] = ErrorWindow(failed[0] - t0, failed[-1] - t0, len(failed)) if failed else None
    return out


def recovery_threshold(slo: Sequence[Assertion]) -> Assertion:
    """The availability bar a recovery window must meet: the SLO's, or >= 99%."""
    for a in slo:
        if a.metric == "availability":
            return a
    return Assertion("availability", ">=", DEFAULT_RECOVERY_AVAILABILITY, ">= 99%")


def time_to_recover(timeline: Timeline, fault: FaultEvent, t_end: float, window_s: float,
                    bar: Assertion, step_s: float = RECOVERY_STEP_S) -> FaultRecovery:
    """Time from injection until the SLO is met *for good*: windows of `window_s`, `step_s`
    apart, from the injection to `t_end` (the caller passes the next fault's injection when
    there is one, so that fault's damage is not charged to this one). Recovery is the end of
    the last window that missed the bar (a window with no request at all misses it: nothing
    answered); 0 if none did; not recovered if the last window still misses it. A first good
    window followed by more damage is not a recovery."""
    windows = int((t_end - fault.injected_t - window_s) / step_s + 1e-9) + 1
    if windows <= 0:
        return FaultRecovery(fault.fault, False, None, bar.threshold, window_s)
    last_bad = -1
    for k in range(windows):
        start = fault.injected_t + k * step_s
        requests, ok = timeline.counts(start, start + window_s)
        if not requests or not bar.holds(ok / requests):
            last_bad = k
    if last_bad == windows - 1:
        return FaultRecovery(fault.fault, False, None, bar.threshold, window_s)
    return FaultRecovery(fault.fault, True, round((last_bad + 1) * step_s, 6), bar.threshold, window_s)
