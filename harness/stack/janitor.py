"""On start, remove the objects of runs whose owner is provably gone: their lease (held by the
owner's reaper over its own connection to the engine) has ended. Live runs of any job on any
host, detached stacks and runs without a lease are left alone (harness.stack.lease)."""

from __future__ import annotations

import logging

import docker

from harness.stack.cleanup import list_runs, remove_run

log = logging.getLogger(__name__)


def orphans(client: docker.DockerClient) -> list[str]:
    """Run ids whose owner is provably gone."""
    return [r.run_id for r in list_runs(client) if r.state == "gone"]


def sweep(client: docker.DockerClient) -> list[str]:
    """Remove orphaned runs; return their ids."""
    removed = []
    for run_id in orphans(client):
        log.info("janitor: removing orphaned run %s (its owner's lease has ended)", run_id)
        remove_run(client, run_id)
        removed.append(run_id)
    return removed
