"""The network layer's pure logic: subnets and fixed addresses, link routes and the rules that
interpose them, the proxy's enabled state as faults and stopped upstreams compose, and landing
rules in many namespaces together (fake namespaces)."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from harness.errors import FaultError
from harness.faults.netns import RuleSet
from harness.loader import load_target
from harness.stack.addressing import (AddressPlan, candidate_subnets, pools_from_info,
                                      used_subnets)
from harness.stack.links import (LINK_PORT_BASE, client_rules, plan_routes, proxied_paths,
                                 service_networks, toxiproxy_networks)
from harness.stack.toxiproxy import ToxiproxyClient

ROOT = Path(__file__).resolve().parents[2]
net = ipaddress.ip_network


# ─────────────────────────────── addresses ───────────────────────────────

def test_pools_from_the_engine_or_dockers_defaults():
    assert pools_from_info({"DefaultAddressPools": [{"Base": "10.213.0.0/16", "Size": 24}]}) == (("10.213.0.0/16", 24),)
    defaults = pools_from_info({})
    assert ("172.17.0.0/16", 16) in defaults and ("192.168.0.0/16", 20) in defaults


def test_free_subnets_from_the_top_of_the_pool_skipping_used_ones():
    used = used_subnets([{"IPAM": {"Config": [{"Subnet": "10.9.255.0/24"}]}},
                         {"IPAM": {"Config": [{"Subnet": "10.9.253.128/25"}]}},
                         {"IPAM": None}, {"IPAM": {"Config": [{"Subnet": "fd00::/64"}]}}])
    got = candidate_subnets([("10.9.0.0/16", 24)], used, min_hosts=20)
    assert [next(got), next(got), next(got)] == [net("10.9.254.0/24"), net("10.9.252.0/24"), net("10.9.251.0/24")]
    # A pool whose subnets are too small for the containers is skipped.
    assert list(candidate_subnets([("10.8.0.0/24", 28)], [], min_hosts=20)) == []


def test_fixed_addresses_are_stable_and_distinct():
    plan = AddressPlan()
    plan.add_network("data", net("10.9.7.0/24"), ["redis-1", "redis-2", "sentinel-1"])
    plan.add_network("backend", net("10.9.8.0/24"), ["sentinel-1", "app-1"])
    assert plan.gateway("data") == "10.9.7.1" and plan.toxiproxy_ip("data") == "10.9.7.2"
    assert plan.ip("redis-2", "data") == "10.9.7.11"
    assert plan.ips("sentinel-1") == {"data": "10.9.7.12", "backend": "10.9.8.10"}
    with pytest.raises(Exception, match="no address"):
        plan.ip("app-1", "data")
    with pytest.raises(Exception, match="too small"):
        plan.add_network("tiny", net("10.9.9.0/28"), [f"x-{i}" for i in range(10)])


# ─────────────────────────────── routes and rules ───────────────────────────────

def _planned(target):
    nets = service_networks(target)
    plan = AddressPlan()
    keys = [n.name for n in target.networks] + ["_ctl"]
    for i, key in enumerate(keys):
        members = [inst for inst, s in target.instances() if key in nets[s.name]]
        plan.add_network(key, net(f"10.9.{i}.0/24"), members)
    return nets, plan, plan_routes(target, nets, plan, "_ctl")


def test_reference_layout_attaches_clients_to_their_upstreams_networks():
    """In the reference, the LBs share no network with the apps and the apps none with Redis:
    each client joins its upstream's first network, and nothing else changes."""
    target = load_target(ROOT / "targets" / "reference")
    nets, plan, routes = _planned(target)
    assert nets["lb"] == ("edge", "backend") and nets["app"] == ("backend", "data")
    assert nets["redis-1"] == ("data",) and nets["sentinel"] == ("backend", "data")
    by_name = {r.link: r for r in routes}
    r = by_name["app-redis-2"]
    assert r.network == "data" and r.listen_ip == plan.toxiproxy_ip("data")
    assert r.upstream_ip == r.client_sees[0] == plan.ip("redis-2", "data")
    assert len({r.listen_port for r in routes}) == len(routes), "one listener port per link"
    assert toxiproxy_networks(routes) == ("backend", "data")


