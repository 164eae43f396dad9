"""What the explorer hands back: each finding as an ordinary experiment file, and a summary.

    path = write_finding(out_dir / "found", finding, target, params)   # valid for `continuum run`
    write_summary(out_dir / "summary.json", summary)

A finding's file is the candidate's experiment as `continuum run` would read it, its target a
path relative to the file, with a header comment: what failed, how often it reproduced, the
seed and the candidate it was shrunk from. Dropped into a suite as it is, it runs.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harness.errors import ReportWriteError
from harness.explore.candidates import Candidate, Params, experiment_data
from harness.model.target import Target


@dataclass(frozen=True)
class Finding:
    candidate: Candidate                        # the smallest schedule that still failed
    found_from: str                             # the candidate that first failed
    failed: tuple[str, ...]                     # assertion keys it failed (first run)
    reproduced: int                             # runs of the smallest that failed the same way
    confirmations: int                          # runs of the smallest that could be judged
    lost_writes: tuple[int, ...] = ()           # per failing run, when audited
    shrink_complete: bool = True
    at_s: float = 0.0                           # seconds into the search when it was first seen
    seed: int = 0
    reasons: tuple[str, ...] = ()
    file: str = ""
    confirmed_at_s: float | None = None         # seconds into the search when its confirmations ended

    @property
    def kind(self) -> str:
        if any(k in ("lost_writes", "unexpected_writes") or k.startswith(("money", "invariant"))
               for k in self.failed) or any(self.lost_writes):
            return "durability"
        return "availability"


@dataclass
class Summary:
    target: str
    seed: int
    budget_s: float
    stack: str
    candidates_total: int
    tried: int = 0
    runs: int = 0                               # experiments run (candidates, shrink steps, confirmations)
    passed: int = 0
    failed: int = 0
    errors: int = 0
    inconclusive: int = 0
    unsettled: int = 0
    skipped_superset: int = 0                   # pairs holding a single that already failed
    # One finding per component and invariant (harness.explore.coverage): candidates put off to a
    # second pass because they could only repeat a finding ({"repeats x-kill-app-w4-u5": 7}), and
    # failures recorded but not shrunk because a finding already covers what they broke.
    deferred: dict[str, int] = field(default_factory=dict)
    duplicate_failures: list[dict[str, Any]] = field(default_factory=list)
    findings: list[dict[str, Any]] = field(default_factory=list)
    unconfirmed: list[dict[str, Any]] = field(default_factory=list)
    # Runs after which the reused stack did not settle (replaced before the next run): the system
    # had not come back from that run's faults. Said against that run, not a finding (a re-run
    # cannot confirm what happens after a run), and never charged to the next candidate.
    unrecovered: list[dict[str, Any]] = field(default_factory=list)
    not_covered: list[str] = field(default_factory=list)      # candidates the budget left untried
    not_covered_by_family: dict[str, int] = field(default_factory=dict)
    not_covered_deferred: int = 0               # of those, the ones put off as repeats of a finding
    time_s: float = 0.0
    time_to_first_finding_s: float | None = None       # when the first finding's candidate first failed
    time_to_first_confirmed_s: float | None = None     # when it was confirmed (shrink and confirmations done)
    stacks_up: int = 0
    interrupted: bool = False
    stopped_because: str = ""
    candidates: list[dict[str, Any]] = field(default_factory=list)

    def per_hour(self) -> float:
        return self.tried * 3600.0 / self.time_s if self.time_s > 0 else 0.0


def finding_text(f: Finding, target: Target, p: Params, out_dir: Path) -> str:
    rel = os.path.relpath(target.root, out_dir.resolve())
    data = experiment_data(f.candidate, target, p, target_path=rel)
    lost = [n for n in f.lost_writes if n]
    head = [
        f"# Found by `continuum explore` (seed {f.seed}), {f.at_s:.0f} s into the search.",
        f"# What: {f.candidate.describe()} -> failed {', '.join(f.failed)}"
        + (f"; acknowledged writes lost per failing run: {', '.join(map(str, lost))}" if lost else ""),
        f"# Failed the same way in {f.reproduced} of {f.confirmations} runs of this file"
        + ("" if f.reproduced == f.confirmations else " (not every time: a rate, not a certainty)") + ".",
        f"# Shrunk from {f.found_from}" + ("" if f.shrink_complete else " (shrink stopped by the budget: "
                                           "a smaller variant may still fail)") + ".",
    ]
    if f.reasons:
        head.append(f"# First failure: {f.reasons[0][:300]}")
    body = yaml.safe_dump(data, sort_keys=False, default_flow_style=False, width=100, allow_unicode=True)
    return "\n".join(head) + "\n" + body


def write_finding(out_dir: Path, f: Finding, target: Target, p: Params) -> Path:
    """The finding as an experiment file in `out_dir` (a new file: an existing one is kept and
    a numbered name used)."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / f"{f.candidate.name}.yaml"
        n = 2
        while path.exists():
            path = out_dir / f"{f.candidate.name}-{n}.yaml"
            n += 1
        text = finding_text(f, target, p, out_dir)
        with open(path, "x", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as exc:
        raise ReportWriteError(f"cannot write finding {f.candidate.name} in {out_dir}: {exc}") from exc
    return path


def finding_dict(f: Finding) -> dict[str, Any]:
    return {"name": f.candidate.name, "what": f.candidate.describe(), "kind": f.kind,
            "failed": list(f.failed), "reproduced": f.reproduced, "confirmations": f.confirmations,
            "lost_writes": list(f.lost_writes), "found_from": f.found_from,
            "shrink_complete": f.shrink_complete, "at_s": round(f.at_s, 1),
            "confirmed_at_s": None if f.confirmed_at_s is None else round(f.confirmed_at_s, 1), "file": f.file}


def write_summary(path: Path, s: Summary) -> None:
    data = asdict(s)
    data["candidates_per_hour"] = round(s.per_hour(), 1)
    tmp = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, path)               # whole or not at all: Ctrl-C never leaves half a file
    except OSError as exc:
        raise ReportWriteError(f"cannot write {path}: {exc}") from exc


