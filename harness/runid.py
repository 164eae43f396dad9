"""Run ids and owner identity.

A run id names every Docker object of a run. The owner label says which process owns the
run ("host:pid:start-ticks"), so the janitor can tell a live run from an orphan without ever
confusing a reused pid for the original process.
"""

from __future__ import annotations

import os
import re
import secrets
import socket

RUN_ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]{2,30}$")
DETACHED = "detached"  # `continuum up`: the stack outlives the command, `continuum down` ends it


def new_run_id() -> str:
    return "r" + secrets.token_hex(4)


def check_run_id(run_id: str) -> str:
    from harness.errors import InputError

    if not RUN_ID_RE.match(run_id):
        raise InputError(f"run id {run_id!r} must match {RUN_ID_RE.pattern}", field="--run-id")
    return run_id


def _start_ticks(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            stat = f.read()
    except OSError:
        return None
    # Field 22 (starttime) counted after the ")" that closes the command name.
    return stat.rsplit(")", 1)[1].split()[19]


def owner_token(pid: int | None = None) -> str:
    pid = pid or os.getpid()
    return f"{socket.gethostname()}:{pid}:{_start_ticks(pid)}"


def owner_alive(token: str) -> bool:
    """True when the owning process still runs (or lives on another host, which we cannot see)."""
    if token == DETACHED:
        return True
    try:
        host, pid_s, ticks = token.rsplit(":", 2)
        pid = int(pid_s)
    except ValueError:
        return False
    if host != socket.gethostname():
        return True  # not ours to judge
    return _start_ticks(pid) == ticks
