"""AMQP client pieces of the RabbitMQ target: endpoints, fail-over connections, confirmed
publishes, manual-ack consumption. Shared by the load profile (locustfile.py), the read-back
(readback.py) and the fault measurements (benchmarks/rabbitmq_faults.py).

No Locust import here (importing locust monkey-patches the whole process with gevent), so the
read-back can run in any process. The loops report each operation through a `fire` callable
with the signature of Locust's ``events.request.fire`` (keyword arguments request_type, name,
response_time in ms, response_length, exception, context).

Bounded waits. pika's BlockingConnection has no timeout on a publish waiting for its confirm
(it waits until the broker answers or the connection dies). Under gevent (always the case in
a Locust worker, and in the fault script, which patches itself) every wait here is bounded by a
`gevent.Timeout`; a connection interrupted that way is abandoned, never reused. Without gevent
only connection set-up (socket and stack timeouts) and heartbeats bound the waits, which is
enough for the read-back (it only consumes, with an inactivity timeout).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import time
import urllib.parse
import uuid
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import pika
import pika.exceptions

log = logging.getLogger(__name__)

QUEUE = os.environ.get("RABBIT_QUEUE", "continuum")
USER = os.environ.get("RABBIT_USER", "continuum")
PASSWORD = os.environ.get("RABBIT_PASS", "continuum")
# Quorum queue, on all three nodes. Durable is implied for quorum queues and must be asked for.
# No x-delivery-limit: a message redelivered many times (consumer connections cut mid-flight)
# must never be dropped or dead-lettered, or the durability check would count it as lost.
QUEUE_ARGUMENTS = {"x-queue-type": "quorum", "x-quorum-initial-group-size": 3}
HEARTBEAT_S = int(os.environ.get("RABBIT_HEARTBEAT", "5"))
DEFAULT_TIMEOUT_S = 2.0
BACKOFF_S = 0.25            # after a full round of endpoints failed

Fire = Callable[..., None]


class Unconfirmed(Exception):
    """A publish (or a connection step) got no answer from the broker within the timeout."""


class NoBroker(Exception):
    """No endpoint accepted a connection in one round over all of them."""


# ───────────────────────────── endpoints ─────────────────────────────


def parse_endpoints(raw: str | None, host: str | None = None) -> list[tuple[str, int]]:
    """(host, port) pairs from CONTINUUM_ENDPOINTS-style text: comma-separated URLs such as
    ``http://127.0.0.1:41234`` (the harness's form; the scheme is ignored), ``amqp://h:p`` or
    bare ``h:p``. Falls back to `host` (Locust's host) when `raw` names none."""
    items = [u.strip() for u in (raw or "").split(",") if u.strip()]
    if not items and host:
        items = [host.strip()]
    out: list[tuple[str, int]] = []
    for item in items:
        parsed = urllib.parse.urlsplit(item if "//" in item else f"//{item}")
        if not parsed.hostname or parsed.port is None:
            raise ValueError(f"endpoint {item!r} has no host:port")
        out.append((parsed.hostname, parsed.port))
    return out


def endpoints_from_env(host: str | None = None) -> list[tuple[str, int]]:
    return parse_endpoints(os.environ.get("CONTINUUM_ENDPOINTS"), host)


def request_timeout_from_env() -> float:
    try:
        value = float(os.environ.get("CONTINUUM_REQUEST_TIMEOUT", "") or DEFAULT_TIMEOUT_S)
    except ValueError:
        return DEFAULT_TIMEOUT_S
    return value if value > 0 else DEFAULT_TIMEOUT_S


# ───────────────────────────── bounded waits ─────────────────────────────


def _gevent_active() -> bool:
    try:
        from gevent import monkey
    except ImportError:
        return False
    return monkey.is_module_patched("socket")


@contextlib.contextmanager
def deadline(seconds: float, what: str) -> Iterator[None]:
    """Raise `Unconfirmed(what)` if the block takes longer than `seconds` (under gevent;
    otherwise a no-op and the block relies on socket timeouts and heartbeats)."""
    if not _gevent_active():
        yield
        return
    import gevent

    exc = Unconfirmed(f"{what}: no answer within {seconds:g} s")
    with gevent.Timeout(seconds, exc):
        yield


# ───────────────────────────── connections ─────────────────────────────


def parameters(host: str, port: int, timeout_s: float, name: str) -> pika.ConnectionParameters:
    return pika.ConnectionParameters(
        host=host, port=port, virtual_host="/",
        credentials=pika.PlainCredentials(USER, PASSWORD),
        heartbeat=HEARTBEAT_S,
        socket_timeout=timeout_s,
        stack_timeout=timeout_s * 2,
        blocked_connection_timeout=timeout_s * 5,
        connection_attempts=1,
        client_properties={"connection_name": name},
    )


def abandon(conn: Any) -> None:
    """Close a connection without waiting long; after an interrupted operation its state is
    unknown, so errors are ignored and the object must not be used again."""
    if conn is None:
        return
    try:
        if conn.is_open:
            with deadline(0.5, "close"):
                conn.close()
    except BaseException as exc:   # noqa: BLE001 - whatever state it was in, let it go
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        try:    # the socket itself, so the broker sees the connection go at once
            conn._impl._transport._sock.close()     # noqa: SLF001 - best effort, pika internals
        except Exception:  # noqa: BLE001
            pass


_spread = itertools.count()


class Session:
    """One connection and one channel to one node at a time, with fail-over: `channel()`
    connects on demand, trying each endpoint once starting from the current one (one bounded
    round); `drop()` abandons the connection and moves to the next endpoint."""

    def __init__(self, endpoints: list[tuple[str, int]], *, timeout_s: float, role: str,
                 confirm: bool = False, prefetch: int | None = None, start: int | None = None,
                 declare: bool = True):
        if not endpoints:
            raise ValueError("no endpoints (set CONTINUUM_ENDPOINTS)")
        self.endpoints = list(endpoints)
        self.timeout_s = timeout_s
        self.role = role
        self.confirm = confirm
        self.prefetch = prefetch
        self.declare = declare
        self.current = (next(_spread) if start is None else start) % len(self.endpoints)
        self.conn: pika.BlockingConnection | None = None
        self.ch = None
        self.connects = 0
        self.name = f"continuum-{role}-{uuid.uuid4().hex[:6]}"

    @property
    def node(self) -> str:
        host, port = self.endpoints[self.current]
        return f"{host}:{port}"

    def channel(self):
        if self.ch is not None and self.ch.is_open and self.conn is not None and self.conn.is_open:
            return self.ch
        self.drop(advance=False)
        errors = []
        for _ in range(len(self.endpoints)):
            host, port = self.endpoints[self.current]
            conn = None
            try:
                with deadline(self.timeout_s * 2, f"connect {host}:{port}"):
                    conn = pika.BlockingConnection(parameters(host, port, self.timeout_s, self.name))
                    ch = conn.channel()
                    if self.declare:
                        ch.queue_declare(QUEUE, durable=True, arguments=QUEUE_ARGUMENTS)
                    if self.confirm:
                        ch.confirm_delivery()
                    if self.prefetch:
                        ch.basic_qos(prefetch_count=self.prefetch)
            except Exception as exc:  # noqa: BLE001 - refused, reset, timeout, channel closed
                abandon(conn)
                errors.append(f"{host}:{port}: {type(exc).__name__}: {exc}".strip())
                self.current = (self.current + 1) % len(self.endpoints)
                continue
            self.conn, self.ch = conn, ch
            self.connects += 1
            return ch
        raise NoBroker("; ".join(errors)[:300])

    def drop(self, advance: bool = True) -> None:
        conn, self.conn, self.ch = self.conn, None, None
        abandon(conn)
        if advance:
            self.current = (self.current + 1) % len(self.endpoints)

    close = drop


# ───────────────────────────── messages ─────────────────────────────


def new_id() -> str:
    return str(uuid.uuid4())


def encode(msg_id: str, seq: int) -> tuple[bytes, pika.BasicProperties]:
    body = json.dumps({"id": msg_id, "seq": seq, "t": time.time()}, separators=(",", ":")).encode()
    props = pika.BasicProperties(delivery_mode=pika.DeliveryMode.Persistent, message_id=msg_id,
                                 content_type="application/json")
    return body, props


def decode(props: Any, body: bytes) -> tuple[str | None, float | None]:
    """(id, publish wall-clock time) of a delivered message; (None, None) if it is not ours."""
    msg_id = getattr(props, "message_id", None)
    sent = None
    try:
        data = json.loads(body)
        msg_id = msg_id or data.get("id")
        sent = float(data["t"])
    except (ValueError, KeyError, TypeError, AttributeError):
        pass
    return msg_id, sent


# ───────────────────────────── load loops ─────────────────────────────


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000.0


@dataclass
class PublisherLoop:
    """Each `step()` publishes one persistent message with a fresh id to the quorum queue and
    waits for its publisher confirm. Reported as name "publish":
      * confirmed: exception None, context {"write_id": id}: an acknowledged write;
      * sent but not confirmed (nack, unroutable, timeout, connection lost after sending):
        the exception, context {"write_id": id}: outcome unknown to the client;
      * never sent (no node accepted a connection): the exception, no write_id.
    A failure on the connection abandons it; the next step connects to the next node."""

    endpoints: list[tuple[str, int]]
    timeout_s: float
    fire: Fire
    start: int | None = None

    def __post_init__(self) -> None:
        self.session = Session(self.endpoints, timeout_s=self.timeout_s, role="publisher",
                               confirm=True, start=self.start)
        self.seq = 0

    def step(self) -> bool:
        t0 = time.perf_counter()
        try:
            ch = self.session.channel()
        except Exception as exc:  # noqa: BLE001
            self.fire(request_type="amqp", name="publish", response_time=_ms(t0),
                      response_length=0, exception=exc, context={})
            time.sleep(BACKOFF_S)
            return False
        self.seq += 1
        msg_id = new_id()
        body, props = encode(msg_id, self.seq)
        node = self.session.node
        exc: BaseException | None = None
        t_send = time.perf_counter()
        try:
            with deadline(self.timeout_s, "publish confirm"):
                ch.basic_publish(exchange="", routing_key=QUEUE, body=body, properties=props,
                                 mandatory=True)
        except (pika.exceptions.NackError, pika.exceptions.UnroutableError) as e:
            exc = e                     # the broker answered no; the connection is fine
        except Exception as e:  # noqa: BLE001 - timeout, connection or channel lost
            exc = e
            self.session.drop()
        self.fire(request_type="amqp", name="publish", response_time=_ms(t0),
                  response_length=len(body), exception=exc,
                  context={"write_id": msg_id, "node": node,
                           "confirm_ms": _ms(t_send)})
        return exc is None

    def close(self) -> None:
        self.session.close()


@dataclass
class ConsumerLoop:
    """Each `step()` consumes for up to `slice_s` with manual acks. Every delivery fires
    name "consume" with context {"read_id": id, "redelivered": bool, "node": ...} and the
    end-to-end latency (publish to delivery, wall clock) as response_time, and is acked only
    after it was reported: a delivery whose ack is lost with the connection comes again
    (at-least-once), and both deliveries are reported. A connection failure fires one failed
    "consume" (no read_id) and moves to the next node."""

    endpoints: list[tuple[str, int]]
    timeout_s: float
    fire: Fire
    start: int | None = None
    prefetch: int = 50
    slice_s: float = 0.5

    def __post_init__(self) -> None:
        self.session = Session(self.endpoints, timeout_s=self.timeout_s, role="consumer",
                               prefetch=self.prefetch, start=self.start)
        self.consuming_on = None

    def _on_message(self, ch, method, props, body) -> None:
        msg_id, sent = decode(props, body)
        latency_ms = max(0.0, (time.time() - sent) * 1000.0) if sent else 0.0
        self.fire(request_type="amqp", name="consume", response_time=latency_ms,
                  response_length=len(body), exception=None,
                  context={"read_id": msg_id, "redelivered": bool(method.redelivered),
                           "node": self.session.node})
        ch.basic_ack(delivery_tag=method.delivery_tag)

    def step(self) -> bool:
        t0 = time.perf_counter()
        try:
            ch = self.session.channel()
            if self.consuming_on is not ch:
                with deadline(self.timeout_s, "basic.consume"):
                    ch.basic_consume(QUEUE, on_message_callback=self._on_message, auto_ack=False)
                self.consuming_on = ch
            with deadline(self.slice_s + self.timeout_s, "consume"):
                self.session.conn.process_data_events(time_limit=self.slice_s)
            return True
        except Exception as exc:  # noqa: BLE001
            self.consuming_on = None
            self.session.drop()
            self.fire(request_type="amqp", name="consume", response_time=_ms(t0),
                      response_length=0, exception=exc, context={})
            time.sleep(BACKOFF_S)
            return False

    def close(self) -> None:
        self.consuming_on = None
        self.session.close()
