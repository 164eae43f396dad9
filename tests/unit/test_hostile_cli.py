"""The hostile-input corpus through the real CLI: every case is refused with exit 2 and a
`file:line:column` or flag message (or handled correctly, where a case says so), with no
traceback, nothing written and no Docker call.

Cases come from two places:
* the static corpora, tests/unit/corpus/experiments/*.yaml and targets-bad/*/compose.yaml (each
  with a `# expect:` first line), run through `continuum run` and `continuum up`, the commands
  that would write reports or start containers if validation let anything through;
* the table below, for what a file cannot hold: CLI flags, report directories, results files,
  and special files (FIFOs, devices, symlink loops, sparse giants, NUL bytes).

`python -m tests.unit.test_hostile_cli` prints the count, correct / total, by category.
"""

from __future__ import annotations

import io
import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

ROOT = Path(__file__).resolve().parents[2]
CORPUS = Path(__file__).parent / "corpus"
ECHO = ROOT / "targets" / "echo"
ECHO_PASS = ROOT / "tests" / "fixtures" / "experiments" / "echo-pass.yaml"
WHERE = re.compile(r"\S+:\d+:\d+: ")


@dataclass(frozen=True)
class Case:
    id: str
    category: str                       # experiment, target, flag, report-dir, results, special-file
    argv: Callable[[Path], list[str]]   # built in the case's own empty directory
    match: str = ""                     # must appear in stderr
    code: int = 2
    located: str = "where"              # "where": file:line:column; "flag": names a flag; "": neither


# ───────────────────────────────────── builders ─────────────────────────────────────


def good_experiment(tmp: Path, **replace: str) -> Path:
    text = ECHO_PASS.read_text().replace("../../../targets/echo", str(ECHO))
    for old, new in replace.items():
        text = text.replace(old, new)
    p = tmp / "exp.yaml"
    p.write_text(text)
    return p


def results_doc() -> dict:
    from harness.measure import evaluate
    from harness.measure.synthetic import make_experiment, make_record, steady_samples
    from harness.model import Assertion
    from harness.report.results import results_to_json

    exp = make_experiment("syn", slo=(Assertion("availability", ">=", 0.9, ">= 90%"),))
    rec = make_record(steady_samples(1000, 1010, 20), experiment=exp, t0=1000, t_end=1010, run_id="r-syn")
    return json.loads(json.dumps(results_to_json([evaluate(rec)])))


def results_file(tmp: Path, mutate: Callable[[dict], object] | None = None, text: str | None = None) -> Path:
    d = tmp / "res"
    d.mkdir(exist_ok=True)
    if text is None:
        doc = results_doc()
        if mutate is not None:
            mutate(doc)
        text = json.dumps(doc, indent=1)
    (d / "results.json").write_text(text)
    return d


def fifo(tmp: Path, name: str) -> Path:
    p = tmp / name
    os.mkfifo(p)
    return p


def loop(tmp: Path, name: str) -> Path:
    a, b = tmp / name, tmp / (name + ".other")
    os.symlink(b.name, a)
    os.symlink(a.name, b)
    return a


def sparse(tmp: Path, name: str, size: int) -> Path:
    p = tmp / name
    with open(p, "wb") as f:
        f.truncate(size)
    return p


def a_file(tmp: Path, name: str = "afile", text: str = "x") -> Path:
    p = tmp / name
    p.write_text(text)
    return p


def target_dir(tmp: Path, compose: str, name: str = "tgt") -> Path:
    d = tmp / name
    d.mkdir()
    (d / "compose.yaml").write_text(compose)
    return d


def _set(path: tuple, value: object) -> Callable[[dict], None]:
    def mutate(doc: dict) -> None:
        node = doc
        for k in path[:-1]:
            node = node[k]
        node[path[-1]] = value
    return mutate


def _del(path: tuple) -> Callable[[dict], None]:
    def mutate(doc: dict) -> None:
        node = doc
        for k in path[:-1]:
            node = node[k]
        del node[path[-1]]
    return mutate


def run(tmp: Path, *extra: str, exp: Path | None = None) -> list[str]:
    return ["run", str(exp or good_experiment(tmp)), "--report-dir", str(tmp / "reports"), *extra]


RUN0 = ("runs", 0)
PHASE0 = RUN0 + ("phases", 0)

