"""Pure parts of the Docker backend: the apt mirror for offline builds, run ids and owner
tokens, the context hash that makes warm image runs free, dependency levels."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness.errors import ImageError, InputError
from harness.model import NetworkSpec, ServiceSpec, Target
import datetime as dt

from harness.runid import DETACHED, check_run_id, new_run_id, owner_token
from harness.stack.lease import LeaseView, lease_name, owner_state
from harness.stack.images import apt_mirror, context_hash
from harness.stack.stack import dependency_levels


def _apt(tmp_path: Path, sources: str | None = None, deb822: str | None = None) -> Path:
    (tmp_path / "sources.list.d").mkdir(parents=True)
    if sources is not None:
        (tmp_path / "sources.list").write_text(sources)
    if deb822 is not None:
        (tmp_path / "sources.list.d" / "debian.sources").write_text(deb822)
    return tmp_path


def test_mirror_from_deb822_skips_security(tmp_path):
    root = _apt(tmp_path, deb822=(
        "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\n\n"
        "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\n"
    ))
    assert apt_mirror(root) == "http://mirror.example/debian"


def test_mirror_from_one_line_format(tmp_path):
    root = _apt(tmp_path, sources="# comment\ndeb [arch=amd64] http://local.mirror/debian bookworm main\n")
    assert apt_mirror(root) == "http://local.mirror/debian"


def test_no_mirror_is_a_clear_error(tmp_path):
    with pytest.raises(ImageError, match="no Debian mirror"):
        apt_mirror(_apt(tmp_path, sources=""))


def test_context_hash_changes_with_content_and_mode(tmp_path):
    (tmp_path / "Dockerfile").write_text("FROM debian:bookworm-slim\n")
    (tmp_path / "app.py").write_text("print(1)\n")
    h1 = context_hash(tmp_path, "Dockerfile")
    assert context_hash(tmp_path, "Dockerfile") == h1
    (tmp_path / "app.py").write_text("print(2)\n")
    h2 = context_hash(tmp_path, "Dockerfile")
    assert h2 != h1
    os.chmod(tmp_path / "app.py", 0o755)
    assert context_hash(tmp_path, "Dockerfile") != h2


def test_run_ids_and_owner_tokens():
    rid = new_run_id()
    assert check_run_id(rid) == rid
    for bad in ("", "A", "x;rm -rf /", "../up", "a" * 40):
        with pytest.raises(InputError):
            check_run_id(bad)
    host, pid, _ticks = owner_token().rsplit(":", 2)
    assert host.startswith(f"{os.uname().nodename}@pidns") and pid == str(os.getpid())


def test_owner_state_comes_from_the_lease_never_from_proc():
    now = dt.datetime(2026, 1, 2, 10, 0, 0, tzinfo=dt.timezone.utc)
    at = lambda s: (now - dt.timedelta(seconds=s)).isoformat()  # noqa: E731
    # A pid that does not exist here says nothing: only the lease on the engine counts.
    assert owner_state("otherhost:999999", LeaseView("running", at(3600)), now) == "alive"
    assert owner_state(owner_token(), LeaseView("exited", at(5)), now) == "gone"
    assert owner_state(owner_token(), LeaseView("dead", at(5)), now) == "gone"
    assert owner_state("h:1", LeaseView("created", at(5)), now) == "starting"
    assert owner_state("h:1", LeaseView("created", at(3600)), now) == "gone"
    assert owner_state("h:1", LeaseView("paused", at(5)), now) == "alive"
    assert owner_state("h:1", None, now) == "unknown", "no lease: never provably gone"
    assert owner_state(DETACHED, None, now) == "detached"
    assert owner_state(DETACHED, LeaseView("exited", at(5)), now) == "detached"
    # The lease's name can never be a target's container: no instance name has a '.'.
    assert "." in lease_name("r1234")


def test_dependency_levels():
    svc = lambda n, *d: ServiceSpec(name=n, image="img", networks=("n",), depends_on=d)  # noqa: E731
    t = Target(name="t", root=Path("/"), services=(svc("lb", "app"), svc("app", "db", "cache"), svc("db"), svc("cache")),
               networks=(NetworkSpec(name="n"),))
    assert [[s.name for s in level] for level in dependency_levels(t)] == [["db", "cache"], ["app"], ["lb"]]


def test_engine_clock_with_nanoseconds_keeps_its_zone():
    """Docker's SystemTime has 8-9 fractional digits and a Z: the zone must survive the trim
    (it was read as more digits, leaving a naive time the janitor could not compare)."""
    import datetime as dt

    from harness.stack.lease import _parse_rfc3339

    t = _parse_rfc3339("2026-12-02T08:10:46.13062662Z")
    assert t == dt.datetime(2026, 12, 2, 8, 10, 46, 130626, tzinfo=dt.timezone.utc)
    assert _parse_rfc3339("2026-01-02T10:15:00.123456789+01:00").utcoffset() == dt.timedelta(hours=1)
