"""A service's Compose settings → the Docker SDK's container options, one small function each.

    kwargs = container_options(service, instance, volume_name=stack.volume_name, labels=labels)

Everything here is pure (no Docker call): the stack creates the container with these options
plus its own networking. What each Compose key means and why some are refused is the
acceptance table in `harness.model.compose`.
"""

from __future__ import annotations

from typing import Any, Callable

from docker.types import Mount, Ulimit

from harness.model.compose import restart_policy
from harness.model.target import HealthCheck, ServiceSpec


def _ns(seconds: float) -> int:
    return int(seconds * 1_000_000_000)


def healthcheck(hc: HealthCheck | None) -> dict[str, Any] | None:
    if hc is None:
        return None
    if hc.off:
        return {"test": ["NONE"]}      # the image's own health check is off too
    out: dict[str, Any] = {"interval": _ns(hc.interval_s), "timeout": _ns(hc.timeout_s),
                           "retries": hc.retries, "start_period": _ns(hc.start_period_s)}
    if hc.test is not None:         # None: the image's own test, with these timings
        out["test"] = list(hc.test)
    return out


def command(svc: ServiceSpec) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if svc.command is not None:
        out["command"] = list(svc.command) or None
    if svc.entrypoint is not None:
        # An empty entrypoint clears the image's, as in Compose.
        out["entrypoint"] = list(svc.entrypoint) or [""]
    return out


def mounts(svc: ServiceSpec, volume_name: Callable[[str], str]) -> list[Mount]:
    out = []
    for m in svc.volumes:
        if m.type == "tmpfs":
            out.append(Mount(m.target, None, type="tmpfs", read_only=m.read_only,
                             tmpfs_size=m.tmpfs_size, tmpfs_mode=m.tmpfs_mode))
        elif m.type == "bind":
            out.append(Mount(m.target, m.source, type="bind", read_only=m.read_only))
        else:   # a named volume of this run, or an anonymous one (removed with the container)
            source = volume_name(m.source) if m.source else None
            out.append(Mount(m.target, source, type="volume", read_only=m.read_only))
    return out


def resources(svc: ServiceSpec) -> dict[str, Any]:
    limits, reserve = svc.deploy.resources.limits, svc.deploy.resources.reservations
    memory = svc.mem_limit if svc.mem_limit is not None else limits.memory
    cpus = svc.cpus if svc.cpus is not None else limits.cpus
    pids = svc.pids_limit if svc.pids_limit is not None else limits.pids
    reservation = svc.mem_reservation if svc.mem_reservation is not None else reserve.memory
    out: dict[str, Any] = {}
    if memory is not None:
        out["mem_limit"] = memory
    if svc.memswap_limit is not None:
        out["memswap_limit"] = svc.memswap_limit
    if reservation is not None:
        out["mem_reservation"] = reservation
    if cpus is not None:
        out["nano_cpus"] = int(cpus * 1e9)
    if svc.cpu_shares is not None:
        out["cpu_shares"] = svc.cpu_shares
    if svc.cpuset is not None:
        out["cpuset_cpus"] = svc.cpuset
    if pids is not None:
        out["pids_limit"] = pids
    if svc.shm_size is not None:
        out["shm_size"] = svc.shm_size
    return out


def process(svc: ServiceSpec, instance: str) -> dict[str, Any]:
    """Who and where the process runs as, and how it is started and stopped."""
    out: dict[str, Any] = {
        "hostname": svc.hostname or instance,
        "stop_signal": svc.stop_signal or "SIGTERM",
        "read_only": svc.read_only,
        "tty": svc.tty,
        "stdin_open": svc.stdin_open,
    }
    for key, value in (("domainname", svc.domainname), ("user", svc.user),
                       ("working_dir", svc.working_dir), ("init", svc.init),
                       ("ipc_mode", svc.ipc)):
        if value is not None:
            out[key] = value
    policy = restart_policy(svc.restart_policy)
    if policy is not None:
        out["restart_policy"] = policy
    if svc.ulimits:
        out["ulimits"] = [Ulimit(name=u.name, soft=u.soft, hard=u.hard) for u in svc.ulimits]
    if svc.tmpfs:
        out["tmpfs"] = {t.target: t.options for t in svc.tmpfs}
    if svc.group_add:
        out["group_add"] = list(svc.group_add)
    if svc.cap_add:
        out["cap_add"] = list(svc.cap_add)
    if svc.cap_drop:
        out["cap_drop"] = list(svc.cap_drop)
    if svc.sysctls:
        out["sysctls"] = dict(svc.sysctls)
    if svc.extra_hosts:
        out["extra_hosts"] = dict(svc.extra_hosts)
    if svc.security_opt:
        out["security_opt"] = list(svc.security_opt)
    return out


def container_options(svc: ServiceSpec, instance: str, *, volume_name: Callable[[str], str],
                      labels: dict[str, str]) -> dict[str, Any]:
    """Every option of `docker create` that comes from the service, networking aside. The
    harness's own labels win over the service's (validation refuses io.continuum.* anyway)."""
    opts: dict[str, Any] = {
        "labels": {**dict(svc.labels), **labels},
        "environment": [f"{k}={v}" for k, v in svc.environment],
        "healthcheck": healthcheck(svc.healthcheck),
        **command(svc), **process(svc, instance), **resources(svc),
    }
    found = mounts(svc, volume_name)
    if found:
        opts["mounts"] = found
    return opts
