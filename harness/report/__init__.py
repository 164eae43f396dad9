"""Reports written from Results: junit.xml, results.json, report.html (journal and console live).

`write_reports(results, records, report_dir, baseline_dir=None)` writes the three files; each is
written atomically (temp file in the same directory, then os.replace).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

from harness.measure.result import Result
from harness.measure.trialset import TrialSet
from harness.model import RunRecord
from harness.report.html import REPORT_FILE, write_html
from harness.report.junit import write_junit
from harness.report.results import RESULTS_FILE, ResultsFileError, load_results, write_results

log = logging.getLogger(__name__)

JUNIT_FILE = "junit.xml"


def write_reports(results: list[Result], records: list[RunRecord], report_dir: Path,
                  baseline_dir: Path | None = None, trial_sets: Sequence[TrialSet] = ()) -> None:
    """Write junit.xml, results.json and report.html into `report_dir`.

    Everything is taken from `results` (a Result is self-contained); `records` are the matching
    RunRecords, checked to pair up by run id; `trial_sets` judge repeated trials (their runs are
    among `results`). A missing or unreadable baseline is logged and the
    report is written without the comparison (the suite's verdict must not depend on it).
    """
    _check_pairs(results, records)
    report_dir = Path(report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    write_junit(results, report_dir / JUNIT_FILE, trial_sets)
    doc = write_results(results, report_dir / RESULTS_FILE, trial_sets)
    baseline = None
    if baseline_dir is not None:
        try:
            baseline = load_results(Path(baseline_dir))
        except ResultsFileError as e:
            log.warning("baseline not used in the report: %s", e)
    write_html(doc, report_dir / REPORT_FILE, baseline)


def _check_pairs(results: Sequence[Result], records: Sequence[RunRecord]) -> None:
    if records and len(records) != len(results):
        raise ValueError(f"{len(results)} results but {len(records)} records")
    for r, rec in zip(results, records):
        if r.run_id != rec.run_id:
            raise ValueError(f"result {r.run_id} paired with record {rec.run_id}")


__all__ = ["write_reports", "JUNIT_FILE", "RESULTS_FILE", "REPORT_FILE"]
