"""Is a run's owner still alive? A lease on the engine itself, held open by the reaper's connection.

The janitor and `continuum down` must never remove a live run of another job, and the judge must
work whatever separates the two: another PID namespace (two CI jobs in two containers sharing
one engine), another host (a remote engine), the same pid reused. So liveness is not read from
/proc: it is held on the engine. Each run's reaper, before the harness creates anything, makes
a tiny container `continuum-<run>.lease` running `cat` with stdin open and `StdinOnce`, attaches
to its stdin over its own connection, and only then starts it (the order `docker run -i` uses,
so no moment exists where it runs with nobody attached). The reaper never writes to it; the
connection is the lease. However the reaper ends (done, SIGKILL, its job's container or host
gone), the engine sees that connection close, closes the container's stdin, `cat` exits, and
the lease reads `exited`. The engine's own view decides:

    running                          alive: the owner holds the lease (from wherever it runs)
    created, younger than START_S    starting: the reaper is between create and start
    exited, dead, or stale created   gone: provably, the owner no longer holds it
    no lease container               unknown: made by an older harness or by hand; only
                                     `continuum down RUN` (or --all) removes it
    owner label "detached"           detached: `continuum up`, meant to outlive its command

The name has a '.', which no service or instance name may contain, so it can never collide with
a target's container. The lease costs one small container per run (~0.3 s to start, in
parallel with nothing: it is made before the reaper acknowledges).
"""

from __future__ import annotations

import datetime as _dt
import logging
from dataclasses import dataclass
from typing import Any, Literal

import docker

from harness import OWNER_LABEL, RUN_LABEL, TARGET_LABEL
from harness.errors import HarnessError
from harness.runid import DETACHED
from harness.stack.engine import docker_errors

log = logging.getLogger(__name__)

ROLE_LABEL = "io.continuum.role"
LEASE_ROLE = "lease"
LEASE_IMAGE = "debian:bookworm-slim"      # BASE_IMAGE: present wherever the harness has run
START_S = 60.0                            # a lease 'created' for longer than this is stale

OwnerState = Literal["alive", "starting", "gone", "unknown", "detached"]


def lease_name(run_id: str) -> str:
    return f"continuum-{run_id}.lease"


class Lease:
    """Held by the reaper process for the run's lifetime (see module docstring)."""

    def __init__(self, client: docker.DockerClient, run_id: str, owner: str, target: str = ""):
        self.client = client
        self.run_id = run_id
        self.labels = {RUN_LABEL: run_id, OWNER_LABEL: owner, ROLE_LABEL: LEASE_ROLE}
        if target:
            self.labels[TARGET_LABEL] = target
        self._socket: Any = None
        self._id: str | None = None

    def acquire(self) -> "Lease":
        # Once more on runc's "cannot start a stopped process": seen once in a CI rehearsal at
        # load ~20 (`cat` read EOF and exited while the engine was starting it). The failed
        # container is removed first: the name is the run's, and nothing of it may leak.
        for attempt in range(3):
            try:
                return self._acquire_once()
            except HarnessError as exc:
                if "cannot start a stopped process" not in str(exc) or attempt == 2:
                    raise
                log.warning("lease of run %s: %s; once more", self.run_id, exc)
                self.release()
                self._id = None
        raise AssertionError("unreachable")

    def _acquire_once(self) -> "Lease":
        api = self.client.api
        with docker_errors(f"could not create the lease container of run {self.run_id}"):
            created = api.create_container(
                LEASE_IMAGE, command=["cat"], name=lease_name(self.run_id), labels=self.labels,
                # stdin_open sets OpenStdin, AttachStdin and StdinOnce: the engine closes the
                # container's stdin when the one attached client (the reaper) goes away.
                stdin_open=True, tty=False,
                host_config=api.create_host_config(network_mode="none", mem_limit="16m",
                                                   pids_limit=4, cap_drop=["ALL"]),
            )
            self._id = created["Id"]
            # Attach before start: there is never a moment when it runs with no holder.
            self._socket = api.attach_socket(self._id, params={"stdin": 1, "stream": 1})
            api.start(self._id)
        return self

    def release(self) -> None:
        """Remove the lease (a detached stack has no owner to track)."""
        self._close()
        if self._id is not None:
            with docker_errors(f"could not remove the lease container of run {self.run_id}"):
                try:
                    self.client.api.remove_container(self._id, force=True)
                except docker.errors.NotFound:
                    pass

    def _close(self) -> None:
        sock, self._socket = self._socket, None
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass


@dataclass(frozen=True)
class LeaseView:
    state: str                  # the lease container's State.Status
    created: str                # RFC 3339, the engine's clock


def leases(client: docker.DockerClient) -> dict[str, LeaseView]:
    """run id → its lease, as the engine sees it (one list call)."""
    out: dict[str, LeaseView] = {}
    with docker_errors("could not list the runs' leases"):
        listed = client.api.containers(all=True, filters={"label": f"{ROLE_LABEL}={LEASE_ROLE}"})
    for c in listed:
        run_id = (c.get("Labels") or {}).get(RUN_LABEL)
        if run_id:
            created = _dt.datetime.fromtimestamp(int(c.get("Created", 0)), _dt.timezone.utc).isoformat()
            out[run_id] = LeaseView(state=c.get("State", ""), created=created)
    return out


def engine_now(client: docker.DockerClient) -> _dt.datetime:
    """The engine's clock (its SystemTime), so a stale lease is judged on one clock."""
    with docker_errors("could not read the engine's clock"):
        text = str(client.api.info().get("SystemTime", ""))
    try:
        return _parse_rfc3339(text)
    except ValueError:
        return _dt.datetime.now(_dt.timezone.utc)


def _parse_rfc3339(text: str) -> _dt.datetime:
    # 2026-01-02T10:15:00.123456789Z or ...+01:00; Python reads at most 6 fractional digits.
    text = text.strip().replace("Z", "+00:00")
    if "." in text:
        head, _, rest = text.partition(".")
        # Only the fraction's own digits: those of a "+00:00" after it are the zone's.
        digits = rest[:len(rest) - len(rest.lstrip("0123456789"))]
        tz = rest[len(digits):]
        text = f"{head}.{digits[:6]}{tz}"
    return _dt.datetime.fromisoformat(text)


def owner_state(owner_label: str, lease: LeaseView | None, now: _dt.datetime) -> OwnerState:
    """What the engine says about a run's owner (see module docstring)."""
    if owner_label == DETACHED:
        return "detached"
    if lease is None:
        return "unknown"
    if lease.state in ("running", "paused"):     # paused: frozen, but the holder may be alive
        return "alive"
    if lease.state in ("created", "restarting"):
        age = (now - _dt.datetime.fromisoformat(lease.created)).total_seconds()
        return "starting" if age < START_S else "gone"
    if lease.state in ("exited", "dead", "removing"):
        return "gone"
    return "unknown"
