"""Run ids and the owner label.

A run id names every Docker object of a run. The owner label ("host@pidns:pid:start-ticks" of
the harness process that made the run, or "detached") is for people reading `continuum ps`:
whether the owner is alive is never judged from it (a pid means nothing in another PID
namespace or on another host). Liveness is the run's lease on the engine, held by its reaper:
harness.stack.lease.

The host part names the PID namespace too ("ci-runner@pidns4026531836"): an older harness
sharing the engine, which still judges owners from /proc when the host part is its own
hostname, then sees "another host" and leaves the run alone instead of mistaking a pid of
another namespace for a dead process of its own.
"""

from __future__ import annotations

import os
import re
import secrets
import socket

RUN_ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]{2,30}$")
DETACHED = "detached"  # `continuum up`: the stack outlives the command, `continuum down RUN` ends it


def new_run_id() -> str:
    return "r" + secrets.token_hex(4)


def check_run_id(run_id: str) -> str:
    from harness.errors import InputError

    if not isinstance(run_id, str) or not RUN_ID_RE.match(run_id):
        raise InputError(f"run id {str(run_id)[:80]!r} must match {RUN_ID_RE.pattern}", field="--run-id")
    return run_id


def owner_token(pid: int | None = None) -> str:
    """"host@pidns:pid:start-ticks" of the owning process, for people; see the module docstring."""
    pid = pid or os.getpid()
    return f"{socket.gethostname()}@{_pid_namespace()}:{pid}:{_start_ticks(pid)}"


def _pid_namespace() -> str:
    try:
        return "pidns" + os.readlink("/proc/self/ns/pid").partition("[")[2].rstrip("]")
    except OSError:
        return "pidns?"


def _start_ticks(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return "0"
