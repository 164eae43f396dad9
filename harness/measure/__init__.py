"""From samples to verdicts. Knows nothing about Docker or Locust.

`evaluate(record)` is the entry point; `Result` and `Verdict` are what it returns.
"""

from harness.measure.result import (
    AssertionOutcome,
    Result,
    Verdict,
    exit_code,
    suite_exit_code,
    worst_verdict,
)
from harness.measure.verdict import evaluate

__all__ = ["evaluate", "Result", "Verdict", "AssertionOutcome", "exit_code", "suite_exit_code", "worst_verdict"]
