"""The JSON Schemas (Draft 2020-12) of experiment files and targets, generated from the models.

`continuum schema` prints the experiment's; editors use it for completion. There is no other
copy of the shape: the schema, the validation and the docs tables all come from
`harness.model`.
"""

from __future__ import annotations

from typing import Any

from harness.model.experiment import Experiment
from harness.model.target import ComposeFile

DIALECT = "https://json-schema.org/draft/2020-12/schema"


def experiment_schema() -> dict[str, Any]:
    """The JSON Schema of experiment files (a fresh copy)."""
    schema = Experiment.model_json_schema(by_alias=True, mode="validation")
    return {"$schema": DIALECT, "$id": "https://continuum.invalid/schemas/experiment-v1.json",
            **schema, "title": "Continuum experiment"}


def target_schema() -> dict[str, Any]:
    """The JSON Schema of a target's compose.yaml (the Compose subset and x-continuum)."""
    schema = ComposeFile.model_json_schema(by_alias=True, mode="validation")
    schema["patternProperties"] = {"^x-(?!continuum$)": {}}     # extensions, ignored as Compose does
    return {"$schema": DIALECT, **schema, "title": "Continuum target (Compose subset)"}


__all__ = ["experiment_schema", "target_schema", "DIALECT"]
