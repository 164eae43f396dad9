"""On start, remove the objects of runs whose owner is gone (the reaper died too, or the
machine rebooted mid-run). Live runs, detached stacks and other hosts' runs are left alone."""

from __future__ import annotations

import logging

import docker

from harness.runid import owner_alive
from harness.stack.cleanup import list_runs, remove_run

log = logging.getLogger(__name__)


def sweep(client: docker.DockerClient) -> list[str]:
    """Remove orphaned runs; return their ids."""
    removed = []
    for run in list_runs(client):
        if run.owner and owner_alive(run.owner):
            continue
        log.info("janitor: removing orphaned run %s (owner %s gone)", run.run_id, run.owner or "unknown")
        remove_run(client, run.run_id)
        removed.append(run.run_id)
    return removed
