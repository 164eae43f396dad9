"""Files in and out of containers through the Docker API (get_archive / put_archive): what a
backup copies out into the run's folder and a restore copies into a fresh container.

The engine speaks tar. Python's `tarfile` reads and writes it (why not a `docker cp` child
process: the SDK call is already bounded and its errors go through `docker_errors`). Out, only a
single regular file is accepted (no links, no directories, no names climbing out) and the
stream is written to disk as it comes, bounded in size and time; in, one member, owned by root
and readable by all, so a service running as its own user can read it.
"""

from __future__ import annotations

import io
import os
import posixpath
import tarfile
import tempfile
import time
from pathlib import Path

from docker.models.containers import Container

from harness.errors import FaultError
from harness.stack.engine import docker_errors

MAX_FILE_BYTES = 1 << 30        # 1 GiB: a snapshot bigger than this does not belong in a drill
CHUNK = 1 << 20


def copy_out(container: Container, name: str, path: str, dest: Path, timeout_s: float) -> int:
    deadline = time.monotonic() + timeout_s
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile(dir=dest.parent) as raw:
        with docker_errors(f"copying {path} out of {name}", FaultError):
            stream, stat = container.get_archive(path, chunk_size=CHUNK)
            if not stat or stat.get("size", 0) > MAX_FILE_BYTES:
                raise FaultError(f"{name}:{path} is {stat.get('size') if stat else '?'} bytes; "
                                 f"at most {MAX_FILE_BYTES} are copied out")
            total = 0
            for chunk in stream:
                total += len(chunk)
                if total > MAX_FILE_BYTES + CHUNK:
                    raise FaultError(f"{name}:{path}: the archive exceeds {MAX_FILE_BYTES} bytes")
                if time.monotonic() > deadline:
                    raise FaultError(f"copying {path} out of {name} took more than {timeout_s:g} s")
                raw.write(chunk)
        raw.seek(0)
        try:
            with tarfile.open(fileobj=raw, mode="r:") as tar:
                members = tar.getmembers()
                if len(members) != 1 or not members[0].isreg():
                    kinds = ", ".join(f"{m.name} ({'file' if m.isreg() else 'not a file'})" for m in members)
                    raise FaultError(f"{name}:{path} is not one regular file ({kinds or 'empty'})")
                src = tar.extractfile(members[0])
                assert src is not None      # a regular member always has a body
                tmp = dest.with_name(dest.name + ".part")
                with open(tmp, "wb") as out:
                    while block := src.read(CHUNK):
                        out.write(block)
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(tmp, dest)
                return members[0].size
        except tarfile.TarError as exc:
            raise FaultError(f"copying {path} out of {name}: the engine's archive is unreadable "
                             f"({exc})") from exc


def copy_in(container: Container, name: str, src: Path, path: str, timeout_s: float) -> None:
    directory, base = posixpath.split(path)
    size = src.stat().st_size
    if size > MAX_FILE_BYTES:
        raise FaultError(f"{src} is {size} bytes; at most {MAX_FILE_BYTES} are copied in")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:") as tar, open(src, "rb") as body:
        info = tarfile.TarInfo(base)
        info.size, info.mode, info.mtime = size, 0o644, int(time.time())
        tar.addfile(info, body)
    started = time.monotonic()
    with docker_errors(f"copying {src.name} into {name}:{path}", FaultError):
        ok = container.put_archive(directory or "/", buf.getvalue())
    if not ok:
        raise FaultError(f"the engine refused to copy {src.name} into {name}:{path}")
    if time.monotonic() - started > timeout_s:
        raise FaultError(f"copying {src.name} into {name} took more than {timeout_s:g} s")
