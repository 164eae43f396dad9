"""harness.target.readback: each read-back source, against real sockets and processes, with
known answers; a failed read is unknown, never empty."""

from __future__ import annotations

import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from harness.model.durability import (
    DurabilitySpec,
    ExecRead,
    FunctionRead,
    HttpRead,
    InvariantSpec,
    PageSpec,
    ReadSpec,
)
from harness.target.readback import read_back

IDS = [f"id-{i:03d}" for i in range(25)]


@pytest.fixture
def server():
    """GET /items?after=N → 10 ids after N and the next cursor; /audit → the ledger's answer;
    /stats → a number; /broken → 500."""
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):
            url = urllib.parse.urlsplit(self.path)
            q = dict(urllib.parse.parse_qsl(url.query))
            if url.path == "/items":
                start = int(q.get("after", 0))
                page = IDS[start:start + 10]
                body = {"data": {"ids": page}, "next": start + 10 if start + 10 < len(IDS) else None}
            elif url.path == "/audit":
                body = {"transfer_ids": IDS[:3], "total_balance": 100, "expected_total": 100}
            elif url.path == "/stats":
                body = {"min": -1}
            else:
                self.send_response(500)
                self.end_headers()
                return
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}", srv.server_address[1]
    srv.shutdown()
    srv.server_close()


class Node:
    def __init__(self, ip="127.0.0.1", answer=(0, "", ""), status="running"):
        self.ip, self.answer, self.status_ = ip, answer, status
        self.calls: list = []

    def status(self):
        return self.status_

    def ips(self):
        return [self.ip]

    def run(self, argv, timeout_s):
        self.calls.append(tuple(argv))
        return self.answer


class Stack:
    def __init__(self, **nodes):
        self.nodes = nodes

    def instance(self, name):
        return self.nodes[name]


def test_paged_http_read_back_joins_every_page(server):
    base, _ = server
    spec = DurabilitySpec(read=ReadSpec(kind="http", http=HttpRead(
        path="/items", page=PageSpec(param="after", next="next"))), ids="data.ids")
    snap = read_back(spec, Stack(), [base])
    assert snap.ids == tuple(IDS) and snap.error is None


def test_http_from_an_instance_directly_with_the_ledger_invariant(server):
    _, port = server
    spec = DurabilitySpec(
        read=ReadSpec(kind="http", http=HttpRead(among=("app",), port=port, path="/audit"),
                      instances=("app-1", "app-2")),
        ids="transfer_ids",
        invariants=(InvariantSpec(name="money_conserved", value="total_balance",
                                  expected_field="expected_total"),
                    InvariantSpec(name="no_negative", value="min", op=">=", expected=0,
                                  read=ReadSpec(kind="http", http=HttpRead(path="/stats")))))
    # app-1 is down: app-2 answers. No entry point is needed for the ids.
    stack = Stack(**{"app-1": Node(status="exited"), "app-2": Node()})
    snap = read_back(spec, stack, [f"http://127.0.0.1:{port}"])
    assert snap.ids == tuple(IDS[:3])
    inv = {i.name: i for i in snap.invariants}
    assert (inv["money_conserved"].value, inv["money_conserved"].expected) == (100, 100)
    assert (inv["no_negative"].value, inv["no_negative"].expected) == (-1, 0)


def test_on_a_remote_engine_an_instance_address_is_never_asked(server):
    # The same read as above, with a server that would answer; the stack's engine is remote, so
    # the address is not this engine's container here: unknown, and nothing was sent.
    srv_hits: list = []
    _, port = server
    spec = DurabilitySpec(read=ReadSpec(kind="http", http=HttpRead(among=("app",), port=port, path="/audit",
                                                                   timeout_s=1.0), instances=("app-1",)),
                          ids="transfer_ids")

    class Remote(Stack):
        engine_local = False

    node = Node()
    node.ips = lambda: srv_hits.append("asked") or ["127.0.0.1"]
    snap = read_back(spec, Remote(**{"app-1": node}), [])
    assert snap.ids is None and "remote engine" in snap.error and "exec read-back" in snap.error
    assert srv_hits == []
    snap = read_back(spec, Stack(**{"app-1": Node()}), [])       # the same on a local engine
    assert snap.ids == tuple(IDS[:3])


