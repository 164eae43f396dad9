"""Continuum: break a redundant stack under load, measure, and gate on the numbers.

The public surface is small: load an experiment (`harness.loader.load_experiment`), run it
(`harness.run.run_experiment`), read the `Result`. Everything else is implementation.
"""

__version__ = "0.1.0"

# Labels on every Docker object the harness creates. Nothing without RUN_LABEL is ever touched.
RUN_LABEL = "io.continuum.run-id"
SERVICE_LABEL = "io.continuum.service"
INSTANCE_LABEL = "io.continuum.instance"
OWNER_LABEL = "io.continuum.owner"      # "host:pid:start-ticks" of the process that owns the run
TARGET_LABEL = "io.continuum.target"