def summary_text(s: Summary) -> str:
    lines = [f"explored {s.target} (seed {s.seed}, {s.stack} stack): {s.tried} of {s.candidates_total} "
             f"candidates in {s.time_s:.0f} s ({s.per_hour():.0f}/h), {s.runs} runs; "
             f"{s.passed} passed, {s.failed} failed, {s.errors} harness errors, "
             f"{s.inconclusive} inconclusive, {s.unsettled} unsettled"]
    if s.time_to_first_finding_s is not None:
        lines.append(f"first finding: failed first {s.time_to_first_finding_s:.0f} s into the search, confirmed "
                     f"at {s.time_to_first_confirmed_s or 0:.0f} s")
    for f in s.findings:
        lines.append(f"  FINDING {f['name']}: {f['what']} -> {', '.join(f['failed'])}; reproduced "
                     f"{f['reproduced']}/{f['confirmations']}" + (f"; lost writes {f['lost_writes']}"
                                                                  if any(f['lost_writes']) else "")
                     + f"; {f['file']}")
    for f in s.unconfirmed:
        lines.append(f"  unconfirmed {f['name']}: reproduced {f['reproduced']}/{f['confirmations']} (not a finding)")
    for u in s.unrecovered:
        lines.append(f"  did not recover after {u['name']} ({u['status']}, {u['why_run']}): the stack {u['why'][:160]}")
    if not s.findings:
        lines.append("  no findings")
    for f in s.duplicate_failures:
        lines.append(f"  failed again, not shrunk: {f['name']} ({', '.join(f['failed'])}) repeats {f['repeats']}")
    if s.deferred:
        lines.append(f"  put off as repeats of a finding (same component, same invariant): {sum(s.deferred.values())} "
                     "candidates (" + "; ".join(f"{n} {why}" for why, n in s.deferred.items()) + ")")
    if s.not_covered:
        fam = ", ".join(f"{n} {k}" for k, n in s.not_covered_by_family.items())
        lines.append(f"  not covered ({s.stopped_because}): {len(s.not_covered)} candidates ({fam}"
                     + (f"; {s.not_covered_deferred} of them put off as repeats" if s.not_covered_deferred else "")
                     + "), e.g. " + ", ".join(s.not_covered[:5]))
    return "\n".join(lines)


__all__ = ["Finding", "Summary", "write_finding", "finding_text", "write_summary", "summary_text", "finding_dict"]
