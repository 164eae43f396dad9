"""The search: candidates in order, each run short; a failure shrunk, confirmed, written out.

    summary = explore(target, budget_s=1800, seed=7, out_dir=Path("explore-out"))

For each candidate (harness.explore.candidates, likeliest breakers first):

1. skip it when it holds a fault that already failed on its own (a pair over a finding says
   nothing new); put it off to a second pass, after every other candidate, when every
   component and invariant class it could break already has a finding or a failure waiting to
   be investigated (harness.explore.coverage: one finding per component and invariant);
2. stop when its expected cost (the mean candidate so far) would overrun the budget: what was
   not tried is listed in the summary as not covered;
3. run it (harness.explore.runner: reused stack, settled; a harness error or an unsettled
   baseline is run again on a fresh stack, then counted as what it is, never as a finding);
4. when it failed: lost or unexpected writes, or a broken invariant, are investigated at once;
   an outage waits until the sweep of single faults is done (room is kept in the budget for
   it), so one single point of failure cannot spend the budget before the data tier is tried.
   To investigate: shrink it (harness.explore.shrink), then run the smallest until it has
   `confirm` judged trials (the run that showed it failing is the first); a failure whose every
   (component, class) is already covered is recorded (`duplicate_failures`), not shrunk; it is a finding when
   at least `need` (2/3) of them failed the same way, otherwise it is listed as unconfirmed
   with its rate;
5. write the finding's experiment file and the summary (rewritten after every candidate, so
   Ctrl-C keeps everything found so far).

`run(experiment) -> Outcome` is injectable: the unit tests drive the whole loop with a fake.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from harness.errors import Interrupted
from harness.events import Events
from harness.explore.candidates import Candidate, Params, generate, to_experiment
from harness.explore.coverage import DURABILITY, Coverage, classes_failed
from harness.explore.findings import Finding, Summary, finding_dict, write_finding, write_summary
from harness.explore.runner import Outcome
from harness.explore.shrink import shrink
from harness.model.target import Target

CONFIRM = 3
NEED = 2 / 3                # a finding fails the same way in at least this share of its judged runs
FIRST_GUESS_S = 45.0        # a candidate's expected cost before any has run
SUMMARY_FILE = "summary.json"
CANDIDATES_FILE = "candidates.jsonl"
FOUND_DIR = "found"


@dataclass
class _Budget:
    limit_s: float
    clock: Callable[[], float]
    start: float = 0.0
    spent_runs: float = 0.0
    n_runs: int = 0

    def __post_init__(self) -> None:
        self.start = self.clock()

    @property
    def elapsed(self) -> float:
        return self.clock() - self.start

    def per_run(self) -> float:
        return self.spent_runs / self.n_runs if self.n_runs else FIRST_GUESS_S

    def fits(self, runs: int = 1) -> bool:
        return self.elapsed + runs * self.per_run() <= self.limit_s

    def ran(self, seconds: float) -> None:
        self.spent_runs += seconds
        self.n_runs += 1


def _subsumes(candidate: Candidate, failed_faults: set[tuple]) -> bool:
    return len(candidate.faults) > 1 and any(_key(d) in failed_faults for d in candidate.faults)


def _key(d) -> tuple:
    return (d.action, json.dumps(d.data(), sort_keys=True))


def explore(target: Target, *, budget_s: float, seed: int = 0, out_dir: Path,
            run: Callable[..., Outcome], params: Params = Params(), candidates: Sequence[Candidate] | None = None,
            confirm: int = CONFIRM, need: float = NEED, events: Events | None = None, stack: str = "reused",
            clock: Callable[[], float] = time.monotonic, say: Callable[[str], None] = lambda s: None,
            max_candidates: int | None = None, dedup: bool = True) -> Summary:
    """Search `target` for `budget_s` seconds. Returns the summary (also written to out_dir).

    `dedup` (default): one finding per component and invariant class (harness.explore.coverage);
    candidates that could only repeat a finding run after all the others.

    Interrupted (Ctrl-C, SIGTERM) propagates after the summary is written, with the summary
    attached as `exc.summary`."""
    events = events or Events()
    cands = list(candidates if candidates is not None else generate(target, seed))
    if max_candidates is not None:
        cands = cands[:max_candidates]
    out_dir.mkdir(parents=True, exist_ok=True)
    budget = _Budget(budget_s, clock)
    s = Summary(target=target.name, seed=seed, budget_s=budget_s, stack=stack, candidates_total=len(cands))
    failed_faults: set[tuple] = set()
    cov = Coverage(target)
    log = open(out_dir / CANDIDATES_FILE, "a", encoding="utf-8")

    previous: list[tuple[Candidate, str, Outcome]] = []        # the last attempt

    def attempt(c: Candidate, why: str) -> Outcome:
        exp = to_experiment(c, target, params)
        t = clock()
        out = run(exp)
        budget.ran(clock() - t)
        s.runs += 1
        if out.previous_unsettled and previous:
            pc, pwhy, po = previous[0]
            s.unrecovered.append({"name": pc.name, "what": pc.describe(), "why_run": pwhy, "status": po.status,
                                  "why": out.previous_unsettled})
            say(f"  did not recover: the stack {pc.name} left {out.previous_unsettled[:160]}")
        previous[:] = [(c, why, out)]
        log.write(json.dumps({"name": c.name, "what": c.describe(), "why": why, "status": out.status,
                              "failed": sorted(out.failed), "lost_writes": out.lost_writes,
                              "wall_s": round(out.wall_s, 1), "settle_s": round(out.settle_s, 1),
                              "probed": out.probed, "recovered": out.recovered, "attempts": out.attempts,
                              "fresh": out.fresh, "run_id": out.run_id,
                              "reasons": list(out.reasons[:3]), "t_s": round(budget.elapsed, 1)}) + "\n")
        log.flush()
        say(f"[{budget.elapsed:5.0f}s] {why:<9} {c.name}: {out.brief()} ({out.wall_s:.0f} s)")
        return out

    def finish(stopped: str) -> None:
        s.time_s = budget.elapsed
        s.stopped_because = s.stopped_because or stopped
        write_summary(out_dir / SUMMARY_FILE, s)

    declared = {i.name for i in target.durability.invariants} if target.durability else set()
    queue: list[tuple[Candidate, Outcome, float]] = []     # availability failures (and when), investigated later

    def investigate(c: Candidate, o: Outcome, at: float | None = None) -> None:
        f = _investigate(c, o, s, target, params, seed, confirm, need, budget, attempt, out_dir,
                         failed_faults, say, at)
        cov.forget(c.name)                          # pending no more: the finding (if any) covers it
        if f is not None:                           # what the smallest schedule breaks, no more
            cov.found(f.candidate.name, f.candidate, classes_failed(o.failed, o.lost_writes, declared))

    def drain() -> None:
        while queue:
            qc, qo, qt = queue.pop(0)
            investigate(qc, qo, qt)
            s.time_s = budget.elapsed
            write_summary(out_dir / SUMMARY_FILE, s)

    # Two passes: everything in order, then (dedup) what could only repeat a finding.
    work = list(cands)
    deferred: list[Candidate] = []
    second = False
    try:
        i = 0
        while True:
            if i == len(work):
                if second or not deferred:
                    s.stopped_because = "every candidate tried"
                    break
                drain()
                work, i, second = deferred, 0, True
                continue
            c = work[i]
            if c.family == "pair" and queue:
                drain()                             # singles' findings first: pairs over them are skipped
            if _subsumes(c, failed_faults):
                s.skipped_superset += 1
                i += 1
                continue
            dup = cov.duplicate(c) if dedup else None
            if dup is not None and not second:
                deferred.append(c)
                s.deferred[f"repeats {dup}"] = s.deferred.get(f"repeats {dup}", 0) + 1
                i += 1
                continue
            # Room is kept for the queued failures' shrink and confirmations: when it runs short
            # they are investigated now, and the sweep goes on if the budget still allows.
            if queue and not budget.fits(1 + len(queue) * (confirm + 2)):
                drain()
            if not budget.fits():
                rest = [x for x in work[i:] if not _subsumes(x, failed_faults)]
                if not second:
                    rest += [x for x in deferred if not _subsumes(x, failed_faults)]
                s.not_covered = [x.name for x in rest]
                s.not_covered_by_family = _by_family(rest)
                s.not_covered_deferred = sum(1 for x in rest if x in deferred)
                s.stopped_because = "budget"
                break
            out = attempt(c, "candidate")
            i += 1
            s.tried += 1
            s.candidates.append({"name": c.name, "status": out.status, "failed": sorted(out.failed)})
            if out.status == "pass":
                s.passed += 1
            elif out.status == "error":
                s.errors += 1
            elif out.status == "inconclusive":
                s.inconclusive += 1
            elif out.status == "unsettled":
                s.unsettled += 1
            else:
                s.failed += 1
                broke = classes_failed(out.failed, out.lost_writes, declared)
                same = cov.duplicate(c, broke) if dedup else None
                if same is not None:                # the same invariant through the same component
                    s.duplicate_failures.append({"name": c.name, "what": c.describe(), "failed": sorted(out.failed),
                                                 "repeats": same})
                    say(f"  not shrunk: {c.name} breaks {', '.join(sorted(broke))} through what {same} covers")
                elif DURABILITY in broke:           # lost data: shrunk and confirmed at once
                    investigate(c, out)
                else:                               # an outage: after the sweep of singles
                    queue.append((c, out, budget.elapsed))
                    cov.found(c.name, c, broke)     # pending: what repeats it waits behind it
            s.time_s = budget.elapsed
            write_summary(out_dir / SUMMARY_FILE, s)
        drain()
    except (Interrupted, KeyboardInterrupt) as exc:
        s.interrupted = True
        s.stopped_because = "interrupted"
        for qc, qo, _ in queue:                        # failed once, never investigated: said, not found
            s.unconfirmed.append({"name": qc.name, "what": qc.describe(), "failed": sorted(qo.failed),
                                  "reproduced": 1, "confirmations": 1, "pending": True})
        finish("interrupted")
        log.close()
        if isinstance(exc, Interrupted):
            exc.summary = s  # type: ignore[attr-defined]
            raise
        raise Interrupted("interrupted by SIGINT") from exc
    finish(s.stopped_because)
    log.close()
    return s


def _by_family(cands: Sequence[Candidate]) -> dict[str, int]:
    out: dict[str, int] = {}
    for c in cands:
        out[c.family] = out.get(c.family, 0) + 1
    return dict(sorted(out.items()))


def _investigate(c: Candidate, first: Outcome, s: Summary, target: Target, params: Params, seed: int,
                 confirm: int, need: float, budget: _Budget, attempt: Callable[[Candidate, str], Outcome],
                 out_dir: Path, failed_faults: set[tuple], say: Callable[[str], None],
                 at: float | None = None) -> Finding | None:
    """Shrink, confirm, write. Returns the finding, or None when it did not confirm. `at`: when
    the candidate first failed (a queued outage is investigated later), default now."""
    at = budget.elapsed if at is None else at

    last: dict[str, Outcome] = {}

    def same_way(v: Candidate) -> bool | None:
        o = attempt(v, "shrink")
        last[v.name] = o
        if o.status in ("error", "unsettled", "inconclusive"):
            return None
        return o.status == "fail" and bool(o.failed & first.failed)

    # Keep room for the confirmations: the shrink stops early rather than leave none.
    shrunk = shrink(c, params, same_way, more=lambda: budget.fits(confirm))
    # The shrink's path, the original first. When the smallest does not reproduce (a failure near
    # a threshold: the twin's 4 s partition lost 142 writes once, then none, Sentinel's failover
    # taking about as long as the window), the step before it is confirmed instead, and so on back.
    chain = [c] + [st.candidate for st in shrunk.steps if st.failed is True]
    for k, cand in enumerate(reversed(chain)):
        if k and not budget.fits(confirm - 1):
            break
        f = _confirm(cand, c, first if cand is c else last[cand.name], first, s, target, params, seed, confirm,
                     need, budget, attempt, out_dir, failed_faults, say, at, shrunk.complete and k == 0)
        if f is not None:
            return f
    return None


def _confirm(smallest: Candidate, c: Candidate, seen: Outcome, first: Outcome, s: Summary, target: Target,
             params: Params, seed: int, confirm: int, need: float, budget: _Budget,
             attempt: Callable[[Candidate, str], Outcome], out_dir: Path, failed_faults: set[tuple],
             say: Callable[[str], None], at: float, complete: bool) -> Finding | None:
    # The run that showed it failing counts as its first trial: `confirm` in all.
    lost: list[int] = [seen.lost_writes or 0]
    reproduced = judged = 1
    for _ in range(confirm - 1):
        if not budget.fits():
            break
        o = attempt(smallest, "confirm")
        if o.status in ("error", "unsettled", "inconclusive"):
            continue
        judged += 1
        if o.status == "fail" and o.failed & first.failed:
            reproduced += 1
            lost.append(o.lost_writes or 0)
    f = Finding(smallest, c.name, tuple(sorted(first.failed)), reproduced, judged, tuple(lost),
                complete, at, seed, first.reasons, confirmed_at_s=budget.elapsed)
    # One run is never a confirmation: with confirm >= 2 a finding needs two judged runs at least
    # (a budget that ran out first leaves it unconfirmed, with its rate).
    if judged >= min(confirm, 2) and reproduced >= need * judged - 1e-9:
        path = write_finding(out_dir / FOUND_DIR, f, target, params)
        f = Finding(**{**f.__dict__, "file": str(path)})
        s.findings.append(finding_dict(f))
        if s.time_to_first_finding_s is None or at < s.time_to_first_finding_s:
            s.time_to_first_finding_s = round(at, 1)
        if s.time_to_first_confirmed_s is None:
            s.time_to_first_confirmed_s = round(budget.elapsed, 1)
        for d in smallest.faults:
            failed_faults.add(_key(d))
        for d in c.faults:
            failed_faults.add(_key(d))
        say(f"FINDING {smallest.name}: {smallest.describe()} -> {', '.join(f.failed)}; "
            f"reproduced {reproduced}/{judged}; {path}")
        return f
    s.unconfirmed.append(finding_dict(f))
    say(f"unconfirmed {smallest.name}: reproduced {reproduced}/{judged}: not a finding")
    return None


__all__ = ["explore", "CONFIRM", "NEED", "SUMMARY_FILE", "FOUND_DIR"]
