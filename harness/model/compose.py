"""What an ordinary Compose file may say about a service, and what the harness does with it.

`KEYS` is the acceptance table: every Compose key, *accepted* (honoured as Compose does),
*warned* (accepted but ignored, and `validate` says so) or *refused* (with the reason: it would
break the host or the harness). The field types below parse the accepted keys into frozen
values the stack turns into Docker options (`harness.stack.options`); `Refused` and `Ignored`
fields take their message from this table, so the table in docs/target-format.md, the JSON
Schema and the validation all say the same thing.

Paths (binds, env files) are checked against the target directory later, in
`ComposeFile.to_target`, where the directory is known.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, WithJsonSchema

from harness.model.base import At, Model
from harness.model.units import NAME_MAX, NAME_RE, got, short

Status = Literal["accepted", "warned", "refused"]


@dataclass(frozen=True)
class KeyRule:
    status: Status
    note: str


A, W, R = "accepted", "warned", "refused"

# Service keys. Order: as docs/target-format.md lists them.
KEYS: dict[str, KeyRule] = {
    "image": KeyRule(A, "required; with `build`, the tag the build produces"),
    "build": KeyRule(A, "`context`, `dockerfile`, `args`, `target` (inside the target directory); "
                        "other build keys are warned"),
    "command": KeyRule(A, "a list, or a string split into words as Compose does (never run by a "
                          "shell)"),
    "entrypoint": KeyRule(A, "as `command`; an empty list or string clears the image's"),
    "environment": KeyRule(A, "a map or a `KEY=value` list; overrides `env_file`"),
    "env_file": KeyRule(A, "files inside the target directory (`required: false` honoured); "
                           "read when the target is loaded, `${...}` inside is not expanded"),
    "healthcheck": KeyRule(A, "`test` (CMD, CMD-SHELL, NONE or a shell string), `interval`, "
                              "`timeout`, `retries`, `start_period`, `disable`; `start_interval` "
                              "is warned (Docker 20.10 has no such setting)"),
    "networks": KeyRule(A, "names of top-level networks (see the network section)"),
    "depends_on": KeyRule(A, "a list or a map with `condition: service_started | service_healthy "
                             "| service_completed_successfully` and `required`; the harness "
                             "starts a dependency and waits until it is healthy (running, without "
                             "a health check; exited 0 for service_completed_successfully) "
                             "before its dependents; `restart` is warned"),
    "deploy": KeyRule(A, "`replicas` (instances name-1..name-N), `resources.limits` and "
                         "`resources.reservations` (cpus, memory, pids), `restart_policy`; "
                         "`mode`, `placement`, `update_config`, `rollback_config`, "
                         "`endpoint_mode`, `labels` are warned (Swarm only)"),
    "scale": KeyRule(A, "the same as `deploy.replicas`"),
    "ports": KeyRule(A, "always published on 127.0.0.1; a host port only with one replica"),
    "expose": KeyRule(A, "documentation only, as in Compose: a container on a shared network "
                         "reaches every port"),
    "container_name": KeyRule(A, "another name the service answers to on its networks (containers "
                                 "themselves are named per run); one replica only"),
    "hostname": KeyRule(A, "the container's hostname (default: the instance name)"),
    "domainname": KeyRule(A, "the container's domain name"),
    "labels": KeyRule(A, "a map or a `key=value` list; `io.continuum.*` is the harness's own"),
    "user": KeyRule(A, "`uid[:gid]` or `name[:group]`"),
    "working_dir": KeyRule(A, "an absolute path in the container"),
    "volumes": KeyRule(A, "named volumes (declared at the top level; created for the run and "
                          "removed with it), anonymous volumes, binds of files or directories "
                          "inside the target directory, `tmpfs`; short and long syntax"),
    "tmpfs": KeyRule(A, "a path or a list of `path[:options]` (size, mode, uid, gid, "
                        "noexec/nosuid/nodev)"),
    "restart": KeyRule(A, "`no`, `always`, `on-failure[:N]`, `unless-stopped`. Docker does not "
                          "restart a container the harness killed or stopped through the engine "
                          "(`container.kill`, `container.stop`: a manual stop), so a kill fault's "
                          "window is what the file says; a process that crashes or is OOM-killed "
                          "(a memory fault) *is* restarted by Docker, as in production"),
    "ulimits": KeyRule(A, "`name: N` or `name: {soft, hard}`"),
    "init": KeyRule(A, "Docker's init as PID 1"),
    "read_only": KeyRule(A, "a read-only root filesystem"),
    "tty": KeyRule(A, "allocate a terminal"),
    "stdin_open": KeyRule(A, "keep standard input open"),
    "stop_signal": KeyRule(A, "the signal `container.stop` and teardown send (default SIGTERM)"),
    "stop_grace_period": KeyRule(A, "how long `container.stop` waits before SIGKILL"),
    "shm_size": KeyRule(A, "size of /dev/shm"),
    "mem_limit": KeyRule(A, "memory limit (a memory fault restores it afterwards)"),
    "memswap_limit": KeyRule(A, "memory + swap limit"),
    "mem_reservation": KeyRule(A, "soft memory limit"),
    "cpus": KeyRule(A, "CPU quota in cores"),
    "cpu_shares": KeyRule(A, "relative CPU weight"),
    "cpuset": KeyRule(A, "CPUs the container may use"),
    "pids_limit": KeyRule(A, "process limit"),
    "group_add": KeyRule(A, "supplementary groups"),
    "cap_drop": KeyRule(A, "capabilities removed"),
    "cap_add": KeyRule(A, "capabilities added"),
    "sysctls": KeyRule(A, "namespaced sysctls only (Docker refuses the others)"),
    "extra_hosts": KeyRule(A, "`name:address` entries in /etc/hosts"),
    "security_opt": KeyRule(A, "only `no-new-privileges`; every other option weakens the "
                               "container's confinement and is refused"),
    "ipc": KeyRule(A, "`private` or `shareable`; `host` and sharing another container's are "
                      "refused"),
    "profiles": KeyRule(A, "a service with profiles is not started (the harness enables no "
                           "profile), as `docker compose up` without `--profile`; validate "
                           "warns"),
    "stop_grace_period_": KeyRule(A, ""),   # placeholder removed below (keeps the order readable)
    # ── refused: each would break the host or the harness ──
    "privileged": KeyRule(R, "a privileged container has every capability and the host's devices: "
                             "it can escape to the host"),
    "network_mode": KeyRule(R, "the harness attaches every container to the run's own networks: "
                               "`host` would put it on the host's network, `none` would cut it "
                               "off, `service:`/`container:` would share another's namespace so "
                               "links and partitions could not tell them apart"),
    "pid": KeyRule(R, "`pid: host` shares the host's processes (a fault could kill the host's)"),
    "uts": KeyRule(R, "`uts: host` lets the container change the host's hostname"),
    "userns_mode": KeyRule(R, "`userns_mode: host` turns off user-namespace remapping"),
    "cgroup": KeyRule(R, "`cgroup: host` exposes the host's cgroup tree"),
    "cgroup_parent": KeyRule(R, "places the container in a host cgroup of its choosing"),
    "devices": KeyRule(R, "host devices inside a container reach the host's hardware"),
    "device_cgroup_rules": KeyRule(R, "grants access to host devices"),
    "gpus": KeyRule(R, "host devices inside a container reach the host's hardware"),
    "oom_kill_disable": KeyRule(R, "a memory fault could then stall the host instead of killing "
                                   "the container"),
    "volumes_from": KeyRule(R, "not supported: share a named volume between the services instead"),
    "external_links": KeyRule(R, "links to containers outside the run"),
    "extends": KeyRule(R, "not supported: merge the base service in (YAML anchors and `<<:` work)"),
    "secrets": KeyRule(R, "not supported yet: bind-mount the file read-only with `volumes`"),
    "configs": KeyRule(R, "not supported yet: bind-mount the file read-only with `volumes`"),
    "links": KeyRule(W, "legacy links are not needed (services reach each other by name on a "
                        "shared network); `service:alias` entries are refused (use a network "
                        "alias)"),
    # ── warned: accepted, ignored, reported by validate ──
    "logging": KeyRule(W, "the harness reads logs through Docker's default driver"),
    "platform": KeyRule(W, "images are built or pulled for this machine"),
    "pull_policy": KeyRule(W, "`continuum images` decides: pulled when a registry answers, else "
                              "built"),
    "dns": KeyRule(W, "names resolve through Docker's embedded DNS on the run's networks"),
    "dns_search": KeyRule(W, "names resolve through Docker's embedded DNS on the run's networks"),
    "dns_opt": KeyRule(W, "names resolve through Docker's embedded DNS on the run's networks"),
    "mac_address": KeyRule(W, "addresses are assigned per run"),
    "runtime": KeyRule(W, "the engine's default runtime is used (faults need it)"),
    "storage_opt": KeyRule(W, "storage driver options are not passed"),
    "isolation": KeyRule(W, "Windows containers only"),
    "annotations": KeyRule(W, "not passed to the engine"),
    "attach": KeyRule(W, "the harness never attaches to container output"),
    "develop": KeyRule(W, "`docker compose watch` only"),
    "post_start": KeyRule(W, "lifecycle hooks are not run"),
    "pre_stop": KeyRule(W, "lifecycle hooks are not run"),
    "credential_spec": KeyRule(W, "Windows containers only"),
    "cpu_count": KeyRule(W, "Windows containers only; use `cpus`"),
    "cpu_percent": KeyRule(W, "Windows containers only; use `cpus`"),
    "cpu_period": KeyRule(W, "use `cpus`"),
    "cpu_quota": KeyRule(W, "use `cpus`"),
    "cpu_rt_period": KeyRule(W, "real-time scheduling is not configured"),
    "cpu_rt_runtime": KeyRule(W, "real-time scheduling is not configured"),
    "blkio_config": KeyRule(W, "block I/O weights are not passed"),
    "mem_swappiness": KeyRule(W, "not passed (cgroup v2 has no such setting)"),
    "oom_score_adj": KeyRule(W, "the OOM killer's preference is left to the engine"),
}
del KEYS["stop_grace_period_"]

REFUSED = tuple(k for k, r in KEYS.items() if r.status == R)
WARNED = tuple(k for k, r in KEYS.items() if r.status == W)
# Top-level keys (the `networks` section belongs to the network layout).
TOP_KEYS: dict[str, KeyRule] = {
    "services": KeyRule(A, "required"),
    "networks": KeyRule(A, "see the network section"),
    "volumes": KeyRule(A, "named volumes with the `local` driver; `labels` honoured, `name` "
                          "warned (volumes are named per run); `external` and `driver_opts` "
                          "refused (a run only uses volumes it made; `driver_opts` can mount "
                          "host paths); other drivers refused (plugins are not installed)"),
    "name": KeyRule(A, "the target's name"),
    "version": KeyRule(A, "ignored, as by Compose"),
    "x-*": KeyRule(A, "extensions are ignored, as by Compose; `x-continuum` is the harness's"),
    "include": KeyRule(R, "not supported: one file per target"),
    "secrets": KeyRule(R, "not supported yet: bind-mount the file read-only with `volumes`"),
    "configs": KeyRule(R, "not supported yet: bind-mount the file read-only with `volumes`"),
}

RESERVED_LABEL_PREFIX = "io.continuum."
_MAX_ITEMS = 256


# ─────────────────────────────────────── accepted or not ───────────────────────────────────────


def Refused(key: str, allowed: tuple[Any, ...] = (None, False)) -> Any:  # noqa: N802
    """A Compose key the harness refuses, with the table's reason; values in `allowed` (the
    harmless spellings, such as `privileged: false`) pass."""
    reason = KEYS[key].note if key in KEYS else TOP_KEYS[key].note

    def parse(value: Any) -> Any:
        if any(value is a or (a is not None and value == a and type(value) is type(a))
               for a in allowed):
            return None
        raise ValueError(f"{key} is refused: {reason}")

    harmless = [a for a in allowed if a is not None]
    return Annotated[Any, BeforeValidator(parse), WithJsonSchema(
        {"enum": harmless, "description": f"refused: {reason}"} if harmless else
        {"not": {}, "description": f"refused: {reason}"})]


@dataclass(frozen=True)
class IgnoredMark:
    """Field metadata: the key is accepted and ignored; `warnings_of` reports it."""

    reason: str


def Ignored(key: str, reason: str | None = None) -> Any:  # noqa: N802
    """A Compose key accepted and ignored: `validate` warns with the reason (the table's)."""
    why = reason or KEYS[key].note
    return Annotated[Any, WithJsonSchema({"description": f"ignored: {why}"}), IgnoredMark(why)]


def warnings_of(model: Model, path: tuple = ()) -> list[tuple[tuple, str]]:
    """(path of the key, message) for every ignored key set in `model` and its sub-models."""
    out: list[tuple[tuple, str]] = []
    for name, info in type(model).model_fields.items():
        if name not in model.model_fields_set:
            continue
        key = info.alias or name
        mark = next((m for m in info.metadata if isinstance(m, IgnoredMark)), None)
        value = getattr(model, name)
        if mark is not None:
            if value is not None:
                out.append((path + (key,), f"{key} is ignored: {mark.reason}"))
        elif isinstance(value, Model):
            out.extend(warnings_of(value, path + (key,)))
    return out


# ─────────────────────────────────────── small parsers ───────────────────────────────────────


def _str(value: Any, what: str, max_length: int = 1024) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected {what}, {got(value)}")
    if len(value) > max_length or "\x00" in value:
        raise ValueError(f"{short(value)} is not {what} (longer than {max_length} or a NUL byte)")
    return value


def _items(value: Any, what: str) -> list[Any]:
    """One value or a list of them (Compose accepts both for several keys)."""
    items = [value] if isinstance(value, (str, dict)) else value
    if not isinstance(items, list):
        raise ValueError(f"expected {what} or a list of them, {got(value)}")
    if len(items) > _MAX_ITEMS:
        raise ValueError(f"at most {_MAX_ITEMS} items")
    return items


def _pairs(value: Any, what: str, sep: str = "=", *, key_rx: re.Pattern[str] | None = None,
           allow_empty: bool = True) -> tuple[tuple[str, str], ...]:
    """A map of k: v or a list of "k<sep>v" → ((k, v), ...), keys unique."""
    if isinstance(value, tuple):
        return value
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    if isinstance(value, dict):
        entries = [(k, v, k) for k, v in value.items()]
    elif isinstance(value, list):
        entries = []
        for i, item in enumerate(value):
            if not isinstance(item, str) or sep not in item:
                raise At(f"expected {what} as \"key{sep}value\", {got(item)}", i)
            k, _, v = item.partition(sep)
            entries.append((k, v, i))
    else:
        raise ValueError(f"expected a map or a list of \"key{sep}value\", {got(value)}")
    if len(entries) > _MAX_ITEMS:
        raise ValueError(f"at most {_MAX_ITEMS} entries")
    for k, v, where in entries:
        if not isinstance(k, str) or not k or len(k) > 256 or (key_rx and not key_rx.match(k)):
            raise At(f"{short(k)} is not a valid {what} key", where, key=isinstance(where, str))
        if v is None and allow_empty:
            v = ""
        if isinstance(v, bool) or not isinstance(v, (str, int, float)):
            raise At(f"expected a string or a number, {got(v)}", where)
        if k in seen:
            raise At(f"{what} {k!r} is given twice", where, key=isinstance(where, str))
        seen.add(k)
        out.append((k, v if isinstance(v, str) else str(v)))
    return tuple(out)


def _schema(description: str, **kw: Any) -> Any:
    return WithJsonSchema({"description": description, **kw})


_ANY_MAP_OR_LIST = {"anyOf": [{"type": "object"}, {"type": "array", "items": {"type": "string"}}]}


# ── labels ──

_LABEL_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")


def _labels(value: Any) -> tuple[tuple[str, str], ...]:
    pairs = _pairs(value, "label", key_rx=_LABEL_KEY)
    for i, (k, _) in enumerate(pairs):
        if k.startswith(RESERVED_LABEL_PREFIX) and isinstance(value, (dict, list)):
            raise At(f"label {k!r}: {RESERVED_LABEL_PREFIX}* labels are the harness's own "
                     "(run ids the janitor and reaper act on)",
                     k if isinstance(value, dict) else i, key=isinstance(value, dict))
    return pairs


Labels = Annotated[tuple[tuple[str, str], ...], BeforeValidator(_labels),
                   _schema("a map of labels or a list of key=value", **_ANY_MAP_OR_LIST)]

# ── names, users, paths ──

HOSTNAME_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                         r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")


def _hostname(value: Any) -> str:
    s = _str(value, "a host name", 253)
    if not HOSTNAME_RE.match(s):
        raise ValueError(f"{short(s)} is not a host name (letters, digits, '-', dots between labels)")
    return s


Hostname = Annotated[str, BeforeValidator(_hostname), _schema("a host name", type="string")]

_USER_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,31})?$")


