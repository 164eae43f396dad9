"""Ordinary Compose files: what is honoured, warned and refused (harness.model.compose), the
file names Compose uses, interpolation, env files, continuum.yaml, and the container options the
stack gets from a service (harness.stack.options)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness.errors import InputError
from harness.loader import load_target
from harness.model.compose import KEYS, REFUSED, TOP_KEYS, parse_env_file
from harness.model.interpolation import InterpolationError, interpolate, substitute
from harness.model.target import ComposeFile, ServiceSpec
from harness.stack.options import container_options

WHERE = re.compile(r"^(\S+):(\d+):(\d+): ")


def write(d: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (d / name).parent.mkdir(parents=True, exist_ok=True)
        (d / name).write_text(text)
    return d


def problems(exc: InputError) -> list[str]:
    return [str(p) for p in getattr(exc, "problems", [exc])]


def test_every_compose_key_is_in_the_table_and_the_model():
    assert set(KEYS) == set(ServiceSpec.input_keys())
    assert {"services", "networks", "volumes", "include"} <= set(TOP_KEYS)
    assert all(KEYS[k].note for k in KEYS)


ORDINARY = """\
version: "3.8"
services:
  lb:
    image: "haproxy:${HAPROXY_TAG:-2.6}"
    ports: ["8080:80"]
    volumes: ["./haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg:ro"]
    depends_on:
      db: {condition: service_healthy}
      migrate: {condition: service_completed_successfully}
    restart: unless-stopped
    logging: {driver: json-file, options: {max-size: 10m}}
  db:
    build: ./db
    container_name: database
    hostname: db.local
    command: postgres -c "shared_buffers=64MB"
    env_file: [db.env]
    environment: {POSTGRES_DB: app}
    expose: ["5432"]
    volumes: [dbdata:/var/lib/postgresql/data, {type: tmpfs, target: /tmp, tmpfs: {size: 64m}}]
    tmpfs: /run
    user: "999:999"
    working_dir: /var/lib/postgresql
    labels: [team=payments]
    ulimits: {nofile: {soft: 1024, hard: 4096}}
    healthcheck:
      test: ["CMD-SHELL", "pg_isready -U $$USER"]
      interval: 1s
    stop_signal: SIGINT
    deploy: {resources: {limits: {memory: 512m, cpus: "1.5"}}}
    x-note: ignored as Compose ignores it
  migrate:
    image: app:${APP_VERSION}
    entrypoint: ""
    healthcheck: {disable: true}
    init: true
  debug:
    image: busybox
    profiles: [debug]
volumes:
  dbdata: {}