def test_a_read_back_that_fails_is_unknown_not_empty(server):
    base, _ = server
    spec = DurabilitySpec(read=ReadSpec(kind="http", http=HttpRead(path="/broken", timeout_s=1.0)),
                          invariants=(InvariantSpec(name="i", value="x", expected=1),))
    snap = read_back(spec, Stack(), [base])
    assert snap.ids is None and "no answer within 1 s" in snap.error and "500" in snap.error
    assert snap.invariants[0].error.startswith("the read-back failed")


def test_a_missing_field_is_a_failure_not_zero_ids(server):
    base, _ = server
    spec = DurabilitySpec(read=ReadSpec(kind="http", http=HttpRead(path="/stats", timeout_s=1.0)),
                          ids="transfer_ids")
    snap = read_back(spec, Stack(), [base])
    assert snap.ids is None and "no field 'transfer_ids'" in snap.error


def test_exec_lines_with_a_pattern_and_the_next_instance_when_one_fails():
    out = "ids/a\nids/b\nother/c\n\nids/b\n"
    stack = Stack(**{"etcd1": Node(answer=(1, "", "connection refused")),
                     "etcd2": Node(answer=(0, out, "a warning on stderr"))})
    spec = DurabilitySpec(read=ReadSpec(kind="exec", exec=ExecRead(
        among=("etcd1", "etcd2"), argv=("etcdctl", "get", "--prefix", "--keys-only", "ids/")),
        instances=("etcd1", "etcd2")), match="^ids/(.+)$")
    snap = read_back(spec, stack, [])
    assert snap.ids == ("a", "b", "b")          # the repeat is kept: a duplicate to count
    assert stack.nodes["etcd1"].calls and stack.nodes["etcd2"].calls


def test_function_read_back_runs_in_a_child_process(tmp_path: Path):
    f = tmp_path / "readback.py"
    f.write_text(
        "import dataclasses, os\n"
        "@dataclasses.dataclass\n"
        "class Drained:\n"
        "    ids: list\n"
        "    complete: bool = True\n"
        "def drain(endpoints, timeout_s=5):\n"
        "    print('noise on stdout must not corrupt the answer')\n"
        "    return Drained(ids=[e.rsplit(':', 1)[-1] for e in endpoints] + [str(timeout_s)])\n"
        "def broken(endpoints):\n"
        "    raise RuntimeError('the queue has no leader')\n")
    spec = DurabilitySpec(read=ReadSpec(kind="function", file=f, function=FunctionRead(
        name="drain", timeout_s=7.0)), ids="ids")
    snap = read_back(spec, Stack(), ["http://127.0.0.1:1", "http://127.0.0.1:2"])
    assert snap.ids == ("1", "2", "7.0")
    # A drain that did not finish says so; the read is then unknown, not what it got so far.
    f.write_text(f.read_text() + "def partial(endpoints):\n"
                 "    return {'ids': ['a'], 'complete': False, 'error': 'queue has no leader'}\n")
    part = spec.model_copy(update={"valid_when": "complete", "read": spec.read.model_copy(
        update={"function": FunctionRead(name="partial")})})
    snap = read_back(part, Stack(), [])
    assert snap.ids is None and snap.error == ("the read-back says it is not valid (complete is "
                                               "False: queue has no leader)")
    bad = spec.model_copy(update={"read": spec.read.model_copy(update={
        "function": FunctionRead(name="broken")})})
    snap = read_back(bad, Stack(), [])
    assert snap.ids is None and "the queue has no leader" in snap.error
