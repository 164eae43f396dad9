"""No run destroys another run's data: one new folder per run, `latest`, exclusive journals,
baseline read first, and report writes that fail part-way leave the previous files intact and
say which are not up to date."""

from __future__ import annotations

import errno
import json
import os
import threading
from pathlib import Path

import pytest

from harness.errors import InputError, ReportWriteError
from harness.measure import evaluate
from harness.measure.synthetic import make_experiment, make_record, steady_samples
from harness.model import Assertion
from harness.report import write_reports
from harness.report import files as report_files
from harness.report.results import load_results
from harness.report.rundir import LATEST, check_root, claim, resolve_run

AVAIL = Assertion("availability", ">=", 0.9, ">= 90%")


def _run(name: str):
    exp = make_experiment(name, slo=(AVAIL,))
    rec = make_record(steady_samples(1000, 1010, 20), experiment=exp, t0=1000, t_end=1010, run_id=f"r-{name}")
    return evaluate(rec), rec


def test_each_claim_is_a_new_folder_and_latest_follows(tmp_path):
    root = check_root(str(tmp_path / "reports"))
    assert not root.exists(), "checking writes nothing"
    a = claim(root)
    b = claim(root)
    assert a != b and a.parent == b.parent == root
    assert os.readlink(root / LATEST) == b.name
    assert resolve_run(root) == root / LATEST


def test_concurrent_claims_never_share_a_folder(tmp_path):
    root = tmp_path / "reports"
    got: list[Path] = []
    lock = threading.Lock()

    def one() -> None:
        d = claim(root)
        with lock:
            got.append(d)

    threads = [threading.Thread(target=one) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(got)) == 16
    assert (root / LATEST).resolve() in {d.resolve() for d in got}
    assert not [p for p in root.iterdir() if p.name.startswith(".latest")], "no temp link left behind"


def test_a_journal_is_never_appended_to(tmp_path):
    run_dir = claim(tmp_path / "r")
    (run_dir / "journal.jsonl").open("x").close()
    with pytest.raises(FileExistsError):
        (run_dir / "journal.jsonl").open("x")


@pytest.mark.parametrize("setup,why", [
    (lambda d: (d / "results.json").write_text("{}"), "holds a run's reports"),
    (lambda d: (d / LATEST).mkdir(), "is not the link"),
])
def test_a_directory_holding_reports_itself_is_refused(tmp_path, setup, why):
    d = tmp_path / "old"
    d.mkdir()
    setup(d)
    with pytest.raises(InputError, match=why):
        check_root(str(d))


def test_write_failure_keeps_the_previous_files_and_names_the_incomplete_ones(tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    first = [_run("one")]
    write_reports([r for r, _ in first], [rec for _, rec in first], run_dir)
    before = {p.name: p.read_bytes() for p in run_dir.iterdir()}
    real = report_files.atomic_write_text

    def disk_full_for_big_files(path, text, encoding="utf-8"):
        if len(text) > 100_000:                 # report.html (plotly inline) does not fit
            raise OSError(errno.ENOSPC, "No space left on device")
        real(path, text, encoding)

    for mod in ("harness.report.html", "harness.report.junit", "harness.report.results"):
        monkeypatch.setattr(f"{mod}.atomic_write_text", disk_full_for_big_files)
    both = first + [_run("two")]
    with pytest.raises(ReportWriteError) as info:
        write_reports([r for r, _ in both], [rec for _, rec in both], run_dir)
    err = info.value
    assert err.incomplete == ("report.html",) and set(err.written) == {"junit.xml", "results.json"}
    assert "report.html (No space left on device)" in str(err)
    assert "keeps its previous complete version" in str(err)
    assert (run_dir / "report.html").read_bytes() == before["report.html"]
    assert [r["experiment"] for r in load_results(run_dir)["runs"]] == ["one", "two"]
    assert not list(run_dir.glob(".*.tmp")), "no temp file left behind"


def test_results_are_read_through_latest_and_validated(tmp_path):
    root = tmp_path / "reports"
    run_dir = claim(root)
    runs = [_run("one")]
    write_reports([r for r, _ in runs], [rec for _, rec in runs], run_dir)
    assert load_results(root)["runs"][0]["experiment"] == "one"
    doc = json.loads((run_dir / "results.json").read_text())
    doc["runs"][0]["phases"][0]["availability"] = "high"
    (run_dir / "results.json").write_text(json.dumps(doc, indent=1))
    with pytest.raises(InputError, match=r"results\.json:\d+:\d+: .*field runs\[0\]\.phases\[0\]\.availability"):
        load_results(root)


def test_two_runs_into_one_dir_with_itself_as_baseline(tmp_path, monkeypatch, capsys):
    """The old bug: a second run into the same --report-dir replaced the first run's results,
    appended to its journal, and read the baseline after overwriting it (compared with itself)."""
    from harness import cli
    from harness.run import orchestrator

    echo = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "experiments" / "echo-pass.yaml"

    def stages(experiment, run, events, *a, **k):
        run.samples.extend(steady_samples(run.t0, run.t0 + 6, 20))
        run.t_end = run.t0 + 6
        run.run_id = f"r-fake{len(list((tmp_path / 'r').glob('2*')))}"

    monkeypatch.setattr(orchestrator, "_stages", stages)
    root = tmp_path / "r"
    assert cli.main(["run", str(echo), "--report-dir", str(root), "--plain"]) == 0
    first = (root / LATEST).resolve()
    snapshot = {p.name: p.read_bytes() for p in first.iterdir()}
    assert cli.main(["run", str(echo), "--report-dir", str(root), "--plain", "--baseline", str(root)]) == 0
    second = (root / LATEST).resolve()
    assert second != first
    assert {p.name: p.read_bytes() for p in first.iterdir()} == snapshot, "the first run was touched"
    journal = [json.loads(line) for line in (second / "journal.jsonl").read_text().splitlines()]
    first_id = json.loads(snapshot["results.json"])["runs"][0]["run_id"]
    second_id = json.loads((second / "results.json").read_text())["runs"][0]["run_id"]
    assert first_id != second_id
    assert [e["run_id"] for e in journal if e["event"] == "run_end"] == [second_id], "one run per journal"
    html = (second / "report.html").read_text()
    assert "baseline" in html.lower()
