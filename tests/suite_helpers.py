"""The standard suite's experiments shortened for CI, run on one stack per target and module.

A module brings its target up once (`shared_stack`) and runs each test's experiment on it, as
repeated trials do (harness.run.trials): before each run the stack must settle (every instance
healthy, no toxic left, roles resolved and converged, entry points answering:
harness.run.settle), and the durability audit counts only the run's own writes. Bringing the
reference up and down costs ~20 s, once per test before.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from harness.loader import load_experiment, load_target
from harness.run import run_experiment
from harness.run.settle import settle
from harness.stack.stack import Stack

ROOT = Path(__file__).resolve().parent.parent
SETTLE_S = 90.0


def shortened(path: str, *, at_s: float = 8.0, for_s: float | None = 8.0, duration_s: float = 25.0, **changes):
    exp = load_experiment(ROOT / path)
    [fault] = exp.faults
    fault = fault.model_copy(update={"at_s": at_s, "for_s": for_s})
    return exp.model_copy(update={"duration_s": duration_s, "faults": (fault,), "steady_state": (), **changes})


def failed_in(record, start: float, end: float, name: str | None = None) -> int:
    return sum(1 for s in record.samples if not s.ok and start <= s.t < end and (name is None or s.name == name))


def window(record, result):
    """The only fault and its phase's metrics."""
    [fault] = record.faults
    return fault, result.phase(f"fault:{fault.fault}")


@contextmanager
def shared_stack(target: str) -> Iterator[Stack]:
    with Stack(load_target(ROOT / target)) as stack:
        yield stack


def run_on(stack: Stack, exp, **kwargs):
    """`exp` on the module's stack, once it has settled (a stack that does not is the harness's
    problem, said as such, never the system's measured failure). `kwargs` go to run_experiment."""
    assert exp.target.root == stack.target.root, (exp.target.root, stack.target.root)
    s = settle(stack, timeout_s=SETTLE_S)
    assert s.ok, f"the shared {stack.target.name} stack did not settle in {s.seconds:.0f} s: {s.why}"
    return run_experiment(exp, stack=stack, **kwargs)