TABLE: list[Case] = [
    # ── CLI flags ──
    Case("image-empty", "flag", lambda t: run(t, "--image", "web="), "--image", located="flag"),
    Case("image-no-service", "flag", lambda t: run(t, "--image", "=x:1"), "not a service name", located="flag"),
    Case("image-no-equals", "flag", lambda t: run(t, "--image", "web"), "SERVICE=IMAGE", located="flag"),
    Case("image-service-upper", "flag", lambda t: run(t, "--image", "Web=x:1"), "not a service name", located="flag"),
    Case("image-upper", "flag", lambda t: run(t, "--image", "web=UPPER:1"), "must be lowercase", located="flag"),
    Case("image-two-colons", "flag", lambda t: run(t, "--image", "web=a:b:c"), "is not allowed", located="flag"),
    Case("image-short-digest", "flag", lambda t: run(t, "--image", "web=x@sha256:123"), "64 hex digits", located="flag"),
    Case("image-bad-port", "flag", lambda t: run(t, "--image", "web=localhost:0/x:1"), "port", located="flag"),
    Case("image-unknown-service", "flag", lambda t: run(t, "--image", "nosuch=x:1"), "no service 'nosuch'", located="flag"),
    Case("image-twice", "flag", lambda t: run(t, "--image", "web=x:1", "--image", "web=y:1"), "given twice",
         located="flag"),
    Case("image-nul", "flag", lambda t: run(t, "--image", "web=x:1\x00"), "--image", located="flag"),
    Case("image-huge", "flag", lambda t: run(t, "--image", "web=" + "a" * 5000), "far longer", located="flag"),
    Case("target-missing", "flag", lambda t: run(t, "--target", str(t / "nope")), "no such file", located="flag"),
    Case("target-file", "flag", lambda t: run(t, "--target", str(a_file(t))), "not a directory", located="flag"),
    Case("target-loop", "flag", lambda t: run(t, "--target", str(loop(t, "tl"))), "symlink loop", located="flag"),
    Case("target-no-compose", "flag", lambda t: run(t, "--target", str(t)), "no compose.yaml", located="flag"),
    Case("target-nul", "flag", lambda t: run(t, "--target", "a\x00b"), "--target", located="flag"),
    Case("target-fifo", "flag", lambda t: run(t, "--target", str(fifo(t, "tf"))), "not a directory", located="flag"),
    Case("baseline-missing", "flag", lambda t: run(t, "--baseline", str(t / "nope")), "no results.json",
         located="flag"),
    Case("baseline-fifo", "flag", lambda t: run(t, "--baseline", str(fifo(t, "results.json"))), "FIFO",
         located="flag"),
    Case("baseline-bad-json", "flag", lambda t: run(t, "--baseline", str(results_file(t, text="{"))), "not valid JSON",
         located="flag"),
    Case("baseline-nan", "flag", lambda t: run(t, "--baseline", str(results_file(
        t, _set(PHASE0 + ("availability",), float("nan"))))), "NaN", located="flag"),
    Case("run-id-upper", "flag", lambda t: ["up", str(ECHO), "--run-id", "Bad_ID"], "run id", located="flag"),
    Case("run-id-short", "flag", lambda t: ["up", str(ECHO), "--run-id", "x"], "run id", located="flag"),
    Case("down-dotdot", "flag", lambda t: ["down", "../etc"], "run id", located="flag"),
    Case("down-long", "flag", lambda t: ["down", "a" * 40], "run id", located="flag"),
    Case("unknown-flag", "flag", lambda t: run(t, "--bogus"), "unrecognized arguments: --bogus", located="flag"),
    Case("run-no-paths", "flag", lambda t: ["run"], "the following arguments are required", located="flag"),
    Case("validate-no-paths", "flag", lambda t: ["validate"], "the following arguments are required",
         located="flag"),
    Case("unknown-command", "flag", lambda t: ["explode"], "invalid choice", located="flag"),
    Case("gameday-bad-image", "flag", lambda t: ["gameday", str(good_experiment(t)), "--image", "web=", "--report-dir",
                                                 str(t / "gd")], "--image", located="flag"),
    Case("gameday-missing", "flag", lambda t: ["gameday", str(t / "nope.yaml"), "--report-dir", str(t / "gd")],
         "no such file"),
    Case("up-missing-target", "flag", lambda t: ["up", str(t / "nope")], "target does not exist"),
    Case("images-missing-target", "flag", lambda t: ["images", str(t / "nope")], "target does not exist"),
    Case("up-bad-image", "flag", lambda t: ["up", str(ECHO), "--image", "web=a//b"], "empty path component",
         located="flag"),

    # ── report directories ──
    Case("report-dir-file", "report-dir", lambda t: run(t)[:2] + ["--report-dir", str(a_file(t))],
         "exists and is not a directory", located="flag"),
    Case("report-dir-loop", "report-dir", lambda t: run(t)[:2] + ["--report-dir", str(loop(t, "rl"))],
         "symlink loop", located="flag"),
    Case("report-dir-dangling", "report-dir", lambda t: run(t)[:2] + ["--report-dir", str(_dangling(t))],
         "dangling symlink", located="flag"),
    Case("report-dir-under-file", "report-dir", lambda t: run(t)[:2] + ["--report-dir", str(a_file(t) / "sub")],
         "not a directory", located="flag"),
    Case("report-dir-flat-results", "report-dir", lambda t: run(t)[:2] + ["--report-dir", str(results_file(t))],
         "holds a run's reports", located="flag"),
    Case("report-dir-flat-journal", "report-dir", lambda t: run(t)[:2] + ["--report-dir", str(_with(t, "journal.jsonl"))],
         "holds a run's reports", located="flag"),
    Case("report-dir-latest-dir", "report-dir", lambda t: run(t)[:2] + ["--report-dir", str(_with(t, "latest/"))],
         "is not the link", located="flag"),
    Case("report-dir-latest-file", "report-dir", lambda t: run(t)[:2] + ["--report-dir", str(_with(t, "latest"))],
         "is not the link", located="flag"),
    Case("report-dir-nul", "report-dir", lambda t: run(t)[:2] + ["--report-dir", "r\x00"], "not a usable path",
         located="flag"),
    Case("report-dir-too-long", "report-dir", lambda t: run(t)[:2] + ["--report-dir", "r" * 5000],
         "not a usable path", located="flag"),
    Case("report-dir-dev-null", "report-dir", lambda t: run(t)[:2] + ["--report-dir", "/dev/null"],
         "exists and is not a directory", located="flag"),
    Case("report-dir-fifo", "report-dir", lambda t: run(t)[:2] + ["--report-dir", str(fifo(t, "rf"))],
         "exists and is not a directory", located="flag"),
    Case("report-dir-proc", "report-dir", lambda t: run(t)[:2] + ["--report-dir", "/proc/self/status/x"],
         "not a directory", located="flag"),
    Case("gameday-report-dir-file", "report-dir", lambda t: ["gameday", str(good_experiment(t)), "--report-dir",
                                                             str(a_file(t))], "not a directory", located="flag"),
    Case("pytest-style-empty", "report-dir", lambda t: run(t)[:2] + ["--report-dir", ""], "not a usable path",
         located="flag"),

    # ── results files (report, compare) ──
    Case("results-missing", "results", lambda t: ["report", str(t)], "no results.json", located=""),
    Case("results-fifo", "results", lambda t: ["report", str(fifo(t, "results.json"))], "FIFO"),
    Case("results-dir", "results", lambda t: ["report", str(_with(t, "x/results.json/"))], "is a directory",
         located=""),
    Case("results-empty", "results", lambda t: ["report", str(results_file(t, text=""))], "not valid JSON"),
    Case("results-not-json", "results", lambda t: ["report", str(results_file(t, text="{runs: []}"))],
         "not valid JSON"),
    Case("results-nan", "results", lambda t: ["report", str(results_file(t, _set(PHASE0 + ("availability",),
                                                                              float("nan"))))], "NaN"),
    Case("results-infinity", "results", lambda t: ["report", str(results_file(t, _set(RUN0 + ("duration_s",),
                                                                                   float("inf"))))], "NaN and inf"),
    Case("results-minus-infinity", "results", lambda t: ["compare", str(results_file(t)), str(results_file(
        t / "..", _set(RUN0 + ("time_to_recover_s",), float("-inf"))))], "NaN and inf"),
    Case("results-nan-in-extra-key", "results", lambda t: ["report", str(results_file(t, _set(("extra",),
                                                                                           float("nan"))))], "NaN"),
    Case("results-duplicate-key", "results", lambda t: ["report", str(results_file(t, text='{"runs": [], "runs": []}'))],
         "duplicate key", located=""),
    Case("results-deep", "results", lambda t: ["report", str(results_file(t, text="[" * 100000 + "]" * 100000))],
         "nested", located=""),
    Case("results-schema-2", "results", lambda t: ["report", str(results_file(t, _set(("schema_version",), 2)))],
         "schema_version 2"),
    Case("results-schema-string", "results", lambda t: ["report", str(results_file(t, _set(("schema_version",), "1")))],
         "schema_version '1'"),
    Case("results-runs-not-list", "results", lambda t: ["report", str(results_file(t, _set(("runs",), {})))],
         "no 'runs' list"),
    Case("results-no-timeline", "results", lambda t: ["report", str(results_file(t, _del(RUN0 + ("timeline",))))],
         "missing required key 'timeline'"),
    Case("results-bad-verdict", "results", lambda t: ["report", str(results_file(t, _set(RUN0 + ("verdict",),
                                                                                      "MAYBE")))], "verdict"),
    Case("results-availability-string", "results", lambda t: ["report", str(results_file(
        t, _set(PHASE0 + ("availability",), "0.9")))], "availability"),
    Case("results-negative-count", "results", lambda t: ["report", str(results_file(
        t, _set(PHASE0 + ("requests",), -1)))], "requests"),
    Case("results-huge-count", "results", lambda t: ["report", str(results_file(
        t, _set(PHASE0 + ("requests",), 10**30)))], "requests"),
    Case("results-bool-count", "results", lambda t: ["report", str(results_file(
        t, _set(PHASE0 + ("requests",), True)))], "requests"),
    Case("results-timeline-ragged", "results", lambda t: ["report", str(results_file(
        t, _set(RUN0 + ("timeline", "ok"), [1])))], "same length"),
    Case("results-exit-code-2", "results", lambda t: ["report", str(results_file(t, _set(RUN0 + ("exit_code",), 2)))],
         "exit_code"),
    Case("results-phase-list", "results", lambda t: ["report", str(results_file(t, _set(PHASE0, [1, 2])))],
         "phases"),
    Case("results-top-list", "results", lambda t: ["report", str(results_file(t, text="[]"))], "no 'runs' list"),
    Case("results-bad-utf8", "results", lambda t: ["report", str(_bytes(t, b'{"runs": ["\xff"]}'))], "UTF-8",
         located=""),
    Case("results-loop", "results", lambda t: ["report", str(loop(t, "results.json"))], "symlink loop"),
    Case("results-sparse-giant", "results", lambda t: ["report", str(sparse(t, "results.json", 300 * 2**20))],
         "the limit is"),
    Case("results-dev-zero", "results", lambda t: ["compare", "/dev/zero", "/dev/zero"], "character device"),
    Case("compare-candidate-bad", "results", lambda t: ["compare", str(results_file(t)), str(_bytes(t, b"nope"))],
         "not valid JSON"),
    Case("results-latest-dangling", "results", lambda t: ["report", str(_dangling_latest(t))], "no results.json",
         located=""),
    Case("results-valid-report", "results", lambda t: ["report", str(results_file(t))], "", code=0, located=""),
    Case("results-valid-compare", "results", lambda t: ["compare", str(results_file(t)), str(results_file(t))], "",
         code=0, located=""),

    # ── special files given as experiments or targets ──
    Case("experiment-fifo", "special-file", lambda t: run(t, exp=fifo(t, "e.yaml")), "FIFO"),
    Case("experiment-dev-zero", "special-file", lambda t: ["validate", "/dev/zero"], "character device"),
    Case("experiment-dev-tty", "special-file", lambda t: ["validate", "/dev/tty"], ""),
    Case("experiment-socket", "special-file", lambda t: ["validate", str(_socket(t))], "socket"),
    Case("experiment-loop", "special-file", lambda t: run(t, exp=loop(t, "e.yaml")), "symlink loop"),
    Case("experiment-dangling", "special-file", lambda t: run(t, exp=_dangling(t)), "no such file"),
    Case("experiment-sparse-giant", "special-file", lambda t: run(t, exp=sparse(t, "big.yaml", 10 * 2**30)),
         "the limit is 1048576"),
    Case("experiment-nul-path", "special-file", lambda t: run(t, exp=Path("e\x00.yaml")), "NUL"),
    Case("experiment-empty-dir", "special-file", lambda t: run(t, exp=_with(t, "suite/")), "holds no"),
    Case("experiment-dir-only-fifo", "special-file", lambda t: run(t, exp=_fifo_suite(t)), "holds no"),
    Case("plan-fifo", "special-file", lambda t: ["plan", str(fifo(t, "p.yaml"))], "FIFO"),
    Case("target-compose-fifo", "special-file", lambda t: ["validate", str(_target_with_fifo(t))], "FIFO"),
    Case("target-compose-loop", "special-file", lambda t: ["up", str(_target_with_loop(t))], "symlink loop"),
    Case("experiment-target-loop", "special-file", lambda t: run(t, exp=good_experiment(
        t, **{str(ECHO): str(loop(t, "tloop"))})), "cannot be resolved"),
    Case("experiment-target-fifo", "special-file", lambda t: run(t, exp=good_experiment(
        t, **{str(ECHO): str(fifo(t, "tfifo"))})), "is not a directory"),
    Case("locustfile-fifo", "special-file", lambda t: ["up", str(_target_locust_fifo(t))], "is not an existing file"),
    Case("duplicate-names-suite", "special-file", lambda t: run(t, exp=_duplicate_suite(t)), "names must be unique"),
    Case("suite-with-fifo-ignored", "special-file", lambda t: ["validate", str(_suite_with_fifo(t))], "", code=0,
         located=""),
]