def _user(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return str(value)
    s = _str(value, "a user: uid[:gid] or name[:group]", 65)
    if not _USER_RE.match(s):
        raise ValueError(f"{short(s)} is not a user: write uid[:gid] or name[:group]")
    return s


User = Annotated[str, BeforeValidator(_user), _schema("uid[:gid] or name[:group]",
                                                      type=["string", "integer"])]


def _abs_path(value: Any) -> str:
    s = _str(value, "an absolute path in the container", 4096)
    if not s.startswith("/"):
        raise ValueError(f"{short(s)} is not an absolute path (it must start with /)")
    return s


ContainerPath = Annotated[str, BeforeValidator(_abs_path),
                          _schema("an absolute path in the container", type="string")]


def _container_name(value: Any) -> str:
    s = _str(value, "a container name", 128)
    if not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", s):
        raise ValueError(f"{short(s)} is not a container name (letters, digits, '_', '.', '-')")
    return s


ContainerName = Annotated[str, BeforeValidator(_container_name),
                          _schema("a name the service also answers to", type="string")]

# ── sizes as Docker reads them (units are powers of 1024, any case, an optional b) ──

_DOCKER_SIZE = re.compile(r"^([0-9]+(?:\.[0-9]+)?) ?([kmgtKMGT]?)(?:[iI]?[bB])?$")


def parse_docker_size(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    s = _str(value, "a size such as 512m or 1g", 32).strip()
    m = _DOCKER_SIZE.match(s)
    if not m:
        raise ValueError(f"{short(value)} is not a size such as 512m, 1g or 64MiB")
    mult = 1024 ** " kmgt".index(m.group(2).lower() or " ")
    return int(float(m.group(1)) * mult)


def _size(value: Any) -> int:
    if value == -1 and not isinstance(value, bool):
        return -1          # memswap_limit: -1 is "unlimited swap"
    return parse_docker_size(value)


DockerSize = Annotated[int, BeforeValidator(_size), _schema(
    "a size in bytes or with a unit (512m, 1g, 64MiB)", type=["string", "integer"])]

# ── ports in `expose` ──


def _expose(value: Any) -> tuple[tuple[int, str], ...]:
    if isinstance(value, tuple):
        return value
    if not isinstance(value, list):
        raise ValueError(f"expected a list of ports, {got(value)}")
    out: list[tuple[int, str]] = []
    for i, p in enumerate(value):
        text = str(p) if isinstance(p, int) and not isinstance(p, bool) else p
        if not isinstance(text, str):
            raise At(f"expected a port such as 8080 or \"8080/tcp\", {got(p)}", i)
        m = re.match(r"^([0-9]{1,5})(?:-([0-9]{1,5}))?(?:/(tcp|udp|sctp))?$", text)
        if not m:
            raise At(f"{short(p)} is not a port such as 8080, \"8080/udp\" or \"8000-8010\"", i)
        low, high = int(m.group(1)), int(m.group(2) or m.group(1))
        if not 1 <= low <= high <= 65535 or high - low > 1024:
            raise At(f"{short(p)} is not a port range within 1-65535 (at most 1024 ports)", i)
        out.extend((n, m.group(3) or "tcp") for n in range(low, high + 1))
    return tuple(dict.fromkeys(out))


Expose = Annotated[tuple[tuple[int, str], ...], BeforeValidator(_expose), _schema(
    "container ports (documentation only)", type="array",
    items={"type": ["integer", "string"]})]

# ── restart ──

_RESTART = re.compile(r"^(no|always|unless-stopped|on-failure)(?::([0-9]{1,4}))?$")


def _restart(value: Any) -> str:
    if value is False:
        return "no"     # YAML 1.1 habit: `restart: no` unquoted reads as false elsewhere
    s = _str(value, "a restart policy", 32)
    m = _RESTART.match(s)
    if not m or (m.group(2) and m.group(1) != "on-failure"):
        raise ValueError(f"{short(s)} is not a restart policy: no, always, on-failure[:N], "
                         "unless-stopped")
    return s


Restart = Annotated[str, BeforeValidator(_restart), _schema(
    "no | always | on-failure[:N] | unless-stopped", type="string")]


def restart_policy(text: str) -> dict[str, Any] | None:
    """Compose's restart string → the Docker SDK's restart_policy."""
    name, _, count = text.partition(":")
    if name == "no":
        return None
    return {"Name": name, "MaximumRetryCount": int(count or 0)}

# ── signals ──

_SIGNALS = ("SIGHUP", "SIGINT", "SIGQUIT", "SIGKILL", "SIGUSR1", "SIGUSR2", "SIGTERM", "SIGPWR",
            "SIGWINCH", "SIGSTOP")


def _signal(value: Any) -> str:
    s = _str(value, "a signal name", 16)
    name = s if s.startswith("SIG") else "SIG" + s
    if name not in _SIGNALS:
        raise ValueError(f"{short(s)} is not a signal name ({', '.join(_SIGNALS)})")
    return name


Signal = Annotated[str, BeforeValidator(_signal), _schema("a signal name such as SIGTERM",
                                                          type="string")]

# ── ulimits ──

_ULIMITS = ("core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile",
            "nproc", "rss", "rtprio", "rttime", "sigpending", "stack")


class Ulimit(Model):
    name: str
    soft: int
    hard: int


def _ulimits(value: Any) -> tuple[Ulimit, ...]:
    if isinstance(value, tuple):
        return value
    if not isinstance(value, dict):
        raise ValueError(f"expected a map of limit: N or limit: {{soft, hard}}, {got(value)}")
    out: list[Ulimit] = []

    def number(v: Any, *where: Any) -> int:
        if isinstance(v, bool) or not isinstance(v, int) or not -1 <= v <= 2**63 - 1:
            raise At(f"expected a whole number (-1 for unlimited), {got(v)}", *where)
        return v

    for name, v in value.items():
        if name not in _ULIMITS:
            raise At(f"{short(name)} is not a limit; known: {', '.join(_ULIMITS)}", name, key=True)
        if isinstance(v, dict):
            extra = sorted(set(v) - {"soft", "hard"})
            if extra or not {"soft", "hard"} <= set(v):
                raise At("expected {soft: N, hard: N}", name)
            soft, hard = number(v["soft"], name, "soft"), number(v["hard"], name, "hard")
        else:
            soft = hard = number(v, name)
        if soft > hard and hard != -1:
            raise At(f"soft limit {soft} is above the hard limit {hard}", name)
        out.append(Ulimit(name=name, soft=soft, hard=hard))
    return tuple(out)


Ulimits = Annotated[tuple[Ulimit, ...], BeforeValidator(_ulimits), _schema(
    "limit: N or limit: {soft, hard}", type="object")]

# ── tmpfs ──

_TMPFS_OPTS = re.compile(r"^(?:size=[0-9]+[kmgKMG]?|mode=[0-7]{3,4}|uid=[0-9]+|gid=[0-9]+|"
                         r"noexec|exec|nosuid|suid|nodev|dev|ro|rw|nr_inodes=[0-9]+[kmg]?)$")


class TmpfsMount(Model):
    target: str
    options: str = ""       # as Docker takes them: "size=64m,mode=1777"


def _tmpfs_entry(text: Any) -> TmpfsMount:
    s = _str(text, "a tmpfs mount: path[:options]", 1024)
    path, _, opts = s.partition(":")
    _abs_path(path)
    for opt in filter(None, opts.split(",")):
        if not _TMPFS_OPTS.match(opt):
            raise ValueError(f"tmpfs option {short(opt)} is not one of size, mode, uid, gid, "
                             "nr_inodes, noexec/exec, nosuid/suid, nodev/dev, ro/rw")
    return TmpfsMount(target=path, options=opts)


def _tmpfs(value: Any) -> tuple[TmpfsMount, ...]:
    if isinstance(value, tuple):
        return value
    out: list[TmpfsMount] = []
    for i, item in enumerate(_items(value, "a tmpfs path")):
        try:
            out.append(_tmpfs_entry(item))
        except ValueError as exc:
            raise At(str(exc), *(() if isinstance(value, str) else (i,))) from None
    return tuple(out)


Tmpfs = Annotated[tuple[TmpfsMount, ...], BeforeValidator(_tmpfs), _schema(
    "a path or a list of path[:options]",
    anyOf=[{"type": "string"}, {"type": "array", "items": {"type": "string"}}])]

# ── volumes ──


class VolumeMount(Model):
    """One entry of a service's `volumes` (paths checked later against the target directory)."""

    type: Literal["volume", "bind", "tmpfs"]
    source: str | None = None       # a named volume, a bind path (absolute after to_target), None: anonymous
    target: str
    read_only: bool = False
    tmpfs_size: int | None = None   # long syntax `tmpfs: {size}`
    tmpfs_mode: int | None = None


_MODES = {"ro", "rw", "z", "Z", "cached", "delegated", "consistent", "nocopy"}
_VOLUME_KEYS = {"type", "source", "target", "read_only", "bind", "volume", "tmpfs", "consistency"}


def _is_path(source: str) -> bool:
    return source.startswith((".", "/", "~")) or source in (".", "..")


def _volume_short(text: str) -> VolumeMount:
    parts = text.split(":")
    if len(parts) == 1:
        return VolumeMount(type="volume", target=_abs_path(parts[0]))
    if len(parts) > 3:
        raise ValueError(f"{short(text)} is not SOURCE:TARGET[:MODE]")
    source, target = parts[0], _abs_path(parts[1])
    modes = set(parts[2].split(",")) if len(parts) == 3 else set()
    bad = sorted(modes - _MODES)
    if bad or {"ro", "rw"} <= modes:
        raise ValueError(f"volume mode {short(parts[2])} is not ro or rw (with z, Z, nocopy, "
                         "cached, delegated)")
    if not source:
        raise ValueError(f"{short(text)} has an empty source")
    kind = "bind" if _is_path(source) else "volume"
    if kind == "volume" and not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", source):
        raise ValueError(f"{short(source)} is neither a path (./x, /x) nor a volume name")
    return VolumeMount(type=kind, source=source, target=target, read_only="ro" in modes)


def _volume_long(entry: dict[str, Any]) -> VolumeMount:
    extra = sorted(set(entry) - _VOLUME_KEYS)
    if extra:
        raise At(f"unknown field {extra[0]!r}; allowed here: {', '.join(sorted(_VOLUME_KEYS))}",
                 extra[0], key=True)
    kind = entry.get("type", "volume")
    if kind not in ("volume", "bind", "tmpfs"):
        raise At(f"volume type {short(kind)} is not volume, bind or tmpfs (npipe and cluster "
                 "are not supported)", "type")
    if "target" not in entry:
        raise At("missing required field 'target'", "target")
    try:
        target = _abs_path(entry["target"])
    except ValueError as exc:
        raise At(str(exc), "target") from None
    source = entry.get("source")
    if source is not None:
        source = _str(source, "a volume name or path", 4096)
    ro = entry.get("read_only", False)
    if not isinstance(ro, bool):
        raise At(f"expected a boolean, {got(ro)}", "read_only")
    bind = entry.get("bind") or {}
    if not isinstance(bind, dict) or set(bind) - {"propagation", "create_host_path", "selinux"}:
        raise At("bind takes propagation, create_host_path, selinux", "bind")
    if bind.get("propagation") not in (None, "private", "rprivate"):
        raise At(f"bind propagation {short(bind.get('propagation'))} is refused: a shared mount "
                 "propagates mounts back to the host", "bind", "propagation")
    size = mode = None
    if kind == "tmpfs":
        if source is not None:
            raise At("a tmpfs mount has no source", "source")
        t = entry.get("tmpfs") or {}
        if not isinstance(t, dict) or set(t) - {"size", "mode"}:
            raise At("tmpfs takes size and mode", "tmpfs")
        try:
            size = parse_docker_size(t["size"]) if "size" in t else None
        except ValueError as exc:
            raise At(str(exc), "tmpfs", "size") from None
        m = t.get("mode")
        if m is not None and (isinstance(m, bool) or not isinstance(m, int) or not 0 <= m <= 0o7777):
            raise At(f"expected a file mode such as 1777 (octal, written as 0o1777 or 1023), "
                     f"{got(m)}", "tmpfs", "mode")
        mode = m
    elif kind == "bind":
        if not source:
            raise At("a bind mount needs a source path", "source")
    elif source and not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", source):
        raise At(f"{short(source)} is not a volume name", "source")
    return VolumeMount(type=kind, source=source or None, target=target, read_only=ro,
                       tmpfs_size=size, tmpfs_mode=mode)


def _volumes(value: Any) -> tuple[VolumeMount, ...]:
    if isinstance(value, tuple):
        return value
    if not isinstance(value, list):
        raise ValueError(f"expected a list of volumes, {got(value)}")
    out: list[VolumeMount] = []
    for i, item in enumerate(value):
        try:
            if isinstance(item, str):
                m = _volume_short(item)
            elif isinstance(item, dict):
                m = _volume_long(item)
            else:
                raise ValueError(f"expected SOURCE:TARGET[:MODE] or a mapping, {got(item)}")
        except At as exc:
            raise At(exc.message, i, *exc.path, key=exc.key) from None
        except ValueError as exc:
            raise At(str(exc), i) from None
        if any(o.target == m.target for o in out):
            raise At(f"two volumes are mounted at {m.target}", i)
        out.append(m)
    return tuple(out)


Volumes = Annotated[tuple[VolumeMount, ...], BeforeValidator(_volumes), _schema(
    "SOURCE:TARGET[:MODE] strings or {type, source, target, read_only} mappings", type="array")]


class VolumeDecl(Model):
    """A top-level named volume."""

    driver: Literal["local"] = "local"
    labels: Labels = ()
    name: Ignored("", "volumes are named per run (continuum-<run>-vol-<name>)") = None


def _volume_decl(value: Any) -> Any:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"expected a mapping (driver, labels) or nothing, {got(value)}")
    if value.get("external") not in (None, False):
        raise At("external volumes are refused: a run only mounts volumes it made and removes",
                 "external")
    if value.get("driver_opts") not in (None, {}):
        raise At("driver_opts are refused: the local driver's options can mount any host path",
                 "driver_opts")
    if value.get("driver", "local") != "local":
        raise At(f"volume driver {short(value.get('driver'))} is refused: only `local` (plugins "
                 "are not installed)", "driver")
    return {k: v for k, v in value.items() if k not in ("external", "driver_opts")}


VolumeDeclIn = Annotated[VolumeDecl, BeforeValidator(_volume_decl)]

# ── env_file ──


class EnvFileRef(Model):
    path: str
    required: bool = True


def _env_files(value: Any) -> tuple[EnvFileRef, ...]:
    if isinstance(value, tuple):
        return value
    out: list[EnvFileRef] = []
    for i, item in enumerate(_items(value, "an env file path")):
        where = () if isinstance(value, (str, dict)) else (i,)
        if isinstance(item, str):
            out.append(EnvFileRef(path=_str(item, "a path", 4096)))
        elif isinstance(item, dict):
            extra = sorted(set(item) - {"path", "required", "format"})
            if extra or "path" not in item:
                raise At("expected {path, required}", *where)
            if item.get("format") not in (None, "raw"):
                raise At("env_file format must be raw (or left out)", *where, "format")
            req = item.get("required", True)
            if not isinstance(req, bool):
                raise At(f"expected a boolean, {got(req)}", *where, "required")
            out.append(EnvFileRef(path=_str(item["path"], "a path", 4096), required=req))
        else:
            raise At(f"expected a path or {{path, required}}, {got(item)}", *where)
    return tuple(out)


EnvFiles = Annotated[tuple[EnvFileRef, ...], BeforeValidator(_env_files), _schema(
    "a path, or a list of paths or {path, required}",
    anyOf=[{"type": "string"}, {"type": "array"}])]

_ENV_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.]*)\s*=\s?(.*)$")


