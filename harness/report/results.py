"""results.json: the machine-readable record of a suite run (schema in docs/results-schema.md).

It holds enough to regenerate the HTML report and to compare two runs without the raw samples.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import enum
import json
import math
import os
import stat
from pathlib import Path
from typing import Annotated, Any, Literal, Sequence

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from harness import __version__
from harness.errors import InputError
from harness.model.units import short
from harness.yamlsafe import field_name
from harness.measure.metrics import PhaseMetrics
from harness.measure.result import Result, worst_verdict
from harness.measure.timeline import STEP_S
from harness.measure.trialset import TrialSet
from harness.report.files import atomic_write_text
from harness.report.versions import versions_json

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


def _phase(p: PhaseMetrics) -> dict[str, Any]:
    """A phase (or one operation's share of it): every metric, errors as {class: count}."""
    out = {f.name: plain(getattr(p, f.name)) for f in dataclasses.fields(p)
           if f.name not in ("operations", "operation")}
    out["errors"] = {k: n for k, n in p.errors}
    if p.operation is not None:
        out = {"operation": p.operation, **{k: v for k, v in out.items() if k != "name"}}
    else:
        out["operations"] = [_phase(o) for o in p.operations]
    return out


def _error_window(w) -> dict | None:
    return None if w is None else {**plain(w), "duration_s": plain(w.duration_s)}


def _recovery(rec) -> dict[str, Any]:
    return {"recovered": rec.recovered, "time_to_recover_s": plain(rec.time_to_recover_s),
            "recovery_threshold": plain(rec.threshold), "recovery_window_s": plain(rec.window_s)}


def _steps(steps) -> dict[str, list]:
    return {"ok": [s.ok for s in steps], "failed": [s.failed for s in steps],
            "p50_s": [plain(s.p50_s) for s in steps], "p99_s": [plain(s.p99_s) for s in steps]}


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
        "source_yaml": r.experiment.source_text,
        "operations": list(r.operations),
        "time_to_recover_s": plain(r.time_to_recover_s),
        "longest_outage": _outage(r.longest_outage),
        "longest_stall": _outage(r.longest_stall),
        "phases": [_phase(p) for p in r.phases],
        "faults": [
            {
                "fault": f.fault, "action": f.action, "targets": list(f.targets),
                "issued_s": plain(f.issued_s),
                "injected_s": plain(f.injected_s), "reverted_s": plain(f.reverted_s), "detail": f.detail,
                **_recovery(f.recovery),
                "error_window": _error_window(f.error_window),
                "operations": [{"operation": o.operation, **_recovery(o.recovery),
                                "error_window": _error_window(o.error_window)} for o in f.operations],
            }
            for f in r.faults
        ],
        "durability": plain(r.durability),
        "monitoring": _monitoring(r),
        "versions": versions_json(r.versions),
        "drill": None if r.drill is None else {
            **plain(r.drill), "rpo_writes": r.drill.rpo_writes,
            "lost_writes_before_backup": r.drill.lost_writes_before_backup,
            "lost_writes_after_restore": r.drill.lost_writes_after_restore},
        "assertions": [{"name": a.name, "key": a.key, **plain(a)} for a in r.assertions],
        "notes": plain(r.notes),
        "measurement": None if r.measurement is None else plain(r.measurement),
        "timeline": {
            "step_s": STEP_S,
            "offset_s": [plain(s.offset_s) for s in tl],
            **_steps(tl),
            "operations": {op: _steps(steps) for op, steps in r.operation_timelines},
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
    write_doc(doc, path)
    return doc


def write_doc(doc: dict[str, Any], path: Path) -> None:
    atomic_write_text(Path(path), json.dumps(doc, indent=1, ensure_ascii=False, allow_nan=False) + "\n")


class ResultsFileError(InputError):
    """results.json missing, unreadable, or not a results document this version understands."""


# ───────────────────────────── reading: the shape of results.json ─────────────────────────────
#
# A Pydantic model rather than a separate JSON Schema: the project's models are the one source of
# shape, the errors carry a location path (mapped back to results.json:line:column below), and
# `report`/`compare`/the HTML template then read a document whose every key they use is known
# to exist with the right type. Known keys are checked strictly (no "5" for 5, no NaN or
# infinities anywhere); unknown keys are kept, so a newer writer's additions within schema
# version 1 do not make an older reader refuse the file.

MAX_RESULTS_BYTES = 256 * 1024 * 1024
MAX_JSON_DEPTH = 200
Finite = Annotated[float, Field(allow_inf_nan=False)]
Count = Annotated[int, Field(ge=0, le=2**63 - 1)]
VerdictName = Literal["PASS", "FAIL", "ERROR", "INCONCLUSIVE"]


class _Doc(BaseModel):
    model_config = ConfigDict(strict=True, extra="allow", allow_inf_nan=False, frozen=True)


class OutageDoc(_Doc):
    duration_s: Finite
    start_s: Finite
    end_s: Finite


class PhaseDoc(_Doc):
    name: str
    start_s: Finite
    end_s: Finite
    requests: Count
    successes: Count
    failures: Count
    availability: Finite | None
    error_rate: Finite | None
    latency_p50_s: Finite | None
    latency_p95_s: Finite | None
    latency_p99_s: Finite | None
    latency_max_s: Finite | None
    throughput_rps: Finite | None
    errors: dict[str, Count]
    longest_outage: OutageDoc | None


class ErrorWindowDoc(_Doc):
    first_s: Finite
    last_s: Finite
    failures: Count
    duration_s: Finite


class FaultDoc(_Doc):
    fault: str
    action: str
    targets: list[str]
    injected_s: Finite
    reverted_s: Finite | None
    detail: str
    recovered: bool
    time_to_recover_s: Finite | None
    recovery_threshold: Finite
    recovery_window_s: Finite
    error_window: ErrorWindowDoc | None


class DurabilityDoc(_Doc):
    audited: bool
    attempted: Count
    acked: Count
    unknown: Count
    lost: Count | None = None
    unexpected: Count | None = None
    recovered: Count | None = None
    money_conserved: bool | None = None
    total_balance: int | None = None
    expected_total: int | None = None
    lost_ids: list[str] = []
    unexpected_ids: list[str] = []


class AssertionDoc(_Doc):
    name: str
    kind: str
    scope: str
    metric: str
    op: str
    threshold: Finite
    text: str
    measured: Finite | None
    passed: bool | None
    message: str


class NoteDoc(_Doc):
    offset_s: Finite | None = None
    t: Finite | None = None
    text: str
    author: str = "operator"


class TimelineDoc(_Doc):
    step_s: Annotated[float, Field(gt=0, le=3600, allow_inf_nan=False)]
    offset_s: list[Finite]
    ok: list[Count]
    failed: list[Count]
    p50_s: list[Finite | None]
    p99_s: list[Finite | None]

    @model_validator(mode="after")
    def _columns(self) -> "TimelineDoc":
        n = len(self.offset_s)
        for name in ("ok", "failed", "p50_s", "p99_s"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"timeline.{name} has {len(getattr(self, name))} entries but "
                                 f"timeline.offset_s has {n}; the columns must be the same length")
        return self


class RunDoc(_Doc):
    run_id: str
    experiment: str
    description: str
    started_at: str
    duration_s: Finite | None
    verdict: VerdictName
    exit_code: Literal[0, 1, 3, 4]
    reasons: list[str]
    aborted: str | None
    harness_error: str | None
    interrupted: bool
    config: dict[str, Any]
    time_to_recover_s: Finite | None
    longest_outage: OutageDoc | None
    phases: list[PhaseDoc]
    faults: list[FaultDoc]
    durability: DurabilityDoc
    assertions: list[AssertionDoc]
    notes: list[NoteDoc]
    timeline: TimelineDoc




class TrialSetDoc(_Doc):
    """A trial set as `report`, `compare` and the HTML template read it (docs/results-schema.md)."""
    experiment: str
    verdict: VerdictName
    trials: Count
    run_ids: list[str] = []
    assertions: list[dict[str, Any]]
    metrics: dict[str, dict[str, Any]]


class ResultsDoc(_Doc):
    schema_version: Literal[1]
    harness_version: str
    generated_at: str
    verdict: VerdictName
    runs: list[RunDoc]
    trial_sets: list[TrialSetDoc] = []


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows (NaN and infinities are refused)")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"duplicate key {k!r}")
        out[k] = v
    return out


def results_path(where: Path) -> Path:
    """The results.json a reader means by `where`: the file itself, a run folder holding one, or a
    report directory whose `latest` run holds one (see harness.report.rundir)."""
    from harness.report.rundir import resolve_run

    return resolve_run(Path(where)) / RESULTS_FILE if not _is_file_arg(where) else Path(where)


def _is_file_arg(where: Path) -> bool:
    """Anything that exists and is not a directory is meant as the file itself (a FIFO or a
    device is then refused by the reader, not mistaken for a directory)."""
    if Path(where).name == RESULTS_FILE:
        return True
    try:
        return not stat.S_ISDIR(os.stat(where).st_mode)
    except OSError:
        return os.path.lexists(where)       # a symlink loop or a dangling link: the reader says so


def load_results(where: Path) -> dict[str, Any]:
    """Read and validate a results.json (a run folder, a report directory, or the file itself).

    Raises ResultsFileError (exit 2) naming the file and, where it can, line:column and the field:
    not a regular file, too large, not UTF-8, not JSON, NaN or infinities, duplicate keys, nested
    too deep, another schema version, or any known key missing or of the wrong type."""
    from harness.yamlsafe import read_regular_file

    path = results_path(Path(where))
    if not os.path.lexists(path):
        raise ResultsFileError(f"no {RESULTS_FILE} at {path}")
    try:
        raw = read_regular_file(path, max_bytes=MAX_RESULTS_BYTES, what="results file")
    except InputError as e:
        raise ResultsFileError(str(e)) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ResultsFileError(f"{path}: not valid UTF-8 (byte {e.start})") from None
    try:
        data = json.loads(text, parse_constant=_refuse_constant, object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as e:
        raise ResultsFileError(f"{path}:{e.lineno}:{e.colno}: cannot read it: not valid JSON ({e.msg})") from None
    except ValueError as e:             # NaN/Infinity, a duplicate key
        raise ResultsFileError(f"{path}:{_locate_message(text, str(e))}{e}") from None
    except RecursionError:
        raise ResultsFileError(f"{path}: nested too deeply to be a results file") from None
    if _depth(data) > MAX_JSON_DEPTH:
        raise ResultsFileError(f"{path}: nested deeper than {MAX_JSON_DEPTH} levels")
    if not isinstance(data, dict) or not isinstance(data.get("runs"), list):
        raise ResultsFileError(f"{path}:1:1: not a Continuum results file (no 'runs' list)")
    if data.get("schema_version") != SCHEMA_VERSION:
        raise ResultsFileError(
            f"{path}:{_where(text, ('schema_version',))}has schema_version "
            f"{short(data.get('schema_version'))}; this harness reads {SCHEMA_VERSION}")
    try:
        ResultsDoc.model_validate(data)
    except ValidationError as e:
        first = e.errors(include_url=False)[0]
        loc = tuple(first["loc"])
        field = field_name(loc)
        more = f" [{e.error_count() - 1} more problem(s)]" if e.error_count() > 1 else ""
        msg = first["msg"].removeprefix("Value error, ")
        if first["type"] == "missing":
            msg = f"missing required key {loc[-1]!r}"
            loc = loc[:-1]
        raise ResultsFileError(f"{path}:{_where(text, loc)}{msg} (field {field}){more}") from None
    return data


def _depth(value: Any) -> int:
    depth, level = 0, [value]
    while level:
        depth += 1
        nxt: list[Any] = []
        for v in level:
            if isinstance(v, dict):
                nxt.extend(v.values())
            elif isinstance(v, list):
                nxt.extend(v)
        level = nxt
        if depth > MAX_JSON_DEPTH:
            break
    return depth - 1


MAX_LOCATE_CHARS = 64 * 1024 * 1024


def _where(text: str, loc: tuple) -> str:
    """"line:column: " of `loc` in the JSON text (JSON is YAML, whose parser keeps marks), or ""
    when it cannot be placed (a file too large to parse twice)."""
    from harness.yamlsafe import locate

    if len(text) > MAX_LOCATE_CHARS:
        return ""
    mark = locate(text, tuple(p for p in loc if isinstance(p, (str, int))))
    return f"{mark[0]}:{mark[1]}: " if mark else ""


def _locate_message(text: str, message: str) -> str:
    """Best effort: where a NaN/Infinity or duplicate key first appears."""
    import re

    m = re.search(r"(?<![\w\"])(NaN|-?Infinity)(?![\w\"])", text) if "number" in message else None
    if m is None:
        return ""
    prefix = text[: m.start()]
    return f"{prefix.count(chr(10)) + 1}:{m.start() - (prefix.rfind(chr(10)) + 1) + 1}: "


def overall(run: dict[str, Any]) -> dict[str, Any]:
    """The "overall" phase entry of a run in results.json."""
    for p in run.get("phases", []):
        if p.get("name") == "overall":
            return p
    return {}
