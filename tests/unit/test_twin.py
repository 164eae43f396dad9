"""The fragile twin must be loaded exactly like the reference, or a comparison between them
measures the load profile instead of the design. Its locustfile is a copy (a target may not
reach outside its own directory); this keeps the copy honest."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _body(path: Path) -> list[str]:
    lines = path.read_text().splitlines()
    return lines[1:]  # the first docstring line names the target


def test_twin_load_profile_is_the_reference_profile():
    assert _body(ROOT / "targets/reference-fragile/locustfile.py") == _body(ROOT / "targets/reference/locustfile.py")


def test_pair_fixture_profile_is_the_echo_profile():
    assert (ROOT / "tests/fixtures/pair/locustfile.py").read_text() == (ROOT / "targets/echo/locustfile.py").read_text()