def _dangling(t: Path) -> Path:
    p = t / "dangling"
    os.symlink(t / "nowhere", p)
    return p


def _with(t: Path, rel: str) -> Path:
    """A fresh directory holding `rel` (a file, or a directory when it ends with '/')."""
    d = t / "d"
    d.mkdir(exist_ok=True)
    target = d / rel.rstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    if rel.endswith("/"):
        target.mkdir()
    else:
        target.write_text("{}")
    return d if not rel.endswith("/") or rel.count("/") == 1 else d / rel.split("/")[0]


def _bytes(t: Path, data: bytes) -> Path:
    d = t / "b"
    d.mkdir(exist_ok=True)
    (d / "results.json").write_bytes(data)
    return d


def _dangling_latest(t: Path) -> Path:
    d = t / "runs"
    d.mkdir()
    os.symlink("20200101T000000Z-dead", d / "latest")
    return d


def _socket(t: Path) -> Path:
    import socket

    p = t / "s.yaml"
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(p))
    s.close()
    return p


def _fifo_suite(t: Path) -> Path:
    d = t / "suite"
    d.mkdir()
    os.mkfifo(d / "only.yaml")
    return d


def _suite_with_fifo(t: Path) -> Path:
    d = t / "suite"
    d.mkdir()
    os.mkfifo(d / "a-fifo.yaml")
    good_experiment(t).rename(d / "good.yaml")
    return d


