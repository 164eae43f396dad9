"""Removing every object of a run, by label. Shared by `down`, the reaper and the janitor.

Only objects carrying our run-id label are ever listed, so nothing unlabelled can be touched.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import docker
from docker.errors import APIError, NotFound

from harness import OWNER_LABEL, RUN_LABEL, TARGET_LABEL

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    owner: str
    target: str
    containers: int
    running: int
    networks: int
    volumes: int = 0


def run_filter(run_id: str) -> dict[str, str]:
    return {"label": f"{RUN_LABEL}={run_id}"}


def list_runs(client: docker.DockerClient) -> list[RunInfo]:
    runs: dict[str, dict] = {}
    # The low-level list: no per-container inspect, so a container removed meanwhile is no error.
    for c in client.api.containers(all=True, filters={"label": RUN_LABEL}):
        labels = c["Labels"]
        r = runs.setdefault(labels[RUN_LABEL], {"owner": "", "target": "", "c": 0, "up": 0, "n": 0})
        r["owner"] = labels.get(OWNER_LABEL, r["owner"])
        r["target"] = labels.get(TARGET_LABEL, r["target"])
        r["c"] += 1
        r["up"] += c["State"] == "running"
    for n in client.api.networks(filters={"label": RUN_LABEL}):
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
        RunInfo(rid, r["owner"], r["target"], r["c"], r["up"], r["n"], r.get("v", 0))
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
    """Remove the run's containers (in parallel: teardown speed matters), its networks, then its
    volumes.

    Returns (containers removed, networks removed). Idempotent.
    """
    containers = [c["Id"] for c in client.api.containers(all=True, filters=run_filter(run_id))]
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda cid: _remove_container(client, cid), containers))
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
    # Volumes last: a container being removed still holds its volumes.
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
    return len(containers), removed_n
