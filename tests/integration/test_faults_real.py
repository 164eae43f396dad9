"""Every fault family against the real engine, the real Toxiproxy and real iptables: each
injection is checked by its effect, and each revert by reading the state back."""

from __future__ import annotations

import time

import pytest

from harness.faults import FaultContext, build
from harness.loader import load_target
from harness.stack.stack import Stack
from tests.helpers import FIXTURES

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def stack(docker_client):
    with Stack(load_target(FIXTURES / "pair"), client=docker_client) as s:
        yield s


@pytest.fixture
def ctx(stack):
    return FaultContext(stack=stack, run_id=stack.run_id)


def inject(ctx, action, **fields):
    """A fault written as in an experiment file, built and checked by the loader's rules."""
    return build(action, fields, ctx.target).inject(ctx)


def reach(stack, src: str, dst: str, timeout_s: float = 1.0) -> bool:
    """Can `src` open an HTTP request to `dst`'s real container (not through Toxiproxy)?"""
    code, _ = stack.container(src).exec_run(
        ["curl", "-fsS", "-m", str(timeout_s), "-o", "/dev/null", f"http://{stack.object_name(dst)}:8080/healthz"]
    )
    return code == 0


def status(stack, name: str) -> str:
    c = stack.container(name)
    c.reload()
    return c.status


def our_rules(stack, name: str, comment: str) -> list[str]:
    return [r for r in stack.instance(name).netns().save().splitlines() if comment in r]


def test_kill_with_window_then_started_again(stack, ctx):
    inj = inject(ctx, "container.kill", name="k", select={"service": "client-2"}, **{"for": "1s"})
    assert inj.targets == ("client-2",) and status(stack, "client-2") == "exited"
    inj.revert()
    assert status(stack, "client-2") == "running"


def test_stop_and_pause(stack, ctx):
    inj = inject(ctx, "container.stop", name="s", select={"service": "client-2"}, **{"for": "1s"})
    assert status(stack, "client-2") == "exited"
    inj.revert()
    assert status(stack, "client-2") == "running"
    inj = inject(ctx, "container.pause", name="p", select={"service": "server"}, **{"for": "1s"})
    assert status(stack, "server") == "paused"
    assert not reach(stack, "client-1", "server"), "a paused server must not answer"
    inj.revert()
    assert status(stack, "server") == "running" and reach(stack, "client-1", "server")


def test_partition_both_ways_cuts_only_the_named_pair(stack, ctx):
    assert reach(stack, "client-1", "server")
    inj = inject(ctx, "partition", name="cut", groups=[["client-1"], ["server"]], **{"for": "1s"})
    try:
        assert not reach(stack, "client-1", "server")
        assert reach(stack, "client-2", "server"), "the partition leaked beyond its groups"
        assert not reach(stack, "server", "client-1")
    finally:
        inj.revert()
    assert reach(stack, "client-1", "server") and reach(stack, "server", "client-1")
    comment = f"continuum:{stack.run_id}:cut"
    assert our_rules(stack, "client-1", comment) == [] and our_rules(stack, "server", comment) == []


def test_partition_one_way_drops_only_a_to_b(stack, ctx):
    inj = inject(ctx, "partition", name="oneway", groups=[["client-1"], ["server"]], direction="one-way",
                 **{"for": "1s"})
    comment = f"continuum:{stack.run_id}:oneway"
    try:
        a, b = our_rules(stack, "client-1", comment), our_rules(stack, "server", comment)
        assert a and all(r.startswith("-A OUTPUT") for r in a)
        assert b and all(r.startswith("-A INPUT") for r in b)
        assert not reach(stack, "client-1", "server")
    finally:
        inj.revert()
    assert reach(stack, "client-1", "server")


def test_total_packet_loss_and_revert(stack, ctx):
    inj = inject(ctx, "network.loss", name="loss", select={"service": "server"}, percent="100%",
                 **{"for": "1s"})
    try:
        assert not reach(stack, "client-1", "server")
    finally:
        inj.revert()
    assert reach(stack, "client-1", "server")


def test_cpu_and_memory_limits_are_set_and_restored(stack, ctx):
    c = stack.container("client-1")
    inj = inject(ctx, "resource.cpu", name="cpu", select={"service": "client-1"}, cpus=0.25, **{"for": "1s"})
    c.reload()
    assert c.attrs["HostConfig"]["CpuQuota"] == 25_000 and c.attrs["HostConfig"]["CpuPeriod"] == 100_000
    inj.revert()
    c.reload()
    assert (c.attrs["HostConfig"]["CpuQuota"] or 0) <= 0
    inj = inject(ctx, "resource.memory", name="mem", select={"service": "client-1"}, limit="256MiB",
                 **{"for": "1s"})
    c.reload()
    assert c.attrs["HostConfig"]["Memory"] == 256 * 2**20
    inj.revert()
    c.reload()
    assert c.attrs["HostConfig"]["Memory"] != 256 * 2**20
    assert status(stack, "client-1") == "running"


def test_rolling_restart_keeps_at_most_one_down(stack, ctx):
    inj = inject(ctx, "container.rolling_restart", name="roll", select={"service": "client"}, **{"for": "30s"})
    seen_down = 0
    while inj.background.is_alive():
        down = sum(status(stack, n) != "running" for n in ("client-1", "client-2"))
        assert down <= 1, "a rolling restart took both replicas down at once"
        seen_down = max(seen_down, down)
        time.sleep(0.05)
    inj.revert()
    assert seen_down == 1, "never saw an instance restarting"
    assert status(stack, "client-1") == status(stack, "client-2") == "running"


