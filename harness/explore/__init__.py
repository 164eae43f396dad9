"""`continuum explore`: search a target's fault space and shrink what breaks to minimal experiments.

    candidates.py   the candidates, generated from the topology (seeded), and their experiments
    coverage.py     one finding per component and invariant: what a candidate can break, what is found
    shrink.py       smaller variants of a failing candidate; the greedy shrink
    runner.py       one candidate run on a reused (settled) or fresh stack, and its Outcome
    findings.py     findings as experiment files; the summary (console and JSON)
    explorer.py     the search loop: budget, order, shrink, confirm, write

Documented in docs/explore.md.
"""

from harness.explore.candidates import Candidate, Draft, Params, generate, to_experiment
from harness.explore.explorer import explore
from harness.explore.findings import Finding, Summary
from harness.explore.runner import Outcome, StackRunner, classify
from harness.explore.shrink import shrink, variants

__all__ = ["Candidate", "Draft", "Params", "generate", "to_experiment", "explore", "Finding", "Summary",
           "Outcome", "StackRunner", "classify", "shrink", "variants"]
