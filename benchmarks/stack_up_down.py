"""How long `continuum up` and `continuum down` take for a target, against the engine's own floor.

Side by side in one run, alternating, N rounds each (medians printed):
  - continuum: `Stack.up()` to every service healthy, and `Stack.down()` to nothing left;
  - baseline: the same number of bare containers (`sleep infinity` on the base image, one
    network, no health checks) created, started, then killed and removed in parallel — the
    least any harness could spend on this engine for this many containers.

The ratio tells how much our networks, interposed Toxiproxy and health waits cost on top of the
engine. Absolute seconds depend on the machine; compare ratios.

    .venv/bin/python benchmarks/stack_up_down.py [TARGET] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from harness.stack.engine import connect
from harness.stack.images import BASE_IMAGE, ensure_images
from harness.stack.stack import Stack
from harness.loader import load_target


def continuum_round(target, client) -> tuple[float, float, int]:
    stack = Stack(target, client=client)
    t = time.monotonic()
    stack.__enter__()
    up = time.monotonic() - t
    n = len(stack._containers)
    t = time.monotonic()
    stack.__exit__(None, None, None)
    return up, time.monotonic() - t, n


def baseline_round(client, n: int) -> tuple[float, float]:
    labels = {"io.continuum.run-id": "benchbase", "io.continuum.owner": "detached"}
    t = time.monotonic()
    net = client.networks.create("continuum-benchbase-net", labels=labels)

    def make(i: int):
        return client.containers.run(
            BASE_IMAGE, ["sleep", "infinity"], name=f"continuum-benchbase-{i}", network=net.name,
            labels=labels, detach=True,
        )

    with ThreadPoolExecutor(8) as pool:
        containers = list(pool.map(make, range(n)))
    up = time.monotonic() - t
    t = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda c: c.remove(force=True), containers))
    net.remove()
    return up, time.monotonic() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("target", nargs="?", default="targets/reference")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    client = connect()
    target = load_target(Path(args.target))
    ensure_images(client, [target])
    ups, downs, bups, bdowns = [], [], [], []
    n = 0
    for r in range(args.rounds):
        up, down, n = continuum_round(target, client)
        bup, bdown = baseline_round(client, n)
        ups.append(up), downs.append(down), bups.append(bup), bdowns.append(bdown)
        print(f"round {r + 1}: continuum up {up:5.2f} s down {down:5.2f} s | bare up {bup:5.2f} s down {bdown:5.2f} s")
    mu, md, bu, bd = (statistics.median(x) for x in (ups, downs, bups, bdowns))
    print(f"\n{target.name}: {n} containers, {args.rounds} rounds, medians")
    print(f"{'':12} {'continuum':>10} {'bare engine':>12} {'ratio':>7}   goal")
    print(f"{'up→healthy':12} {mu:9.2f}s {bu:11.2f}s {mu / bu:7.2f}   ≤ 20 s")
    print(f"{'down':12} {md:9.2f}s {bd:11.2f}s {md / bd:7.2f}   ≤ 3 s")


if __name__ == "__main__":
    main()
