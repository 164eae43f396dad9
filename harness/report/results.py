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
        "monitoring": _monitoring(r),
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


def _monitoring(r: Result) -> dict[str, Any] | None:
    """Detection per fault, every alert (and whether it fired without a fault), probe samples."""
    m = r.monitoring
    if m is None:
        return None
    return {
        "faults": plain(m.faults),
        "alerts": [{**plain(a), "alert": a.describe(), "labels": dict(a.labels),
                    "without_fault": a.without_fault} for a in m.alerts],
        "alerts_without_fault": m.alerts_without_fault,
        "without_fault_unknown": m.without_fault_unknown,
        "rules": plain(m.rules),
        "scrape_interval_s": plain(m.scrape_interval_s),
        "scrape_timeout_s": plain(m.scrape_timeout_s),
        "probes": plain(m.probes),
        "errors": list(m.errors),
    }


def results_to_json(results: Sequence[Result]) -> dict[str, Any]:
    """The whole results.json document."""
    return {
        "schema_version": SCHEMA_VERSION,
        "harness_version": __version__,
        "generated_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "verdict": worst_verdict(r.verdict for r in results).value,
        "runs": [run_to_json(r) for r in results],
    }


def write_results(results: Sequence[Result], path: Path) -> dict[str, Any]:
    doc = results_to_json(results)
    atomic_write_text(Path(path), json.dumps(doc, indent=1, ensure_ascii=False, allow_nan=False) + "\n")
    return doc


class ResultsFileError(InputError):
    """results.json missing, unreadable, or not a results document this version understands."""


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
    return doc


def overall(run: dict[str, Any]) -> dict[str, Any]:
    """The "overall" phase entry of a run in results.json."""
    for p in run.get("phases", []):
        if p.get("name") == "overall":
            return p
    return {}
