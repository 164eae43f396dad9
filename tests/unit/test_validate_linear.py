"""Validation time stays linear in the input: each worst-case shape of benchmarks/
validate_worst_case.py, at 1 MiB and at 256 KiB, validated in this process. The check is a ratio
measured side by side (linear is 4x; anything quadratic would be 16x), never an absolute time;
the benchmark prints the absolute figures (every shape well under 2 s on the 2-core machines)."""

from __future__ import annotations

import importlib.util
import statistics
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("validate_worst_case", ROOT / "benchmarks" / "validate_worst_case.py")
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)  # type: ignore[union-attr]

FULL, QUARTER = bench.LIMIT, bench.LIMIT // 4
NAMES = list(bench.shapes(ROOT / "targets" / "echo"))


def _median(kind: str, path: Path) -> tuple[float, str]:
    runs = [bench.validate(kind, path) for _ in range(3)]
    return statistics.median(t for t, _ in runs), runs[0][1]


@pytest.mark.parametrize("name", NAMES)
def test_validation_time_is_linear(tmp_path: Path, name: str) -> None:
    target = ROOT / "targets" / "echo"
    times = {}
    for size in (QUARTER, FULL):
        kind, text = bench.shapes(target, size)[name]
        d = tmp_path / str(size)
        d.mkdir()
        path = bench.write_case(d, name, kind, text, size)
        times[size], outcome = _median(kind, path)
        assert not outcome.startswith("crash"), outcome
    # A noise floor of 20 ms: below it the machine's jitter, not the input, sets the figure.
    ratio = times[FULL] / max(times[QUARTER], 0.02)
    print(f"{name}: {times[QUARTER]:.3f} s at 256 KiB, {times[FULL]:.3f} s at 1 MiB, ratio {ratio:.1f}")
    assert ratio < 10, f"{name}: 4x the input took {ratio:.1f}x the time (quadratic?)"
