"""Fault injection, one module per family. Every injection returns an `Injection` whose
`revert()` undoes it and confirms by reading the state back; the orchestrator registers it on
the undo stack the moment the fault is in place, so every exit path reverts it."""

from harness.faults.base import FaultContext, Injection, inject

__all__ = ["FaultContext", "Injection", "inject"]
