"""Which release answered, over the run: per-version spans, the mixed-version window, and
answers per version per time step (the report's "versions" section).

Input: the run's `VersionRecord`s (the load profile puts the answering release in each
request's context; the reference reads its X-App-Version header). A version is *live* from its
first answer to its last; the mixed-version window is the time during which two or more
versions were live at once. For an upgrade v1 → v2 that is "first v2 answer to last v1
answer" (0 when the last v1 answer came before the first v2 one). With no answer carrying a
version there is nothing to measure: None (unknown), never 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

from harness.model.record import VersionRecord

STEP_S = 1.0


@dataclass(frozen=True)
class VersionSpan:
    version: str
    first_s: float          # offsets from t0: first and last request it answered (their starts)
    last_s: float
    answers: int
    failed: int             # answers that were not a success (a 503 while draining, say)


@dataclass(frozen=True)
class VersionStep:
    t_s: float                              # start of the step, from t0
    counts: tuple[tuple[str, int], ...]     # (version, answers started in the step), by version


@dataclass(frozen=True)
class VersionSummary:
    spans: tuple[VersionSpan, ...]          # in order of first answer
    mixed_window_s: float                   # time with two or more versions live (>= 0)
    mixed_start_s: float | None             # where the mixed time begins and ends (None: never mixed)
    mixed_end_s: float | None
    steps: tuple[VersionStep, ...]

    @property
    def versions(self) -> tuple[str, ...]:
        return tuple(s.version for s in self.spans)


def mixed_window(intervals: Sequence[tuple[float, float]]) -> tuple[float, float | None, float | None]:
    """(total time covered by two or more intervals, its first start, its last end)."""
    events = sorted([(a, 1) for a, _ in intervals] + [(b, -1) for _, b in intervals],
                    key=lambda e: (e[0], -e[1]))    # starts before ends at the same instant
    live, total, since = 0, 0.0, 0.0
    first: float | None = None
    last: float | None = None
    for t, d in events:
        before, live = live, live + d
        if before < 2 <= live:          # a second version became live
            since = t
            first = t if first is None else first
        elif live < 2 <= before:        # back to one version
            total += t - since
            last = t
    return total, first, last


def summarize(versions: Iterable[VersionRecord], t0: float, t_end: float,
              step_s: float = STEP_S) -> VersionSummary | None:
    """The versions seen in [t0, t_end]; None when no request said which version answered."""
    recs = sorted((v for v in versions if t0 <= v.t <= t_end), key=lambda v: v.t)
    if not recs:
        return None
    spans: dict[str, list] = {}
    for v in recs:
        s = spans.setdefault(v.version, [v.t, v.t, 0, 0])
        s[1] = v.t
        s[2] += 1
        s[3] += 0 if v.ok else 1
    out = tuple(VersionSpan(name, a - t0, b - t0, n, f) for name, (a, b, n, f) in spans.items())
    total, first, last = mixed_window([(s.first_s, s.last_s) for s in out])
    buckets: dict[int, dict[str, int]] = {}
    for v in recs:
        b = buckets.setdefault(int((v.t - t0) // step_s), {})
        b[v.version] = b.get(v.version, 0) + 1
    steps = tuple(VersionStep(i * step_s, tuple(sorted(c.items()))) for i, c in sorted(buckets.items()))
    return VersionSummary(out, total, first, last, steps)
