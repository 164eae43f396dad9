"""Removing every object of a run, by label. Shared by `down`, the reaper and the janitor.

Only objects carrying our run-id label are ever listed, so nothing unlabelled can be touched.
The run's lease (harness.stack.lease) goes last: while anything of the run is left, the lease
still says whether its owner is alive.
"""

from __future__ import annotations

import datetime as _dt
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import docker
from docker.errors import APIError, NotFound

from harness import OWNER_LABEL, RUN_LABEL, SERVICE_LABEL, TARGET_LABEL
from harness.stack.engine import docker_errors
from harness.stack.lease import LEASE_ROLE, ROLE_LABEL, OwnerState, engine_now, leases, owner_state

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    owner: str                  # the owner label, for people ("host:pid" or "detached")
    target: str
    containers: int             # the target's and the harness's containers, not the lease
    running: int
    networks: int
    state: OwnerState = "unknown"   # from the lease: alive, starting, gone, unknown, detached
    volumes: int = 0


def run_filter(run_id: str) -> dict[str, str]:
    return {"label": f"{RUN_LABEL}={run_id}"}


def list_runs(client: docker.DockerClient) -> list[RunInfo]:
    runs: dict[str, dict] = {}
    with docker_errors("could not list the runs on the engine"):
        # The low-level list: no per-container inspect, so a container removed meanwhile is no error.
        containers = client.api.containers(all=True, filters={"label": RUN_LABEL})
        networks = client.api.networks(filters={"label": RUN_LABEL})
        held = leases(client)
        # The engine's clock only matters for a lease caught between create and start.
        now = engine_now(client) if any(v.state in ("created", "restarting") for v in held.values()) \
            else _dt.datetime.now(_dt.timezone.utc)
    for c in containers:
        labels = c.get("Labels") or {}
        r = runs.setdefault(labels[RUN_LABEL], {"owner": "", "target": "", "c": 0, "up": 0, "n": 0})
        r["owner"] = labels.get(OWNER_LABEL, r["owner"]) or r["owner"]
        r["target"] = labels.get(TARGET_LABEL, r["target"]) or r["target"]
        if labels.get(ROLE_LABEL) == LEASE_ROLE:
            continue
        r["c"] += 1
        r["up"] += c.get("State") == "running"
    for n in networks:
        labels = n.get("Labels") or {}
        r = runs.setdefault(labels[RUN_LABEL], {"owner": "", "target": "", "c": 0, "up": 0, "n": 0})
        r["owner"] = r["owner"] or labels.get(OWNER_LABEL, "")
        r["n"] += 1
    for v in (client.api.volumes(filters={"label": RUN_LABEL}) or {}).get("Volumes") or []:
        labels = v.get("Labels") or {}
        r = runs.setdefault(labels[RUN_LABEL], {"owner": "", "target": "", "c": 0, "up": 0, "n": 0})
        r["owner"] = r["owner"] or labels.get(OWNER_LABEL, "")
        r["v"] = r.get("v", 0) + 1
    return [
        RunInfo(rid, r["owner"], r["target"], r["c"], r["up"], r["n"],
                owner_state(r["owner"], held.get(rid), now), r.get("v", 0))
        for rid, r in sorted(runs.items())
    ]


def _remove_container(client: docker.DockerClient, container_id: str) -> None:
    try:
        client.api.remove_container(container_id, force=True, v=True)
    except NotFound:
        pass
    except APIError as exc:
        if "already in progress" not in str(exc):  # a concurrent remover got there first
            raise


def remove_run(client: docker.DockerClient, run_id: str) -> tuple[int, int]:
    """Remove the run's containers (in parallel: teardown speed matters), then its networks, its
    volumes, then its lease. Returns (containers removed, networks removed), the lease not counted.
    Idempotent; engine errors become harness errors (harness.stack.engine.docker_errors)."""
    with docker_errors(f"could not remove run {run_id}"):
        listed = client.api.containers(all=True, filters=run_filter(run_id))
        labels = {c["Id"]: (c.get("Labels") or {}) for c in listed}
        lease_ids = [cid for cid, lab in labels.items() if lab.get(ROLE_LABEL) == LEASE_ROLE]
        # Namespace helpers first: they hold their targets' namespaces, and a target removed
        # before its helper leaves endpoints behind that block its networks' removal.
        helpers = [cid for cid, lab in labels.items()
                   if lab.get(SERVICE_LABEL) == "netexec" and cid not in lease_ids]  # netexec.HELPER_SERVICE
        containers = [cid for cid in labels if cid not in lease_ids and cid not in helpers]
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda cid: _remove_container(client, cid), helpers))
            list(pool.map(lambda cid: _remove_container(client, cid), containers))
        containers += helpers
        removed_n = 0
        for n in client.networks.list(filters=run_filter(run_id), greedy=False):
            for attempt in range(3):
                try:
                    n.remove()
                    removed_n += 1
                    break
                except NotFound:
                    break
                except APIError as exc:  # "has active endpoints" while a removal settles
                    log.debug("network %s not removed yet: %s", n.name, exc)
                    time.sleep(0.2 * (attempt + 1))
        # Volumes after the containers: a container being removed still holds its volumes.
        for v in (client.api.volumes(filters=run_filter(run_id)) or {}).get("Volumes") or []:
            for attempt in range(3):
                try:
                    client.api.remove_volume(v["Name"], force=True)
                    break
                except NotFound:
                    break
                except APIError as exc:
                    log.debug("volume %s not removed yet: %s", v["Name"], exc)
                    time.sleep(0.2 * (attempt + 1))
        for cid in lease_ids:
            _remove_container(client, cid)
    return len(containers), removed_n
