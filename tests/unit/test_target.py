"""harness.target: the Compose subset + x-continuum → Target."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import InputError
from harness.model import HealthCheck, NetworkSpec, PortSpec
from harness.model.units import parse_duration, parse_size
from harness.loader import load_target
from harness.yamlsafe import loads_yaml

CORPUS = Path(__file__).parent / "corpus"
MINI = CORPUS / "targets" / "mini"
REPO = Path(__file__).resolve().parents[2]


def make(tmp_path: Path, body: str) -> Path:
    (tmp_path / "compose.yaml").write_text(body)
    return tmp_path


def test_mini_target_fields() -> None:
    t = load_target(MINI)
    assert t.name == "mini" and t.root == MINI.resolve()
    web, api = t.service("web"), t.service("api")
    assert web.replicas == 2 and web.instance_names() == ("web-1", "web-2")
    assert web.ports == (PortSpec(container_port=8080),)
    assert web.build is not None and web.build.context == (MINI / "web").resolve()
    assert web.healthcheck == HealthCheck(test=("CMD-SHELL", "curl -f localhost:8080"),
                                          interval_s=0.5)
    assert api.environment == (("A", "1"), ("B", "two=2"))
    assert api.command == ("serve", "--port", "8000")
    assert api.depends_on == ("db-1",)
    assert t.service("db-2").networks == ("data",) and t.service("db-2").depends_on == ("db-1",)
    assert {n.name: n.internal for n in t.networks} == {"edge": False, "back": True, "data": True}
    assert [l.name for l in t.links] == ["web-api-1", "web-api-2", "api-db-1", "api-db-2",
                                         "host-web-1", "host-web-2"]
    assert t.link("host-web-1").client == "host"
    roles = {r.name: r for r in t.roles}
    assert roles["db-primary"].kind == "sentinel-primary" and roles["db-primary"].port == 26379
    assert roles["db-replicas"].kind == "sentinel-replicas"
    assert roles["dbs"].kind == "static" and roles["dbs"].members == ("db-1", "db-2")
    assert t.durability is not None and t.durability.read.http.path == "/audit"
    assert t.durability.ids == "transfer_ids" and t.durability.invariant("money_conserved")
    assert t.load_profile == (MINI / "locustfile.py").resolve() and t.load_profiles == ("steady",)


def test_default_network_and_extensions(tmp_path: Path) -> None:
    t = load_target(make(tmp_path, "version: '3.9'\nname: t\nx-anything: {a: 1}\n"
                                   "services:\n  a: {image: 'a:1', ports: [80, '8081:81/udp']}\n"))
    a = t.service("a")
    assert a.networks == ("default",)
    assert t.networks == (NetworkSpec(name="default", internal=False),)
    assert a.ports == (PortSpec(container_port=80), PortSpec(container_port=81, host_port=8081, protocol="udp"))


@pytest.mark.parametrize("text,seconds", [("1s", 1.0), ("500ms", 0.5), ("1m30s", 90.0),
                                          ("1h", 3600.0), ("1.5s", 1.5), ("250us", 0.00025)])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["1", "-1s", "1 s", "s", "1d", "", "1s2"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_sizes() -> None:
    assert parse_size("64MiB") == 64 * 1024 * 1024
    assert parse_size("64m") == 64 * 1024 * 1024
    assert parse_size("1KB") == 1000 and parse_size(7) == 7


def test_localhost_binding_allowed(tmp_path: Path) -> None:
    t = load_target(make(tmp_path, "name: t\nservices:\n  a: {image: 'a:1', "
                                   "ports: ['127.0.0.1::80', '127.0.0.1:9000:90']}\n"))
    assert t.service("a").ports == (PortSpec(container_port=80), PortSpec(container_port=90, host_port=9000))


@pytest.mark.parametrize("body,match", [
    ("services:\n  a: {image: 'a:1', deploy: {replicas: 2}, ports: ['9000:80']}\n", "fixed host port"),
    ("services:\n  a: {image: 'a:1', healthcheck: {test: [FOO, x]}}\n", "CMD, CMD-SHELL or NONE"),
    ("services:\n  a: {image: 'a:1', environment: {A: }}\n", "expected"),
    ("services:\n  a: {image: 'a:1', depends_on: [a]}\n", "depends on itself"),
    ("services:\n  a: {image: 'a:1'}\nx-continuum:\n  roles: {r: {sentinel: nope, master: m}}\n",
     "is not a service"),
    ("services:\n  a: {image: 'a:1'}\nx-continuum:\n  links: [{from: a, to: a, port: 80}]\n",
     "link to itself"),
    ("services:\n  a: {image: 'a:1'}\nx-continuum:\n  load: {locustfile: missing.py, profiles: [p]}\n",
     "is not an existing file"),
    ("services: {}\n", "at least 1"),
    ("services:\n  a: {image: 'a:1', cap_add: ['sys_admin']}\n", "is refused: mount"),
])
def test_target_errors(tmp_path: Path, body: str, match: str) -> None:
    with pytest.raises(InputError, match=match) as info:
        load_target(make(tmp_path, "name: t\n" + body))
    assert "compose.yaml:" in str(info.value)


def test_error_location_is_the_offending_key(tmp_path: Path) -> None:
    with pytest.raises(InputError) as info:
        load_target(make(tmp_path, "name: t\nservices:\n  a:\n    image: 'a:1'\n    volume: []\n"))
    assert str(info.value).startswith(f"{tmp_path / 'compose.yaml'}:5:5: unknown field 'volume'")
    assert info.value.field == "services.a.volume"


def test_target_directory_without_compose(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no compose.yaml"):
        load_target(tmp_path)


def test_yaml_core_schema_and_merge_marks() -> None:
    doc = loads_yaml("a: &x {p: 1}\nb:\n  <<: *x\n  q: yes\nc: 1:30\nd: 0x10\n", "f.yaml")
    assert doc.data == {"a": {"p": 1}, "b": {"q": "yes", "p": 1}, "c": "1:30", "d": 16}
    assert doc.where(("b", "q")) == "f.yaml:4:6"
    assert doc.where(("b", "p")) == "f.yaml:1:11"      # where the merged value was written
    assert doc.where(("b", "q"), key=True) == "f.yaml:4:3"


def test_reference_target_loads_when_present() -> None:
    compose = REPO / "targets" / "reference" / "compose.yaml"
    if not compose.exists():
        pytest.skip("targets/reference/compose.yaml does not exist yet")
    t = load_target(compose.parent)
    assert {s.name for s in t.services} >= {"lb", "app", "redis-1", "redis-2", "redis-3", "sentinel"}
    assert "lb-app-1" in {l.name for l in t.links} and "app-redis-1" in {l.name for l in t.links}
    assert {r.name for r in t.roles} >= {"redis-primary", "redis-replicas"}
    assert "ledger" in t.load_profiles
