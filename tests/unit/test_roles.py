"""harness.target.roles: roles found by asking, with known answers.

HTTP and TCP probes go to real sockets: one small server per fake instance, each on its own
loopback address (127.0.0.x all reach `lo` on Linux), the same port on each, as containers have.
Exactly one instance answers as the holder; the probe must find that one and no other.
"""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from harness.errors import FaultError, HarnessError
from harness.faults import FaultContext
from harness.faults.select import pick
from harness.faults import build
from harness.model.roles import ExecProbe, HttpProbe, TcpProbe
from harness.model.target import NetworkSpec, RoleSpec, ServiceSpec, Target
from harness.target.roles import check_roles, resolve_role, roles_used

ADDRS = {"db-1": "127.0.0.11", "db-2": "127.0.0.12", "db-3": "127.0.0.13"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.11", 0))
        return s.getsockname()[1]


class Node:
    """An instance as probes see it: an address, a status, a command's answer."""

    def __init__(self, name: str, ip: str, exec_answer=(0, "", "")):
        self.name, self.ip, self.status_ = name, ip, "running"
        self.service = "db"
        self.exec_answer = exec_answer
        self.calls: list = []

    def status(self):
        return self.status_

    def ips(self):
        return [self.ip]

    def run(self, argv, timeout_s):
        self.calls.append(tuple(argv))
        return self.exec_answer

    def exec(self, argv, timeout_s):
        code, out, err = self.exec_answer
        self.calls.append(tuple(argv))
        return code, out + err


def target(*roles: RoleSpec) -> Target:
    return Target(name="t", root=Path("/nonexistent"), networks=(NetworkSpec(name="n"),),
                  services=(ServiceSpec(name="db", image="img", networks=("n",),
                                        deploy={"replicas": 3}),
                            ServiceSpec(name="sentinel", image="img", networks=("n",))),
                  roles=roles)


class Stack:
    def __init__(self, t: Target, nodes: dict[str, Node]):
        self.target, self.run_id, self.toxiproxy, self.nodes = t, "r", None, nodes

    def instance(self, name):
        return self.nodes[name]


def ctx_for(role: RoleSpec, nodes: dict[str, Node]) -> FaultContext:
    return FaultContext(stack=Stack(target(role), nodes), run_id="r")


@pytest.fixture
def servers():
    """An HTTP server per instance; `state[name]` says what it answers."""
    port = _free_port()
    state = {n: {"primary": False, "member_id": str(1000 + i)} for i, n in enumerate(ADDRS)}
    leader = {"id": state["db-2"]["member_id"]}
    running = []
    for name, ip in ADDRS.items():
        class Handler(BaseHTTPRequestHandler):
            me = name

            def log_message(self, *a):
                pass

            def _send(self, code, body):
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                if self.path == "/primary":
                    self._send(200 if state[self.me]["primary"] else 503, {"role": "x"})
                else:
                    self._send(404, {})

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                assert json.loads(self.rfile.read(n)) == {}
                self._send(200, {"header": {"member_id": state[self.me]["member_id"]},
                                 "leader": leader["id"]})

        srv = ThreadingHTTPServer((ip, port), Handler)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        running.append(srv)
    yield port, state, leader
    for srv in running:
        srv.shutdown()
        srv.server_close()


def nodes() -> dict[str, Node]:
    return {n: Node(n, ip) for n, ip in ADDRS.items()}


def test_http_status_finds_the_one_primary(servers):
    port, state, _ = servers
    state["db-3"]["primary"] = True
    role = RoleSpec(name="primary", kind="http", members=tuple(ADDRS),
                    probe=HttpProbe(port=port, path="/primary", status=(200,)))
    answer = resolve_role(ctx_for(role, nodes()), role)
    assert answer.holders == ("db-3",)
    assert "db-1 503" in answer.how and "db-3 200" in answer.how


def test_http_json_field_equal_to_another_field_names_the_etcd_leader(servers):
    port, _, leader = servers
    role = RoleSpec(name="leader", kind="http", members=tuple(ADDRS), probe=HttpProbe(
        port=port, method="POST", path="/v3/maintenance/status", body="{}", field="leader",
        equals_field="header.member_id"))
    c = ctx_for(role, nodes())
    assert resolve_role(c, role).holders == ("db-2",)
    leader["id"] = "1000"                       # a new election: db-1 now
    assert resolve_role(c, role).holders == ("db-1",)


def test_a_killed_instance_is_not_asked_and_waiting_ends_in_a_fault_error(servers):
    port, state, _ = servers
    state["db-1"]["primary"] = True
    ns = nodes()
    ns["db-1"].status_ = "exited"               # the primary was killed: nobody holds it now
    role = RoleSpec(name="primary", kind="http", members=tuple(ADDRS), wait_s=0.6,
                    probe=HttpProbe(port=port, path="/primary", status=(200,), timeout_s=0.5))
    with pytest.raises(FaultError, match="no instance held it within 0.6 s.*db-1 not running"):
        resolve_role(ctx_for(role, ns), role)


def test_tcp_finds_the_listening_instance(servers):
    port, _, _ = servers
    ns = nodes()
    ns["db-2"].ip = "127.0.0.99"                # nothing listens there
    role = RoleSpec(name="up", kind="tcp", members=tuple(ADDRS), probe=TcpProbe(port=port))
    assert resolve_role(ctx_for(role, ns), role).holders == ("db-1", "db-3")


def test_exec_output_decides():
    ns = nodes()
    ns["db-1"].exec_answer = (0, "slave\n127.0.0.1\n", "")
    ns["db-2"].exec_answer = (0, "master\n0\n", "")
    ns["db-3"].exec_answer = (1, "", "Could not connect")
    role = RoleSpec(name="master", kind="exec", members=tuple(ADDRS),
                    probe=ExecProbe(argv=("redis-cli", "role"), output_matches="^master"))
    answer = resolve_role(ctx_for(role, ns), role)
    assert answer.holders == ("db-2",) and "db-3 exit 1" in answer.how
    assert ns["db-1"].calls == [("redis-cli", "role")]


def test_sentinel_pointed_at_a_plain_redis_is_caught_at_start():
    ns = nodes()
    ns["sentinel"] = Node("sentinel", "127.0.0.20",
                          (1, "ERR unknown command 'SENTINEL', with args beginning with: ", ""))
    role = RoleSpec(name="primary", kind="sentinel-primary", service="sentinel", master_name="m")
    with pytest.raises(HarnessError, match="does not answer as Redis Sentinel.*is service 'sentinel' a Sentinel"):
        check_roles(ctx_for(role, ns), ["primary"])


def test_sentinel_answer_is_the_holder_and_the_fault_detail_says_so():
    ns = nodes()
    ns["sentinel"] = Node("sentinel", "127.0.0.20", (0, "db-3\n6379\n", ""))
    role = RoleSpec(name="primary", kind="sentinel-primary", service="sentinel", master_name="m")
    c = ctx_for(role, ns)
    seen = []
    c.on_role = seen.append
    kill = build("container.kill", {"select": {"role": "primary"}}, c.target)
    assert pick(c, kill) == ["db-3"]
    assert [a.text() for a in seen] == [
        "role primary: db-3 (sentinel: SENTINEL get-master-addr-by-name m → db-3 6379)"]


def test_static_role_is_never_asked_and_plan_says_fixed():
    role = RoleSpec(name="pair", kind="static", members=("db-1", "db-2"))
    ns = nodes()
    assert resolve_role(ctx_for(role, ns), role).holders == ("db-1", "db-2")
    assert all(not n.calls for n in ns.values())
    assert "never asked" in role.describe()
    sel = build("container.kill", {"select": {"role": "pair"}}, target(role)).select
    assert "fixed in the target file" in sel.describe()


def test_roles_used_by_an_experiment_are_the_ones_checked_at_start():
    t = target(RoleSpec(name="primary", kind="static", members=("db-1",)),
               RoleSpec(name="other", kind="static", members=("db-2",)))

    class Exp:
        target = t
        faults = (build("container.kill", {"select": {"role": "primary"}}, t),
                  build("partition", {"groups": [["other"], ["db-3"]], "for": "1s"}, t))
    assert roles_used(Exp) == ["other", "primary"]