def test_single_network_layout_routes_every_link_on_it():
    target = load_target(ROOT / "tests" / "fixtures" / "flat")
    nets, plan, routes = _planned(target)
    assert set(nets.values()) == {("default",)}
    (r,) = routes
    assert (r.client, r.upstream, r.network, r.listen_port) == ("client", "server", "default", LINK_PORT_BASE)


def test_client_rules_translate_and_guard_each_upstream_address():
    target = load_target(ROOT / "targets" / "reference")
    _, plan, routes = _planned(target)
    lines = client_rules(routes, "lb", "continuum:r1:links")
    nat = lines[lines.index("*nat") + 1:lines.index("COMMIT")]
    guard = lines[lines.index("*filter") + 1:-1]
    assert len(nat) == len(guard) == 3
    app2 = plan.ip("app-2", "backend")
    assert (f"-A OUTPUT -d {app2}/32 -p tcp -m tcp --dport 8080 -m comment --comment continuum:r1:links "
            f"-j DNAT --to-destination {plan.toxiproxy_ip('backend')}:{LINK_PORT_BASE + 1}") in nat
    assert all(g.endswith("-j REJECT --reject-with tcp-reset") for g in guard)
    only = client_rules(routes, "lb", "c", "-D", {"app-2"})
    assert len(only) == 6 and all(app2 in x for x in only if x.startswith("-D"))
    assert client_rules(routes, "redis-1", "c") == []
    assert proxied_paths(routes, "app", "redis-3") == [(plan.toxiproxy_ip("data"), LINK_PORT_BASE + 5)]  # lb-app-1..3, app-redis-1..3
    assert proxied_paths(routes, "app", "sentinel-1") == []


# ─────────────────────────────── the proxy's state ───────────────────────────────

class _Recorder(ToxiproxyClient):
    """The real client's state logic with the HTTP calls recorded instead of sent."""

    def __init__(self):
        super().__init__("127.0.0.1", 1)
        self.server: dict[str, bool] = {}
        self.posts: list[tuple[str, bool]] = []

    def _call(self, method, url, **kw):
        name = url.split("/")[2]
        if method == "post":
            self.server[name] = kw["json"]["enabled"]
            self.posts.append((name, kw["json"]["enabled"]))

        class R:
            def json(_):
                return {"enabled": self.server.get(name, True)}
        return R()


def test_a_link_down_fault_and_a_stopped_upstream_compose():
    tp = _Recorder()
    tp.set_enabled("l", False)                       # fault: link down
    tp.hold("l", "upstream-stopped")                 # the upstream dies too
    tp.release("l", "upstream-stopped")              # ... and starts again: still down
    assert tp.server["l"] is False
    tp.set_enabled("l", True)                        # the fault's revert
    assert tp.server["l"] is True
    tp.hold("l", "upstream-stopped")
    tp.set_enabled("l", True)                        # a revert while held: nothing to undo
    assert tp.server["l"] is False and tp.held("l") == {"upstream-stopped"}
    tp.release("l", "upstream-stopped")
    assert tp.server["l"] is True
    assert tp.posts == [("l", False), ("l", True), ("l", False), ("l", True)]


# ─────────────────────────────── landing together ───────────────────────────────

class FakeNamespace:
    def __init__(self, log, name, key="k1", fail=False):
        self.log, self.name, self.key, self.fail = log, name, key, fail
        self.rules: list[str] = []

    def begin(self, lines):
        self.log.append(("send", self.name))
        ns = self

        class Landing:
            def wait(_):
                ns.log.append(("ack", ns.name))
                if ns.fail:
                    raise FaultError("iptables-restore failed")
                for line in lines:
                    if line.startswith("-A "):
                        ns.rules.append(line[3:])
                    elif line.startswith("-D "):
                        ns.rules.remove(line[3:])
                return 100.0 + len(ns.log)
        return Landing()

    def save(self):
        return "\n".join(self.rules)


class FakeInst:
    def __init__(self, name, ns):
        self.name, self.ns = name, ns

    def netns(self):
        return self.ns


