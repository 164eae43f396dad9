"""Removing every object of a run, by label. Shared by `down`, the reaper and the janitor.

Only objects carrying our run-id label are ever listed, so nothing unlabelled can be touched.
"""

from __future__ import annotations

import logging
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


def run_filter(run_id: str) -> dict[str, str]:
    return {"label": f"{RUN_LABEL}={run_id}"}


def list_runs(client: docker.DockerClient) -> list[RunInfo]:
    runs: dict[str, dict] = {}
    for c in client.containers.list(all=True, filters={"label": RUN_LABEL}):
        labels = c.labels
        r = runs.setdefault(labels[RUN_LABEL], {"owner": "", "target": "", "c": 0, "up": 0, "n": 0})
        r["owner"] = labels.get(OWNER_LABEL, r["owner"])
        r["target"] = labels.get(TARGET_LABEL, r["target"])
        r["c"] += 1
        r["up"] += c.status == "running"
    for n in client.networks.list(filters={"label": RUN_LABEL}):
        labels = n.attrs.get("Labels") or {}
        r = runs.setdefault(labels[RUN_LABEL], {"owner": "", "target": "", "c": 0, "up": 0, "n": 0})
        r["owner"] = r["owner"] or labels.get(OWNER_LABEL, "")
        r["n"] += 1
    return [
        RunInfo(rid, r["owner"], r["target"], r["c"], r["up"], r["n"]) for rid, r in sorted(runs.items())
    ]


def _remove_container(c) -> None:
    try:
        c.remove(force=True, v=True)
    except NotFound:
        pass


def remove_run(client: docker.DockerClient, run_id: str) -> tuple[int, int]:
    """Remove the run's containers (in parallel: teardown speed matters) then its networks.

    Returns (containers removed, networks removed). Idempotent.
    """
    containers = client.containers.list(all=True, filters=run_filter(run_id))
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(_remove_container, containers))
    removed_n = 0
    for n in client.networks.list(filters=run_filter(run_id)):
        for attempt in range(3):
            try:
                n.remove()
                removed_n += 1
                break
            except NotFound:
                break
            except APIError as exc:  # "has active endpoints" while a removal settles
                log.debug("network %s not removed yet: %s", n.name, exc)
                import time

                time.sleep(0.2 * (attempt + 1))
    return len(containers), removed_n
