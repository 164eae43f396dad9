"""Rules in containers' network namespaces: what partitions, packet loss and DNS faults use.

A fault's rules are collected first, then landed together: one `iptables-restore --noflush`
batch per namespace (atomic inside it), sent to every namespace before any acknowledgement is
read, so a partition over ten containers bites at once instead of rule by rule over seconds.
The window starts when the last namespace landed; the spread (first to last) is kept in the
injection's detail. Removal is the same in reverse, then read back: no rule with the fault's
comment may remain.

Each namespace is reached through `instance.netns()`: a helper container of the run that
joined that container's namespace by container id (harness.stack.netexec), never the host's
`nsenter`. So target images need neither iptables nor NET_ADMIN, every rule vanishes with the
container's namespace, and no handle can come to mean another process's namespace or the
host's. Rules are text lines for iptables-restore: nothing reaches a shell.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

from harness.errors import FaultError, HarnessError

MAX_PARALLEL = 16


class Landing(Protocol):
    def wait(self) -> float: ...


class NamespaceHandle(Protocol):
    """One incarnation of a container's network namespace (harness.stack.netexec.Namespace)."""

    key: str                        # changes when the container starts again (a new namespace)

    def begin(self, lines: list[str]) -> Landing: ...
    def save(self) -> str: ...


def _table(op: str, rules: list[list[str]]) -> list[str]:
    return ["*filter", *(" ".join([op, *r]) for r in rules), "COMMIT"]


def _handles(items: list[tuple[str, Any]]) -> tuple[dict[str, NamespaceHandle], list[str]]:
    """Each instance's namespace handle (helpers started in parallel, before anything lands)."""
    def get(item: tuple[str, Any]) -> tuple[str, NamespaceHandle | None, str]:
        name, inst = item
        try:
            return name, inst.netns(), ""
        except HarnessError as exc:
            return name, None, str(exc)

    with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL, max(1, len(items)))) as pool:
        got = list(pool.map(get, items))
    return {n: h for n, h, _ in got if h is not None}, [e for _, h, e in got if h is None]


def land(batches: dict[str, tuple[NamespaceHandle, list[str]]]) -> tuple[dict[str, float], list[str]]:
    """Send every batch, then collect every acknowledgement: name → when it landed; errors."""
    pending: dict[str, Landing] = {}
    errors: list[str] = []
    for name, (handle, lines) in batches.items():
        try:
            pending[name] = handle.begin(lines)
        except HarnessError as exc:
            errors.append(f"{name}: {exc}")
    landed: dict[str, float] = {}
    for name, p in pending.items():
        try:
            landed[name] = p.wait()
        except HarnessError as exc:
            errors.append(f"{name}: {exc}")
    return landed, errors


class RuleSet:
    """Rules in several namespaces, tagged with one comment, landed and removed together."""

    def __init__(self, comment: str):
        if any(c.isspace() for c in comment):
            raise FaultError(f"rule comment {comment!r} must not contain spaces")
        self.comment = comment
        self.rules: dict[str, tuple[Any, list[list[str]]]] = {}    # instance → (handle, rules)
        self._landed: dict[str, str] = {}                          # instance → namespace key
        self.first_t: float | None = None
        self.last_t: float | None = None
        self.revert_spread_s = 0.0

    def add(self, instance: Any, chain: str, spec: list[str], jump: list[str] | None = None) -> None:
        """Record a rule (nothing changes until `apply`)."""
        rule = [chain, *spec, "-m", "comment", "--comment", self.comment, "-j", *(jump or ["DROP"])]
        if any(not isinstance(p, str) or not p or any(c.isspace() for c in p) for p in rule):
            raise FaultError(f"bad iptables rule {rule!r}")
        self.rules.setdefault(instance.name, (instance, []))[1].append(rule)

    def apply(self) -> float:
        """Land every namespace's rules; returns when the last landed. On a failure, what did
        land is removed again before the error is raised."""
        handles, errors = _handles([(n, inst) for n, (inst, _) in self.rules.items()])
        if errors:
            raise FaultError("; ".join(errors))
        landed, errors = land({n: (handles[n], _table("-A", rules)) for n, (_, rules) in self.rules.items()})
        for name in landed:
            self._landed[name] = handles[name].key
        if errors:
            try:
                self.remove_all()
            except FaultError as exc:
                errors.append(f"and undoing the part applied failed: {exc}")
            raise FaultError("; ".join(errors))
        times = list(landed.values())
        self.first_t, self.last_t = min(times), max(times)
        return self.last_t

    @property
    def spread_s(self) -> float:
        return (self.last_t - self.first_t) if self.first_t is not None and self.last_t is not None else 0.0

    def remove_all(self) -> tuple[str, float]:
        """Remove every landed rule (all namespaces together), then read back. Returns (detail,
        when the last removal took effect, before the read-back)."""
        items = [(n, self.rules[n][0]) for n in self._landed]
        handles, _ = _handles(items)     # not running: its namespace, and the rules, are gone
        # Started again since: a new namespace, where our rules never were.
        jobs = {n: h for n, h in handles.items() if h.key == self._landed[n]}
        landed, errors = land({n: (h, _table("-D", self.rules[n][1])) for n, h in jobs.items()})
        restored_t = max(landed.values(), default=time.monotonic())
        self.revert_spread_s = restored_t - min(landed.values(), default=restored_t)
        for name, h in jobs.items():     # read back: no rule with our comment may remain
            try:
                if self.comment in h.save():
                    errors.append(f"rules tagged {self.comment} still present in {name}")
            except HarnessError as exc:
                errors.append(f"{name}: {exc}")
        self._landed.clear()
        if errors:
            raise FaultError("; ".join(errors))
        return (f"rules removed and verified in {len(jobs)} namespace(s), "
                f"spread {self.revert_spread_s * 1000:.0f} ms"), restored_t
