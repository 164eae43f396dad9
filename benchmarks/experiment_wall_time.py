"""Wall time of an experiment divided by its planned duration, excluding stack up and down.

Measured from the moment load starts (event run_start) to the verdict (event run_end): that
includes injecting and reverting faults, stopping the load worker, the durability audit and
computing the metrics — everything the harness adds to the experiment's own clock. Goal ≤ 1.15.

    .venv/bin/python benchmarks/experiment_wall_time.py [EXPERIMENT.yaml ...]
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

from harness.events import Events, RunEnded, RunStarted
from harness.loader import load_experiment
from harness.run import run_experiment

DEFAULT = ["experiments/app-replica-kill.yaml"]


def measure(path: str) -> tuple[float, float, str, float]:
    exp = load_experiment(Path(path))
    events = Events()
    marks: dict[str, float] = {}
    events.subscribe(lambda e: marks.setdefault("start", time.monotonic()), RunStarted)
    events.subscribe(lambda e: marks.setdefault("end", time.monotonic()), RunEnded)
    t = time.monotonic()
    _, result = run_experiment(exp, events=events)
    total = time.monotonic() - t
    wall = marks["end"] - marks["start"]
    return exp.duration_s, wall, result.verdict.value, total


def main(paths: list[str]) -> None:
    ratios = []
    print(f"{'experiment':40} {'planned':>8} {'wall':>8} {'ratio':>6} {'with up/down':>13}  verdict")
    for path in paths:
        planned, wall, verdict, total = measure(path)
        ratios.append(wall / planned)
        print(f"{Path(path).stem:40} {planned:7.1f}s {wall:7.2f}s {wall / planned:6.3f} {total:12.1f}s  {verdict}")
    print(f"median ratio {statistics.median(ratios):.3f} (goal ≤ 1.15)")


if __name__ == "__main__":
    main(sys.argv[1:] or DEFAULT)
