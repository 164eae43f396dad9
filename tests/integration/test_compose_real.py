"""What an ordinary Compose file asks for, honoured on the real engine: a named volume shared
with a one-shot job (service_completed_successfully), a bind inside the target, tmpfs, an env
file, user, working_dir, hostname, container_name as a name others resolve, ulimits, labels,
the restart policy; and the run's volume removed with the run."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import RUN_LABEL
from harness.loader import load_target
from harness.stack.stack import Stack

pytestmark = pytest.mark.docker

COMPOSE = """\
services:
  job:
    image: debian:bookworm-slim
    command: sh -c 'echo done > /data/ready'
    volumes: [shared:/data]
  app:
    image: debian:bookworm-slim
    command: sleep 600
    depends_on: {job: {condition: service_completed_successfully}}
    volumes: [shared:/data, ./conf:/conf:ro]
    tmpfs: ["/scratch:size=8m"]
    env_file: app.env
    environment: {FROM_COMPOSE: "yes"}
    user: "1000:1000"
    working_dir: /conf
    hostname: app-host
    container_name: the-app
    ulimits: {nofile: {soft: 1024, hard: 2048}}
    labels: {team: payments}
    restart: unless-stopped
    stop_signal: SIGKILL
    healthcheck: {disable: true}
  peer:
    image: debian:bookworm-slim
    command: ["sleep", "600"]
    depends_on: [app]
    stop_signal: SIGKILL
volumes:
  shared: {labels: {purpose: test}}
"""


def _sh(stack: Stack, instance: str, script: str) -> str:
    code, out, err = stack.instance(instance).run(["sh", "-c", script], timeout_s=10)
    assert code == 0, (script, out, err)
    return out.strip()


def test_compose_settings_reach_the_containers(docker_client, tmp_path: Path):
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "app.conf").write_text("from-the-bind\n")
    (tmp_path / "app.env").write_text("# read when the target is loaded\nFROM_ENV_FILE=1\n")
    (tmp_path / "compose.yaml").write_text(COMPOSE)
    target = load_target(tmp_path).model_copy(update={"name": "compose-real"})
    with Stack(target, client=docker_client) as stack:
        run_id = stack.run_id
        vol = docker_client.volumes.get(stack.volume_name("shared"))
        assert vol.attrs["Labels"][RUN_LABEL] == run_id and vol.attrs["Labels"]["purpose"] == "test"
        assert _sh(stack, "app", "cat /data/ready") == "done"        # the job ran first, to 0
        assert _sh(stack, "app", "cat /conf/app.conf") == "from-the-bind"
        assert _sh(stack, "app", "touch /conf/x 2>&1 || echo read-only").endswith("read-only")
        assert _sh(stack, "app", "id -u; id -g; pwd; hostname") == "1000\n1000\n/conf\napp-host"
        assert _sh(stack, "app", "ulimit -n") == "1024"
        assert _sh(stack, "app", "grep ' /scratch ' /proc/mounts | cut -d' ' -f3") == "tmpfs"
        assert _sh(stack, "app", "echo $FROM_ENV_FILE $FROM_COMPOSE") == "1 yes"
        assert _sh(stack, "peer", "getent hosts the-app | wc -l") == "1"   # container_name resolves
        c = stack.container("app")
        c.reload()
        assert c.labels["team"] == "payments" and c.labels[RUN_LABEL] == run_id
        assert c.attrs["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
        assert c.attrs["Config"]["Healthcheck"]["Test"] == ["NONE"]
        assert stack.container("job").status == "exited"
    assert not docker_client.volumes.list(filters={"label": f"{RUN_LABEL}={run_id}"})
    assert not docker_client.containers.list(all=True, filters={"label": f"{RUN_LABEL}={run_id}"})
