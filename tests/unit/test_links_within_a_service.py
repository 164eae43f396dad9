"""A service may link to itself between its replicas (replication pg-N -> pg-M through the proxy),
never an instance to itself; and a partition may name two live roles asked of the same instances
(Patroni's leader and replicas are both found among `pg`): which side each instance is on is only
known when the fault fires."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import InputError
from harness.loader import load_experiment, load_target
from harness.stack.links import Interposer, client_rules
from tests.unit.test_stack_links import _planned

COMPOSE = """
services:
  db:
    image: continuum/echo-web:latest
    deploy: {{replicas: {n}}}
    ports: ["5432"]
x-continuum:
  links:
    - {{from: db, to: db, port: 5432}}
  roles:
    leader: {{among: db, http: {{port: 8008, path: /primary}}}}
    replica: {{among: db, http: {{port: 8008, path: /replica}}}}
    fixed: {{members: [db-1]}}
  entrypoints: [{{service: db, port: 5432}}]
  load: {{locustfile: locustfile.py, profiles: [x]}}
"""


def _target(tmp_path: Path, n: int = 3) -> Path:
    d = tmp_path / "t"
    d.mkdir(exist_ok=True)
    (d / "compose.yaml").write_text(COMPOSE.format(n=n))
    (d / "locustfile.py").write_text("class x: pass\n")
    return d


def test_a_replicated_service_links_to_each_of_its_instances(tmp_path):
    target = load_target(_target(tmp_path))
    assert [(l.name, l.client, l.upstream) for l in target.links] == [
        ("db-db-1", "db", "db-1"), ("db-db-2", "db", "db-2"), ("db-db-3", "db", "db-3")]


def test_a_single_instance_cannot_link_to_itself(tmp_path):
    with pytest.raises(InputError, match=r"compose.yaml:\d+:\d+: .*one instance: it cannot link to itself"):
        load_target(_target(tmp_path, n=1))


class _Ns:
    key = "k1"

    def __init__(self):
        self.lines: list[str] = []

    def restore(self, lines):
        self.lines.extend(lines)


class _NetExec:
    def __init__(self):
        self.ns: dict[str, _Ns] = {}

    def namespace(self, container, instance):
        return self.ns.setdefault(instance, _Ns())


def test_an_instance_is_never_interposed_on_itself(tmp_path):
    target = load_target(_target(tmp_path))
    _, plan, routes = _planned(target)
    netexec = _NetExec()
    ip = Interposer(client=None, run_id="r1", routes=routes, netexec=netexec,
                    container_of=lambda i: i, service_of=lambda i: i.rsplit("-", 1)[0],
                    toxiproxy=lambda: None, instances_of=lambda s: [f"{s}-{k}" for k in (1, 2, 3)])
    ip.ensure("db-1")
    dnat = [line for line in netexec.ns["db-1"].lines if "DNAT" in line]
    assert len(dnat) == 2
    assert not any(f"-d {plan.ip('db-1', 'default')}/32" in line for line in netexec.ns["db-1"].lines)
    assert any(f"-d {plan.ip('db-2', 'default')}/32" in line for line in dnat)
    assert any(f"-d {plan.ip('db-3', 'default')}/32" in line for line in dnat)
    # The service's full rule set would include its own address: the instance filter is what
    # keeps db-1 from going through the proxy to itself.
    assert len([x for x in client_rules(routes, "db", "c") if "DNAT" in x]) == 3


def _experiment(tmp_path: Path, groups: str) -> Path:
    _target(tmp_path)
    f = tmp_path / "e.yaml"
    f.write_text(f"""apiVersion: continuum/v1
kind: Experiment
name: e
description: d
target: t
duration: 60s
load: {{profile: x}}
slo: {{availability: ">= 99%"}}
faults: [{{at: 5s, for: 5s, action: partition, groups: {groups}}}]
""")
    return f


def test_live_roles_among_the_same_instances_may_face_each_other(tmp_path):
    exp = load_experiment(_experiment(tmp_path, "[[leader], [replica]]"))
    assert exp.faults[0].groups == (("leader",), ("replica",))


def test_a_static_role_is_still_checked_for_overlap_when_loaded(tmp_path):
    with pytest.raises(InputError, match="db-1 would be on both sides"):
        load_experiment(_experiment(tmp_path, "[[fixed], [db]]"))
