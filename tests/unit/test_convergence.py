"""harness.target.convergence: Sentinel's view read as redis-cli prints it (flat key/value
lines), with known answers: the moment between a heal and the old primary's demotion is not
converged; a stale entry Sentinel keeps for a vanished address is left out."""

from __future__ import annotations

from pathlib import Path

from harness.faults import FaultContext
from harness.model.roles import ExecProbe
from harness.model.target import NetworkSpec, RoleSpec, ServiceSpec, Target
from harness.target.convergence import _records, unconverged, wait_converged

IPS = {"redis-1": "10.0.0.11", "redis-2": "10.0.0.12", "redis-3": "10.0.0.13", "sentinel-1": "10.0.0.21",
       "sentinel-2": "10.0.0.22"}


def flat(*records: dict[str, str]) -> str:
    return "".join(f"{k}\n{v}\n" for r in records for k, v in r.items())


def master(ip: str = "10.0.0.12", flags: str = "master") -> dict[str, str]:
    return {"name": "ledger", "ip": ip, "port": "6379", "flags": flags, "num-slaves": "2"}


def replica(ip: str, *, flags: str = "slave", reported: str = "slave", link: str = "ok",
            master_ip: str = "10.0.0.12") -> dict[str, str]:
    return {"name": f"{ip}:6379", "ip": ip, "port": "6379", "flags": flags, "role-reported": reported,
            "master-link-status": link, "master-host": master_ip, "master-port": "6379"}


class Node:
    def __init__(self, name: str, answers: dict[str, str] | None = None):
        self.name, self.answers, self.state = name, answers or {}, "running"

    def status(self):
        return self.state

    def ips(self):
        return [IPS[self.name]]

    def exec(self, argv, timeout_s):
        key = argv[4] if len(argv) > 4 else ""
        if key in self.answers:
            return 0, self.answers[key]
        return 0, self.answers.get(" ".join(argv), "")

    def run(self, argv, timeout_s):
        code, out = self.exec(argv, timeout_s)
        return code, out, ""


def ctx(sentinels: dict[str, dict[str, str]], roles: tuple[RoleSpec, ...] | None = None,
        extra: dict[str, Node] | None = None) -> tuple[FaultContext, tuple[RoleSpec, ...]]:
    roles = roles or (RoleSpec(name="redis-primary", kind="sentinel-primary", service="sentinel",
                               master_name="ledger"),
                      RoleSpec(name="redis-replicas", kind="sentinel-replicas", service="sentinel",
                               master_name="ledger"))
    t = Target(name="t", root=Path("/nonexistent"), networks=(NetworkSpec(name="n"),),
               services=(ServiceSpec(name="redis", image="img", networks=("n",), deploy={"replicas": 3}),
                         ServiceSpec(name="sentinel", image="img", networks=("n",), deploy={"replicas": 2})),
               roles=roles)
    nodes = {n: Node(n) for n in ("redis-1", "redis-2", "redis-3")}
    nodes.update({s: Node(s, a) for s, a in sentinels.items()})
    nodes.update(extra or {})

    class Stack:
        target, run_id, toxiproxy = t, "r", None

        def instance(self, name):
            return nodes[name]

    return FaultContext(stack=Stack(), run_id="r"), roles


def healthy(**over) -> dict[str, str]:
    return {"master": flat(master(**over)),
            "replicas": flat(replica("10.0.0.11"), replica("10.0.0.13"))}


def test_records_split_at_each_name():
    recs = _records(flat(replica("10.0.0.11"), replica("10.0.0.13")))
    assert [r["ip"] for r in recs] == ["10.0.0.11", "10.0.0.13"]
    assert recs[1]["role-reported"] == "slave"


def test_converged_when_every_sentinel_agrees_and_every_replica_is_attached():
    c, roles = ctx({"sentinel-1": healthy(), "sentinel-2": healthy()})
    assert unconverged(c, roles) == []


def test_old_primary_not_yet_demoted_is_not_converged():
    # After the heal: Sentinel lists the old primary among the replicas, but it still says master.
    answers = {"master": flat(master()),
               "replicas": flat(replica("10.0.0.11", reported="master", link="err", master_ip="?"),
                                replica("10.0.0.13"))}
    c, roles = ctx({"sentinel-1": answers, "sentinel-2": healthy()})
    why = unconverged(c, roles)
    assert len(why) == 1 and "redis-1 still reports itself master" in why[0]


def test_replica_whose_link_is_still_down_is_not_converged():
    answers = {"master": flat(master()),
               "replicas": flat(replica("10.0.0.11", link="err"), replica("10.0.0.13"))}
    c, roles = ctx({"sentinel-1": answers, "sentinel-2": healthy()})
    assert "redis-1's link to the master is err" in unconverged(c, roles)[0]


def test_down_master_or_failover_in_progress_is_not_converged():
    for flags in ("master,s_down", "master,o_down", "master,failover_in_progress"):
        c, roles = ctx({"sentinel-1": healthy(flags=flags), "sentinel-2": healthy()})
        assert f"is {flags}" in unconverged(c, roles)[0], flags


