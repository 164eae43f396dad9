"""Load generation: Locust in a worker process, per-request samples streamed back.

The orchestrator uses `LoadGenerator` (harness.load.runner); only `harness.load.worker`
imports locust, and only in its own process.
"""

from harness.load.runner import LoadGenerator, LoadSummary

__all__ = ["LoadGenerator", "LoadSummary"]
