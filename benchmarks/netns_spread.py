"""How together a namespace fault lands: the reference's data tier partitioned, first to last.

The same partition rules (redis-1 | redis-2, redis-3, sentinel-1..3: six namespaces, every
address rule the `partition` fault writes) landed and removed, alternating, N rounds, by

  - helper: `harness.faults.netns.RuleSet`, through the run's helper containers (one per
    namespace, already started: the first fault on an instance also pays for its helper's
    start, ~0.3 s, before anything lands), every batch sent before any acknowledgement is read;
    the landing time of each namespace is stamped inside it;
  - nsenter: the previous executor, kept here only as the baseline: the host's
    `nsenter -t PID -n iptables-restore --noflush`, one per namespace, all in parallel threads,
    each landing time taken when its process returned.

Printed: the spread of apply and of revert (first namespace landed → last), the time from the
call to the last landing, and one namespace's apply latency, medians. Goal: spread ≤ 50 ms.

    .venv/bin/python benchmarks/netns_spread.py [--rounds 9]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from harness.faults.netns import RuleSet
from harness.loader import load_target
from harness.stack.engine import connect
from harness.stack.images import ensure_images
from harness.stack.stack import Stack

ROOT = Path(__file__).resolve().parents[1]
SIDE_A = ["redis-1"]
SIDE_B = ["redis-2", "redis-3", "sentinel-1", "sentinel-2", "sentinel-3"]


def partition_rules(stack, comment: str) -> dict[str, list[list[str]]]:
    """The partition fault's address rules (harness.faults.partition), both ways."""
    rules: dict[str, list[list[str]]] = {n: [] for n in SIDE_A + SIDE_B}
    ips = {n: stack.instance(n).ips() for n in SIDE_A + SIDE_B}
    tag = ["-m", "comment", "--comment", comment, "-j", "DROP"]
    for a in SIDE_A:
        for b in SIDE_B:
            for ip in ips[b]:
                rules[a] += [["OUTPUT", "-d", ip, *tag], ["INPUT", "-s", ip, *tag]]
            for ip in ips[a]:
                rules[b] += [["INPUT", "-s", ip, *tag], ["OUTPUT", "-d", ip, *tag]]
    return rules


def helper_round(stack, rules) -> tuple[float, float, float]:
    rs = RuleSet("continuum:bench:helper")
    for name, rs_rules in rules.items():
        for r in rs_rules:
            chain, spec = r[0], r[1:-6]
            rs.add(stack.instance(name), chain, spec)
    t0 = time.monotonic()
    last = rs.apply()
    apply_spread, apply_total = rs.spread_s, last - t0
    time.sleep(0.2)
    rs.remove_all()
    return apply_spread, rs.revert_spread_s, apply_total


def nsenter_round(stack, rules) -> tuple[float, float, float]:
    def text(op: str, rs_rules) -> str:
        lines = [" ".join([op, *[p.replace("continuum:bench:helper", "continuum:bench:nsenter") for p in r]])
                 for r in rs_rules]
        return "\n".join(["*filter", *lines, "COMMIT", ""])

    def run(job: tuple[str, str]) -> float:
        name, body = job
        pid = stack.instance(name).pid()
        subprocess.run(["nsenter", "-t", str(pid), "-n", "iptables-restore", "-w", "5", "--noflush"],
                       input=body, text=True, capture_output=True, check=True, timeout=10)
        return time.monotonic()

    with ThreadPoolExecutor(16) as pool:
        t0 = time.monotonic()
        done = list(pool.map(run, [(n, text("-A", r)) for n, r in rules.items()]))
        apply_spread, apply_total = max(done) - min(done), max(done) - t0
        time.sleep(0.2)
        undone = list(pool.map(run, [(n, text("-D", r)) for n, r in rules.items()]))
    return apply_spread, max(undone) - min(undone), apply_total


def one_namespace(stack, executor: str) -> float:
    inst = stack.instance("redis-2")
    rule = ["INPUT", "-s", "10.255.255.254"]
    t0 = time.monotonic()
    if executor == "helper":
        rs = RuleSet("continuum:bench:one")
        rs.add(inst, *rule[:1], rule[1:])
        landed = rs.apply()
        rs.remove_all()
        return landed - t0
    subprocess.run(["nsenter", "-t", str(inst.pid()), "-n", "iptables-restore", "-w", "5", "--noflush"],
                   input=f"*filter\n-A {' '.join(rule)} -j DROP\nCOMMIT\n", text=True, check=True, timeout=10)
    landed = time.monotonic()
    subprocess.run(["nsenter", "-t", str(inst.pid()), "-n", "iptables-restore", "-w", "5", "--noflush"],
                   input=f"*filter\n-D {' '.join(rule)} -j DROP\nCOMMIT\n", text=True, check=True, timeout=10)
    return landed - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=9)
    args = ap.parse_args()
    client = connect()
    target = load_target(ROOT / "targets" / "reference")
    ensure_images(client, [target])
    out: dict[str, list[tuple[float, float, float]]] = {"helper": [], "nsenter": []}
    one: dict[str, list[float]] = {"helper": [], "nsenter": []}
    with Stack(target, client=client) as stack:
        rules = partition_rules(stack, "continuum:bench:helper")
        t = time.monotonic()
        for name in rules:                   # helpers started once, as the first fault does
            stack.instance(name).netns()
        print(f"{len(rules)} namespaces, {sum(map(len, rules.values()))} rules; "
              f"helpers started in {time.monotonic() - t:.2f} s")
        for r in range(args.rounds):
            for executor, fn in (("helper", helper_round), ("nsenter", nsenter_round))[:: 1 if r % 2 == 0 else -1]:
                out[executor].append(fn(stack, rules))
                one[executor].append(one_namespace(stack, executor))
            h, n = out["helper"][-1], out["nsenter"][-1]
            print(f"round {r + 1}: helper spread {h[0] * 1000:5.1f}/{h[1] * 1000:5.1f} ms (apply/revert), "
                  f"last landed {h[2] * 1000:6.1f} ms | nsenter {n[0] * 1000:5.1f}/{n[1] * 1000:5.1f} ms, "
                  f"{n[2] * 1000:6.1f} ms", flush=True)
    print(f"\nmedians over {args.rounds} rounds   {'apply spread':>13} {'revert spread':>14} "
          f"{'call→last landed':>17} {'one namespace':>14}")
    for executor in ("helper", "nsenter"):
        a, rv, tot = (statistics.median(x[i] for x in out[executor]) * 1000 for i in range(3))
        print(f"{executor:31} {a:10.1f} ms {rv:11.1f} ms {tot:14.1f} ms "
              f"{statistics.median(one[executor]) * 1000:11.1f} ms")
    print("goal: spread ≤ 50 ms")


if __name__ == "__main__":
    main()
