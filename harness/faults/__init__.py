"""Fault families, and the registry every consumer reads.

Each module of this package is a family (`container`, `network`, `partition`, `loss`,
`resource`, `dns`): it defines one `FaultSpec` subclass per action, with its fields (units and
limits), its `plan_line()` and its `inject()`. Defining the class registers the action; this
module imports every family (found on disk, so a new module needs no edit here) and offers:

    actions()            action name → spec class
    FaultUnion           the discriminated union the experiment model uses for `faults:`
    build(action, ...)   a spec from YAML-like fields, checked against a target (pytest fixtures)

Helpers that are not families (`base`, `select`, `netns`) are skipped. Nothing here imports
Docker: the loader imports the registry, and validating a file must not start a container.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Annotated, Any, Union

from pydantic import Field, TypeAdapter

from harness.faults.base import _REGISTRY, FaultContext, FaultSpec, Injection

HELPERS = frozenset({"base", "select", "netns"})

for _mod in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    if _mod not in HELPERS and not _mod.startswith("_") and not _mod.endswith("_old"):
        importlib.import_module(f"{__name__}.{_mod}")


def actions() -> dict[str, type[FaultSpec]]:
    """Every registered action, sorted by family then action."""
    return dict(sorted(_REGISTRY.items(), key=lambda kv: (kv[1].family(), kv[0])))


def families() -> dict[str, tuple[str, ...]]:
    out: dict[str, list[str]] = {}
    for action, cls in actions().items():
        out.setdefault(cls.family(), []).append(action)
    return {k: tuple(v) for k, v in out.items()}


FaultUnion = Annotated[Union[tuple(actions().values())], Field(discriminator="action")]  # type: ignore[valid-type]
_ADAPTER: TypeAdapter[Any] = TypeAdapter(FaultUnion)


def build(action: str, fields: dict[str, Any], target: Any = None) -> FaultSpec:
    """A spec from the fields an experiment file would hold (`at` defaults to 0s), validated
    against `target` with the loader's rules: units normalised, names checked. Bad fields are
    an InputError, as in a file."""
    from pydantic import ValidationError

    from harness.model.base import FROM_FILE
    from harness.model.problems import problems_of
    from harness.yamlsafe import YamlDoc

    data = {"name": f"py-{action}".replace(".", "-").replace("_", "-"), "at": "0s", **fields,
            "action": action}
    try:
        return _ADAPTER.validate_python(data, context={"target": target, FROM_FILE: True})
    except ValidationError as exc:
        problems = problems_of(YamlDoc(file=f"<fault {action}>", data=data), exc, set(_REGISTRY))
    raise problems[0]


def inject(ctx: FaultContext, fault: FaultSpec) -> Injection:
    """Apply `fault` (its family's own `inject`)."""
    return fault.inject(ctx)


__all__ = ["FaultContext", "FaultSpec", "Injection", "FaultUnion", "actions", "families", "build", "inject"]
