"""Where a run's ports are published and reached: 127.0.0.1 for a local engine, the engine host's
address for a remote one, an override checked like any other input."""

from __future__ import annotations

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
