"""results.json: the machine-readable record of a suite run (schema in docs/results-schema.md).

It holds enough to regenerate the HTML report and to compare two runs without the raw samples.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import enum
import json
import math
from pathlib import Path
from typing import Any, Sequence

from harness import __version__
from harness.errors import InputError
from harness.measure.result import Result, worst_verdict
from harness.measure.timeline import STEP_S
from harness.measure.trialset import TrialSet
from harness.report.files import atomic_write_text

SCHEMA_VERSION = 1
RESULTS_FILE = "results.json"


def plain(value: Any) -> Any:
    """Dataclasses, tuples, enums, paths and frozensets → JSON types; floats rounded to 6 places."""
    if isinstance(value, enum.Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted(plain(v) for v in value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float):
        return None if not math.isfinite(value) else round(value, 6)
    return value


def _outage(o) -> dict | None:
    return None if o is None else plain(o)


def run_to_json(r: Result) -> dict[str, Any]:
    """One experiment's entry in results.json."""
    tl = r.timeline
    return {
        "run_id": r.run_id,
        "experiment": r.name,
        "description": r.experiment.description.strip(),
        "started_at": r.started_at,
        "duration_s": plain(r.duration_s),
        "verdict": r.verdict.value,
        "exit_code": r.exit_code,
        "reasons": list(r.reasons),
        "aborted": r.aborted,
        "harness_error": r.harness_error,
        "interrupted": r.interrupted,
        "config": r.experiment.config(),
        "time_to_recover_s": plain(r.time_to_recover_s),
        "longest_outage": _outage(r.longest_outage),
        "phases": [
            {**plain(p), "errors": {k: n for k, n in p.errors}, "longest_outage": _outage(p.longest_outage)}
            for p in r.phases
        ],
        "faults": [
            {
                "fault": f.fault, "action": f.action, "targets": list(f.targets),
                "injected_s": plain(f.injected_s), "reverted_s": plain(f.reverted_s), "detail": f.detail,
                "recovered": f.recovery.recovered,
                "time_to_recover_s": plain(f.recovery.time_to_recover_s),
                "recovery_threshold": plain(f.recovery.threshold),
                "recovery_window_s": plain(f.recovery.window_s),
                "error_window": None if f.error_window is None else {
                    **plain(f.error_window), "duration_s": plain(f.error_window.duration_s)},
            }
            for f in r.faults
        ],
        "durability": plain(r.durability),
        "assertions": [{"name": a.name, **plain(a)} for a in r.assertions],
        "notes": plain(r.notes),
        "timeline": {
            "step_s": STEP_S,
            "offset_s": [plain(s.offset_s) for s in tl],
            "ok": [s.ok for s in tl],
            "failed": [s.failed for s in tl],
            "p50_s": [plain(s.p50_s) for s in tl],
            "p99_s": [plain(s.p99_s) for s in tl],
        },
    }


NEVER = "never"     # a per-trial value or bound that is +inf: the fault never recovered


def _num(v: float | None) -> Any:
    if v is not None and math.isinf(v):
        return NEVER
    return plain(v)


def number(v: Any) -> float | None:
    """A trial value or bound read back from results.json ("never" → +inf)."""
    if v == NEVER:
        return math.inf
    return None if v is None else float(v)


def _interval(iv) -> dict[str, Any] | None:
    if iv is None:
        return None
    return {"estimate": _num(iv.estimate), "low": _num(iv.low), "high": _num(iv.high), "n": iv.n,
            "method": iv.method, "confidence": iv.confidence, "effective_n": plain(iv.effective_n)}


