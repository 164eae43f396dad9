"""targets/patroni-async must differ from targets/patroni only in synchronous replication, or a
comparison between them measures something else. Its load profile and SQL module are copies (a
target may not reach outside its own directory); this keeps the copies and the compose file
honest."""

from pathlib import Path

from harness.loader import load_target

ROOT = Path(__file__).resolve().parents[2]
SYNC, ASYNC = ROOT / "targets/patroni", ROOT / "targets/patroni-async"


def test_async_twin_load_files_are_copies():
    for name in ("locustfile.py", "pgwrites.py"):
        assert (ASYNC / name).read_text() == (SYNC / name).read_text(), name


def test_async_twin_differs_only_in_synchronous_mode():
    a, b = load_target(SYNC), load_target(ASYNC)
    assert [s.name for s in a.services] == [s.name for s in b.services]
    for sa, sb in zip(a.services, b.services):
        env_a, env_b = dict(sa.environment), dict(sb.environment)
        if sa.name == "pg":
            assert env_a.pop("PATRONI_SYNCHRONOUS_MODE") == "true"
            assert env_b.pop("PATRONI_SYNCHRONOUS_MODE") == "false"
        assert env_a == env_b, sa.name
        assert (sa.image, sa.replicas, sa.networks, sa.ports, sa.healthcheck, sa.depends_on) == \
               (sb.image, sb.replicas, sb.networks, sb.ports, sb.healthcheck, sb.depends_on), sa.name
        assert sb.build is None                 # the twin uses targets/patroni's images
    assert a.networks == b.networks and a.entrypoints == b.entrypoints
    assert a.load_profiles == b.load_profiles == ("writes",)


def test_async_twin_has_the_same_contract_less_the_synchronous_standby():
    """Roles, links and read-back are what the experiments use: the twins must offer the same,
    except the role that only synchronous mode has."""
    a, b = load_target(SYNC), load_target(ASYNC)
    assert a.links == b.links and a.durability == b.durability
    roles_a = {r.name: r for r in a.roles}
    roles_b = {r.name: r for r in b.roles}
    assert roles_a.pop("sync-standby").probe.path == "/sync"
    assert roles_a == roles_b
    assert roles_b["leader"].probe.path == "/primary"
    assert {l.name for l in a.links} >= {"pg-pg-1", "lb-pg-1", "pg-etcd-1"}


def test_every_sync_experiment_has_its_async_twin():
    exps = ROOT / "experiments"
    sync = {p.name for p in (exps / "patroni").glob("*.yaml")}
    twins = {p.name for p in (exps / "patroni-async").glob("*.yaml")}
    assert twins == sync - {"sync-standby-kill.yaml"}       # no synchronous standby in async mode
    for name in twins:
        s = (exps / "patroni" / name).read_text()
        t = (exps / "patroni-async" / name).read_text()
        body = lambda text: text[text.index("apiVersion:"):]      # noqa: E731 - header comments differ
        assert body(t) == (body(s).replace("target: ../../targets/patroni\n", "target: ../../targets/patroni-async\n")
                                  .replace("name: patroni-", "name: patroni-async-")), name
