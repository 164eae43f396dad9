"""The platform against the real engine: up/down, interposed Toxiproxy, and nothing leaks
whatever happens to the harness (SIGINT, SIGTERM, SIGKILL at several moments, concurrent runs,
a colliding unlabelled container, an orphan of a dead owner)."""

from __future__ import annotations

import os
import re
import signal
import time

import pytest

from tests.helpers import FIXTURES, continuum, run_objects, spawn, wait_gone

pytestmark = pytest.mark.docker

MINI = str(FIXTURES / "mini")
# db, app×3, lb, toxiproxy and the run's lease (namespace helpers not counted: see
# run_objects); the networks edge, backend, data and the control network: none per link.
MINI_OBJECTS = (7, 4)
DETACHED_OBJECTS = (6, 4)  # a detached stack has no lease: it has no owner to track


def _run_id_of(proc, timeout_s: float = 60) -> str:
    """Read `run <id>: ... healthy` from an `up --hold` process's stdout."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        m = re.match(r"run (\S+): ", line or "")
        if m:
            return m.group(1)
        if proc.poll() is not None:
            raise AssertionError(f"up exited {proc.returncode}: {proc.stderr.read()}")
    raise AssertionError("up did not report healthy in time")


def _held(docker_client, run_id: str | None = None):
    args = ["up", MINI, "--hold"] + (["--run-id", run_id] if run_id else [])
    proc = spawn(*args)
    rid = _run_id_of(proc)
    assert run_objects(docker_client, rid, helpers=False) == MINI_OBJECTS
    return proc, rid


def test_up_ps_down_roundtrip(docker_client):
    up = continuum("up", MINI)
    assert up.returncode == 0, up.stderr
    rid = re.search(r"run (\S+): mini healthy", up.stdout).group(1)
    assert run_objects(docker_client, rid, helpers=False) == DETACHED_OBJECTS
    # Every object carries the run and owner labels; containers also their service.
    for c in docker_client.containers.list(all=True, ignore_removed=True,
                                           filters={"label": f"io.continuum.run-id={rid}"}):
        assert c.labels["io.continuum.owner"] == "detached"
        assert c.labels["io.continuum.service"]
        for binding in (c.attrs["HostConfig"].get("PortBindings") or {}).values():
            assert all(b["HostIp"] == "127.0.0.1" for b in binding)
    ps = continuum("ps")
    assert rid in ps.stdout and "detached" in ps.stdout
    down = continuum("down", rid)
    assert down.returncode == 0, down.stderr
    assert run_objects(docker_client, rid) == (0, 0)


def test_link_is_interposed_by_address_translation(docker_client):
    """`db` asked from an app replica is the real container (the application's view is
    unchanged); the replica's namespace sends db:5432 to the run's Toxiproxy, whose API listens
    only on the control network."""
    proc, rid = _held(docker_client)
    try:
        app = docker_client.containers.get(f"continuum-{rid}-app-2")
        tp = docker_client.containers.get(f"continuum-{rid}-toxiproxy")
        db = docker_client.containers.get(f"continuum-{rid}-db")
        code, out = app.exec_run(["getent", "hosts", "db"])
        assert code == 0
        resolved = out.decode().split()[0]
        db_ips = {n["IPAddress"] for n in db.attrs["NetworkSettings"]["Networks"].values()}
        tp_ips = {k.rsplit("-", 1)[-1]: n["IPAddress"] for k, n in tp.attrs["NetworkSettings"]["Networks"].items()}
        assert resolved in db_ips
        (helper,) = [c for c in docker_client.containers.list(filters={"label": f"io.continuum.run-id={rid}"})
                     if c.name.startswith(f"continuum-{rid}-netexec-app-2-")]
        code, out = helper.exec_run(["iptables-save", "-t", "nat"])
        dnat = [line for line in out.decode().splitlines() if "DNAT" in line and f"{resolved}/32" in line]
        assert code == 0 and len(dnat) == 1 and "--dport 5432" in dnat[0]
        assert f"--to-destination {tp_ips['data']}:" in dnat[0]
        assert tp.attrs["Config"]["Cmd"] == [f"-host={tp_ips['0ctl']}", "-port=8474"]
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)
    assert wait_gone(docker_client, rid, 10) is not None


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_tears_down(docker_client, sig):
    proc, rid = _held(docker_client)
    t = time.monotonic()
    proc.send_signal(sig)
    assert proc.wait(30) == 130
    assert run_objects(docker_client, rid) == (0, 0), "objects left right after exit"
    print(f"{sig.name}: clean in {time.monotonic() - t:.2f} s")


def test_sigkill_while_running_reaper_cleans(docker_client):
    proc, rid = _held(docker_client)
    proc.kill()
    proc.wait(10)
    took = wait_gone(docker_client, rid, 15)
    assert took is not None, f"objects of {rid} still there 15 s after SIGKILL: {run_objects(docker_client, rid)}"
    print(f"SIGKILL while running: clean in {took:.2f} s")


def test_sigkill_during_start_reaper_cleans(docker_client):
    proc = spawn("up", MINI, "--hold", "--run-id", "killstart")
    deadline = time.monotonic() + 30
    while run_objects(docker_client, "killstart")[0] < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert run_objects(docker_client, "killstart")[0] >= 1, "never saw the start"
    proc.kill()
    proc.wait(10)
    took = wait_gone(docker_client, "killstart", 15)
    assert took is not None, f"left behind: {run_objects(docker_client, 'killstart')}"
    print(f"SIGKILL during start: clean in {took:.2f} s")


def test_sigkill_during_teardown_reaper_cleans(docker_client):
    proc, rid = _held(docker_client)
    proc.send_signal(signal.SIGINT)
    # Wait for the teardown to be under way (some containers gone), then kill the harness.
    deadline = time.monotonic() + 10
    while run_objects(docker_client, rid, helpers=False)[0] >= MINI_OBJECTS[0] and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.kill()
    proc.wait(10)
    took = wait_gone(docker_client, rid, 15)
    assert took is not None, f"left behind: {run_objects(docker_client, rid)}"
    print(f"SIGKILL during teardown: clean in {took:.2f} s")


def test_two_concurrent_runs_do_not_see_each_other(docker_client):
    a, rid_a = _held(docker_client)
    b, rid_b = _held(docker_client)
    try:
        assert rid_a != rid_b
        a.send_signal(signal.SIGTERM)
        assert a.wait(30) == 130
        assert run_objects(docker_client, rid_a) == (0, 0)
        assert run_objects(docker_client, rid_b, helpers=False) == MINI_OBJECTS, "tearing down run A touched run B"
        # B's link still goes through B's own Toxiproxy
        app = docker_client.containers.get(f"continuum-{rid_b}-app-1")
        assert app.exec_run(["getent", "hosts", "db"])[0] == 0
    finally:
        for p in (a, b):
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
                p.wait(30)
    assert wait_gone(docker_client, rid_b, 10) is not None


def test_unlabelled_name_collision_is_refused_and_untouched(docker_client):
    intruder = docker_client.containers.run(
        "debian:bookworm-slim", ["sleep", "120"], name="continuum-collide1-app-2", detach=True
    )
    try:
        r = continuum("up", MINI, "--run-id", "collide1")
        assert r.returncode == 3
        assert "already exists" in r.stderr and "not made by Continuum" in r.stderr
        assert "Traceback" not in r.stderr
        intruder.reload()
        assert intruder.status == "running", "the unlabelled container was touched"
        assert run_objects(docker_client, "collide1") == (0, 0)
        # `down` of that run id must not touch it either (never `down --all` here: the engine is
        # shared with other jobs, whose live runs it would remove)
        assert continuum("down", "collide1").returncode == 2
        intruder.reload()
        assert intruder.status == "running"
    finally:
        intruder.remove(force=True)


def test_janitor_removes_orphans_of_dead_owners_only(docker_client):
    """Liveness is the run's lease on the engine (harness.stack.lease), not the owner label: an
    ended lease is an orphan whatever the label says; a running lease is alive whatever pid the
    label names (here one that cannot exist); no lease at all is never judged dead."""
    from harness.stack.lease import LEASE_ROLE, ROLE_LABEL, lease_name

    def run_of(rid: str, owner: str, lease: str | None) -> list:
        labels = {"io.continuum.run-id": rid, "io.continuum.owner": owner}
        made = [docker_client.containers.create("debian:bookworm-slim", ["true"], name=f"continuum-{rid}-x",
                                                labels=labels)]
        if lease is not None:
            c = docker_client.containers.create(
                "debian:bookworm-slim", ["true"] if lease == "ended" else ["sleep", "300"],
                name=lease_name(rid), labels={**labels, ROLE_LABEL: LEASE_ROLE})
            c.start()
            made.append(c)
            if lease == "ended":
                c.wait(timeout=30)
        return made

    made = run_of("orphan1", f"{os.uname().nodename}:{os.getpid()}:1", "ended")   # a live-looking pid
    net = docker_client.networks.create("continuum-orphan1-n", internal=True,
                                        labels={"io.continuum.run-id": "orphan1"})
    # Another job's runs: a pid in another namespace (an older harness sharing this engine, which
    # still reads /proc for its own host name, leaves a foreign host part alone).
    made += run_of("alive1", "ci-job-b@pidns4026532000:999999:1", "held")
    made += run_of("nolease1", "ci-job-b@pidns4026532000:999999:1", None)
    try:
        up = continuum("up", MINI)
        assert up.returncode == 0, up.stderr
        rid = re.search(r"run (\S+): ", up.stdout).group(1)
        assert run_objects(docker_client, "orphan1") == (0, 0), "orphan survived the janitor"
        assert run_objects(docker_client, "alive1") == (2, 0), "janitor touched a live run"
        assert run_objects(docker_client, "nolease1") == (1, 0), "janitor judged a run it cannot judge"
        continuum("down", rid)
    finally:
        for obj in made:
            try:
                obj.remove(force=True)
            except Exception:
                pass
        try:
            net.remove()
        except Exception:
            pass


def test_dead_toxiproxy_is_a_clear_error_not_a_hang(docker_client):
    from harness.errors import ToxiproxyError
    from harness.stack.toxiproxy import ToxiproxyClient

    proc, rid = _held(docker_client)
    try:
        tp = docker_client.containers.get(f"continuum-{rid}-toxiproxy")
        port = int(tp.ports["8474/tcp"][0]["HostPort"])
        client = ToxiproxyClient("127.0.0.1", port, timeout_s=1.0)
        assert set(client.proxies()) == {"app-db", "lb-app-1", "lb-app-2", "lb-app-3"}
        tp.pause()  # hung: accepts nothing, answers nothing
        t = time.monotonic()
        with pytest.raises(ToxiproxyError, match="did not answer|unreachable"):
            client.proxies()
        assert time.monotonic() - t < 5
        tp.unpause()
        tp.kill()  # dead
        with pytest.raises(ToxiproxyError):
            client.proxies()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)
    assert wait_gone(docker_client, rid, 10) is not None