def test_every_namespace_is_sent_its_batch_before_any_acknowledgement_is_read():
    log: list = []
    insts = [FakeInst(n, FakeNamespace(log, n)) for n in ("a", "b", "c")]
    rules = RuleSet("continuum:r:p")
    for i in insts:
        rules.add(i, "INPUT", ["-s", "10.0.0.9"])
    last = rules.apply()
    assert [e for e, _ in log] == ["send"] * 3 + ["ack"] * 3
    assert last == max(100.0 + k for k in range(4, 7)) and rules.spread_s == 2.0
    assert insts[0].ns.rules == ["INPUT -s 10.0.0.9 -m comment --comment continuum:r:p -j DROP"]
    detail, _ = rules.remove_all()
    assert all(i.ns.rules == [] for i in insts) and "3 namespace" in detail


def test_a_failed_namespace_undoes_the_others_and_a_restarted_one_is_left_alone():
    log: list = []
    ok, bad = FakeInst("ok", FakeNamespace(log, "ok")), FakeInst("bad", FakeNamespace(log, "bad", fail=True))
    rules = RuleSet("c")
    rules.add(ok, "INPUT", ["-s", "10.0.0.9"])
    rules.add(bad, "INPUT", ["-s", "10.0.0.9"])
    with pytest.raises(FaultError, match="bad"):
        rules.apply()
    assert ok.ns.rules == []
    again = FakeInst("x", FakeNamespace(log, "x"))
    rules = RuleSet("c")
    rules.add(again, "OUTPUT", ["-d", "10.0.0.9"])
    rules.apply()
    again.ns = FakeNamespace(log, "x", key="k2")     # started again: a new, empty namespace
    detail, _ = rules.remove_all()
    assert "0 namespace" in detail


def test_rules_are_tokens_never_text_for_a_shell():
    rules = RuleSet("c")
    with pytest.raises(FaultError):
        rules.add(FakeInst("a", None), "INPUT", ["-s", "10.0.0.9; reboot"])
    with pytest.raises(FaultError):
        RuleSet("two words")


def test_no_harness_code_enters_a_namespace_from_the_host():
    """Issue 12: namespace faults through helper containers only; `nsenter` is never run."""
    for path in (ROOT / "harness").rglob("*.py"):
        code = [line for line in path.read_text().splitlines() if not line.lstrip().startswith("#")]
        assert not any('"nsenter"' in line or "'nsenter'" in line for line in code), path


# ─────────────────────────────── a partition cuts the proxied path ───────────────────────────────

class FakeStack:
    """The flat fixture's target with fixed addresses; namespaces that record rules."""

    def __init__(self):
        from harness.stack.stack import CTL_KEY

        self.target = load_target(ROOT / "tests" / "fixtures" / "flat")
        self.run_id = "r1"
        self.toxiproxy = None
        self.nets, self.plan, self.routes = _planned(self.target)
        assert CTL_KEY == "_ctl"
        self.log: list = []
        self._i = {}
        for name in self.target.instance_names():
            inst = FakeInst(name, FakeNamespace(self.log, name))
            inst.service = self.target.service_of(name).name
            inst.ips = (lambda n=name: sorted(self.plan.ips(n).values()))
            self._i[name] = inst

    def instance(self, name):
        return self._i[name]

    def proxied_paths(self, client, upstream):
        return proxied_paths(self.routes, self.target.service_of(client).name, upstream)


def _partition(stack, groups, direction="both"):
    from harness.faults import FaultContext, build

    ctx = FaultContext(stack=stack, run_id=stack.run_id)
    return build("partition", {"name": "p", "groups": groups, "direction": direction, "for": "1s"},
                 stack.target).inject(ctx)


def test_partition_drops_the_clients_traffic_to_the_proxy_listener_of_links_across_it():
    stack = FakeStack()
    listener = (stack.plan.toxiproxy_ip("default"), LINK_PORT_BASE)
    inj = _partition(stack, [["client-1"], ["server"]])
    c1 = stack.instance("client-1").ns.rules
    to_proxy = f"OUTPUT -d {listener[0]} -p tcp --dport {listener[1]} -m comment --comment continuum:r1:p -j DROP"
    from_proxy = f"INPUT -s {listener[0]} -p tcp --sport {listener[1]} -m comment --comment continuum:r1:p -j DROP"
    assert to_proxy in c1 and from_proxy in c1
    assert not any(listener[0] in r for r in stack.instance("server").ns.rules), "the proxy itself is not cut"
    assert stack.instance("client-2").ns.rules == [] and stack.instance("direct").ns.rules == []
    inj.revert()
    assert stack.instance("client-1").ns.rules == []


