"""The reference target's images, for real: a transfer moves money once, however often it is
replayed, and keeps doing so across a Sentinel failover.

Builds continuum/reference-redis and continuum/reference-app (cached layers make a rebuild
cheap), starts three Redis nodes, one Sentinel (quorum 1) and one app on a private network
named t4-test-<random>, and removes everything in a finally.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

docker = pytest.importorskip("docker")

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parents[2]
TARGET = ROOT / "targets" / "reference"
SEED_ACCOUNTS = 10
SEED_BALANCE = 1000
PASSWORD = f"test-{uuid.uuid4().hex[:12]}"
AUTH = {"REDIS_PASSWORD": PASSWORD, "REDISCLI_AUTH": PASSWORD}


def _engine():
    try:
        client = docker.from_env(timeout=120)
        client.ping()
        return client
    except Exception as e:  # no engine: nothing to test against
        pytest.skip(f"no Docker engine: {e}")


def _http(method: str, url: str, body: dict | None = None, headers: dict | None = None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, dict(resp.headers), json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), json.loads(e.read() or b"null")


def _wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except Exception as e:  # not up yet
            last = e
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last error: {last})")


@pytest.fixture(scope="module")
def stack():
    client = _engine()
    for name, tag in (("redis", "continuum/reference-redis:latest"), ("app", "continuum/reference-app:latest")):
        client.images.build(path=str(TARGET / name), tag=tag, rm=True)

    prefix = f"t4-test-{uuid.uuid4().hex[:8]}"
    created = []
    net = client.networks.create(prefix, labels={"io.continuum.test": prefix})
    try:
        def run(instance: str, image: str, command: list[str], env: dict, **kw):
            c = client.containers.create(
                image, command=command, name=f"{prefix}-{instance}", hostname=instance,
                environment=env, labels={"io.continuum.test": prefix}, detach=True, **kw,
            )
            created.append(c)
            net.connect(c, aliases=[instance])
            c.start()
            return c

        redis = {
            i: run(f"redis-{i}", "continuum/reference-redis:latest", ["redis"], {"LEDGER_PRIMARY": "redis-1", **AUTH})
            for i in (1, 2, 3)
        }
        sentinel = run("sentinel-1", "continuum/reference-redis:latest", ["sentinel"],
                       {"LEDGER_PRIMARY": "redis-1", "SENTINEL_QUORUM": "1", "SENTINEL_DOWN_AFTER_MS": "2000",
                        **AUTH})
        app = run(
            "app-1", "continuum/reference-app:latest", None,
            {"SENTINELS": "sentinel-1:26379", "LEDGER_SEED_ACCOUNTS": str(SEED_ACCOUNTS),
             "LEDGER_SEED_BALANCE": str(SEED_BALANCE), "LEDGER_REDIS_PASSWORD": PASSWORD},
            ports={"8080/tcp": ("127.0.0.1", None)},
        )
        no_password = run("redis-9", "continuum/reference-redis:latest", ["redis"], {"LEDGER_PRIMARY": "redis-1"})
        app.reload()
        port = app.attrs["NetworkSettings"]["Ports"]["8080/tcp"][0]["HostPort"]
        base = f"http://127.0.0.1:{port}"
        _wait(lambda: _http("GET", base + "/readyz")[0] == 200, 60, "the app to be ready")
        yield {"base": base, "redis": redis, "app": app, "sentinel": sentinel, "no_password": no_password}
    finally:
        for c in created:
            try:
                c.remove(force=True)
            except Exception:
                pass
        try:
            net.remove()
        except Exception:
            pass


def _transfer(base: str, key: str, src: str, dst: str, amount: int):
    return _http("POST", base + "/transfers", {"from": src, "to": dst, "amount": amount},
                 {"Idempotency-Key": key})


def _balance(base: str, account: str) -> int:
    status, _, body = _http("GET", f"{base}/accounts/{account}")
    assert status == 200, body
    return body["balance"]


def test_replayed_transfer_moves_money_once(stack):
    base = stack["base"]
    before = (_balance(base, "acc-001"), _balance(base, "acc-002"))
    key = str(uuid.uuid4())

    first = _transfer(base, key, "acc-001", "acc-002", 7)
    replay = _transfer(base, key, "acc-001", "acc-002", 7)

    assert first[0] == 201, first
    assert replay[0] == 201 and replay[2] == first[2], (first, replay)
    assert replay[1].get("Idempotent-Replayed") == "true"
    assert (_balance(base, "acc-001"), _balance(base, "acc-002")) == (before[0] - 7, before[1] + 7)

    status, _, audit = _http("GET", base + "/audit")
    assert status == 200
    assert set(audit) == {"transfer_ids", "total_balance", "expected_total"}
    assert audit["transfer_ids"].count(key) == 1
    assert audit["expected_total"] == SEED_ACCOUNTS * SEED_BALANCE
    assert audit["total_balance"] == audit["expected_total"]


def test_bad_requests_are_refused_without_moving_money(stack):
    base = stack["base"]
    key = str(uuid.uuid4())
    assert _transfer(base, key, "acc-003", "acc-004", 5)[0] == 201
    # Same key, different transfer: refused, nothing moves.
    assert _transfer(base, key, "acc-003", "acc-004", 6)[0] == 422
    assert _http("POST", base + "/transfers", {"from": "acc-003", "to": "acc-004", "amount": 1})[0] == 400
    assert _transfer(base, str(uuid.uuid4()), "acc-003", "nobody", 1)[0] == 404
    status, _, body = _transfer(base, str(uuid.uuid4()), "acc-005", "acc-006", SEED_BALANCE * 100)
    assert status == 409 and body["reason"] == "insufficient_funds"
    audit = _http("GET", base + "/audit")[2]
    assert audit["total_balance"] == audit["expected_total"]


def test_secure_by_default(stack):
    """Redis and Sentinel refuse a client without the password, nothing runs as root, and a
    node given no password refuses to start at all."""
    for c, port in ((stack["redis"][1], 6379), (stack["sentinel"], 26379)):
        code, out = c.exec_run(["sh", "-c", f"REDISCLI_AUTH= redis-cli -p {port} ping"])
        assert b"NOAUTH" in out, out
        code, out = c.exec_run(["redis-cli", "-p", str(port), "ping"])      # REDISCLI_AUTH set
        assert out.strip() == b"PONG", out
    for c in (stack["redis"][1], stack["sentinel"], stack["app"]):
        assert c.exec_run(["id", "-u"]).output.strip() != b"0", f"{c.name} runs as root"
    stack["no_password"].wait(timeout=30)
    assert b"refusing to start without authentication" in stack["no_password"].logs()


def test_writes_resume_after_primary_is_killed(stack):
    base = stack["base"]
    key = str(uuid.uuid4())
    assert _transfer(base, key, "acc-007", "acc-008", 3)[0] == 201

    stack["redis"][1].kill()
    after_key = str(uuid.uuid4())
    results = []

    def resumed() -> bool:
        results.append(_transfer(base, after_key, "acc-008", "acc-009", 2))
        return results[-1][0] == 201

    _wait(resumed, 40, "writes to resume on a new primary")
    status, _, ready = _http("GET", base + "/readyz")
    assert status == 200 and not ready["primary_addr"].startswith("redis-1:"), ready

    # The write acknowledged before the kill survived the failover, and replaying it on the
    # new primary still does not move money again.
    audit = _http("GET", base + "/audit")[2]
    assert key in audit["transfer_ids"] and after_key in audit["transfer_ids"]
    assert audit["transfer_ids"].count(after_key) == 1
    replay = _transfer(base, key, "acc-007", "acc-008", 3)
    assert replay[0] == 201 and replay[1].get("Idempotent-Replayed") == "true"
    audit = _http("GET", base + "/audit")[2]
    assert audit["total_balance"] == audit["expected_total"] == SEED_ACCOUNTS * SEED_BALANCE


@pytest.mark.parametrize("config", ["haproxy.cfg", "haproxy-fragile.cfg"])
def test_the_public_entry_point_serves_no_operational_endpoint(config):
    """Through either LB config, /metrics and /audit answer 404 (Prometheus and the harness's
    read-back go to the app instances directly); the health port's exporter still answers."""
    client = _engine()
    client.images.build(path=str(TARGET / "lb"), tag="continuum/reference-lb:latest", rm=True)
    lb = client.containers.run(
        "continuum/reference-lb:latest", ["haproxy", "-W", "-db", "-f", f"/etc/haproxy/{config}"],
        detach=True, ports={"8080/tcp": ("127.0.0.1", None), "8404/tcp": ("127.0.0.1", None)},
        name=f"t4-lb-{uuid.uuid4().hex[:8]}")
    try:
        def port(p: str) -> int:
            lb.reload()
            return int(lb.ports[p][0]["HostPort"])

        _wait(lambda: port("8080/tcp") and port("8404/tcp"), 30, "the LB's ports")

        def status(url: str) -> int:
            try:
                with urllib.request.urlopen(url, timeout=5) as resp:
                    return resp.status
            except urllib.error.HTTPError as e:
                return e.code

        base = f"http://127.0.0.1:{port('8080/tcp')}"
        _wait(lambda: status(base + "/metrics") == 404, 30, "HAProxy to answer")
        for path in ("/metrics", "/metrics/x", "/audit", "/audit?x=1"):
            assert status(base + path) == 404, path
        assert status(base + "/accounts/acc-001") == 503        # routed: no app behind it here
        text = urllib.request.urlopen(f"http://127.0.0.1:{port('8404/tcp')}/metrics", timeout=5).read()
        assert b"haproxy_process" in text
    finally:
        lb.remove(force=True)
