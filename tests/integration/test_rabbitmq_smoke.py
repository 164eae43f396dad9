"""The RabbitMQ target, for real: three nodes come up clustered through the harness's Stack,
the queue is a quorum queue on all three, a confirmed publish through each entry point is
consumed back exactly once, the drain reads back what is left, and the Locust profile runs
in the harness's own load worker with its confirmed publishes recorded as acknowledged writes.

One stack for the module (up takes 30-60 s on the shared 2-core machines); everything else
takes seconds. The image is built by scripts/setup.sh (`continuum images`); ensure_images
rebuilds it here only if its context changed.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from pathlib import Path

import pytest

from harness.load import LoadGenerator
from harness.stack.images import ensure_images
from harness.stack.stack import Stack
from harness.loader import load_target

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parents[2]
TARGET = ROOT / "targets" / "rabbitmq"
PER_NODE = 40


def _module(name: str):
    mod_name = f"continuum_rabbitmq_{name}"
    if mod_name not in sys.modules:
        spec = importlib.util.spec_from_file_location(mod_name, TARGET / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[mod_name] = module
        spec.loader.exec_module(module)
    return sys.modules[mod_name]


amqp = _module("amqp_client")
readback = _module("readback")


class Events:
    """Collects what the loops fire, as Locust's request event would receive it."""

    def __init__(self) -> None:
        self.calls: list[dict] = []

    def __call__(self, **kw) -> None:
        self.calls.append(kw)

    def confirmed(self) -> list[str]:
        return [c["context"]["write_id"] for c in self.calls
                if c["name"] == "publish" and c["exception"] is None]

    def failures(self) -> list[str]:
        return [repr(c["exception"]) for c in self.calls if c["exception"] is not None]

    def reads(self) -> list[str]:
        return [c["context"]["read_id"] for c in self.calls
                if c["name"] == "consume" and c["exception"] is None]


@pytest.fixture(scope="module")
def stack(docker_client):
    target = load_target(TARGET)
    ensure_images(docker_client, [target])
    with Stack(target, client=docker_client) as s:
        yield s


def _exec(stack, instance: str, *argv: str) -> tuple[int, str]:
    code, out = stack.container(instance).exec_run(list(argv))
    return code, out.decode(errors="replace").strip()


def test_three_nodes_one_quorum_queue_on_all_of_them(stack):
    eps = amqp.parse_endpoints(",".join(stack.endpoints()))
    assert len(eps) == 3 and len({p for _, p in eps}) == 3
    assert all(h == "127.0.0.1" for h, _ in eps)
    # Declaring is the clients' job: one publish declares the queue.
    ev = Events()
    amqp.PublisherLoop(eps, 5.0, ev, start=0).step()
    assert len(ev.confirmed()) == 1, ev.failures()

    code, out = _exec(stack, "rabbit-1", "/usr/local/bin/continuum-rabbit", "cluster")
    assert code == 0, out
    nodes = json.loads(out)
    assert sorted(n["name"] for n in nodes) == ["rabbit@rabbit-1", "rabbit@rabbit-2", "rabbit@rabbit-3"]
    assert all(n["running"] and not n["partitions"] for n in nodes)

    code, out = _exec(stack, "rabbit-2", "/usr/local/bin/continuum-rabbit", "queue")
    q = json.loads(out)
    assert q["type"] == "quorum"
    assert q["members"] == q["online"] == ["rabbit@rabbit-1", "rabbit@rabbit-2", "rabbit@rabbit-3"]
    leaders = [i for i in ("rabbit-1", "rabbit-2", "rabbit-3")
               if _exec(stack, i, "/usr/local/bin/continuum-rabbit", "role", "leader")[0] == 0]
    assert leaders == [q["leader"].split("@")[1]]
    for i in ("rabbit-1", "rabbit-2", "rabbit-3"):
        code, out = _exec(stack, i, "/usr/local/bin/continuum-rabbit", "health")
        assert code == 0 and "3/3 members online" in out, out