def test_one_way_partition_cuts_the_proxied_path_in_its_direction_only():
    stack = FakeStack()
    ip, port = stack.plan.toxiproxy_ip("default"), LINK_PORT_BASE
    _partition(stack, [["client-1"], ["server"]], "one-way")       # client → server dropped
    rules = stack.instance("client-1").ns.rules
    assert any(r.startswith(f"OUTPUT -d {ip} -p tcp --dport {port}") for r in rules)
    assert not any(r.startswith("INPUT") for r in rules)
    stack = FakeStack()
    _partition(stack, [["server"], ["client-1"]], "one-way")       # server → client dropped
    rules = stack.instance("client-1").ns.rules
    assert any(r.startswith(f"INPUT -s {ip} -p tcp --sport {port}") for r in rules)
    assert not any(r.startswith("OUTPUT") for r in rules)


# ─────────────────────────────── blue-green switch ───────────────────────────────

class _NetExec:
    def __init__(self, namespaces):
        self.namespaces = namespaces

    def current(self, name):
        return self.namespaces.get(name)


def test_a_blue_green_switch_redirects_new_connections_of_every_link_client_to_green():
    """`Interposer.redirect`: in each running client of the moved instance, one DNAT rule per
    address it reaches blue at, inserted first (it must win over the link's own rule), under
    its own comment; a stopped client is skipped and gets the rule when it is interposed again
    in a fresh namespace."""
    from harness.stack.links import Interposer

    target = load_target(ROOT / "targets" / "reference")
    nets, plan, routes = _planned(target)
    log: list = []
    lb1 = FakeNamespace(log, "lb-1")
    inserted: list[str] = []
    lb1_begin = lb1.begin

    def begin(lines):
        inserted.extend(lines)
        return lb1_begin(lines)
    lb1.begin = begin
    instances = {"lb": ["lb-1", "lb-2"], "app": ["app-1", "app-2", "app-3"]}
    interposer = Interposer(client=None, run_id="r1", routes=routes, netexec=_NetExec({"lb-1": lb1}),
                            container_of=lambda i: None, service_of=lambda i: i.rsplit("-", 1)[0],
                            toxiproxy=lambda: None, instances_of=lambda s: instances.get(s, []))
    blue, green = plan.ip("app-1", "backend"), "10.9.1.200"
    assert interposer.redirect("app-1", {blue: green}) == 1      # lb-2 is not running
    assert inserted == ["*nat", f"-I OUTPUT -d {blue}/32 -p tcp -m tcp --dport 8080 -m comment "
                        f"--comment continuum:r1:switch -j DNAT --to-destination {green}:8080", "COMMIT"]
    assert interposer.redirected("app-1") and not interposer.redirected("app-2")
    # A client interposed again later (a fresh namespace) gets the switch as well as its links.
    assert interposer._redirect_rules("lb-2", {"app-1"}) == inserted
    assert interposer._redirect_rules("app-2", {"app-1"}) == []   # not a client of app-1


def test_a_switch_is_taken_back_when_the_instance_returns_to_its_own_address():
    from harness.stack.links import Interposer

    target = load_target(ROOT / "targets" / "reference")
    nets, plan, routes = _planned(target)
    sent: list[list[str]] = []

    class NS(FakeNamespace):
        def begin(self, lines):
            sent.append(list(lines))
            return super().begin([])

        def restore(self, lines):
            sent.append(list(lines))
    ns = NS([], "lb-1")
    interposer = Interposer(client=None, run_id="r1", routes=routes, netexec=_NetExec({"lb-1": ns}),
                            container_of=lambda i: None, service_of=lambda i: i.rsplit("-", 1)[0],
                            toxiproxy=lambda: None, instances_of=lambda s: {"lb": ["lb-1"]}.get(s, []))
    blue = plan.ip("app-1", "backend")
    interposer.redirect("app-1", {blue: "10.9.1.200"})
    interposer.unredirect("app-1")
    [insert, delete] = sent
    assert [l.replace("-I OUTPUT", "-D OUTPUT") for l in insert] == delete and delete[1].startswith("-D OUTPUT")
    assert not interposer.redirected("app-1")
    interposer.unredirect("app-1")      # nothing switched: nothing sent
    assert len(sent) == 2
