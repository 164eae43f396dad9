"""Load profiles for the RabbitMQ target: confirmed publishes and manual-ack consumption on the
quorum queue `continuum`.

The harness sets:
  CONTINUUM_ENDPOINTS        comma-separated URLs of every entry point, one per node
                             (http://127.0.0.1:PORT: only host and port are used)
  CONTINUUM_REQUEST_TIMEOUT  seconds a publish may wait for its confirm, and a connection
                             attempt for the broker (default 2)

Profiles (Locust user classes; the harness runs one class per experiment):
  pubsub     users alternate roles: even-numbered users publish, odd-numbered users consume
             (use an even user count; 1 user is a publisher only, and the read-back drains)
  publisher  every user publishes
  consumer   every user consumes

Each user holds its own connection, starts on a different node (round-robin) and moves to the
next node when its connection fails; one round over the nodes per attempt, then a short
back-off, so a user never gives up and never spins. What each operation reports
(`amqp_client.PublisherLoop` and `ConsumerLoop` document it in full):
  publish  request_type "amqp", name "publish", context {"write_id": id}: acknowledged when the
           broker confirmed it (exception None), outcome unknown otherwise
  consume  name "consume", context {"read_id": id, "redelivered": bool}, response_time the
           publish-to-delivery latency; acked after it was reported

After the load stops, `readback.py` drains the queue; every confirmed publish must then have
been consumed, during the run or in the drain.
"""

from __future__ import annotations

import importlib.util
import itertools
import sys
from pathlib import Path

from locust import User, between, constant, task

_HERE = Path(__file__).resolve().parent


def _load_sibling(name: str):
    """Import a module that sits next to this file (the harness loads the locustfile by path,
    without touching sys.path)."""
    mod_name = f"continuum_rabbitmq_{name}"
    if mod_name in sys.modules:
        return sys.modules[mod_name]
    spec = importlib.util.spec_from_file_location(mod_name, _HERE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    spec.loader.exec_module(module)
    return module


amqp = _load_sibling("amqp_client")

TIMEOUT_S = amqp.request_timeout_from_env()
_roles = itertools.count()      # pubsub: alternate roles in spawn order
_starts = itertools.count()     # first node of each user, round-robin


class _Broker(User):
    abstract = True

    def _fire(self, **kw) -> None:
        self.environment.events.request.fire(**kw)

    def _loop(self, kind: str):
        endpoints = amqp.endpoints_from_env(self.host)
        start = next(_starts)
        if kind == "publisher":
            return amqp.PublisherLoop(endpoints, TIMEOUT_S, self._fire, start=start)
        return amqp.ConsumerLoop(endpoints, TIMEOUT_S, self._fire, start=start)

    def on_stop(self) -> None:
        loop = getattr(self, "loop", None)
        if loop is not None:
            loop.close()


class Publisher(_Broker):
    wait_time = between(0.0, 0.01)

    def on_start(self) -> None:
        self.loop = self._loop("publisher")

    @task
    def publish(self) -> None:
        self.loop.step()


class Consumer(_Broker):
    wait_time = constant(0)         # each step already waits up to half a second for deliveries

    def on_start(self) -> None:
        self.loop = self._loop("consumer")

    @task
    def consume(self) -> None:
        self.loop.step()


class PubSub(_Broker):
    wait_time = between(0.0, 0.01)

    def on_start(self) -> None:
        self.role = "publisher" if next(_roles) % 2 == 0 else "consumer"
        self.loop = self._loop(self.role)

    @task
    def step(self) -> None:
        self.loop.step()


# The target's compose.yaml offers the profiles in lower case; both spellings name the class.
pubsub = PubSub
publisher = Publisher
consumer = Consumer
