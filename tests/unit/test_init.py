"""`continuum init`: from a plain Compose file to a target folder that validates, inferring what
it can (known answers on the etcd example and small files), never overwriting."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness.cli import main
from harness.errors import InputError
from harness.init import init_target, next_steps
from harness.loader import load_experiments, load_target

REPO = Path(__file__).resolve().parents[2]
ETCD = REPO / "targets" / "etcd"


@pytest.fixture
def etcd_copy(tmp_path: Path) -> Path:
    """The etcd example as a user has it: the Compose project alone, before init."""
    dst = tmp_path / "etcd"
    shutil.copytree(ETCD, dst, ignore=shutil.ignore_patterns("continuum", "README.md"))
    return dst


def test_init_on_the_etcd_cluster(etcd_copy: Path, capsys):
    before = (etcd_copy / "docker-compose.yml").read_text()
    assert main(["init", str(etcd_copy / "docker-compose.yml")]) == 0
    out = capsys.readouterr().out
    assert "continuum validate" in out and "continuum images" in out and "continuum run" in out
    assert (etcd_copy / "docker-compose.yml").read_text() == before     # never touched
    t = load_target(etcd_copy / "continuum")
    assert t.name == "etcd" and t.root == etcd_copy.resolve()
    assert [(e.service, e.port) for e in t.entrypoints] == [("haproxy", 2379)]
    leader = t.role("etcd-leader")
    assert leader.kind == "http" and leader.members == ("etcd1", "etcd2", "etcd3")
    assert leader.probe.field == "leader" and leader.probe.equals_field == "header.member_id"
    names = sorted(e.name for e in load_experiments([etcd_copy / "continuum" / "experiments"]))
    # One latency experiment per link it found: links work on a single shared network (DNAT in
    # the client's namespace, harness.stack.links), so none is commented out.
    pairs = [("etcd1", "etcd2"), ("etcd1", "etcd3"), ("etcd2", "etcd1"), ("etcd2", "etcd3"),
             ("etcd3", "etcd1"), ("etcd3", "etcd2"), ("haproxy", "etcd1"), ("haproxy", "etcd2"),
             ("haproxy", "etcd3")]
    assert names == ["kill-etcd", "kill-etcd-leader", *(f"latency-{a}-{b}" for a, b in pairs), "steady-state"]
    text = (etcd_copy / "continuum" / "continuum.yaml").read_text()
    # Links it found (from the HAProxy config and the peer URLs), each with where it was found.
    assert "  - {from: haproxy, to: etcd1, port: 2379}   # etcd1:2379 in haproxy's bound file" in text
    assert "  - {from: etcd1, to: etcd2, port: 2380}   # etcd2:2380 in etcd1's command" in text
    assert {l.name for l in t.links} >= {"haproxy-etcd1", "etcd1-etcd2"}


def test_init_never_overwrites(etcd_copy: Path):
    init_target(etcd_copy / "docker-compose.yml")
    mark = etcd_copy / "continuum" / "locustfile.py"
    mark.write_text("# mine\n")
    with pytest.raises(InputError, match="init never overwrites.*nothing was written"):
        init_target(etcd_copy / "docker-compose.yml")
    assert mark.read_text() == "# mine\n"


def test_init_refuses_a_file_the_harness_refuses_and_writes_nothing(tmp_path: Path):
    (tmp_path / "compose.yaml").write_text("services:\n  a: {image: a, privileged: true}\n")
    with pytest.raises(InputError, match=r"compose.yaml:2:\d+: privileged is refused"):
        init_target(tmp_path / "compose.yaml")
    assert not (tmp_path / "continuum").exists()


def test_replicas_links_on_separate_networks_and_latency_experiments(tmp_path: Path):
    (tmp_path / "compose.yaml").write_text(
        "services:\n"
        "  web:\n    image: 'web:1'\n    ports: ['8080']\n    networks: [front]\n"
        "    environment: {API_URL: 'http://api:9000/v1'}\n"
        "    healthcheck: {test: ['CMD', 'curl', '-f', 'http://localhost:8080/healthz']}\n"
        "  api:\n    image: 'api:1'\n    deploy: {replicas: 2}\n    networks: [back]\n"
        "    depends_on: [db]\n"
        "  db:\n    image: 'postgres:15'\n    networks: [data]\n"
        "networks: {front: {}, back: {}, data: {}}\n")
    result = init_target(tmp_path / "compose.yaml")
    inf = result.inferred
    assert inf.health_path == "/healthz"
    assert [(l.client, l.to, l.port, l.refused) for l in inf.links] == [
        ("api", "db", 5432, ""), ("web", "api", 9000, "")]
    assert inf.groups == [("api", ["api-1", "api-2"])]
    exps = {e.name: e for e in load_experiments([tmp_path / "continuum" / "experiments"])}
    assert set(exps) == {"steady-state", "kill-api", "latency-api-db", "latency-web-api"}
    assert [f.select.service for f in exps["kill-api"].faults] == ["api-1", "api-2"]
    assert exps["latency-web-api"].faults[0].links == ("web-api-1", "web-api-2")
    assert "PATHS = [\"/healthz\"]" in (tmp_path / "continuum" / "locustfile.py").read_text()
    assert "2 link(s)" in next_steps(result, tmp_path)
