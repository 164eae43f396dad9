"""Shrinking a failing candidate to the smallest schedule that still fails, the way Hypothesis
and QuickCheck shrink a failing input: try simpler variants one at a time, keep the first that
still fails, start again from it, stop when no variant fails.

Simpler, in the order tried (each step removes the most first):

1. fewer faults: each fault of a pair on its own;
2. fewer members on a partition side: each member of a side of two or more left out;
3. a shorter window: MIN_WINDOW_S, else half the window;
4. lower load: MIN_USERS users, else half as many.

`fails(candidate)` runs it and answers True (failed the same way: at least one of the same
assertions), False (passed, or failed another way), or None (could not tell: a harness error,
an unsettled stack, too few samples). Only True moves the shrink; None is never a failure.
A variant whose bigger form (the same faults, a longer window or more load) already answered
False is not run again.
The result is what the caller confirms with repeated trials (explorer.py).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Iterator

from harness.explore.candidates import Candidate, Params, window_of

# Not below the default outage bar (Params.longest_outage, 3 s) plus a second: a fault shorter
# than the bar cannot break it, so shrinking under it only makes an outage finding vanish (a 2 s
# kill of the fragile twin's only app read a 2.15 s outage: a pass, with 5 closed-loop users
# sending 19 requests into it and availability 99.3 %).
MIN_WINDOW_S = 4.0
MIN_USERS = 5
MAX_STEPS = 40              # variants tried per shrink at most (each is a run)


@dataclass(frozen=True)
class Step:
    candidate: Candidate
    failed: bool | None


@dataclass(frozen=True)
class Shrunk:
    start: Candidate
    smallest: Candidate
    steps: tuple[Step, ...]
    complete: bool              # False: stopped by the budget or MAX_STEPS before no variant failed


def variants(c: Candidate, p: Params) -> Iterator[Candidate]:
    """Every one-step simpler variant of `c`, simplest kind first."""
    origin = c.origin or c.name
    if len(c.faults) > 1:
        for d in c.faults:
            yield replace(c, faults=(d,), family=_family(d.action), origin=origin)
    for i, d in enumerate(c.faults):
        if d.action != "partition":
            continue
        groups = d.get("groups")
        for side in (0, 1):
            if len(groups[side]) < 2:
                continue
            for member in groups[side]:
                smaller = tuple(m for m in groups[side] if m != member)
                new = (smaller, groups[1]) if side == 0 else (groups[0], smaller)
                nd = d.with_field("groups", new, label=f"{d.label}-no-{member}"[:40])
                yield replace(c, faults=c.faults[:i] + (nd,) + c.faults[i + 1:], origin=origin)
    # The floor first, then half way (Hypothesis tries the simplest value first): a single
    # point of failure fails at the floor, and one run settles it.
    window = window_of(c, p)
    for w in dict.fromkeys((MIN_WINDOW_S, max(MIN_WINDOW_S, round(window / 2, 1)))):
        if w < window:
            yield replace(c, window_s=float(w), origin=origin)
    users = c.users if c.users is not None else p.users
    for u in dict.fromkeys((MIN_USERS, max(MIN_USERS, users // 2))):
        if u < users:
            yield replace(c, users=u, origin=origin)


def _within(v: Candidate, q: Candidate, p: Params) -> bool:
    """`v` has the faults of `q` with no longer a window and no more load. After a greedy step the
    variants are tried again from the smaller schedule; a member left out that passed at 10 s
    is not run again at 4 s (measured on the twin: two such runs of ~45 s in one shrink, both
    passes). Assumes a smaller fault on the same things fails no more often, as Hypothesis's
    shrinker assumes nothing: it costs a run each, which a short budget cannot spare."""
    wv, wq = (window_of(x, p) for x in (v, q))
    uv, uq = (x.users if x.users is not None else p.users for x in (v, q))
    return v.faults == q.faults and wv <= wq and uv <= uq


def _family(action: str) -> str:
    if action == "partition":
        return "partition"
    if action.startswith("network."):
        return "link"
    return action.split(".", 1)[1]


def shrink(c: Candidate, p: Params, fails: Callable[[Candidate], bool | None], *,
           more: Callable[[], bool] = lambda: True, max_steps: int = MAX_STEPS) -> Shrunk:
    """The smallest variant of failing candidate `c` that still fails. `more()` is asked before
    every run (the budget); False stops the shrink where it is (complete=False)."""
    steps: list[Step] = []
    current = c
    passed: list[Candidate] = []
    while True:
        moved = False
        for v in variants(current, p):
            if any(_within(v, q, p) for q in passed):
                continue            # a bigger form of it already passed: assumed to pass too
            if len(steps) >= max_steps or not more():
                return Shrunk(c, current, tuple(steps), complete=False)
            failed = fails(v)
            steps.append(Step(v, failed))
            if failed is False:
                passed.append(v)
            if failed is True:
                current, moved = v, True
                break
        if not moved:
            return Shrunk(c, current, tuple(steps), complete=True)


__all__ = ["shrink", "variants", "Shrunk", "Step", "MIN_WINDOW_S", "MIN_USERS"]