def _duplicate_suite(t: Path) -> Path:
    d = t / "suite"
    d.mkdir()
    text = good_experiment(t).read_text()
    (d / "a.yaml").write_text(text)
    (d / "b.yaml").write_text(text)
    return d


def _target_with_fifo(t: Path) -> Path:
    d = t / "tgt"
    d.mkdir()
    os.mkfifo(d / "compose.yaml")
    return d / "compose.yaml"


def _target_with_loop(t: Path) -> Path:
    d = t / "tgt"
    d.mkdir()
    os.symlink("compose.yaml", d / "compose.yaml")
    return d / "compose.yaml"


def _target_locust_fifo(t: Path) -> Path:
    d = target_dir(t, "services:\n  a: {image: 'a:1'}\nx-continuum:\n  load: {locustfile: l.py, profiles: [P]}\n")
    os.mkfifo(d / "l.py")
    return d


# ───────────────────────────── the static corpora as CLI cases ─────────────────────────────


def _expect(path: Path) -> str:
    first = path.read_text(encoding="utf-8", errors="replace").splitlines()[0]
    return first.removeprefix("# expect: ")


def static_cases() -> list[Case]:
    out = []
    for p in sorted((CORPUS / "experiments").glob("*.yaml")):
        out.append(Case(f"experiment/{p.stem}", "experiment",
                        lambda t, p=p: ["run", str(p), "--report-dir", str(t / "reports"), "--plain"], _expect(p)))
    for p in sorted((CORPUS / "targets-bad").glob("*/compose.yaml")):
        out.append(Case(f"target/{p.parent.name}", "target", lambda t, p=p: ["up", str(p.parent)], _expect(p)))
    return out


