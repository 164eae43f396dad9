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
* `switch_to_green` moves blue's address, like a virtual IP: in the namespace of every client
  of its links a DNAT rule sends each *new* connection to blue's address to green's
  (`Interposer.redirect`). Connections already open stay on blue (the nat table only sees a
  connection's first packet) until blue drains them; health checks, being new connections,
  check green at once. Blue's DNS names are left alone until blue is removed: Docker 20.10
  adds a container's hostname (the instance's name, `app-1`) to its aliases on every
  connect, so they cannot be taken from a blue that still serves; and taking its other
  aliases by disconnecting and reconnecting blue on each network failed requests (measured:
  5 failed, 4 of them transfers, all answered by blue while it was being reconnected; its
  connections to Redis cross one of those networks). Before this, with the
  names alone, the reference's HAProxy never left blue (`hold obsolete 30s` keeps an address
  DNS still answers; 31 106 answers, all from blue, after a 35 s hold). Clients that reach
  the service without a declared link follow DNS, i.e. move when blue is removed. An entry
  point (reached by the load through the run's proxy) cannot be switched this way and is
  refused.
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
        interposer.unredirect(instance)             # after a blue-green one: back at its own address
        interposer.starting(instance)               # its clients' rules back before it listens
    stack._create_instance(svc, instance, image=image, ports=ports)


def green_name(instance: str) -> str:
    return instance + GREEN_SUFFIX


def add_green(stack: Stack, instance: str, image: str) -> str:
    """Create and start `<instance>-green` beside `instance` (see the module docstring).
    Returns its name; the caller waits for it to be healthy (`green_handle`)."""
    svc = stack.target.service_of(instance)
    if any(r.ingress and r.upstream == instance for r in stack.routes):
        raise FaultError(f"{instance} is an entry point (the load reaches it through the run's "
                         f"proxy): a blue-green switch of it is not supported; use strategy: rolling")
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
    """Send new connections to `instance` (blue) to its green instead (see the module
    docstring). Returns when every client's rule has landed (monotonic)."""
    svc = stack.target.service_of(instance)
    moved = {stack.plan.ip(instance, key): stack.plan.ip(green_name(instance), key)
             for key in stack.nets[svc.name]}
    if stack.interposer is not None:
        try:
            stack.interposer.redirect(instance, moved)
        except StackError as exc:
            raise FaultError(str(exc)) from exc
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
