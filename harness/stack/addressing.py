"""Where every container of a run sits on its networks: subnets and fixed addresses.

Interposition (harness.stack.links) rewrites `upstream_ip:port` in each client's namespace, so
an upstream must keep its address for the whole run, through kills and restarts. Docker only
keeps an address that was asked for, and only on a network whose subnet was asked for too; so
the harness picks each network's subnet itself and gives every endpoint a fixed address:

    .1   the gateway (the host's side of the bridge)
    .2   the run's Toxiproxy, on every network it joins
    .10… the target's instances, in the order the target lists them

Subnets come from the engine's own address pools (`docker info` → DefaultAddressPools, or
Docker's built-in defaults), skipping every subnet an existing network holds, and are taken
from the top of each pool down: Docker hands out its own from the bottom up, so concurrent
runs and other users of the engine rarely reach for the same one (when they do, the create
fails and the next free subnet is tried). Pure: no Docker here.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Iterable, Iterator

from harness.errors import StackError

# Docker's built-in pools, used when the engine does not report its own.
DOCKER_DEFAULT_POOLS: tuple[tuple[str, int], ...] = (
    *((f"172.{n}.0.0/16", 16) for n in range(17, 32)),
    ("192.168.0.0/16", 20),
)
TOXIPROXY_HOST = 2
FIRST_INSTANCE_HOST = 10

Net = ipaddress.IPv4Network


def pools_from_info(info: dict) -> tuple[tuple[str, int], ...]:
    """The engine's address pools as (base, prefix length) from `docker info`."""
    pools = info.get("DefaultAddressPools") or []
    out = []
    for p in pools:
        try:
            base, size = str(p["Base"]), int(p["Size"])
            if ipaddress.ip_network(base).version == 4:
                out.append((base, size))
        except (KeyError, TypeError, ValueError):
            continue
    return tuple(out) or DOCKER_DEFAULT_POOLS


def used_subnets(networks: Iterable[dict]) -> list[Net]:
    """Subnets held by existing networks (the low-level `docker network ls` records)."""
    out = []
    for n in networks:
        for cfg in ((n.get("IPAM") or {}).get("Config") or []):
            try:
                net = ipaddress.ip_network(cfg.get("Subnet", ""), strict=False)
            except ValueError:
                continue
            if net.version == 4:
                out.append(net)
    return out


def candidate_subnets(pools: Iterable[tuple[str, int]], used: Iterable[Net],
                      min_hosts: int) -> Iterator[Net]:
    """Free subnets, top of each pool first, each with room for `min_hosts` addresses."""
    taken = list(used)
    for base, size in pools:
        pool = ipaddress.ip_network(base, strict=False)
        prefix = max(size, pool.prefixlen)
        if 2 ** (32 - prefix) - 2 < min_hosts:
            continue
        count = 2 ** (prefix - pool.prefixlen)
        for i in reversed(range(count)):
            net = ipaddress.ip_network(
                (int(pool.network_address) + i * 2 ** (32 - prefix), prefix))
            if not any(net.overlaps(t) for t in taken):
                yield net


@dataclass
class AddressPlan:
    """Fixed addresses of one run: network key → subnet; (instance, network key) → address."""

    subnets: dict[str, Net] = field(default_factory=dict)
    members: dict[str, list[str]] = field(default_factory=dict)   # network key → instances

    def add_network(self, key: str, subnet: Net, members: list[str]) -> None:
        if len(members) + FIRST_INSTANCE_HOST + 1 > subnet.num_addresses:
            raise StackError(f"subnet {subnet} is too small for {len(members)} containers")
        self.subnets[key] = subnet
        self.members[key] = list(members)

    def gateway(self, key: str) -> str:
        return str(self.subnets[key].network_address + 1)

    def toxiproxy_ip(self, key: str) -> str:
        return str(self.subnets[key].network_address + TOXIPROXY_HOST)

    def ip(self, instance: str, key: str) -> str:
        try:
            index = self.members[key].index(instance)
        except (KeyError, ValueError):
            raise StackError(f"{instance} has no address on network {key}") from None
        return str(self.subnets[key].network_address + FIRST_INSTANCE_HOST + index)

    def ips(self, instance: str) -> dict[str, str]:
        """Every address of one instance: network key → address."""
        return {k: self.ip(instance, k) for k, m in self.members.items() if instance in m}
