"""Running iptables inside a container's network namespace from the host.

The host's `nsenter` + `iptables` act on the container's own namespace, so target images need
neither iptables nor NET_ADMIN, and every rule vanishes with the container. Argument lists
only: nothing reaches a shell.
"""

from __future__ import annotations

import subprocess
import time

from harness.errors import FaultError

TIMEOUT_S = 10


def container_pid(container) -> int:
    container.reload()
    pid = int(container.attrs["State"].get("Pid") or 0)
    return pid


def container_ips(container) -> list[str]:
    container.reload()
    return sorted(
        n["IPAddress"] for n in container.attrs["NetworkSettings"]["Networks"].values() if n.get("IPAddress")
    )


def iptables(pid: int, args: list[str]) -> str:
    argv = ["nsenter", "-t", str(pid), "-n", "iptables", "-w", "5", *args]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise FaultError(f"iptables in pid {pid}'s namespace failed: {exc}") from exc
    if proc.returncode != 0:
        raise FaultError(f"iptables {' '.join(args)} failed: {proc.stderr.strip()[:200]}")
    return proc.stdout


class RuleSet:
    """Rules added in several namespaces, tagged with one comment, removed and verified together."""

    def __init__(self, comment: str):
        self.comment = comment
        self.first_t: float | None = None
        self.rules: list[tuple[object, list[str]]] = []   # (container, rule spec without -A/-D)

    def add(self, container, chain: str, spec: list[str]) -> None:
        pid = container_pid(container)
        if pid == 0:
            raise FaultError(f"{container.name} is not running; cannot change its network")
        rule = [chain, *spec, "-m", "comment", "--comment", self.comment, "-j", "DROP"]
        iptables(pid, ["-A", *rule])
        if not self.rules:  # the fault starts biting with its first rule, not its last
            self.first_t = time.monotonic()
        self.rules.append((container, rule))

    def remove_all(self) -> str:
        errors = []
        touched = {}
        for container, rule in reversed(self.rules):
            pid = container_pid(container)
            if pid == 0:
                continue  # not running: its namespace, and the rule, are gone
            touched[container.name] = pid
            try:
                iptables(pid, ["-D", *rule])
            except FaultError as exc:
                errors.append(str(exc))
        self.rules.clear()
        for name, pid in touched.items():  # read back: no rule with our comment may remain
            if self.comment in iptables(pid, ["-S"]):
                errors.append(f"rules tagged {self.comment} still present in {name}")
        if errors:
            raise FaultError("; ".join(errors))
        return f"rules removed and verified in {len(touched)} namespace(s)"