def parse_env_file(text: str) -> list[tuple[int, str, str] | tuple[int, str, None]]:
    """Compose's env file syntax → [(line, key, value)] (value None: the line is not valid).

    `KEY=value`, optional `export `, `#` comments, blank lines, single quotes (literal), double
    quotes (\\n, \\t, \\\\ and \\" escapes), ` #` starting a comment after an unquoted value.
    """
    out: list[Any] = []
    for n, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        m = _ENV_LINE.match(line)
        if not m:
            out.append((n, stripped[:40], None))
            continue
        key, raw = m.group(1), m.group(2)
        if raw[:1] in ("'", '"'):
            quote = raw[0]
            end = raw.find(quote, 1)
            while quote == '"' and end > 0 and raw[end - 1] == "\\":
                end = raw.find(quote, end + 1)
            if end < 0:
                out.append((n, key, None))
                continue
            value = raw[1:end]
            if quote == '"':
                value = (value.replace("\\n", "\n").replace("\\t", "\t").replace('\\"', '"')
                         .replace("\\\\", "\\"))
        else:
            value = re.split(r"\s+#", raw, maxsplit=1)[0].rstrip()
        out.append((n, key, value))
    return out

# ── sysctls, extra_hosts, security_opt ──

_SYSCTL_KEY = re.compile(r"^[a-z0-9_]+(?:[./][a-z0-9_-]+)+$")


