"""Running experiments: the orchestrator composes the stages, the scheduler owns the fault
timeline, phases are cut from what the scheduler recorded.

    from harness.run import run_experiment
    record, result = run_experiment(experiment)
"""

from harness.run.orchestrator import run_experiment
from harness.run.scheduler import Clock, MonotonicClock, Pacer, Scheduler
from harness.run.signals import signals_as_interrupt

__all__ = ["run_experiment", "signals_as_interrupt", "Scheduler", "Clock", "MonotonicClock", "Pacer"]