ALL = static_cases() + TABLE


# ─────────────────────────────────────── running ───────────────────────────────────────


def _snapshot(root: Path) -> dict[str, tuple]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            try:
                st = os.lstat(p)
            except OSError:
                continue
            out[str(p.relative_to(root))] = (st.st_mode, st.st_size, st.st_mtime_ns)
    return out


def run_case(case: Case, tmp: Path) -> tuple[bool, str]:
    """Run one case in `tmp` (empty); (correct, why not)."""
    from harness import cli

    argv = case.argv(tmp)
    before = _snapshot(tmp)
    err, out = io.StringIO(), io.StringIO()
    saved = sys.stderr, sys.stdout
    sys.stderr, sys.stdout = err, out
    try:
        try:
            code = cli.main(argv)
        except SystemExit as exc:             # argparse
            code = exc.code if isinstance(exc.code, int) else 2
    finally:
        sys.stderr, sys.stdout = saved
    text = err.getvalue()
    problems = []
    if code != case.code:
        problems.append(f"exit {code}, expected {case.code}")
    if "Traceback" in text + out.getvalue():
        problems.append("a traceback")
    if case.match and case.match not in text:
        problems.append(f"{case.match!r} not in the message")
    if case.code == 2:
        msg = text.removeprefix("continuum: error: ").removeprefix("error: ")
        if case.located == "where" and not WHERE.search(text):
            problems.append("no file:line:column")
        if case.located == "flag" and not re.search(r"--[a-z-]+|RUN|argument|invalid choice|run id", text):
            problems.append("no flag named")
        after = _snapshot(tmp)
        if after != before:
            changed = sorted(set(after.items()) ^ set(before.items()))[:3]
            problems.append(f"something was written: {changed}")
        del msg
    return (not problems, "; ".join(problems) + f"\n--- stderr:\n{text[-1500:]}")


