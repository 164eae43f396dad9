"""What the reference target's monitoring adds to every run: `up`, the monitor's readiness wait,
and `down`, side by side with the same target without its monitoring (issue 18).

Alternating rounds, medians printed (also the CPU every container of the stack uses over 10 s
with no load: the scrapes and rule evaluations are the monitoring's running cost):
  - with: targets/reference as it is: Stack.up() to every service healthy, then the monitor
    stage's wait (Prometheus and Alertmanager ready, every scrape target up, no alert left from
    start-up), then Stack.down();
  - without: a copy of targets/reference whose compose.yaml lacks prometheus, alertmanager,
    redis-exporter, their network and x-continuum.monitoring (same images, so no build).

The machine is shared and noisy: compare the two columns of the same run, as a difference and a
ratio, not the seconds across runs.

    .venv/bin/python benchmarks/monitoring_cost.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.loader import load_target  # noqa: E402
from harness.monitor import Monitor  # noqa: E402
from harness.stack.engine import connect  # noqa: E402
from harness.stack.images import ensure_images  # noqa: E402
from harness.stack.stack import Stack  # noqa: E402

MONITORING = ("prometheus", "alertmanager", "redis-exporter")


def unmonitored_copy(tmp: Path) -> Path:
    dst = tmp / "reference"
    shutil.copytree(ROOT / "targets/reference", dst)
    doc = yaml.safe_load((dst / "compose.yaml").read_text())
    for name in MONITORING:
        doc["services"].pop(name)
    doc["networks"].pop("monitor")
    doc["x-continuum"].pop("monitoring")
    doc = {k: v for k, v in doc.items() if k != "x-redis"}
    (dst / "compose.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return dst


IDLE_S = 10.0


def cpu_ns(containers) -> dict[str, int]:
    """Total CPU time (ns) each container has used so far (Docker's stats, one snapshot)."""
    with ThreadPoolExecutor(8) as pool:
        stats = dict(pool.map(lambda kv: (kv[0], kv[1].stats(stream=False)), containers.items()))
    return {name: int(st["cpu_stats"]["cpu_usage"]["total_usage"]) for name, st in stats.items()}


def idle_cpu(stack) -> tuple[float, float]:
    """(cores used by the whole stack, by its monitoring services) over IDLE_S with no load."""
    containers = dict(stack._containers)
    a = cpu_ns(containers)
    time.sleep(IDLE_S)
    b = cpu_ns(containers)
    used = {n: (b[n] - a[n]) / 1e9 / IDLE_S for n in a}
    return sum(used.values()), sum(v for n, v in used.items() if n in MONITORING)


def one_round(target, client, monitored: bool) -> tuple[float, float, float, float, float]:
    stack = Stack(target, client=client)
    t = time.monotonic()
    stack.__enter__()
    up = time.monotonic() - t
    wait = 0.0
    try:
        if monitored:
            mon = target.monitoring
            t = time.monotonic()
            with Monitor((), stack.published_url(mon.prometheus.service, mon.prometheus.port),
                         stack.published_url(mon.alertmanager.service, mon.alertmanager.port)):
                wait = time.monotonic() - t
        cpu, cpu_mon = idle_cpu(stack)
    finally:
        t = time.monotonic()
        stack.__exit__(None, None, None)
    return up, wait, time.monotonic() - t, cpu, cpu_mon


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    client = connect()
    with tempfile.TemporaryDirectory() as tmp:
        with_mon = load_target(ROOT / "targets/reference")
        without = load_target(unmonitored_copy(Path(tmp)))
        ensure_images(client, [with_mon, without])
        rows: dict[str, list[tuple[float, ...]]] = {"with": [], "without": []}
        for r in range(args.rounds):
            order = [("with", with_mon), ("without", without)]
            if r % 2:
                order.reverse()                     # neither always goes first
            for name, target in order:
                row = one_round(target, client, name == "with")
                rows[name].append(row)
                up, wait, down, cpu, cpu_mon = row
                print(f"round {r + 1} {name:8}: up {up:5.2f} s, monitor ready {wait:4.2f} s, down {down:5.2f} s, "
                      f"idle CPU {cpu:.3f} cores (monitoring {cpu_mon:.3f}) (load {os.getloadavg()[0]:.1f})",
                      flush=True)
    med = {k: [statistics.median(x[i] for x in v) for i in range(5)] for k, v in rows.items()}
    (wu, ww, wd, wc, wm), (ou, _, od, oc, _) = med["with"], med["without"]
    print(f"\nmedians over {args.rounds} rounds    with monitoring   without   added")
    print(f"up → healthy                 {wu:8.2f} s    {ou:6.2f} s   {wu - ou:+.2f} s ({wu / ou:.2f}x)")
    print(f"monitor ready (quiet)        {ww:8.2f} s    {'-':>6}     {ww:+.2f} s")
    print(f"down                         {wd:8.2f} s    {od:6.2f} s   {wd - od:+.2f} s ({wd / od:.2f}x)")
    print(f"per run, in total                                    {wu + ww + wd - ou - od:+.2f} s")
    print(f"idle CPU, whole stack        {wc:8.3f}      {oc:6.3f}     {wc - oc:+.3f} cores "
          f"(the monitoring services themselves: {wm:.3f})")


if __name__ == "__main__":
    main()
