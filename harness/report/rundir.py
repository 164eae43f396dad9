"""Report directories: every run writes into a new folder of its own; nothing is overwritten.

    reports/ci/                          --report-dir: a directory of runs
      20260102T101500Z-3f2a/             one run (a suite): junit.xml, results.json, report.html,
      20260102T111000Z-9c01/               journal.jsonl, continuum.log
      latest -> 20260102T111000Z-9c01    the run started most recently (complete or not)

A run folder is created with `mkdir` (it fails if the name exists), so two runs, even at the same
second from two CI jobs on one machine, never share one; the journal is created exclusively in
it, so a journal is never appended to another run's. `latest` is replaced atomically (a new link,
then `rename`) the moment a run starts, so it never points at an older run while a newer one
is being written: a crashed run shows as a `latest` without results.json, never as the previous
run's green reports.

Readers (`continuum report`, `compare`, `--baseline`) accept a run folder, a directory of runs
(they read its `latest`), or a results.json itself (`resolve_run`).
"""

from __future__ import annotations

import datetime as _dt
import errno
import os
import secrets
from pathlib import Path

from harness.errors import InputError
from harness.yamlsafe import path_problem

LATEST = "latest"
RUN_FILES = ("results.json", "journal.jsonl", "junit.xml", "report.html")
MAX_PATH = 4096


def check_root(value: str, flag: str = "--report-dir") -> Path:
    """Validate a --report-dir before anything is written: exit 2 with the reason if it cannot
    hold runs. Writes nothing."""
    if not value or "\x00" in value or len(value) > MAX_PATH:
        raise InputError(f"{flag} {value[:80]!r}: not a usable path (empty, a NUL byte, or longer "
                         f"than {MAX_PATH})", field=flag)
    root = Path(value)
    try:
        st = os.stat(root)
    except FileNotFoundError:
        st = None
        if os.path.islink(root):
            raise InputError(f"{flag} {value}: a dangling symlink", field=flag) from None
    except OSError as exc:
        raise InputError(f"{flag} {value}: {path_problem(root)}", field=flag) from None
    if st is not None:
        if not os.path.isdir(root):
            raise InputError(f"{flag} {value}: exists and is not a directory", field=flag)
        latest = root / LATEST
        if os.path.lexists(latest) and not os.path.islink(latest):
            raise InputError(f"{flag} {value}: {latest} exists and is not the link Continuum keeps "
                             "to the newest run; move it away or choose another directory",
                             field=flag)
        held = [n for n in RUN_FILES if os.path.lexists(root / n)]
        if held:
            raise InputError(f"{flag} {value}: holds a run's reports itself ({', '.join(held)}); "
                             "each run now writes a folder of its own under --report-dir, so give "
                             "a new directory (or the parent of this one)", field=flag)
    _check_writable(root, flag, value)
    return root


def _check_writable(root: Path, flag: str, value: str) -> None:
    probe = root
    while not os.path.lexists(probe):
        if probe.parent == probe:
            break
        probe = probe.parent
    if os.path.lexists(probe) and not os.path.isdir(probe):
        raise InputError(f"{flag} {value}: {probe} is not a directory", field=flag)
    if not os.access(probe, os.W_OK | os.X_OK):
        raise InputError(f"{flag} {value}: {probe} is not writable", field=flag)
    try:
        if os.statvfs(probe).f_flag & os.ST_RDONLY:
            raise InputError(f"{flag} {value}: {probe} is on a read-only file system", field=flag)
    except OSError:
        pass


def claim(root: Path) -> Path:
    """Create a new run folder under `root` and point `latest` at it. Returns the folder."""
    root.mkdir(parents=True, exist_ok=True)
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    for _ in range(20):
        run_dir = root / f"{stamp}-{secrets.token_hex(2)}"
        try:
            run_dir.mkdir()
        except FileExistsError:
            continue
        break
    else:   # pragma: no cover - 20 collisions of 16 random bits within one second
        raise OSError(errno.EEXIST, f"could not create a new run folder under {root}")
    point_latest(root, run_dir.name)
    return run_dir


def point_latest(root: Path, name: str) -> None:
    tmp = root / f".{LATEST}.{secrets.token_hex(4)}"
    os.symlink(name, tmp)
    try:
        os.replace(tmp, root / LATEST)
    except BaseException:
        os.unlink(tmp)
        raise


def resolve_run(path: Path) -> Path:
    """The run folder a reader means: `path` itself if it holds results.json, else its
    `latest`. Returns a path even when nothing is there (the reader reports what is missing)."""
    if (path / "results.json").exists() or not os.path.lexists(path / LATEST):
        return path
    return path / LATEST


def same_place(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return Path(os.path.abspath(a)) == Path(os.path.abspath(b))
