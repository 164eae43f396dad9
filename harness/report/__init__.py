"""Reports written from Results: junit.xml, results.json, report.html (journal and console live).

`write_reports(results, records, run_dir, baseline=None)` writes the three files into one run's
folder (see `harness.report.rundir`: every run has its own). Each file is written atomically
(a temp file in the same directory, fsync'd, then os.replace), so a reader only ever sees a
complete file. When one cannot be written (disk full, read-only file system) the others are
still attempted, the one that failed keeps its previous complete version (or does not exist
yet), and `ReportWriteError` says which are up to date and which are not.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable, Sequence

from harness.errors import ReportWriteError
from harness.measure.result import Result
from harness.measure.trialset import TrialSet
from harness.model import RunRecord
from harness.report.html import REPORT_FILE, write_html
from harness.report.junit import write_junit
from harness.report.results import RESULTS_FILE, ResultsFileError, load_results, results_to_json, write_doc

log = logging.getLogger(__name__)

JUNIT_FILE = "junit.xml"


def write_reports(results: list[Result], records: list[RunRecord], report_dir: Path,
                  baseline_dir: Path | None = None, *, baseline: dict[str, Any] | None = None,
                  trial_sets: Sequence[TrialSet] = ()) -> None:
    """Write junit.xml, results.json and report.html into `report_dir` (a run's folder).

    Everything is taken from `results` (a Result is self-contained); `records` are the matching
    RunRecords, checked to pair up by run id; `trial_sets` judge repeated trials (their runs are
    among `results`). `baseline` is a results document read (and checked) before the run
    started; `baseline_dir` is read now, for callers that have no earlier moment (an unreadable
    one is logged and left out: the verdict must not depend on it). Raises ReportWriteError
    naming the files that are not up to date.
    """
    _check_pairs(results, records)
    report_dir = Path(report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    if baseline is None and baseline_dir is not None:
        try:
            baseline = load_results(Path(baseline_dir))
        except ResultsFileError as e:
            log.warning("baseline not used in the report: %s", e)
    doc = results_to_json(results, trial_sets)
    steps: list[tuple[str, Callable[[], Any]]] = [
        # Smallest and most important first: CI reads junit.xml and the gate reads results.json.
        (JUNIT_FILE, lambda: write_junit(results, report_dir / JUNIT_FILE, trial_sets)),
        (RESULTS_FILE, lambda: write_doc(doc, report_dir / RESULTS_FILE)),
        (REPORT_FILE, lambda: write_html(doc, report_dir / REPORT_FILE, baseline)),
    ]
    written: list[str] = []
    failed: list[tuple[str, OSError]] = []
    for name, write in steps:
        try:
            write()
            written.append(name)
        except OSError as exc:
            log.error("could not write %s: %s", report_dir / name, exc)
            failed.append((name, exc))
    if failed:
        n = len(results)
        what = "; ".join(f"{name} ({exc.strerror or exc})" for name, exc in failed)
        kept = ", ".join(
            f"{name} {'keeps its previous complete version' if (report_dir / name).exists() else 'does not exist'}"
            for name, _ in failed)
        ok = f"up to date with all {n} run(s): {', '.join(written)}" if written else "no report file is up to date"
        raise ReportWriteError(f"reports in {report_dir} are incomplete: could not write {what}; "
                               f"{kept}; {ok}", written=tuple(written),
                               incomplete=tuple(name for name, _ in failed))


def _check_pairs(results: Sequence[Result], records: Sequence[RunRecord]) -> None:
    if records and len(records) != len(results):
        raise ValueError(f"{len(results)} results but {len(records)} records")
    for r, rec in zip(results, records):
        if r.run_id != rec.run_id:
            raise ValueError(f"result {r.run_id} paired with record {rec.run_id}")


__all__ = ["write_reports", "JUNIT_FILE", "RESULTS_FILE", "REPORT_FILE"]
