"""Links on real parts (Docker, Toxiproxy, iptables in helper containers), on the most common
Compose layout: every service on one network, no `networks` key at all (tests/fixtures/flat).

Each test probes from inside a container with a raw TCP connection and names what the
client saw: `ok` (an HTTP answer), `refused`, `connect-timeout`, `unreachable`, `reset`,
`closed` (accepted, then closed without an answer) or `read-timeout` (accepted, then silent).
`client-1/2` reach the server through the link; `direct` reaches it without one: the same
fault seen without the proxy.
"""

from __future__ import annotations

import time

import pytest

from harness.faults import FaultContext, build
from harness.loader import load_target
from harness.stack.links import HOLD_UPSTREAM_DOWN
from tests.helpers import FIXTURES

pytestmark = pytest.mark.docker

PROBE = r"""
import errno, socket, sys, time
host, port, limit = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
t0 = time.monotonic()
def out(kind):
    print(kind, round(time.monotonic() - t0, 3))
    sys.exit(0)
try:
    s = socket.create_connection((host, port), timeout=limit)
except socket.timeout:
    out("connect-timeout")
except ConnectionRefusedError:
    out("refused")
except socket.gaierror:
    out("no-such-name")
except OSError as e:
    out("unreachable" if e.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH) else "connect-" + errno.errorcode.get(e.errno, "?"))
try:
    s.sendall(b"GET /healthz HTTP/1.0\r\nHost: x\r\n\r\n")
    data = s.recv(64)
except socket.timeout:
    out("read-timeout")
except ConnectionResetError:
    out("reset")
out("ok" if data.startswith(b"HTTP/1.") else "closed")
"""
CONNECT_FAILURES = {"refused", "connect-timeout", "unreachable"}


@pytest.fixture(scope="module")
def stack(docker_client):
    from harness.stack.stack import Stack

    with Stack(load_target(FIXTURES / "flat"), client=docker_client) as s:
        yield s


@pytest.fixture
def ctx(stack):
    return FaultContext(stack=stack, run_id=stack.run_id)


def probe(stack, src: str, host: str, port: int = 8080, limit_s: float = 1.5) -> tuple[str, float]:
    code, out = stack.instance(src).exec(["python3", "-c", PROBE, host, str(port), str(limit_s)], timeout_s=10)
    assert code == 0, out
    kind, seconds = out.split()
    return kind, float(seconds)


def server_ip(stack) -> str:
    return stack.plan.ip("server", "default")


def host_rules() -> str:
    import shutil
    import subprocess

    if shutil.which("iptables-save") is None:
        pytest.skip("no iptables-save on this host to read its rules back")
    return subprocess.run(["iptables-save"], capture_output=True, text=True, timeout=10).stdout


def wait_for(cond, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.1)
    return False


def test_single_network_link_goes_through_the_proxy(stack):
    """A 300 ms latency toxic on the link slows client-1's request by 300 ms and nobody
    else's: the client's traffic, by the server's real name, goes through the proxy."""
    assert stack.target.networks[0].name == "default" and len(stack.target.networks) == 1
    code, out = stack.instance("client-1").exec(["getent", "hosts", "server"], timeout_s=5)
    assert code == 0 and out.split()[0] == server_ip(stack), "the client must see the server's real address"
    assert probe(stack, "client-1", "server")[0] == "ok"
    base = min(probe(stack, "client-1", "server")[1] for _ in range(3))
    from harness.faults.network import Toxic

    stack.toxiproxy.add_toxic("client-server", "slow", Toxic("latency", (("latency", 300),), "downstream", 1.0))
    try:
        slow = min(probe(stack, "client-1", "server")[1] for _ in range(3))
        direct = min(probe(stack, "direct", "server")[1] for _ in range(3))
    finally:
        stack.toxiproxy.remove_toxic("client-server", "slow")
    print(f"client-1 {base * 1000:.0f} ms, with 300 ms on the link {slow * 1000:.0f} ms, direct {direct * 1000:.0f} ms")
    assert slow - base >= 0.29
    assert direct < 0.29


def test_partition_cuts_the_proxied_path(stack, ctx):
    """client-1 | server: client-1's connects through the proxy time out, as they would
    without it; client-2 and direct still get through; the revert restores client-1."""
    inj = build("partition", {"name": "cut", "groups": [["client-1"], ["server"]], "for": "2s"},
                stack.target).inject(ctx)
    try:
        assert f"continuum:{stack.run_id}:cut" not in host_rules(), "a rule landed in the host's namespace"
        seen = probe(stack, "client-1", "server")[0]
        assert seen == "connect-timeout", f"client-1 saw {seen} through the proxy during the partition"
        assert probe(stack, "client-2", "server")[0] == "ok"
        assert probe(stack, "direct", "server")[0] == "ok"
    finally:
        inj.revert()
    assert probe(stack, "client-1", "server")[0] == "ok"


def test_partition_one_way_through_the_proxy(stack, ctx):
    """server -/-> client-1 (one way, the server's side is A): client-1's request reaches the
    server, the answer never comes back, so its connect times out (no SYN-ACK)."""
    inj = build("partition", {"name": "oneway", "groups": [["server"], ["client-1"]], "direction": "one-way",
                              "for": "2s"}, stack.target).inject(ctx)
    try:
        assert probe(stack, "client-1", "server")[0] == "connect-timeout"
        assert probe(stack, "client-2", "server")[0] == "ok"
    finally:
        inj.revert()
    assert probe(stack, "client-1", "server")[0] == "ok"


