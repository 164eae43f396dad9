"""How long `continuum up` and `continuum down` take for a target, against the engine's own floor,
and optionally against another version of the harness.

Side by side in one run, alternating, N rounds each (medians printed):
  - continuum: `Stack.up()` to every service healthy, and `Stack.down()` to nothing left;
  - before (with `--before DIR`): the same, with the harness found in DIR (for example an
    export of the commit before a change: `git archive COMMIT | tar -x -C DIR`), run in a
    subprocess so both versions use the same engine at the same moments;
  - baseline ("bare"): the same number of bare containers (`sleep infinity` on the base image,
    one network, no health checks) created, started, then killed and removed in parallel — the
    least any harness could spend on this engine for this many containers;
  - baseline of the same shape ("shaped"): as many bare containers as the run had, each on as
    many networks as its counterpart (the run's networks, as many of them; the namespace helpers,
    which remove themselves, left out), then all killed and removed at once and the networks after them — what the engine
    alone needs to tear down this topology (endpoints cost dockerd ~70 ms each).

The ratio tells how much our networks, interposed Toxiproxy and health waits cost on top of the
engine. Absolute seconds depend on the machine; compare ratios.

    .venv/bin/python benchmarks/stack_up_down.py [TARGET] [--rounds 3] [--before DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def continuum_round(target, client, shape_out: list | None = None) -> tuple[float, float, int, int]:
    from harness.stack.stack import Stack

    stack = Stack(target, client=client)
    t = time.monotonic()
    stack.__enter__()
    up = time.monotonic() - t
    # A run's first seconds of load let the namespace helpers start in the background; wait for
    # them here too (counted in neither figure), so `down` is timed as a run's would be.
    netexec = getattr(stack, "netexec", None)
    if netexec is not None and hasattr(netexec, "wait_warm"):
        netexec.wait_warm()
    f = {"label": f"io.continuum.run-id={stack.run_id}"}
    n, nets = len(client.api.containers(all=True, filters=f)), len(client.api.networks(filters=f))
    if shape_out is not None:       # networks per container, for the shaped baseline; the
        # namespace helpers (in another container's namespace) are left out: they exit and
        # remove themselves when down closes their stdin
        shape_out[:] = [len(client.api.inspect_container(c["Id"])["NetworkSettings"]["Networks"] or {})
                        for c in client.api.containers(all=True, filters=f)
                        if c["HostConfig"].get("NetworkMode", "").split(":")[0] != "container"]
    t = time.monotonic()
    stack.__exit__(None, None, None)
    return up, time.monotonic() - t, n, nets


def before_round(before: Path, target: Path) -> tuple[float, float, int, int]:
    env = {**os.environ, "PYTHONPATH": str(before)}
    out = subprocess.run([sys.executable, str(Path(__file__).resolve()), str(target), "--one-round"],
                         cwd=before, env=env, capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise SystemExit(f"the --before round failed: {out.stderr[-2000:]}")
    d = json.loads(out.stdout.strip().splitlines()[-1])
    return d["up"], d["down"], d["containers"], d["networks"]


def baseline_round(client, n: int) -> tuple[float, float]:
    from harness.stack.images import BASE_IMAGE

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


def shaped_round(client, shape: list[int], networks: int) -> tuple[float, float]:
    """Bare containers in the run's shape: `networks` networks, container i on shape[i] of them."""
    from harness.stack.images import BASE_IMAGE
    from harness.stack.stack import _remove_retrying

    labels = {"io.continuum.run-id": "benchshape", "io.continuum.owner": "detached"}
    t = time.monotonic()
    stamp = int(time.time() * 1000) % 10**8       # a fresh name: a stuck network of an earlier round stays apart
    nets = [client.networks.create(f"continuum-benchshape-{stamp}-{k}", labels=labels, check_duplicate=True)
            for k in range(max(networks, max(shape)))]

    def make(i: int):
        k = shape[i]
        c = client.containers.create(BASE_IMAGE, ["sleep", "infinity"], name=f"continuum-benchshape-{stamp}-c{i}",
                                     network=nets[0].name if k else "none", labels=labels)
        for net in nets[1:k]:
            net.connect(c)
        c.start()
        return c

    with ThreadPoolExecutor(8) as pool:
        containers = list(pool.map(make, range(len(shape))))
    up = time.monotonic() - t
    t = time.monotonic()
    with ThreadPoolExecutor(len(containers)) as pool:
        list(pool.map(lambda c: c.remove(force=True, v=True), containers))
        # Retried as the harness does: dockerd 20.10 can report a removed container's endpoint
        # a moment longer.
        list(pool.map(lambda n: _remove_retrying(n.remove), nets))
    return up, time.monotonic() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("target", nargs="?", default="targets/reference")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--before", type=Path, help="a tree with another version of the harness")
    ap.add_argument("--one-round", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    from harness.loader import load_target
    from harness.stack.engine import connect
    from harness.stack.images import ensure_images

    client = connect()
    target_dir = (ROOT / args.target) if not Path(args.target).is_absolute() else Path(args.target)
    target = load_target(target_dir)
    if args.one_round:
        up, down, n, nets = continuum_round(target, client)
        print(json.dumps({"up": up, "down": down, "containers": n, "networks": nets}))
        return
    ensure_images(client, [target])
    rows: dict[str, list[tuple[float, float]]] = {"continuum": [], "before": [], "bare": [], "shaped": []}
    topology: list[int] = []
    shape: dict[str, tuple[int, int]] = {}
    for r in range(args.rounds):
        line = [f"round {r + 1}:"]
        if args.before:
            up, down, n, nets = before_round(args.before.resolve(), target_dir)
            rows["before"].append((up, down))
            shape["before"] = (n, nets)
            line.append(f"before up {up:5.2f} s down {down:5.2f} s |")
        up, down, n, nets = continuum_round(target, client, topology)
        rows["continuum"].append((up, down))
        shape["continuum"] = (n, nets)
        line.append(f"continuum up {up:5.2f} s down {down:5.2f} s |")
        bup, bdown = baseline_round(client, n)
        rows["bare"].append((bup, bdown))
        line.append(f"bare up {bup:5.2f} s down {bdown:5.2f} s |")
        sup, sdown = shaped_round(client, topology, nets)
        rows["shaped"].append((sup, sdown))
        line.append(f"shaped up {sup:5.2f} s down {sdown:5.2f} s")
        print(" ".join(line), flush=True)
    med = {k: (statistics.median(u for u, _ in v), statistics.median(d for _, d in v)) for k, v in rows.items() if v}
    print(f"\n{target.name}: {args.rounds} rounds, medians; objects (containers, networks): "
          + ", ".join(f"{k} {v}" for k, v in shape.items())
          + f"; shaped: {len(topology)} containers, {sum(topology)} endpoints, {shape['continuum'][1]} networks")
    cols = [k for k in ("before", "continuum") if k in med]
    print(f"{'':12} " + " ".join(f"{c:>10}" for c in cols) + f" {'bare engine':>12} {'same shape':>11} " +
          " ".join(f"{c + '/bare':>15} {c + '/shaped':>17}" for c in cols) + "   goal")
    for i, (label, goal) in enumerate((("up→healthy", "≤ 20 s"), ("down", "≤ 3 s"))):
        bare, shaped = med["bare"][i], med["shaped"][i]
        print(f"{label:12} " + " ".join(f"{med[c][i]:9.2f}s" for c in cols) + f" {bare:11.2f}s {shaped:10.2f}s " +
              " ".join(f"{med[c][i] / bare:15.2f} {med[c][i] / shaped:17.2f}" for c in cols) + f"   {goal}")


if __name__ == "__main__":
    main()
