"""`continuum doctor`: is this machine ready to run experiments? Says what is missing and the
command that fixes it. Exit 0 when everything needed is there, 3 otherwise."""

from __future__ import annotations

import shutil
import socket
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


def _checks(target_path: Path) -> list[Check]:
    from docker.errors import DockerException

    from harness.errors import ContinuumError
    from harness.stack.engine import HOW_TO_FIX, connect
    from harness.stack.images import BASE_IMAGE, NETEXEC_IMAGE, TOXIPROXY_IMAGE

    checks: list[Check] = []
    try:
        client = connect(timeout_s=10)
        info = client.info()
        checks.append(Check("docker engine", True, f"{info.get('ServerVersion')} ({info.get('OperatingSystem')})"))
    except ContinuumError as exc:
        checks.append(Check("docker engine", False, str(exc).split(";")[0], HOW_TO_FIX))
        return checks

    wanted = [BASE_IMAGE, TOXIPROXY_IMAGE, NETEXEC_IMAGE]   # the helper: namespace faults, no host tools
    try:
        from harness.loader import load_target

        target = load_target(target_path)
        wanted += sorted({s.image for s in target.services})
    except ContinuumError as exc:
        checks.append(Check("target", False, str(exc), "fix the target file, then `continuum validate`"))
    for image in wanted:
        try:
            client.images.get(image)
            checks.append(Check(f"image {image}", True, "present"))
        except DockerException:
            checks.append(Check(f"image {image}", False, "missing", f"continuum images {target_path}"))

    for tool, why in (("go", "building Toxiproxy offline"), ("debootstrap", "building the Debian base offline")):
        found = shutil.which(tool)
        checks.append(Check(tool, True, found or f"absent: only needed for {why} when no registry answers"))

    try:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            checks.append(Check("loopback ports", True, f"can bind 127.0.0.1 (got port {s.getsockname()[1]})"))
    except OSError as exc:
        checks.append(Check("loopback ports", False, str(exc), "free ports on 127.0.0.1"))

    root = Path(info.get("DockerRootDir") or "/var/lib/docker")
    try:
        free = shutil.disk_usage(root if root.exists() else Path("/")).free / 2**30
        checks.append(Check("disk", free >= 5, f"{free:.1f} GiB free under {root}", "free at least 5 GiB (docker system prune)"))
    except OSError as exc:
        checks.append(Check("disk", False, str(exc)))

    nets = client.networks.list()
    checks.append(Check("networks", len(nets) < 200, f"{len(nets)} networks exist (a run of the reference target makes 4)",
                        "continuum down --all; docker network prune"))
    return checks


def run_doctor(target_path: Path) -> int:
    checks = _checks(target_path)
    width = max(len(c.name) for c in checks)
    for c in checks:
        mark = "ok " if c.ok else "NO "
        print(f"{mark} {c.name:{width}}  {c.detail}")
        if not c.ok and c.fix:
            print(f"    {'':{width}}  fix: {c.fix}")
    missing = [c for c in checks if not c.ok]
    print("ready" if not missing else f"{len(missing)} problem(s)")
    return 0 if not missing else 3