def test_killed_upstream_fails_on_connect_through_the_proxy_as_without_it(stack, ctx):
    """The server killed: a client that still has its address fails to connect the same way
    through the link as without it (direct), never accepted and then closed by the proxy; its
    name stops resolving for both. Started again, the link works again, through the proxy."""
    before_kill = probe(stack, "client-1", server_ip(stack))[0]
    assert before_kill == "ok"
    inj = build("container.kill", {"name": "k", "select": {"service": "server"}, "for": "5s"},
                stack.target).inject(ctx)
    try:
        # Taken out of its clients' rules before the kill; the proxy itself is left alone.
        assert stack.interposer.rules_in("client-1") == []
        assert not stack.toxiproxy.held("client-server")
        proxied = probe(stack, "client-1", server_ip(stack))
        direct = probe(stack, "direct", server_ip(stack))
        print(f"server killed: through the proxy {proxied}, without it {direct}")
        assert proxied[0] in CONNECT_FAILURES and proxied[0] == direct[0]
        assert probe(stack, "client-1", "server")[0] == probe(stack, "direct", "server")[0] == "no-such-name"
    finally:
        inj.revert()
    stack.instance("server").wait_healthy(30)
    assert wait_for(lambda: stack.toxiproxy.proxy("client-server")["enabled"] is True)
    assert wait_for(lambda: len(stack.interposer.rules_in("client-1")) == 2)
    assert probe(stack, "client-1", "server")[0] == "ok"


def test_upstream_dying_on_its_own_and_a_link_down_fault_compose(stack, ctx):
    """The server dies behind the harness's back (as a crash would): its link is held down at
    once and its clients' rules for it go; a link-down fault still holds after the server
    starts again, and its revert brings the link back only once nothing else holds it down."""
    tp = stack.toxiproxy
    down = build("network.down", {"name": "ld", "link": "client->server", "for": "5s"},
                 stack.target).inject(ctx)
    try:
        stack.container("server").kill()
        assert wait_for(lambda: HOLD_UPSTREAM_DOWN in tp.held("client-server"))
        assert wait_for(lambda: stack.interposer.rules_in("client-1") == [])
        stack.instance("server").start()
        assert wait_for(lambda: not tp.held("client-server"))
        assert tp.proxy("client-server")["enabled"] is False, "the upstream's start undid a link-down fault"
    finally:
        down.revert()
    assert tp.proxy("client-server")["enabled"] is True
    stack.instance("server").wait_healthy(30)
    assert probe(stack, "client-1", "server")[0] == "ok"


def test_restarted_client_is_interposed_again(stack, ctx):
    """A client's new namespace starts empty: the stack puts its link rules back."""
    inj = build("container.kill", {"name": "kc", "select": {"service": "client-2"}, "for": "5s"},
                stack.target).inject(ctx)
    inj.revert()
    stack.instance("client-2").wait_healthy(30)
    assert wait_for(lambda: len(stack.interposer.rules_in("client-2")) == 2)
    from harness.faults.network import Toxic

    stack.toxiproxy.add_toxic("client-server", "slow2", Toxic("latency", (("latency", 300),), "downstream", 1.0))
    try:
        assert min(probe(stack, "client-2", "server")[1] for _ in range(2)) >= 0.29
    finally:
        stack.toxiproxy.remove_toxic("client-server", "slow2")


def test_toxiproxy_api_is_out_of_reach_of_target_containers(stack):
    """From inside a target container: not on Toxiproxy's address on the shared network, not
    on its control address, not through the host's published port; the harness still is."""
    tp = stack.container("toxiproxy")
    tp.reload()
    published = int(tp.ports["8474/tcp"][0]["HostPort"])
    shared_ip = stack.plan.toxiproxy_ip("default")
    ctl_ip = stack.plan.toxiproxy_ip("_ctl")
    gateway = stack.plan.gateway("default")
    seen = {
        "shared": probe(stack, "client-1", shared_ip, 8474)[0],
        "control": probe(stack, "client-1", ctl_ip, 8474)[0],
        "host": probe(stack, "client-1", gateway, published)[0],
        "direct-shared": probe(stack, "direct", shared_ip, 8474)[0],
    }
    print("Toxiproxy API from inside a target container:", seen)
    assert all(kind in CONNECT_FAILURES for kind in seen.values()), seen
    assert "client-server" in stack.toxiproxy.proxies()


def test_a_namespace_handle_is_one_incarnation_of_one_container(stack):
    """A stopped container has no namespace to change (an error, never a fallback to some other
    namespace); started again it is a new namespace with a new key, entered by a new helper."""
    from harness.errors import FaultError

    inst = stack.instance("direct")
    first = inst.netns().key
    assert inst.netns().key == first
    inst.kill()
    inst.wait_status({"exited"}, 10)

    def refused() -> bool:      # once the engine's "die" event is in (milliseconds)
        try:
            inst.netns()
        except FaultError as exc:
            assert "no network namespace" in str(exc)
            return True
        return False

    assert wait_for(refused, 5)
    inst.start()
    inst.wait_status({"running"}, 10)
    second = inst.netns()
    assert second.key != first
    seen = second.save()            # the container's own namespace: Docker's DNS rules, not the host's chains
    assert "DOCKER_OUTPUT" in seen and "127.0.0.11" in seen and "DOCKER-ISOLATION" not in seen
    inst.wait_healthy(30)
