"""Hostile input: every file in the corpus must fail with an InputError naming file:line:column,
never another exception, and `validate` must exit 2 without a traceback."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from harness.errors import InputError
from harness.loader import load_experiment
from harness.loader import load_target
from harness.yamlsafe import load_yaml

CORPUS = Path(__file__).parent / "corpus"
REPO = Path(__file__).resolve().parents[2]
BAD_EXPERIMENTS = sorted((CORPUS / "experiments").glob("*.yaml"))
BAD_TARGETS = sorted((CORPUS / "targets-bad").glob("*/compose.yaml"))
WHERE = re.compile(r"^\S+:\d+:\d+: ")
VALIDATE = "import sys; from harness.plan import cmd_validate; sys.exit(cmd_validate(sys.argv[1:]))"


def expected(path: Path) -> str:
    first = path.read_text(encoding="utf-8", errors="replace").splitlines()[0]
    assert first.startswith("# expect: "), f"{path} needs a '# expect: ...' first line"
    return first[len("# expect: "):]


def check(exc: InputError, path: Path) -> None:
    msg = str(exc)
    assert WHERE.match(msg), msg
    assert expected(path) in msg, msg


def validate_subprocess(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", VALIDATE, *args], cwd=REPO, capture_output=True,
                          text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(REPO)})


def test_corpus_is_not_empty() -> None:
    assert len(BAD_EXPERIMENTS) >= 90 and len(BAD_TARGETS) >= 60


@pytest.mark.parametrize("path", BAD_EXPERIMENTS, ids=lambda p: p.stem)
def test_bad_experiment_raises_input_error_with_location(path: Path) -> None:
    with pytest.raises(InputError) as info:
        load_experiment(path)
    check(info.value, path)
    assert str(path) in str(info.value) or "compose.yaml" in str(info.value)


@pytest.mark.parametrize("path", BAD_TARGETS, ids=lambda p: p.parent.name)
def test_bad_target_raises_input_error_with_location(path: Path) -> None:
    with pytest.raises(InputError) as info:
        load_target(path.parent)
    check(info.value, path)


def test_validate_exits_2_without_traceback() -> None:
    """One real `validate` process over the whole corpus (it reports every bad file, not only
    the first): exit 2, one located error per file, no traceback. Each file is also run through
    `continuum run`/`up` in-process by test_hostile_cli.py."""
    proc = validate_subprocess(*map(str, BAD_EXPERIMENTS + BAD_TARGETS))
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr + proc.stdout
    errors = [line.removeprefix("error: ") for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == len(BAD_EXPERIMENTS) + len(BAD_TARGETS), proc.stderr[-3000:]
    assert all(WHERE.match(e) for e in errors), [e for e in errors if not WHERE.match(e)][:3]
    assert f"{len(errors)} invalid file(s)" in proc.stderr


def test_python_tag_never_executes(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    f = tmp_path / "e.yaml"
    f.write_text(f"name: !!python/object/apply:os.system ['touch {marker}']\n")
    with pytest.raises(InputError, match=r"e\.yaml:1:7: .*not allowed"):
        load_yaml(f)
    assert not marker.exists()


def test_ten_megabyte_file_is_refused_before_parsing(tmp_path: Path) -> None:
    f = tmp_path / "huge.yaml"
    with f.open("w") as fh:
        fh.write("name: x\nfaults:\n")
        line = "  - {at: 1s, action: container.kill, select: {service: app}}\n"
        fh.write(line * (10 * 1024 * 1024 // len(line) + 1))
    assert f.stat().st_size > 10 * 1024 * 1024
    with pytest.raises(InputError, match=r"huge\.yaml:1:1: .*limit is 1048576 bytes"):
        load_experiment(f)
    proc = validate_subprocess(str(f))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


def test_invalid_utf8(tmp_path: Path) -> None:
    f = tmp_path / "bad.yaml"
    f.write_bytes(b"name: x\ndescription: \xff\xfe\n")
    with pytest.raises(InputError, match=r"bad\.yaml:2:14: .*UTF-8"):
        load_experiment(f)


def test_symlinked_build_context_cannot_escape(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "Dockerfile").write_text("FROM scratch\n")
    root = tmp_path / "tgt"
    root.mkdir()
    (root / "ctx").symlink_to(outside)
    (root / "compose.yaml").write_text("services:\n  a: {image: 'a:1', build: ctx}\n")
    with pytest.raises(InputError, match=r"compose\.yaml:2:\d+: .*escapes the target directory"):
        load_target(root)


def test_missing_file_and_directory_inputs(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r":1:1: "):
        load_experiment(tmp_path / "nope.yaml")
    with pytest.raises(InputError, match=r":1:1: "):
        load_experiment(tmp_path)
    proc = validate_subprocess(str(tmp_path / "nope.yaml"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
