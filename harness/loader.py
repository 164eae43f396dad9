"""Files → frozen models, strictly, with ``file:line:column`` errors.

    experiment = load_experiment("experiments/app-replica-kill.yaml")   # its target inside
    target = load_target("targets/reference")

Two steps per file: `harness.yamlsafe` parses it (bounded, no Python objects, every position
recorded), then the models in `harness.model` validate it: shape, units, limits, and every
cross-check against the target. Pydantic reports each problem with a location path; this
module maps the path back onto the YAML marks, so every problem names its file, line, column
and field, and all of a file's problems are listed, not only the first. Nothing here imports
Docker: validating a file cannot start a container.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from harness.errors import InputError
from harness.faults import actions
from harness.model.base import FROM_FILE, At
from harness.model.experiment import Experiment
from harness.model.target import COMPOSE_FILES, ComposeFile, Target
from harness.model.problems import problems_of
from harness.yamlsafe import YamlDoc, load_yaml, path_problem

EXPERIMENT_SUFFIXES = (".yaml", ".yml")

__all__ = ["load_experiment", "load_experiments", "load_target", "find_compose",
           "experiment_files", "problems_of"]


# ─────────────────────────────────────── targets ───────────────────────────────────────


def find_compose(path: Path | str) -> Path:
    """The compose file of a target given as a directory or as the file itself."""
    p = Path(path)
    if p.is_dir():
        for name in COMPOSE_FILES:
            if (p / name).is_file():
                return p / name
        raise InputError(f"no {COMPOSE_FILES[0]} in target directory", where=f"{p}:1:1")
    if not p.exists():
        problem = path_problem(p)
        raise InputError("target does not exist" if problem.startswith("no such") else problem,
                         where=f"{p}:1:1")
    return p


def load_target(path: Path | str) -> Target:
    """Parse a target directory (or its compose file) into a frozen `Target`."""
    compose_path = find_compose(Path(path))
    doc = load_yaml(compose_path)
    if not isinstance(doc.data, dict):
        raise doc.error("a target file must be a mapping with a 'services' key")
    compose = _validate(doc, ComposeFile, {})
    try:
        return compose.to_target(compose_path.parent.resolve())
    except At as exc:
        raise doc.error(exc.message, exc.path, key=exc.key) from None


# ─────────────────────────────────────── experiments ───────────────────────────────────────


def load_experiment(path: Path | str, *, target: Path | str | None = None,
                    _targets: dict[Path, Target] | None = None) -> Experiment:
    """Load and validate one experiment against its target (loaded and checked too).

    `target` replaces the file's own target (pre-release verification: the same suite against
    a candidate or a twin); the experiment is then checked against that target instead."""
    doc = load_yaml(path)
    if not isinstance(doc.data, dict):
        raise doc.error("an experiment file must be a mapping (apiVersion, kind, name, ...); "
                        f"got {'an empty file' if doc.data is None else type(doc.data).__name__}")
    target_dir = Path(target).resolve() if target is not None else _target_dir(doc, Path(path))
    loaded: Target | None = None
    if target_dir is not None:
        cache = _targets if _targets is not None else {}
        loaded = cache.get(target_dir)
        if loaded is None:
            loaded = cache[target_dir] = load_target(target_dir)
    exp = _validate(doc, Experiment, {"target": loaded})
    # Read again for the reports' "as written" view; load_yaml has already bounded the size.
    try:
        text: str | None = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError):
        text = None
    return exp.model_copy(update={"source": Path(path).resolve(), "source_text": text})


def experiment_files(paths: Iterable[Path | str]) -> list[Path]:
    """Files as given; a directory is the suite of *.yaml / *.yml files directly in it (sorted,
    no dotfiles). Subfolders are suites of their own (experiments/calibration,
    experiments/fragile) and are run by naming them, so `continuum run experiments/` is the
    standard suite and nothing else."""
    out: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found = sorted(
                f for f in p.glob("*")
                if f.suffix in EXPERIMENT_SUFFIXES and f.is_file() and not f.name.startswith("."))
            if not found:
                raise InputError("directory holds no *.yaml or *.yml experiment files",
                                 where=f"{p}:1:1")
            out.extend(found)
        elif p.exists():
            out.append(p)
        else:
            raise InputError(path_problem(p), where=f"{p}:1:1")
    return out


def load_experiments(paths: Iterable[Path | str], *, target: Path | str | None = None) -> list[Experiment]:
    """Load a suite: files and directories (not recursive). Experiment names must be unique."""
    targets: dict[Path, Target] = {}
    seen: dict[str, Path] = {}
    out: list[Experiment] = []
    for f in experiment_files(paths):
        if f.resolve() in {e.source for e in out}:
            continue                                    # the same file named twice
        exp = load_experiment(f, target=target, _targets=targets)
        if exp.name in seen:
            raise load_yaml(f).error(f"experiment name {exp.name!r} is also used by "
                                     f"{seen[exp.name]}; names must be unique in a suite", ("name",))
        seen[exp.name] = f
        out.append(exp)
    return out


def _target_dir(doc: YamlDoc, path: Path) -> Path | None:
    rel = doc.data.get("target")
    if not isinstance(rel, str) or not rel:
        return None                                     # the model reports it
    if "\x00" in rel or len(rel) > 4096:
        raise doc.error("target is not a usable path (NUL byte, or longer than 4096)", ("target",))
    try:
        target = (path.parent / rel).resolve()
        is_dir = target.is_dir()
    except (OSError, RuntimeError) as exc:              # a symlink loop, a name too long
        raise doc.error(f"target {rel!r} cannot be resolved: {exc}", ("target",)) from None
    if not is_dir:
        raise doc.error(f"target {rel!r} is not a directory (resolved to {target})", ("target",))
    if not any((target / n).is_file() for n in COMPOSE_FILES):
        raise doc.error(f"target {rel!r} has no {COMPOSE_FILES[0]} (looked in {target})",
                        ("target",))
    return target


# ─────────────────────────────────────── errors ───────────────────────────────────────


def _validate(doc: YamlDoc, model: type, context: dict[str, Any]) -> Any:
    try:
        return model.model_validate(doc.data, context={**context, FROM_FILE: True})
    except ValidationError as exc:
        problems = problems_of(doc, exc, set(actions()))
    first = problems[0]
    if len(problems) > 1:
        rest = "\n".join(f"  {p}" for p in problems[1:])
        first.args = (f"{first.args[0]}\n  [{len(problems) - 1} more problem"
                      f"{'s' if len(problems) > 2 else ''}]\n{rest}",)
        first.problems = problems  # type: ignore[attr-defined]
    raise first