def test_toxics_on_the_real_toxiproxy_are_read_back(stack, ctx):
    tp = stack.toxiproxy
    inj = inject(ctx, "network.latency", name="slow", link="host->server", latency="250ms", **{"for": "1s"})
    assert tp.toxic_names("host-server") == {"continuum-slow-downstream-0"}
    inj.revert()
    assert tp.toxic_names("host-server") == set()
    inj = inject(ctx, "network.down", name="down", link="host->server", **{"for": "1s"})
    assert tp.proxy("host-server")["enabled"] is False
    inj.revert()
    assert tp.proxy("host-server")["enabled"] is True


def test_latency_of_known_size_is_measured_as_that_size(stack):
    """300 ms of downstream latency on the only way in must move the answers' p50 by 300 ms
    (±30 ms). That is the raw latency (each request from sent to answered): the fault's size.
    The reported p50 of this closed-loop load is corrected for coordinated omission (each slow
    answer also stands for the requests its user did not send meanwhile, at latencies from the
    answer's down to the baseline interval, harness.measure.omission), so it is not the
    fault's size (measured: raw +304 ms, corrected 180 ms) and is only printed here."""
    from harness.loader import load_experiment
    from tests.suite_helpers import run_on

    exp = load_experiment(FIXTURES / "experiments" / "pair-latency.yaml")
    record, result = run_on(stack, exp)     # on the module's pair, once it has settled
    assert result.harness_error is None, result.harness_error
    base, slow = result.phase("baseline"), result.phase("fault:slow")
    print(f"raw p50 baseline {base.raw_latency_p50_s * 1000:.1f} ms, during 300 ms latency "
          f"{slow.raw_latency_p50_s * 1000:.1f} ms; corrected p50 during {slow.latency_p50_s * 1000:.1f} ms")
    assert abs((slow.raw_latency_p50_s - base.raw_latency_p50_s) - 0.300) < 0.030


def test_a_restarted_instance_keeps_its_published_port(stack, ctx):
    c = stack.container("server")
    c.reload()
    before = c.ports["8080/tcp"][0]["HostPort"]
    inj = inject(ctx, "container.kill", name="k2", select={"service": "server"}, **{"for": "1s"})
    inj.revert()
    c.reload()
    assert c.ports["8080/tcp"][0]["HostPort"] == before


def lookup(stack, src: str, name: str) -> tuple[int, str]:
    """Resolve `name` inside `src` the way an application does (getaddrinfo)."""
    code, out = stack.instance(src).exec(
        ["python3", "-c", f"import socket; print(socket.getaddrinfo({name!r}, 80)[0][4][0])"], timeout_s=10)
    return code, out


def test_dns_failure_refuses_lookups_and_reverts(stack, ctx):
    assert lookup(stack, "client-1", "server")[0] == 0
    inj = inject(ctx, "network.dns", name="nodns", select={"service": "client-1"}, **{"for": "1s"})
    comment = f"continuum:{stack.run_id}:nodns"
    try:
        t = time.monotonic()
        code, out = lookup(stack, "client-1", "server")
        took = time.monotonic() - t
        assert code != 0 and "Temporary failure in name resolution" in out, out
        assert took < 3.0, f"refuse mode must fail at once, took {took:.1f} s"
        assert lookup(stack, "client-2", "server")[0] == 0, "the fault leaked to another container"
        ip = stack.instance("server").ips()[0]
        code, _ = stack.instance("client-1").exec(
            ["curl", "-fsS", "-m", "1", "-o", "/dev/null", f"http://{ip}:8080/healthz"], timeout_s=5)
        assert code == 0, "an address (no lookup needed) must still be reachable"
    finally:
        inj.revert()
    assert our_rules(stack, "client-1", comment) == []
    assert lookup(stack, "client-1", "server")[0] == 0


def test_dns_failure_of_known_size_is_measured_as_that_size(stack):
    """Lookups refused for 2.0 s inside the server: requests that need one fail for as long as
    the rules were in place (the window as measured, ±200 ms), each failure carries the
    resolver's error, and the service recovers after. The window itself is 2.0 s within 300 ms
    (the undo is a process start inside the namespace: slower on a loaded machine)."""
    from harness.loader import load_experiment
    from tests.suite_helpers import run_on

    exp = load_experiment(FIXTURES / "experiments" / "pair-dns.yaml")
    record, result = run_on(stack, exp)
    assert result.harness_error is None, result.harness_error
    fault = result.faults[0]
    window = fault.reverted_s - fault.injected_s
    outage = result.longest_outage
    errors = dict(result.phase("fault:no-dns").errors)
    print(f"DNS window {window:.3f} s, longest outage {outage.duration_s:.3f} s, errors {errors}")
    assert abs(window - 2.0) < 0.3
    assert abs(outage.duration_s - window) < 0.2
    assert errors and all("name resolution" in e for e in errors), errors
    assert result.phase("recovery").availability == 1.0
    assert result.phase("baseline").availability == 1.0
    assert result.verdict.value == "PASS", result.reasons