def _sysctls(value: Any) -> tuple[tuple[str, str], ...]:
    return _pairs(value, "sysctl", key_rx=_SYSCTL_KEY)


Sysctls = Annotated[tuple[tuple[str, str], ...], BeforeValidator(_sysctls),
                    _schema("a map of sysctl: value or a list of key=value", **_ANY_MAP_OR_LIST)]


def _extra_hosts(value: Any) -> tuple[tuple[str, str], ...]:
    if isinstance(value, tuple):
        return value
    if isinstance(value, list):
        pairs = []
        for i, item in enumerate(value):
            if not isinstance(item, str) or not re.match(r"^[^:=\s]+[:=]\S+$", item):
                raise At(f"expected \"name:address\" or \"name=address\", {got(item)}", i)
            sep = "=" if "=" in item else ":"
            name, _, addr = item.partition(sep)
            pairs.append((name, addr))
        return tuple(pairs)
    return _pairs(value, "host", key_rx=HOSTNAME_RE)


ExtraHosts = Annotated[tuple[tuple[str, str], ...], BeforeValidator(_extra_hosts),
                       _schema("name:address entries", **_ANY_MAP_OR_LIST)]


def _security_opt(value: Any) -> tuple[str, ...]:
    if isinstance(value, tuple):
        return value
    if not isinstance(value, list):
        raise ValueError(f"expected a list, {got(value)}")
    out = []
    for i, opt in enumerate(value):
        if opt in ("no-new-privileges", "no-new-privileges:true", "no-new-privileges=true"):
            out.append("no-new-privileges:true")
        elif opt in ("no-new-privileges:false", "no-new-privileges=false"):
            continue
        else:
            raise At(f"security option {short(opt)} is refused: it weakens the container's "
                     "confinement (seccomp, AppArmor, SELinux); only no-new-privileges is "
                     "accepted", i)
    return tuple(dict.fromkeys(out))


