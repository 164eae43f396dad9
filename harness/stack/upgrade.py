"""Replacing a running service's containers with a new image, for `service.upgrade`
(harness.faults.upgrade): the Docker half, behind `StackLike`'s upgrade methods.

Rolling (`replace`): one instance's container is stopped with its grace period (taken out of
its links' clients first, as any harness stop), removed, and created again from the new image
with everything else the same: its name, its fixed addresses on every network (so every
route through the run's Toxiproxy stays valid), its aliases, its published host ports and the
run's labels. Its links are interposed again before it is waited healthy.

Blue-green (`add_green`, `switch_to_green`, `retire_blue`):

* `add_green` creates `<instance>-green` beside each blue instance: same service options,
  the new image, a fresh fixed address on each of the service's networks, and the blue
  instance's names (`app-1`, `app`) as network aliases. Docker's DNS then answers both; a
  client that resolves by DNS keeps the address it uses while it is still answered (HAProxy
  does), so green takes no traffic before the switch.
* `switch_to_green` moves the names: blue's endpoint on each network is disconnected and at
  once connected again with the same address but no aliases, so from then on the names
  resolve to green only and clients that re-resolve (the reference HAProxy: every 200 ms)
  move to green. Blue keeps serving what it has (same address, same MAC; TCP retransmits
  across the moment without an endpoint).
* `retire_blue` stops blue with its grace period (its own drain) and removes it; the green
  container then *is* the instance (`stack.container("app-1")`, read-backs, later faults).

Green containers are not interposed: after a blue-green switch, the service's links no longer
go through the run's Toxiproxy (documented in docs/experiment-format.md). Every container made
here carries the run's labels (the reaper and `continuum down` remove it) and is on the
stack's undo stack the moment it exists.
"""

from __future__ import annotations

import time
from typing import Any

from harness.errors import FaultError, StackError
from harness.stack.engine import docker_errors
from harness.stack.options import container_options

# The stack (harness.stack.stack.Stack) is passed in, never imported: it imports this module.
Stack = Any

GREEN_SUFFIX = "-green"


def _ports_of(container) -> dict[str, tuple[str, int]]:
    """The host ports a container was created with: a replacement publishes the same ones, so
    load and probes keep their URLs."""
    bindings = (container.attrs.get("HostConfig") or {}).get("PortBindings") or {}
    out = {}
    for spec, binds in bindings.items():
        for b in binds or ():
            if b.get("HostPort"):
                out[spec] = (b.get("HostIp") or "127.0.0.1", int(b["HostPort"]))
    return out


def image_present(stack: Stack, image: str) -> bool:
    from docker.errors import ImageNotFound

    with docker_errors(f"looking up image {image}"):
        try:
            stack.client.images.get(image)
            return True
        except ImageNotFound:
            return False


def replace(stack: Stack, instance: str, image: str, grace_s: float) -> None:
    """Stop `instance` gracefully, remove it, create it again from `image` (same name,
    addresses, aliases, ports, labels) and start it. The caller waits for it to be healthy."""
    svc = stack.target.service_of(instance)
    old = stack.container(instance)
    with docker_errors(f"inspecting {instance}", FaultError):
        old.reload()
    ports = _ports_of(old)
    stack.instance(instance).stop(grace_s)          # drain: SIGTERM, grace, out of its links first
    stack.remove_container(old)
    stack._handles.pop(instance, None)
    interposer = stack.interposer
    if interposer is not None:
        interposer.starting(instance)               # its clients' rules back before it listens
    stack._create_instance(svc, instance, image=image, ports=ports)


def green_name(instance: str) -> str:
    return instance + GREEN_SUFFIX


def add_green(stack: Stack, instance: str, image: str) -> str:
    """Create and start `<instance>-green` beside `instance` (see the module docstring).
    Returns its name; the caller waits for it to be healthy (`green_handle`)."""
    svc = stack.target.service_of(instance)
    green = green_name(instance)
    nets = stack._network_names()
    keys = stack.nets[svc.name]
    ips = {}
    for key in keys:
        members = stack.plan.members[key]
        if green not in members:
            members.append(green)
        if len(members) + 12 > stack.plan.subnets[key].num_addresses:
            raise StackError(f"no address left on network {key} for {green}")
        ips[key] = stack.plan.ip(green, key)
    aliases = stack.aliases(svc, instance)
    container = stack._create(
        name=stack.object_name(green), image=image, network=nets[keys[0]], aliases=aliases,
        ipv4_address=ips[keys[0]],
        **container_options(svc, instance, volume_name=stack.volume_name,
                            labels=stack.labels(service=svc.name, instance=green)))
    for key in keys[1:]:
        stack._connect(container, nets[key], aliases=aliases, ipv4_address=ips[key])
    stack._greens[green] = container
    stack._start(container)
    return green


def green_handle(stack: Stack, instance: str):
    from harness.stack.instance import Instance

    green = green_name(instance)
    return Instance(stack._greens[green], green, stack.target.service_of(instance).name, stack.netexec)


def switch_to_green(stack: Stack, instance: str) -> float:
    """Move `instance`'s names from blue to green: blue reconnected on each network at its
    address without aliases. Returns when the last network's move was done (monotonic)."""
    svc = stack.target.service_of(instance)
    blue = stack.container(instance)
    nets = stack._network_names()
    for key in stack.nets[svc.name]:
        net = stack.client.networks.get(nets[key])
        ip = stack.plan.ip(instance, key)
        with docker_errors(f"moving the names of {instance} off blue on {key}", FaultError):
            net.disconnect(blue)
            net.connect(blue, ipv4_address=ip)
    return time.monotonic()


def retire_blue(stack: Stack, instance: str, grace_s: float) -> None:
    """Stop blue gracefully (its drain), remove it; green becomes `instance`."""
    blue = stack.container(instance)
    stack.instance(instance).stop(grace_s)
    stack.remove_container(blue)
    stack._containers[instance] = stack._greens.pop(green_name(instance))
    stack._handles.pop(instance, None)


def remove_green(stack: Stack, instance: str) -> None:
    """Undo of a green that never took over (a failed upgrade): blue stays the instance."""
    green = stack._greens.pop(green_name(instance), None)
    if green is not None:
        stack.remove_container(green)
