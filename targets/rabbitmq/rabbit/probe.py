#!/usr/bin/python3
"""Probes of one RabbitMQ node, through its own management HTTP API on 127.0.0.1:15672.

    continuum-rabbit health            exit 0 iff this node is in the cluster and the queue is usable
    continuum-rabbit role leader       exit 0 iff this node holds the quorum queue's leader
    continuum-rabbit role follower     exit 0 iff this node holds a follower (a member, not the leader)
    continuum-rabbit queue             the queue's type, leader, members and online members (JSON)
    continuum-rabbit cluster           the cluster's nodes and whether each runs (JSON)

"healthy" means all of:
  * the rabbit application runs on this node (a node paused by pause_minority stops it, and its
    HTTP listener with it, so it is unhealthy);
  * every node of RABBIT_PEERS is a member of this node's cluster (a node that formed a cluster
    of its own, or has not joined yet, is not healthy) and a majority of them run;
  * no resource alarm (memory, disk) blocks publishers on this node;
  * the queue exists: a quorum queue with a leader, and a majority of its members are online
    (so a publish can be confirmed). While it is absent and every node of RABBIT_PEERS runs, the
    probe declares it (PUT on the management API, the clients' own arguments, so theirs is a
    no-op): x-quorum-initial-group-size = 3 then gives it a member on each node. So a healthy
    cluster always has the queue, and its roles (leader, follower) can be asked before any
    client ran (the harness checks every role an experiment uses when the stack is up).
Every HTTP call has a 1 s timeout; the probe prints why it failed.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import sys

# Plain sockets and HTTP/1.0, not urllib: importing urllib.request (http.client, email, ...)
# costs more CPU than the whole probe, which Docker runs once a second on every node.
API_HOST, API_PORT = "127.0.0.1", 15672
TIMEOUT_S = 1.0
QUEUE = os.environ.get("RABBIT_QUEUE", "continuum")
VHOST = "/"


class ProbeFailed(Exception):
    pass


def _credentials() -> str:
    try:
        with open("/etc/rabbitmq/continuum-credentials") as f:
            return f.read().strip()
    except OSError:
        return f"{os.environ.get('RABBIT_USER', 'continuum')}:{os.environ.get('RABBIT_PASS', 'continuum')}"


def _peers() -> list[str]:
    raw = os.environ.get("RABBIT_PEERS", "")
    if not raw:
        try:
            with open("/etc/rabbitmq/continuum-peers") as f:
                raw = f.read().strip()
        except OSError:
            raw = ""
    return [f"rabbit@{p.strip()}" for p in raw.split(",") if p.strip()]


def _quote(s: str) -> str:
    return "".join(c if c.isalnum() or c in "-._~" else "%%%02X" % b
                   for c in s for b in c.encode())


def get(path: str, *, missing_ok: bool = False, method: str = "GET", body: dict | None = None):
    """GET (or `method`) /api<path>; the decoded JSON, or None for a 404 when missing_ok (and
    for a 201/204 without a body)."""
    auth = base64.b64encode(_credentials().encode()).decode()
    payload = json.dumps(body).encode() if body is not None else b""
    request = (f"{method} /api{path} HTTP/1.0\r\nHost: {API_HOST}:{API_PORT}\r\n"
               f"Authorization: Basic {auth}\r\nAccept: application/json\r\n"
               + (f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
                  if body is not None else "")
               + "\r\n").encode() + payload
    chunks = []
    try:
        with socket.create_connection((API_HOST, API_PORT), timeout=TIMEOUT_S) as sock:
            sock.sendall(request)
            while True:
                data = sock.recv(65536)
                if not data:
                    break
                chunks.append(data)
    except OSError as e:        # refused (not running, or paused), timeout
        raise ProbeFailed(f"{method} {path}: {type(e).__name__}: {e}") from None
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    try:
        status = int(head.split(b" ", 2)[1])
    except (IndexError, ValueError):
        raise ProbeFailed(f"GET {path}: not an HTTP response: {head[:60]!r}") from None
    if status == 404 and missing_ok:
        return None
    if status in (201, 204) and method != "GET":
        return None
    if status != 200:
        raise ProbeFailed(f"{method} {path}: HTTP {status}")
    try:
        return json.loads(body or b"null")
    except ValueError as e:
        raise ProbeFailed(f"GET {path}: bad JSON: {e}") from None


def me() -> str:
    return f"rabbit@{socket.gethostname().split('.')[0]}"


def cluster() -> list[dict]:
    nodes = get("/nodes?columns=name,running,partitions")
    return [{"name": n["name"], "running": bool(n.get("running")),
             "partitions": n.get("partitions") or []} for n in nodes]


def queue() -> dict | None:
    q = get(f"/queues/{_quote(VHOST)}/{_quote(QUEUE)}", missing_ok=True)
    if q is None:
        return None
    return {"name": q.get("name"), "type": q.get("type"), "leader": q.get("leader") or q.get("node"),
            "members": sorted(q.get("members") or []), "online": sorted(q.get("online") or []),
            "messages": q.get("messages"), "consumers": q.get("consumers")}


def health() -> str:
    peers = _peers()
    if not peers:
        raise ProbeFailed("RABBIT_PEERS is not set")
    nodes = {n["name"]: n for n in cluster()}
    self_ = me()
    if not nodes.get(self_, {}).get("running"):
        raise ProbeFailed(f"{self_} is not running in the cluster it reports")
    missing = [p for p in peers if p not in nodes]
    if missing:
        raise ProbeFailed(f"not clustered with {', '.join(missing)} (cluster: {', '.join(sorted(nodes))})")
    running = [p for p in peers if nodes[p]["running"]]
    if len(running) <= len(peers) // 2:
        raise ProbeFailed(f"only {len(running)} of {len(peers)} nodes run: no majority")
    alarms = get("/health/checks/local-alarms", missing_ok=False)
    if (alarms or {}).get("status") != "ok":
        raise ProbeFailed(f"local alarms: {alarms}")
    q = queue()
    if q is None:
        if len(running) < len(peers):
            raise ProbeFailed(f"queue {QUEUE} not declared yet: waiting for all {len(peers)} nodes "
                              f"({len(running)} run) so that it gets a member on each")
        # The clients' arguments (amqp_client.QUEUE_ARGUMENTS): their declare is then a no-op.
        get(f"/queues/{_quote(VHOST)}/{_quote(QUEUE)}", method="PUT",
            body={"durable": True, "auto_delete": False,
                  "arguments": {"x-queue-type": "quorum", "x-quorum-initial-group-size": len(peers)}})
        q = queue()
        if q is None:
            raise ProbeFailed(f"queue {QUEUE} declared but not there yet")
    if q["type"] != "quorum":
        raise ProbeFailed(f"queue {QUEUE} is {q['type']}, not quorum")
    if not q["leader"]:
        raise ProbeFailed(f"queue {QUEUE} has no leader")
    if len(q["online"]) <= len(q["members"]) // 2:
        raise ProbeFailed(f"queue {QUEUE}: {len(q['online'])} of {len(q['members'])} members online")
    return (f"{self_}: {len(running)}/{len(peers)} nodes run; queue {QUEUE} leader {q['leader']}, "
            f"{len(q['online'])}/{len(q['members'])} members online")


def role(which: str) -> str:
    q = queue()
    if q is None:
        raise ProbeFailed(f"queue {QUEUE} not declared")
    self_ = me()
    if which == "leader":
        ok = q["leader"] == self_
    elif which == "follower":
        ok = self_ in q["members"] and q["leader"] != self_
    elif which == "member":
        ok = self_ in q["members"]
    else:
        raise ProbeFailed(f"unknown role {which!r} (leader, follower, member)")
    if not ok:
        raise ProbeFailed(f"{self_} is not the {which} of {QUEUE} (leader {q['leader']}, members "
                          f"{', '.join(q['members'])})")
    return f"{self_} is the {which} of {QUEUE}"


def main(argv: list[str]) -> int:
    try:
        if argv[:1] == ["health"]:
            print(health())
        elif argv[:1] == ["role"] and len(argv) == 2:
            print(role(argv[1]))
        elif argv[:1] == ["queue"]:
            q = queue()
            print(json.dumps(q))
            return 0 if q is not None else 1
        elif argv[:1] == ["cluster"]:
            print(json.dumps(cluster()))
        else:
            print(__doc__.strip().split("\n\n")[1], file=sys.stderr)
            return 64
    except ProbeFailed as e:
        print(f"unhealthy: {e}" if argv[:1] == ["health"] else str(e))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
