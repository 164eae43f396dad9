"""What a target may not ask for: capabilities beyond an allow-list, and names of the harness's own.

A target is trusted code (its images and its locustfile run with the harness's rights, see
docs/target-format.md, "Trust"), but its compose file should not be able to turn a chaos test
into a way out of the container by accident or by copy-paste: `privileged` is not a key we
accept, and `cap_add` is limited to the capabilities below. Each refused capability says why.

The harness names every Docker object `continuum-<run>-<suffix>`: instances by their own name,
its Toxiproxy `toxiproxy`, its control network `ctl`, one network per link `link-<link>`. A
service or network that would take one of those names is refused at validation, not found out
as a name collision halfway through `up`.
"""

from __future__ import annotations

from typing import Any

# Capabilities a service may add, and what each is for. Docker's default set (CHOWN,
# DAC_OVERRIDE, FOWNER, FSETID, KILL, SETGID, SETUID, SETPCAP, NET_BIND_SERVICE, NET_RAW,
# SYS_CHROOT, MKNOD, AUDIT_WRITE, SETFCAP) is already granted; naming one is harmless.
ALLOWED_CAPABILITIES: dict[str, str] = {
    "NET_ADMIN": "routes, tc and iptables inside the container's own network namespace",
    "NET_RAW": "raw sockets (ping); in Docker's default set",
    "NET_BIND_SERVICE": "ports below 1024; in Docker's default set",
    "NET_BROADCAST": "broadcast and multicast listening",
    "SYS_NICE": "process priorities and CPU affinity (databases, real-time threads)",
    "SYS_RESOURCE": "raising the container's own resource limits (open files, locked memory)",
    "IPC_LOCK": "locking memory (mlock: Vault, Elasticsearch)",
    "IPC_OWNER": "System V IPC objects of other users inside the container",
    "LEASE": "file leases",
    "WAKE_ALARM": "timers that wake the system (harmless in a container)",
    "CHOWN": "in Docker's default set",
    "DAC_OVERRIDE": "in Docker's default set",
    "FOWNER": "in Docker's default set",
    "FSETID": "in Docker's default set",
    "KILL": "in Docker's default set",
    "SETGID": "in Docker's default set",
    "SETUID": "in Docker's default set",
    "SETPCAP": "in Docker's default set",
    "SYS_CHROOT": "in Docker's default set",
    "MKNOD": "in Docker's default set",
    "AUDIT_WRITE": "in Docker's default set",
    "SETFCAP": "in Docker's default set",
}

# Refused, with the reason. Anything not in either table is not a Linux capability.
REFUSED_CAPABILITIES: dict[str, str] = {
    "ALL": "every capability at once is `privileged` by another name",
    "SYS_ADMIN": "mount, namespaces, cgroups, BPF and much more: the usual way out of a container",
    "SYS_MODULE": "loads kernel modules into the host's kernel",
    "SYS_RAWIO": "raw I/O ports and /dev/mem on the host",
    "SYS_PTRACE": "traces any process it can see, the harness's helpers included; a common escape step",
    "SYS_BOOT": "reboots the host",
    "SYS_TIME": "sets the host's clock (time is not namespaced), which every measurement relies on",
    "SYS_TTY_CONFIG": "reconfigures the host's terminals",
    "SYS_PACCT": "switches process accounting on the host",
    "DAC_READ_SEARCH": "opens host files by handle (the 'shocker' escape)",
    "LINUX_IMMUTABLE": "changes immutable flags on files",
    "MAC_ADMIN": "reconfigures AppArmor/SELinux, which confine the container",
    "MAC_OVERRIDE": "bypasses AppArmor/SELinux",
    "AUDIT_CONTROL": "reconfigures the host's audit subsystem",
    "AUDIT_READ": "reads the host's audit log",
    "SYSLOG": "reads and clears the host's kernel log",
    "BPF": "loads BPF programs into the host's kernel",
    "PERFMON": "observes every process on the host through perf",
    "CHECKPOINT_RESTORE": "restores processes with chosen pids, across namespaces",
    "BLOCK_SUSPEND": "keeps the host from suspending",
}

CAPABILITY_HELP = ("a Linux capability from the allow-list (" + ", ".join(sorted(
    c for c, why in ALLOWED_CAPABILITIES.items() if "default set" not in why)) +
    ", or one of Docker's defaults); see docs/target-format.md")


def check_capability(value: Any) -> str:
    """`NET_ADMIN` or `CAP_NET_ADMIN` → "NET_ADMIN"; ValueError (with the reason) otherwise."""
    if not isinstance(value, str) or not value or len(value) > 64:
        raise ValueError(f"expected {CAPABILITY_HELP}, got {value!r}"[:300])
    name = value.upper().removeprefix("CAP_")
    if name in ALLOWED_CAPABILITIES:
        return name
    if name in REFUSED_CAPABILITIES:
        raise ValueError(f"cap_add {value!r} is refused: {REFUSED_CAPABILITIES[name]}. "
                         f"Allowed: {', '.join(sorted(ALLOWED_CAPABILITIES))}")
    raise ValueError(f"{value!r} is not a Linux capability we know; expected {CAPABILITY_HELP}")


# ─────────────────────────────── the harness's own names ───────────────────────────────

RESERVED_INSTANCE_NAMES = {
    "toxiproxy": "the run's Toxiproxy container is continuum-<run>-toxiproxy",
}
RESERVED_NETWORK_NAMES = {
    "ctl": "the run's control network is continuum-<run>-ctl",
    "toxiproxy": "reserved for the run's Toxiproxy",
}
RESERVED_NETWORK_PREFIXES = {
    "link-": "the harness names one network per link continuum-<run>-link-<link>",
}


def reserved_instance(name: str) -> str | None:
    """Why a service or instance may not be called `name`, or None when it may."""
    return RESERVED_INSTANCE_NAMES.get(name)


def reserved_network(name: str) -> str | None:
    """Why a network may not be called `name`, or None when it may."""
    if name in RESERVED_NETWORK_NAMES:
        return RESERVED_NETWORK_NAMES[name]
    for prefix, why in RESERVED_NETWORK_PREFIXES.items():
        if name.startswith(prefix):
            return why
    return None