@pytest.fixture(autouse=True)
def _no_docker(monkeypatch, tmp_path):
    """Validation must refuse before any Docker call: the engine is not even reachable here."""
    import tempfile

    import harness.stack.engine as engine

    def refuse(*a, **k):
        raise AssertionError("Docker was called for a hostile input")

    monkeypatch.setattr(engine, "connect", refuse)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path.parent / (tmp_path.name + "-tmp")))
    Path(tempfile.tempdir).mkdir(exist_ok=True)


@pytest.mark.parametrize("case", ALL, ids=lambda c: c.id)
def test_hostile_case(case: Case, tmp_path: Path) -> None:
    work = tmp_path / "case"
    work.mkdir()
    ok, why = run_case(case, work)
    assert ok, why


def test_corpus_size() -> None:
    by = {}
    for c in ALL:
        by[c.category] = by.get(c.category, 0) + 1
    assert len(ALL) >= 120 and set(by) == {"experiment", "target", "flag", "report-dir", "results", "special-file"}


def main() -> int:
    import tempfile

    import harness.stack.engine as engine

    engine.connect = lambda *a, **k: (_ for _ in ()).throw(AssertionError("Docker was called"))
    counts: dict[str, list[int]] = {}
    failed = []
    for case in ALL:
        with tempfile.TemporaryDirectory() as d:
            work = Path(d) / "case"
            work.mkdir()
            ok, why = run_case(case, work)
        c = counts.setdefault(case.category, [0, 0])
        c[0] += ok
        c[1] += 1
        if not ok:
            failed.append((case.id, why.splitlines()[0]))
    for cat, (ok, n) in counts.items():
        print(f"{cat:14} {ok:4} / {n}")
    total_ok = sum(c[0] for c in counts.values())
    print(f"{'total':14} {total_ok:4} / {len(ALL)} correct")
    for cid, why in failed:
        print(f"  FAILED {cid}: {why}")
    return 0 if not failed else 1


if __name__ == "__main__":
    raise SystemExit(main())
