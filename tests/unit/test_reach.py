"""Where a run's ports are published and reached: 127.0.0.1 for a local engine, the engine host's
address for a remote one, an override checked like any other input."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from harness.errors import InputError
from harness.stack.reach import EngineAddress, engine_address, publish_ip, publish_ip_for


@pytest.mark.parametrize("host, local", [
    ("unix:///var/run/docker.sock", True),
    ("tcp://127.0.0.1:2375", True),
    ("tcp://localhost:2375", True),
    ("tcp://10.0.0.5:2376", False),
    ("ssh://ci@10.1.2.3", False),
])
def test_local_or_remote(host, local):
    assert EngineAddress(host).local is local


def test_docker_host_wins_over_contexts():
    e = engine_address({"DOCKER_HOST": "tcp://10.0.0.5:2376", "DOCKER_CONTEXT": "nope"})
    assert (e.host, e.source) == ("tcp://10.0.0.5:2376", "DOCKER_HOST")


def test_an_unknown_context_is_a_clear_error():
    from harness.errors import DockerUnavailable

    with pytest.raises(DockerUnavailable, match="context 'no-such-context' does not exist"):
        engine_address({"DOCKER_CONTEXT": "no-such-context"})


def test_published_on_loopback_locally_and_on_the_engine_host_remotely():
    assert publish_ip(EngineAddress("unix:///var/run/docker.sock"), {}) == "127.0.0.1"
    assert publish_ip(EngineAddress("tcp://10.0.0.5:2376"), {}) == "10.0.0.5"
    assert publish_ip(EngineAddress("ssh://ci@10.1.2.3"), {}) == "10.1.2.3"
    assert publish_ip(EngineAddress("tcp://localhost:2376"), {}) == "127.0.0.1"


def test_override_is_validated():
    assert publish_ip(EngineAddress("tcp://10.0.0.5:2376"), {"CONTINUUM_PUBLISH_IP": "192.168.1.9"}) == "192.168.1.9"
    with pytest.raises(InputError, match=r"environment CONTINUUM_PUBLISH_IP: not an IPv4 address: '10.0.0'"):
        publish_ip(EngineAddress("unix://"), {"CONTINUUM_PUBLISH_IP": "10.0.0"})


def test_from_a_connected_client(monkeypatch):
    monkeypatch.delenv("CONTINUUM_PUBLISH_IP", raising=False)
    client = lambda base: SimpleNamespace(api=SimpleNamespace(base_url=base))  # noqa: E731
    assert publish_ip_for(client("http+docker://localhost")) == "127.0.0.1"
    assert publish_ip_for(client("https://10.214.9.3:2376")) == "10.214.9.3"
    assert publish_ip_for(client("http://127.0.0.1:2375")) == "127.0.0.1"


def test_a_remote_engine_refuses_probes_at_container_addresses_before_anything_is_made():
    from harness.loader import load_target
    from harness.stack.reach import asks_container_addresses, check_reachable

    root = Path(__file__).resolve().parents[2] / "targets"
    patroni = load_target(root / "patroni")             # roles by `http` on each member
    assert asks_container_addresses(patroni) == ([f"x-continuum.roles.{r}: a http probe"
                                                  for r in ("leader", "replica", "sync-standby")], [])
    remote = EngineAddress("tcp://203.0.113.7:2376", None, "DOCKER_HOST")
    with pytest.raises(InputError) as err:
        check_reachable(patroni, remote)
    msg = str(err.value)
    assert "remote" in msg and "roles.leader" in msg and "exec probes" in msg
    assert err.value.where == str(patroni.root)
    assert check_reachable(patroni, EngineAddress("unix:///var/run/docker.sock")) == []   # local
    # The reference: Sentinel roles and its read-back are asked through `docker exec`.
    reference = load_target(root / "reference")
    assert asks_container_addresses(reference) == ([], [])
    assert check_reachable(reference, remote) == []
    # Its read-back as it was (each app at its address): the run can go on, with durability
    # unknown, and is told so.
    from harness.model.durability import DurabilitySpec, HttpRead, ReadSpec

    at_address = reference.model_copy(update={"durability": DurabilitySpec(read=ReadSpec(
        kind="http", http=HttpRead(among=("app",), port=8080, path="/audit"), instances=("app-1",)))})
    assert asks_container_addresses(at_address) == ([], ["x-continuum.durability.read: an http read-back with among"])
    [warning] = check_reachable(at_address, remote)
    assert "durability will be unknown" in warning and "exec read-back" in warning


def test_stack_up_on_a_remote_engine_with_http_roles_changes_nothing():
    from harness.errors import InputError as IE
    from harness.loader import load_target
    from harness.stack.stack import Stack

    calls: list[str] = []

    class Api:
        base_url = "https://203.0.113.7:2376"

        def __getattr__(self, name):
            calls.append(name)
            raise AssertionError(f"an engine call ({name}) before the check")

    class Client:
        api = Api()

        def __getattr__(self, name):
            calls.append(name)
            raise AssertionError(f"an engine call ({name}) before the check")

    target = load_target(Path(__file__).resolve().parents[2] / "targets" / "patroni")
    with pytest.raises(IE):
        with Stack(target, client=Client()):
            pass
    assert calls == []