SecurityOpt = Annotated[tuple[str, ...], BeforeValidator(_security_opt), _schema(
    "only no-new-privileges", type="array", items={"type": "string"})]


def _ipc(value: Any) -> str | None:
    if value in (None, "private", "shareable"):
        return value
    raise ValueError(f"ipc {short(value)} is refused: `host` shares the host's IPC namespace and "
                     "`service:`/`container:` another container's; write private or shareable")


Ipc = Annotated[str | None, BeforeValidator(_ipc), _schema("private | shareable",
                                                           enum=["private", "shareable"])]


def _links(value: Any) -> Any:
    if not isinstance(value, list):
        raise ValueError(f"expected a list of service names, {got(value)}")
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise At(f"expected a service name, {got(item)}", i)
        if ":" in item:
            raise At(f"link alias {short(item)} is refused: write the alias under the service's "
                     "networks (aliases) instead", i)
    return value


LegacyLinks = Annotated[Any, BeforeValidator(_links), _schema(f"ignored: {KEYS['links'].note}",
                                                              type="array"),
                       IgnoredMark(KEYS["links"].note)]


def _profiles(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(p, str) and p for p in value):
        raise ValueError(f"expected a list of profile names, {got(value)}")
    return tuple(value)


Profiles = Annotated[tuple[str, ...], BeforeValidator(_profiles), _schema(
    "profile names (a service with profiles is not started)", type="array",
    items={"type": "string"})]