def trial_set_to_json(ts: TrialSet) -> dict[str, Any]:
    """One experiment's trial set in results.json (docs/results-schema.md, "A trial set")."""
    return {
        "experiment": ts.name,
        "verdict": ts.verdict.value,
        "exit_code": ts.exit_code,
        "reasons": list(ts.reasons),
        "stack": ts.stack,
        "trials": len(ts.trials),
        "judged": len(ts.judged),
        "few_trials": ts.few_trials,
        "run_ids": [r.run_id for r in ts.trials],
        "trial_verdicts": [r.verdict.value for r in ts.trials],
        "wall_s": [plain(w) for w in ts.wall_s],
        "assertions": [
            {"name": a.name, "kind": a.kind, "scope": a.scope, "metric": a.metric, "op": a.op,
             "threshold": plain(a.threshold), "text": a.text, "unit": a.unit, "method": a.method,
             "values": [_num(v) for v in a.values], "passed": list(a.passed),
             "passes": a.passes, "judged": a.judged, "pass_share": _interval(a.pass_share),
             "interval": _interval(a.interval), "verdict": a.verdict.value,
             "trials_needed": a.trials_needed, "message": a.message}
            for a in ts.assertions
        ],
        "metrics": {m.metric: {"method": m.method, "values": [_num(v) for v in m.values],
                               "interval": _interval(m.interval)} for m in ts.spreads},
    }


def results_to_json(results: Sequence[Result], trial_sets: Sequence[TrialSet] = ()) -> dict[str, Any]:
    """The whole results.json document. With trial sets, `runs` holds every trial and the
    suite's verdict is that of the sets (a single failed trial among passing ones is the
    flakiness the intervals judge, not the suite's verdict)."""
    judged = {ts.name for ts in trial_sets}
    verdicts = [ts.verdict for ts in trial_sets] + [r.verdict for r in results if r.name not in judged]
    doc = {
        "schema_version": SCHEMA_VERSION,
        "harness_version": __version__,
        "generated_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "verdict": worst_verdict(verdicts).value,
        "runs": [run_to_json(r) for r in results],
    }
    if trial_sets:
        doc["trial_sets"] = [trial_set_to_json(ts) for ts in trial_sets]
    return doc


def write_results(results: Sequence[Result], path: Path, trial_sets: Sequence[TrialSet] = ()) -> dict[str, Any]:
    doc = results_to_json(results, trial_sets)
    atomic_write_text(Path(path), json.dumps(doc, indent=1, ensure_ascii=False, allow_nan=False) + "\n")
    return doc


class ResultsFileError(InputError):
    """results.json missing, unreadable, or not a results document this version understands."""


_TRIAL_SET_KEYS = ("experiment", "verdict", "trials", "assertions", "metrics")
_RUN_KEYS = ("experiment", "verdict", "phases", "assertions", "timeline", "durability", "faults")


def load_results(where: Path) -> dict[str, Any]:
    """Read and sanity-check a results.json (a directory holding one, or the file itself)."""
    where = Path(where)
    path = where / RESULTS_FILE if where.is_dir() else where
    if not path.exists():
        raise ResultsFileError(f"no {RESULTS_FILE} at {path}")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ResultsFileError(f"cannot read {path}: {e}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("runs"), list):
        raise ResultsFileError(f"{path} is not a Continuum results file (no 'runs' list)")
    if doc.get("schema_version") != SCHEMA_VERSION:
        raise ResultsFileError(
            f"{path} has schema_version {doc.get('schema_version')!r}; this harness reads {SCHEMA_VERSION}")
    for k, run in enumerate(doc["runs"]):
        missing = [key for key in _RUN_KEYS if not isinstance(run, dict) or key not in run]
        if missing:
            raise ResultsFileError(f"{path}: runs[{k}] lacks {', '.join(missing)}")
    sets = doc.get("trial_sets", [])
    if not isinstance(sets, list):
        raise ResultsFileError(f"{path}: trial_sets is not a list")
    for k, ts in enumerate(sets):
        missing = [key for key in _TRIAL_SET_KEYS if not isinstance(ts, dict) or key not in ts]
        if missing:
            raise ResultsFileError(f"{path}: trial_sets[{k}] lacks {', '.join(missing)}")
    return doc


def overall(run: dict[str, Any]) -> dict[str, Any]:
    """The "overall" phase entry of a run in results.json."""
    for p in run.get("phases", []):
        if p.get("name") == "overall":
            return p
    return {}
