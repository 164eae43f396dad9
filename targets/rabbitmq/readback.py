"""Read-back for durability: drain the quorum queue after the load stopped, and check it.

    readback(endpoints, timeout_s=60) -> ReadBack      consume and ack everything left
    classify(writes, run_reads, drained) -> dict       Jepsen-style set check with duplicates

    python targets/rabbitmq/readback.py --endpoints http://127.0.0.1:P1,http://127.0.0.1:P2,...
        prints {"ids": [...], "complete": true, ...} as JSON; exit 0 if the drain completed

The drain is destructive (it acks what it reads), so it runs once per run, after every
publisher and consumer of the run is gone (their unacked deliveries return to the queue when
their connections close, and the drain reads them: a second delivery of an id already read
during the run is a duplicate, which is what at-least-once delivery allows).

The drain is complete when the queue, asked on a node with a leader, reports no ready message
and no other consumer after `idle_s` without a delivery. Anything short of that (no node
answers, the deadline passes first) is `complete: false`: durability is then unknown, never
"nothing lost".

No Locust import: safe in any process (the harness's orchestrator must not import gevent).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable

_HERE = Path(__file__).resolve().parent


def _load_sibling(name: str):
    mod_name = f"continuum_rabbitmq_{name}"
    if mod_name in sys.modules:
        return sys.modules[mod_name]
    spec = importlib.util.spec_from_file_location(mod_name, _HERE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    spec.loader.exec_module(module)
    return module


amqp = _load_sibling("amqp_client")
import pika  # noqa: E402  (after the sibling import, which needs it too)
import pika.exceptions  # noqa: E402

EXAMPLES = 20


@dataclass
class ReadBack:
    ids: list[str] = field(default_factory=list)      # in delivery order; repeats kept
    complete: bool = False
    error: str | None = None
    redelivered: int = 0                              # deliveries flagged redelivered
    foreign: int = 0                                  # deliveries without an id of ours
    reconnects: int = 0
    elapsed_s: float = 0.0
    node: str | None = None                           # the node that confirmed the queue empty

    def to_json(self) -> dict:
        return asdict(self)


def readback(endpoints: Iterable[str] | list[tuple[str, int]], *, timeout_s: float = 60.0,
             idle_s: float = 2.0, queue: str = amqp.QUEUE, prefetch: int = 500,
             connect_timeout_s: float = 3.0) -> ReadBack:
    """Consume and ack every message left in `queue`; stop when it is empty (see module doc)."""
    eps = list(endpoints)
    if eps and isinstance(eps[0], str):
        eps = amqp.parse_endpoints(",".join(eps))
    out = ReadBack()
    t0 = time.monotonic()
    deadline = t0 + timeout_s
    current = 0
    errors: list[str] = []
    while time.monotonic() < deadline:
        host, port = eps[current % len(eps)]
        conn = None
        try:
            conn = pika.BlockingConnection(amqp.parameters(host, port, connect_timeout_s,
                                                           "continuum-readback"))
            ch = conn.channel()
            ch.basic_qos(prefetch_count=prefetch)
            ch.queue_declare(queue, passive=True)      # never create it: absent is an answer
            for method, props, body in ch.consume(queue, auto_ack=False, inactivity_timeout=idle_s):
                if method is None:                      # idle: is it really empty?
                    ok = ch.queue_declare(queue, passive=True).method
                    if ok.message_count == 0 and ok.consumer_count <= 1:
                        out.complete = True
                        out.node = f"{host}:{port}"
                        break
                    if time.monotonic() > deadline:
                        break
                    continue
                msg_id, _ = amqp.decode(props, body)
                if msg_id is None:
                    out.foreign += 1
                else:
                    out.ids.append(msg_id)
                if method.redelivered:
                    out.redelivered += 1
                ch.basic_ack(delivery_tag=method.delivery_tag)
                if time.monotonic() > deadline:
                    break
            if out.complete:
                try:
                    ch.cancel()
                    conn.close()
                except Exception:  # noqa: BLE001 - the answer is in; closing is a courtesy
                    pass
                break
        except pika.exceptions.ChannelClosedByBroker as exc:
            if exc.reply_code == 404:                   # the queue does not exist
                out.error = f"queue {queue} does not exist ({host}:{port})"
                amqp.abandon(conn)
                break
            errors.append(f"{host}:{port}: {exc}")
        except Exception as exc:  # noqa: BLE001 - refused, reset, timeout: next node
            errors.append(f"{host}:{port}: {type(exc).__name__}: {exc}")
        amqp.abandon(conn)
        out.reconnects += 1
        current += 1
        time.sleep(0.2)
    out.elapsed_s = round(time.monotonic() - t0, 3)
    if not out.complete and out.error is None:
        out.error = f"drain incomplete after {timeout_s:g} s: " + "; ".join(errors[-3:])
    return out


def classify(writes: Iterable[tuple[str, bool]], run_reads: Iterable[str],
             drained: Iterable[str] | None) -> dict:
    """Every attempted publish against every delivery (during the run and in the drain).

    `writes`: (id, confirmed) per publish attempt. `run_reads`: ids delivered to consumers
    during the run, repeats kept. `drained`: ids the read-back drained, repeats kept, or None
    when the read-back did not complete (then lost/recovered are unknown: None).

      lost         confirmed, never delivered (the broker said yes and forgot)
      recovered    sent but unconfirmed (timeout, connection lost), delivered anyway
      unconfirmed_absent  sent, unconfirmed, never delivered (allowed: the client was not told yes)
      unexpected   delivered, never published by this run
      duplicates   deliveries beyond the first, over all ids (at-least-once redelivery)
      duplicated_ids  ids delivered more than once
    """
    confirmed: set[str] = set()
    attempted: set[str] = set()
    for wid, ok in writes:
        attempted.add(wid)
        if ok:
            confirmed.add(wid)
    unconfirmed = attempted - confirmed
    seen = Counter(run_reads)
    result = {
        "attempted": len(attempted), "confirmed": len(confirmed), "unconfirmed": len(unconfirmed),
        "read_during_run": sum(seen.values()), "read_back_complete": drained is not None,
    }
    if drained is None:
        result.update(lost=None, recovered=None, unconfirmed_absent=None, unexpected=None,
                      duplicates=None, duplicated_ids=None, drained=None, lost_ids=[])
        return result
    drained_c = Counter(drained)
    delivered = seen + drained_c
    present = set(delivered)
    lost = confirmed - present
    dup_ids = [i for i, n in delivered.items() if n > 1]
    result.update(
        drained=sum(drained_c.values()),
        lost=len(lost),
        recovered=len(unconfirmed & present),
        unconfirmed_absent=len(unconfirmed - present),
        unexpected=len(present - attempted),
        duplicates=sum(n - 1 for n in delivered.values() if n > 1),
        duplicated_ids=len(dup_ids),
        lost_ids=sorted(lost)[:EXAMPLES],
        unexpected_ids=sorted(present - attempted)[:EXAMPLES],
    )
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Drain the RabbitMQ target's queue and print the ids (JSON).")
    ap.add_argument("--endpoints", required=True,
                    help="comma-separated entry points, e.g. http://127.0.0.1:41234,... (as CONTINUUM_ENDPOINTS)")
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds for the whole drain (default 60)")
    ap.add_argument("--idle", type=float, default=2.0, help="seconds without a delivery before asking if empty")
    ap.add_argument("--queue", default=amqp.QUEUE)
    args = ap.parse_args(argv)
    rb = readback(args.endpoints.split(","), timeout_s=args.timeout, idle_s=args.idle, queue=args.queue)
    json.dump(rb.to_json(), sys.stdout)
    sys.stdout.write("\n")
    return 0 if rb.complete else 1


if __name__ == "__main__":
    sys.exit(main())