def test_confirmed_publishes_through_every_node_are_consumed_back_once(stack):
    eps = amqp.parse_endpoints(",".join(stack.endpoints()))
    assert readback.readback(eps, timeout_s=30, idle_s=1.0).complete     # start from empty
    ev = Events()
    for start in range(3):          # one publisher per entry point
        pub = amqp.PublisherLoop(eps, 5.0, ev, start=start)
        for _ in range(PER_NODE):
            pub.step()
        pub.close()
    published = ev.confirmed()
    assert len(published) == 3 * PER_NODE, ev.failures()
    assert {c["context"]["node"] for c in ev.calls} == {f"{h}:{p}" for h, p in eps}

    reads = Events()
    con = amqp.ConsumerLoop(eps, 5.0, reads, start=1)
    deadline = time.monotonic() + 30
    while len(reads.reads()) < len(published) and time.monotonic() < deadline:
        con.step()
    con.close()
    got = reads.reads()
    assert not reads.failures()
    assert sorted(got) == sorted(published)               # each once: no redelivery without a fault
    assert all(c["context"]["redelivered"] is False for c in reads.calls)
    assert all(c["response_time"] >= 0 for c in reads.calls)

    # Nothing is left: the drain completes empty, and the check finds nothing wrong.
    rb = readback.readback(eps, timeout_s=30, idle_s=1.0)
    assert rb.complete, rb.error
    assert rb.ids == []
    verdict = readback.classify([(i, True) for i in published], got, rb.ids)
    assert (verdict["confirmed"], verdict["lost"], verdict["duplicates"], verdict["unexpected"]) == \
        (3 * PER_NODE, 0, 0, 0)


def test_drain_reads_back_what_nobody_consumed(stack):
    eps = amqp.parse_endpoints(",".join(stack.endpoints()))
    readback.readback(eps, timeout_s=30, idle_s=1.0)       # start from an empty queue
    ev = Events()
    pub = amqp.PublisherLoop(eps, 5.0, ev, start=2)
    for _ in range(25):
        pub.step()
    pub.close()
    rb = readback.readback(eps, timeout_s=30, idle_s=1.0)
    assert rb.complete and rb.error is None
    assert sorted(rb.ids) == sorted(ev.confirmed()) and len(rb.ids) == 25
    verdict = readback.classify([(i, True) for i in ev.confirmed()], [], rb.ids)
    assert verdict == {**verdict, "confirmed": 25, "lost": 0, "drained": 25, "duplicates": 0}
    # Drained means gone: a second drain finds nothing.
    again = readback.readback(eps, timeout_s=30, idle_s=1.0)
    assert again.complete and again.ids == []


def test_locust_profile_in_the_harness_worker_records_confirmed_publishes(stack):
    endpoints = stack.endpoints()
    eps = amqp.parse_endpoints(",".join(endpoints))
    assert readback.readback(eps, timeout_s=30, idle_s=1.0).complete     # start from empty
    with LoadGenerator(TARGET / "locustfile.py", "pubsub", host=endpoints[0], users=4,
                       spawn_rate=4, request_timeout_s=5.0, max_duration_s=30,
                       env={"CONTINUUM_ENDPOINTS": ",".join(endpoints)}) as load:
        time.sleep(4.0)
        summary = load.stop()
    samples = load.samples()
    writes = load.writes()
    assert summary.user_errors == 0
    published = [s for s in samples if s.name == "publish"]
    confirmed = [s for s in published if s.ok]
    consumed = [s for s in samples if s.name == "consume" and s.ok]
    acked = {w.id for w in writes if w.outcome == "acked"}
    # A healthy cluster confirms everything; a timeout on a loaded machine is tolerated, rarely.
    assert len(confirmed) >= 20 and len(confirmed) >= 0.99 * len(published), \
        [s.error for s in published if not s.ok][:5]
    assert len(acked) == len(confirmed) and len(writes) == len(published)
    assert consumed, "the consumers received nothing"
    # Every acknowledged write was consumed during the run or is still in the queue.
    rb = readback.readback(eps, timeout_s=30, idle_s=1.0)
    assert rb.complete
    assert set(rb.ids) <= {w.id for w in writes}
    assert len(consumed) + len(rb.ids) >= len(acked)