def test_sentinels_naming_different_masters_are_not_converged():
    other = {"master": flat(master(ip="10.0.0.11")),
             "replicas": flat(replica("10.0.0.12", master_ip="10.0.0.11"),
                              replica("10.0.0.13", master_ip="10.0.0.11"))}
    c, roles = ctx({"sentinel-1": healthy(), "sentinel-2": other})
    assert "different masters" in unconverged(c, roles)[0]


def test_stale_entry_of_no_instance_is_left_out():
    answers = healthy()
    answers["replicas"] += flat(replica("10.0.0.99", flags="slave,s_down", link="err"))
    c, roles = ctx({"sentinel-1": answers, "sentinel-2": healthy()})
    assert unconverged(c, roles) == []


def test_a_stopped_sentinel_is_not_asked_and_none_running_is_not_converged():
    c, roles = ctx({"sentinel-1": {"master": "garbage"}, "sentinel-2": healthy()})
    c.stack.instance("sentinel-1").state = "exited"
    assert unconverged(c, roles) == []
    c.stack.instance("sentinel-2").state = "exited"
    assert "no Sentinel of sentinel is running" in unconverged(c, roles)[0]


def test_probe_role_converges_once_someone_holds_it():
    probe = RoleSpec(name="leader", kind="exec", members=("redis-1", "redis-2"),
                     probe=ExecProbe(argv=("role",), output_matches="^master"))
    c, roles = ctx({}, roles=(probe,))
    c.stack.instance("redis-1").answers = {"role": "slave"}
    c.stack.instance("redis-2").answers = {"role": "slave"}
    assert "no instance holds it" in unconverged(c, roles)[0]
    c.stack.instance("redis-2").answers = {"role": "master"}
    assert unconverged(c, roles) == []


def test_wait_converged_waits_then_gives_up_with_the_last_reason():
    now = [0.0]
    answers = iter([["x"], ["y"], []])
    c = wait_converged(None, (), timeout_s=10, poll_s=0.5, clock=lambda: now[0],
                       sleep=lambda s: now.__setitem__(0, now[0] + s), check=lambda *_: next(answers))
    assert c.ok and c.seconds == 1.0
    now[0] = 0.0
    c = wait_converged(None, (), timeout_s=3, poll_s=0.5, clock=lambda: now[0],
                       sleep=lambda s: now.__setitem__(0, now[0] + s), check=lambda *_: ["redis-1 still master"])
    assert not c.ok and c.why == "redis-1 still master" and 2.5 <= c.seconds <= 3.0


def test_sentinel_announcing_hostnames_is_read_by_name():
    # With announce-hostnames (the reference's Sentinels), `ip` is the instance's name.
    answers = {"master": flat(master(ip="redis-3")),
               "replicas": flat(replica("redis-1", reported="master", link="err", master_ip="?"),
                                replica("redis-2", master_ip="redis-3"))}
    c, roles = ctx({"sentinel-1": answers, "sentinel-2": answers})
    assert "redis-1 still reports itself master" in unconverged(c, roles)[0]


def test_the_replica_itself_is_asked_before_sentinels_lagging_copy():
    # Sentinel's copy says all is well (it lags up to 10 s); redis-1 itself still says master.
    c, roles = ctx({"sentinel-1": healthy(), "sentinel-2": healthy()})
    r1 = c.stack.instance("redis-1")
    r1.answers = {"redis-cli -p 6379 ROLE": "master\n0\n"}
    assert "redis-1 still answers ROLE master" in unconverged(c, roles)[0]
    r1.answers = {"redis-cli -p 6379 ROLE": "slave\n10.0.0.12\n6379\nconnect\n-1\n"}
    assert "not yet from the master" in unconverged(c, roles)[0]
    r1.answers = {"redis-cli -p 6379 ROLE": "slave\n10.0.0.12\n6379\nconnected\n1234\n"}
    assert unconverged(c, roles) == []
    # ...and its own word wins over Sentinel's stale "still master" copy.
    stale = {"master": flat(master()),
             "replicas": flat(replica("10.0.0.11", reported="master", link="err", master_ip="?"),
                              replica("10.0.0.13"))}
    c2, roles = ctx({"sentinel-1": stale, "sentinel-2": stale})
    c2.stack.instance("redis-1").answers = r1.answers
    assert unconverged(c2, roles) == []


def test_one_look_asks_each_replica_once_however_many_sentinels_list_it():
    import threading
    import time as _time

    c, roles = ctx({"sentinel-1": healthy(), "sentinel-2": healthy()})
    asked: list[str] = []
    lock = threading.Lock()
    for name in ("redis-1", "redis-3"):
        node = c.stack.instance(name)

        def exec_(argv, timeout_s, name=name, node=node):
            if argv[-1] == "ROLE":
                with lock:
                    asked.append(name)
                _time.sleep(0.05)       # both Sentinels' views overlap while it answers
                return 0, "slave\n10.0.0.12\n6379\nconnected\n1\n"
            return Node.exec(node, argv, timeout_s)
        node.exec = exec_
    assert unconverged(c, roles) == []
    assert sorted(asked) == ["redis-1", "redis-3"], asked
