"""Rules in containers' network namespaces: what partitions, packet loss and DNS faults use.

A fault's rules are collected first, then landed together: one `iptables-restore --noflush`
per namespace (atomic inside it), all namespaces in parallel, so a partition over ten
containers bites at once instead of rule by rule over seconds. The window starts when the last
namespace landed; the spread (first to last) is kept in the injection's detail. Removal is the
same in reverse, then read back: no rule with the fault's comment may remain.

The host's `nsenter` enters the container's namespace, so target images need neither
iptables nor NET_ADMIN, and every rule vanishes with the container. Argument lists only:
nothing reaches a shell.
"""

from __future__ import annotations

import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from harness.errors import FaultError

TIMEOUT_S = 10
MAX_PARALLEL = 16


def iptables(pid: int, args: list[str]) -> str:
    return _run(pid, ["iptables", "-w", "5", *args])


def iptables_restore(pid: int, text: str) -> None:
    _run(pid, ["iptables-restore", "-w", "5", "--noflush"], stdin=text)


def _run(pid: int, argv: list[str], stdin: str | None = None) -> str:
    full = ["nsenter", "-t", str(pid), "-n", *argv]
    try:
        proc = subprocess.run(full, input=stdin, capture_output=True, text=True, timeout=TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise FaultError(f"{argv[0]} in pid {pid}'s namespace failed: {exc}") from exc
    if proc.returncode != 0:
        raise FaultError(f"{' '.join(argv)} in pid {pid}'s namespace failed: {proc.stderr.strip()[:200]}")
    return proc.stdout


def _table(op: str, rules: list[list[str]]) -> str:
    lines = ["*filter", *(" ".join([op, *r]) for r in rules), "COMMIT", ""]
    return "\n".join(lines)


class RuleSet:
    """Rules in several namespaces, tagged with one comment, landed and removed together."""

    def __init__(self, comment: str):
        if any(c.isspace() for c in comment):
            raise FaultError(f"rule comment {comment!r} must not contain spaces")
        self.comment = comment
        self.rules: dict[str, tuple[Any, list[list[str]]]] = {}    # instance → (handle, rules)
        self._landed: dict[str, int] = {}                          # instance → pid it landed in
        self.first_t: float | None = None
        self.last_t: float | None = None

    def add(self, instance: Any, chain: str, spec: list[str], jump: list[str] | None = None) -> None:
        """Record a rule (nothing changes until `apply`)."""
        rule = [chain, *spec, "-m", "comment", "--comment", self.comment, "-j", *(jump or ["DROP"])]
        if any(not isinstance(p, str) or "\n" in p for p in rule):
            raise FaultError(f"bad iptables rule {rule!r}")
        self.rules.setdefault(instance.name, (instance, []))[1].append(rule)

    def apply(self) -> float:
        """Land every namespace's rules; returns when the last landed. On a failure, what did
        land is removed again before the error is raised."""
        targets = []
        for name, (inst, rules) in self.rules.items():
            pid = inst.pid()
            if pid == 0:
                raise FaultError(f"{name} is not running; cannot change its network")
            targets.append((name, pid, rules))

        def land(job: tuple[str, int, list[list[str]]]) -> tuple[str, int, float | None, str]:
            name, pid, rules = job
            try:
                iptables_restore(pid, _table("-A", rules))
                return name, pid, time.monotonic(), ""
            except FaultError as exc:
                return name, pid, None, str(exc)

        with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL, max(1, len(targets)))) as pool:
            done = list(pool.map(land, targets))
        errors = [e for _, _, t, e in done if t is None]
        for name, pid, t, _ in done:
            if t is not None:
                self._landed[name] = pid
        if errors:
            try:
                self.remove_all()
            except FaultError as exc:
                errors.append(f"and undoing the part applied failed: {exc}")
            raise FaultError("; ".join(errors))
        times = [t for _, _, t, _ in done if t is not None]
        self.first_t, self.last_t = (min(times), max(times)) if times else (time.monotonic(),) * 2
        return self.last_t

    @property
    def spread_s(self) -> float:
        return (self.last_t - self.first_t) if self.first_t is not None and self.last_t is not None else 0.0

    def remove_all(self) -> tuple[str, float]:
        """Remove every landed rule (in parallel), then read back. Returns (detail, when the last
        removal took effect, before the read-back)."""
        jobs = []
        for name, pid in self._landed.items():
            inst, rules = self.rules[name]
            now_pid = inst.pid()
            if now_pid == 0:
                continue            # not running: its namespace, and the rules, are gone
            if now_pid != pid:      # restarted: a new namespace, where our rules never were
                continue
            jobs.append((name, pid, rules))

        def unland(job: tuple[str, int, list[list[str]]]) -> tuple[str, float | None, str]:
            name, pid, rules = job
            try:
                iptables_restore(pid, _table("-D", rules))
                return name, time.monotonic(), ""
            except FaultError as exc:
                return name, None, str(exc)

        with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL, max(1, len(jobs)))) as pool:
            done = list(pool.map(unland, jobs))
        restored_t = max([t for _, t, _ in done if t is not None], default=time.monotonic())
        errors = [e for _, t, e in done if t is None]
        for name, pid, _ in jobs:   # read back: no rule with our comment may remain
            try:
                if self.comment in iptables(pid, ["-S"]):
                    errors.append(f"rules tagged {self.comment} still present in {name}")
            except FaultError as exc:
                errors.append(str(exc))
        self._landed.clear()
        if errors:
            raise FaultError("; ".join(errors))
        return f"rules removed and verified in {len(jobs)} namespace(s)", restored_t