"""


@pytest.fixture
def ordinary(tmp_path: Path) -> Path:
    return write(tmp_path / "shop", {
        "docker-compose.yml": ORDINARY, "haproxy.cfg": "global\n", "db/Dockerfile": "FROM x\n",
        "db.env": "# the database\nPOSTGRES_USER=shop\nexport POSTGRES_PASSWORD='s3 cr#t'\n"
                  "POSTGRES_DB=ignored # environment wins\n",
        ".env": "APP_VERSION=1.2\n"})


def test_an_ordinary_compose_file_is_read_as_compose_reads_it(ordinary: Path):
    t = load_target(ordinary)
    assert t.name == "shop" and {s.name for s in t.services} == {"lb", "db", "migrate"}
    lb, db, migrate = t.service("lb"), t.service("db"), t.service("migrate")
    assert lb.image == "haproxy:2.6" and migrate.image == "app:1.2"     # from .env / default
    assert lb.volumes[0].type == "bind" and lb.volumes[0].read_only
    assert lb.volumes[0].source == str((ordinary / "haproxy.cfg").resolve())
    assert [(d.name, d.condition) for d in lb.needs] == [
        ("db", "service_healthy"), ("migrate", "service_completed_successfully")]
    assert lb.restart_policy == "unless-stopped"
    assert db.image == "shop-db:latest"                                  # build without image
    assert db.command == ("postgres", "-c", "shared_buffers=64MB")
    assert dict(db.environment) == {"POSTGRES_USER": "shop", "POSTGRES_PASSWORD": "s3 cr#t",
                                    "POSTGRES_DB": "app"}
    assert db.healthcheck.test == ("CMD-SHELL", "pg_isready -U $USER")   # $$ is a literal $
    assert db.expose == ((5432, "tcp"),) and db.labels == (("team", "payments"),)
    assert migrate.entrypoint == () and migrate.healthcheck.off
    assert t.left_out == ("debug",) and [v.name for v in t.volumes] == ["dbdata"]
    # Ignored keys are warned, at their position, never dropped silently.
    warned = {w.split(": ", 1)[1].split(" is ignored")[0]: w for w in t.warnings}
    assert set(warned) >= {"logging", "service 'debug' has profiles (debug) and is not started: "
                                      "the harness enables no profile"}
    assert WHERE.match(warned["logging"]).group(2) == "11"


def test_the_stack_gets_every_honoured_setting(ordinary: Path):
    t = load_target(ordinary)
    opts = container_options(t.service("db"), "db", volume_name=lambda n: f"continuum-r1-vol-{n}",
                             labels={"io.continuum.run-id": "r1"})
    assert opts["hostname"] == "db.local" and opts["user"] == "999:999"
    assert opts["working_dir"] == "/var/lib/postgresql" and opts["stop_signal"] == "SIGINT"
    assert opts["labels"] == {"team": "payments", "io.continuum.run-id": "r1"}
    assert opts["mem_limit"] == 512 * 1024 ** 2 and opts["nano_cpus"] == 1_500_000_000
    assert opts["tmpfs"] == {"/run": ""}
    assert [dict(u) for u in opts["ulimits"]] == [{"Name": "nofile", "Soft": 1024, "Hard": 4096}]
    assert [(m["Type"], m["Source"], m["Target"]) for m in opts["mounts"]] == [
        ("volume", "continuum-r1-vol-dbdata", "/var/lib/postgresql/data"), ("tmpfs", None, "/tmp")]
    assert opts["mounts"][1]["TmpfsOptions"] == {"SizeBytes": 64 * 1024 ** 2}
    lb = container_options(t.service("lb"), "lb", volume_name=str, labels={})
    assert lb["restart_policy"] == {"Name": "unless-stopped", "MaximumRetryCount": 0}
    mig = container_options(t.service("migrate"), "migrate", volume_name=str, labels={})
    assert mig["healthcheck"] == {"test": ["NONE"]} and mig["entrypoint"] == [""] and mig["init"]


@pytest.mark.parametrize("name", ["compose.yaml", "compose.yml", "docker-compose.yaml",
                                  "docker-compose.yml"])
def test_compose_file_names_are_found(tmp_path: Path, name: str):
    write(tmp_path / "t", {name: "services:\n  a: {image: 'a:1'}\n"})
    assert load_target(tmp_path / "t").service("a").image == "a:1"


def test_two_compose_files_read_the_first_and_warn(tmp_path: Path):
    write(tmp_path / "t", {"compose.yaml": "services:\n  a: {image: 'a:1'}\n",
                           "docker-compose.yml": "services:\n  b: {image: 'b:1'}\n"})
    t = load_target(tmp_path / "t")
    assert [s.name for s in t.services] == ["a"]
    assert any("docker-compose.yml beside it is not" in w for w in t.warnings)


def test_every_refusal_at_once_with_its_reason(tmp_path: Path):
    body = "services:\n  a:\n    image: a\n" + "".join(
        f"    {k}: {v}\n" for k, v in [
            ("privileged", "true"), ("network_mode", "host"), ("pid", "host"),
            ("devices", "['/dev/sda:/dev/sda']"), ("cap_drop", "[ALL]"),
            ("security_opt", "['apparmor:unconfined']"), ("ipc", "host"),
            ("volumes", "['/etc:/etc', '/var/run/docker.sock:/var/run/docker.sock', "
                        "'~/.ssh:/root/.ssh', 'undeclared:/data', '../up:/up']"),
            ("depends_on", "[nobody]")])
    with pytest.raises(InputError) as info:
        load_target(write(tmp_path / "t", {"compose.yaml": body}))
    found = problems(info.value)
    expect = ["privileged is refused: a privileged container",
              "network_mode is refused", "pid is refused", "devices is refused",
              "security option 'apparmor:unconfined' is refused", "ipc 'host' is refused",
              "bind source '/etc' escapes the target directory",
              "binding '/var/run/docker.sock' is refused: it hands the container the Docker engine",
              "in a home directory, outside the target directory",
              "volume 'undeclared' is not declared under top-level volumes",
              "bind source '../up' escapes", "depends_on names unknown service 'nobody'"]
    for e in expect:
        assert sum(e in f for f in found) == 1, (e, found)
    assert len(found) == len(expect)
    assert all(WHERE.match(f) for f in found)
    # In file order, so the list reads top to bottom.
    lines = [int(WHERE.match(f).group(2)) for f in found]
    assert lines == sorted(lines)
    assert set(REFUSED) >= {"privileged", "network_mode", "pid", "devices"}


def test_harmless_spellings_of_refused_keys_pass(tmp_path: Path):
    t = load_target(write(tmp_path / "t", {"compose.yaml": (
        "services:\n  a: {image: a, privileged: false, oom_kill_disable: false, "
        "security_opt: [no-new-privileges:true]}\n")}))
    assert t.service("a").security_opt == ("no-new-privileges:true",)


@pytest.mark.parametrize("fragment,message", [
    ("container_name: x\n    deploy: {replicas: 2}", "cannot name 2 replicas"),
    ("labels: {io.continuum.run-id: forged}", "labels are the harness's own"),
    ("restart: sometimes", "is not a restart policy"),
    ("ulimits: {nofile: {soft: 9, hard: 1}}", "above the hard limit"),
    ("tmpfs: ['/x:exec,uid=0,suid']", None),
    ("tmpfs: ['/x:rbind']", "tmpfs option 'rbind'"),
    ("volumes: [{type: bind, source: ., target: /x, bind: {propagation: rshared}}]",
     "propagates mounts back to the host"),
    ("env_file: missing.env", "env file 'missing.env' is not an existing file"),
    ("env_file: [{path: missing.env, required: false}]", None),
    ("build: https://example.com/repo.git", "a remote build context is refused"),
    ("scale: 2\n    deploy: {replicas: 3}", "disagree"),
    ("working_dir: relative", "is not an absolute path"),
])
def test_service_values(tmp_path: Path, fragment: str, message: str | None):
    d = write(tmp_path / "t", {"compose.yaml": f"services:\n  a:\n    image: a\n    {fragment}\n"})
    if message is None:
        load_target(d)
        return
    with pytest.raises(InputError, match=re.escape(message)):
        load_target(d)


def test_top_level_volumes(tmp_path: Path):
    with pytest.raises(InputError) as info:
        load_target(write(tmp_path / "t", {"compose.yaml": (
            "services:\n  a: {image: a, volumes: ['v:/v', 'w:/w', 'x:/x']}\n"
            "volumes:\n  v: {external: true}\n  w: {driver: nfs}\n  x: {driver_opts: {o: bind}}\n")}))
    text = str(info.value)
    assert "external volumes are refused" in text and "volume driver 'nfs' is refused" in text
    assert "driver_opts are refused: the local driver's options can mount any host path" in text


def test_profiles_and_optional_dependencies(tmp_path: Path):
    t = load_target(write(tmp_path / "t", {"compose.yaml": (
        "services:\n  a: {image: a, depends_on: {b: {condition: service_started, required: false}}}\n"
        "  b: {image: b, profiles: [extra]}\n")}))
    assert [s.name for s in t.services] == ["a"] and t.service("a").needs == ()
    with pytest.raises(InputError, match="has profiles and is not started"):
        load_target(write(tmp_path / "u", {"compose.yaml": (
            "services:\n  a: {image: a, depends_on: [b]}\n  b: {image: b, profiles: [extra]}\n")}))


def test_interpolation():
    env = {"A": "1", "E": ""}
    unset: list[str] = []
    assert substitute("x${A}y$A-${B:-d${A}}-${E:-e}-${E-e}-${A:+set}-$$A", env, unset) == \
        "x1y1-d1-e--set-$A"
    assert unset == []
    substitute("${NOPE}", env, unset)
    assert unset == ["NOPE"]
    with pytest.raises(InterpolationError, match="required: give it"):
        substitute("${B:?give it}", env, [])
    with pytest.raises(InterpolationError, match="lone \\$"):
        substitute("50$", env, [])
    data, issues = interpolate({"a": ["${NOPE}", 3], "b": "$$"}, env)
    assert data == {"a": ["", 3], "b": "$"}
    assert issues == [(("a", 0), "variable NOPE is not set (not in the target's .env); it "
                                 "becomes an empty string, as in Compose", False)]


def test_interpolation_errors_and_warnings_have_positions(tmp_path: Path):
    t = load_target(write(tmp_path / "t", {"compose.yaml":
                                           "services:\n  a: {image: 'a:1', environment: {U: '${UID}'}}\n"}))
    assert t.warnings[0].endswith("variable UID is not set (not in the target's .env); it becomes "
                                  "an empty string, as in Compose")
    assert ":2:" in t.warnings[0]
    with pytest.raises(InputError, match=r"compose.yaml:2:\d+: variable TAG is required"):
        load_target(write(tmp_path / "u", {"compose.yaml":
                                           "services:\n  a: {image: 'a:${TAG:?}'}\n"}))


def test_env_file_syntax():
    rows = parse_env_file('A=1\n# c\n\nexport B = "x\\ny"\nC=\'lit $x\'\nD=v # comment\nE\nF="open\n')
    assert rows == [(1, "A", "1"), (4, "B", "x\ny"), (5, "C", "lit $x"), (6, "D", "v"),
                    (7, "E", None), (8, "F", None)]


def test_continuum_yaml_beside_an_unchanged_compose_file(tmp_path: Path):
    proj = write(tmp_path / "myapp", {
        "docker-compose.yml": "services:\n  web: {image: 'w:1', ports: ['80']}\n",
        "continuum/continuum.yaml": ("compose: ../docker-compose.yml\nname: myapp\n"
                                     "entrypoints: [{service: web, port: 80}]\n"
                                     "load: {locustfile: locustfile.py, profiles: [Browse]}\n"),
        "continuum/locustfile.py": "def read_back(endpoints):\n    return []\n"})
    t = load_target(proj / "continuum")
    assert t.name == "myapp" and t.root == proj.resolve()
    assert t.load_profile == (proj / "continuum" / "locustfile.py").resolve()
    # A problem in continuum.yaml is reported in continuum.yaml, at its line.
    (proj / "continuum" / "continuum.yaml").write_text(
        "compose: ../docker-compose.yml\nentrypoints: [{service: nope, port: 80}]\n")
    with pytest.raises(InputError, match=r"continuum/continuum.yaml:2:\d+: entrypoint 'nope'"):
        load_target(proj / "continuum")
    (proj / "continuum" / "continuum.yaml").write_text("compose: ../missing.yml\n")
    with pytest.raises(InputError, match="compose file '../missing.yml' does not exist"):
        load_target(proj / "continuum")


def test_function_read_back_must_be_defined(tmp_path: Path):
    base = ("services:\n  web: {image: 'w:1', ports: ['80']}\nx-continuum:\n"
            "  entrypoints: [{service: web, port: 80}]\n  load: {locustfile: l.py, profiles: [P]}\n"
            "  durability: {read: {function: {name: %s}}}\n")
    d = write(tmp_path / "t", {"compose.yaml": base % "drain", "l.py": "def drain(e):\n  return []\n"})
    assert load_target(d).durability.read.file == (d / "l.py").resolve()
    (d / "compose.yaml").write_text(base % "missing")
    with pytest.raises(InputError, match="l.py defines no top-level function 'missing'"):
        load_target(d)


def test_role_declarations(tmp_path: Path):
    body = ("services:\n  db: {image: 'postgres:15', deploy: {replicas: 3}}\n"
            "  cache: {image: 'redis:7'}\nx-continuum:\n  roles:\n%s")
    ok = ("    leader: {among: db, http: {port: 8008, path: /primary, status: 200}}\n"
          "    master: {among: [db-1, db-2], exec: {argv: 'redis-cli role', output_matches: ^master}}\n"
          "    fake-sentinel: {sentinel: cache, master: m}\n")
    t = load_target(write(tmp_path / "t", {"compose.yaml": body % ok}))
    roles = {r.name: r for r in t.roles}
    assert roles["leader"].members == ("db-1", "db-2", "db-3") and roles["leader"].kind == "http"
    assert roles["master"].probe.argv == ("redis-cli", "role")
    assert any("nothing in service 'cache'" in w and "Redis Sentinel" in w for w in t.warnings)
    bad = ("    a: {among: db}\n"
           "    b: {among: db, http: {port: 1}, tcp: {port: 2}}\n"
           "    c: {http: {port: 1}}\n"
           "    d: {members: [db-1], among: db}\n")
    with pytest.raises(InputError) as info:
        load_target(write(tmp_path / "u", {"compose.yaml": body % bad}))
    found = problems(info.value)
    assert len(found) == 4
    assert "got none of them" in found[0] and "got http,tcp" in found[1]
    assert "missing required field 'among'" in found[2] and "takes no 'among'" in found[3]


def test_compose_schema_lists_refusals():
    schema = ComposeFile.model_json_schema(by_alias=True)
    svc = schema["$defs"]["ServiceSpec"]["properties"]
    assert svc["privileged"]["description"].startswith("refused: ")
    assert svc["logging"]["description"].startswith("ignored: ")


def test_validate_prints_warnings_and_still_passes(ordinary: Path):
    import io

    from harness.plan import cmd_validate

    out, err = io.StringIO(), io.StringIO()
    assert cmd_validate([str(ordinary)], out=out, err=err) == 0
    assert out.getvalue().startswith("ok    target shop")
    warnings = err.getvalue().splitlines()
    assert any("logging is ignored: the harness reads logs through Docker's default driver" in w
               for w in warnings)
    assert all(w.startswith("warning: ") and WHERE.match(w[len("warning: "):]) for w in warnings)