def _cpus(value: Any) -> float:
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise ValueError(f"{short(value)} is not a number of CPUs") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1024:
        raise ValueError(f"expected a number of CPUs such as 0.5, {got(value)}")
    return float(value)


Cpus = Annotated[float, BeforeValidator(_cpus), _schema("CPUs, such as 0.5",
                                                        type=["number", "string"])]


def _cpuset(value: Any) -> str:
    s = _str(value, "a CPU list such as 0-1 or 0,2", 64)
    if not re.match(r"^[0-9]+(?:-[0-9]+)?(?:,[0-9]+(?:-[0-9]+)?)*$", s):
        raise ValueError(f"{short(s)} is not a CPU list such as 0-1 or 0,2")
    return s


Cpuset = Annotated[str, BeforeValidator(_cpuset), _schema("a CPU list such as 0-1",
                                                          type="string")]


def _groups(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise ValueError(f"expected a list of groups, {got(value)}")
    return tuple(_user(g) for g in value)


Groups = Annotated[tuple[str, ...], BeforeValidator(_groups), _schema(
    "group names or ids", type="array")]

# ── depends_on ──

CONDITIONS = ("service_started", "service_healthy", "service_completed_successfully")


class Dependency(Model):
    name: str
    condition: Literal["service_started", "service_healthy", "service_completed_successfully"] = \
        "service_started"
    required: bool = True
    restart: bool | None = None     # Compose's restart-the-dependents flag; warned, ignored


MAX_DEPENDENCIES = 200      # as many as a target may have services (harness.model.target.MAX_SERVICES)


def _depends(value: Any) -> tuple[Dependency, ...]:
    """A list of names, or a map of name: {condition, required, restart} (Compose allows both)."""
    if value is None:
        return ()
    if isinstance(value, tuple) and all(isinstance(d, (Dependency, str)) for d in value):
        return tuple(d if isinstance(d, Dependency) else Dependency(name=d) for d in value)
    # Bounded before any per-item work (validation stays linear in the file).
    if isinstance(value, (dict, list, tuple)) and len(value) > MAX_DEPENDENCIES:
        raise ValueError(f"at most {MAX_DEPENDENCIES} names here, not {len(value)}")
    entries: list[tuple[Any, dict[str, Any], Any]] = []
    if isinstance(value, dict):
        for k, v in value.items():
            if v is not None and not isinstance(v, dict):
                raise At(f"expected null or a mapping with 'condition', {got(v)}", k)
            v = v or {}
            extra = sorted(set(v) - {"condition", "required", "restart"})
            if extra:
                raise At(f"unknown field {extra[0]!r}; allowed here: condition, required, restart",
                         k, extra[0], key=True)
            cond = v.get("condition", "service_started")
            if cond not in CONDITIONS:
                raise At(f"{short(cond)} is not one of: {', '.join(CONDITIONS)}", k, "condition")
            req = v.get("required", True)
            if not isinstance(req, bool):
                raise At(f"expected a boolean, {got(req)}", k, "required")
            restart = v.get("restart")
            if restart is not None and not isinstance(restart, bool):
                raise At(f"expected a boolean, {got(restart)}", k, "restart")
            entries.append((k, {"condition": cond, "required": req, "restart": restart}, k))
    elif isinstance(value, (list, tuple)):
        entries = [(n, {}, i) for i, n in enumerate(value)]
    else:
        raise ValueError(f"expected a list of names, {got(value)}")
    out: list[Dependency] = []
    for n, opts, where in entries:
        if not isinstance(n, str) or len(n) > NAME_MAX or not NAME_RE.match(n):
            raise At(f"expected a name of lowercase letters and digits (e.g. redis-1), {got(n)}",
                     where, key=isinstance(value, dict))
        if any(d.name == n for d in out):
            raise At("list items must be unique", where)
        out.append(Dependency(name=n, **opts))
    return tuple(out)


DependsOn = Annotated[tuple[Dependency, ...], BeforeValidator(_depends), WithJsonSchema(
    {"anyOf": [{"type": "array", "items": {"type": "string", "pattern": NAME_RE.pattern}},
               {"type": "object", "propertyNames": {"pattern": NAME_RE.pattern}}],
     "description": "a list of names, or a map of name: {condition, required}"})]


def split_words(value: str) -> tuple[str, ...]:
    """A Compose `command`/`entrypoint` string → words, as Compose splits it (shell-like quoting,
    no expansion). shlex's POSIX mode is the same grammar; nothing ever runs it in a shell."""
    return tuple(shlex.split(value))
