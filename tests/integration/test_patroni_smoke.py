"""targets/patroni for real, briefly: up with the harness's Stack, one leader found by Patroni's
REST API, the `writes` Locust profile through both HAProxies, and every acknowledged write read
back (through HAProxy and with `continuum-readback` on the leader), then down.

About 45 s on this machine with the images present (75 s at load average ~20) (`continuum images targets/patroni` builds
them, ~3 min the first time; scripts/setup.sh does it for CI).
"""

from __future__ import annotations

import importlib.util
import json
import time
from pathlib import Path

import pytest

from harness.load.runner import LoadGenerator
from harness.stack.images import ensure_images
from harness.stack.stack import Stack
from harness.loader import load_target

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parents[2]
TARGET = ROOT / "targets" / "patroni"
NODES = ("pg-1", "pg-2", "pg-3")


def _pgwrites():
    # The target's Locust-free SQL module: importing the locustfile here would monkey-patch
    # pytest's process with gevent.
    spec = importlib.util.spec_from_file_location("patroni_pgwrites_smoke", TARGET / "pgwrites.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _status(stack: Stack, node: str, path: str) -> int:
    """HTTP status of Patroni's REST API on `node`, asked from inside the node."""
    code, out = stack.container(node).exec_run(
        ["curl", "-s", "-m", "2", "-o", "/dev/null", "-w", "%{http_code}", f"http://127.0.0.1:8008{path}"])
    return int(out or 0) if code == 0 else 0


@pytest.fixture(scope="module")
def stack(docker_client):
    target = load_target(TARGET)
    ensure_images(docker_client, [target])
    with Stack(target, client=docker_client) as s:
        yield s


def test_one_leader_one_sync_standby(stack):
    primary = [n for n in NODES if _status(stack, n, "/primary") == 200]
    replica = [n for n in NODES if _status(stack, n, "/replica") == 200]
    assert len(primary) == 1, primary
    assert sorted(primary + replica) == list(NODES)
    # synchronous_mode: the leader names exactly one synchronous standby, a replica
    code, out = stack.container(primary[0]).exec_run(["curl", "-fsS", "-m", "2", "http://127.0.0.1:8008/patroni"])
    assert code == 0, out
    sync = [r["application_name"] for r in json.loads(out)["replication"] if r.get("sync_state") == "sync"]
    assert len(sync) == 1 and sync[0] in replica, sync


def test_writes_profile_through_both_lbs_and_read_back(stack):
    pg = _pgwrites()
    urls = stack.endpoints()
    assert len(urls) == 2, urls                     # lb-1 and lb-2, published on 127.0.0.1
    assert all(u.startswith("http://127.0.0.1:") for u in urls)
    # A write straight through each LB (outside Locust) lands on the same leader.
    direct = []
    for host, port in pg.endpoints(",".join(urls)):
        conn = pg.connect(host, port)
        try:
            wid = f"00000000-0000-4000-8000-{port:012d}"
            pg.write(conn, wid, "smoke")
            direct.append(wid)
        finally:
            conn.close()

    with LoadGenerator(TARGET / "locustfile.py", "writes", urls[0], users=5, spawn_rate=5,
                       request_timeout_s=2.0, max_duration_s=6.0,
                       env={"CONTINUUM_ENDPOINTS": ",".join(urls)}) as load:
        time.sleep(5)
        summary = load.stop(timeout=20)
    assert summary is not None and summary.user_errors == 0, summary
    samples = load.samples()
    writes = load.writes()
    names = {s.name for s in samples}
    assert names == {"write", "read"}, names
    failed = [s for s in samples if not s.ok]
    assert not failed, failed[:5]
    assert len(writes) >= 20, len(writes)
    assert all(w.outcome == "acked" for w in writes)
    acked = {w.id for w in writes} | set(direct)

    held = pg.readback(pg.endpoints(",".join(urls)))
    assert sorted(held) == sorted(acked)            # nothing lost, nothing unexpected

    leader = next(n for n in NODES if _status(stack, n, "/primary") == 200)
    code, out = stack.container(leader).exec_run(["continuum-readback"], demux=True)
    assert code == 0, out
    assert sorted(out[0].decode().split()) == sorted(acked)
    # On a replica the read-back refuses rather than answer a possibly short list.
    replica = next(n for n in NODES if n != leader)
    code, out = stack.container(replica).exec_run(["continuum-readback"], demux=True)
    assert code != 0 and b"replica" in (out[1] or b""), (code, out)
