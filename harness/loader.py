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
from harness.model.interpolation import interpolate, read_dotenv
from harness.model.target import (
    COMPOSE_FILES,
    OVERLAY_FILE,
    ComposeFile,
    Overlay,
    Target,
    TargetProblems,
    XContinuum,
)
from harness.model.problems import problems_of
from harness.yamlsafe import YamlDoc, load_yaml, path_problem

EXPERIMENT_SUFFIXES = (".yaml", ".yml")

__all__ = ["load_experiment", "load_experiments", "load_target", "find_compose",
           "experiment_files", "problems_of"]


# ─────────────────────────────────────── targets ───────────────────────────────────────


def find_compose(path: Path | str) -> Path:
    """The file a target is read from, given its directory or the file itself: `continuum.yaml`
    when the directory has one (its x-continuum block for a Compose file kept unchanged), else
    the Compose file, by Compose's own names in Compose's order."""
    p = Path(path)
    if p.is_dir():
        if (p / OVERLAY_FILE).is_file():
            return p / OVERLAY_FILE
        for name in COMPOSE_FILES:
            if (p / name).is_file():
                return p / name
        raise InputError(f"no {' / '.join(COMPOSE_FILES)} or {OVERLAY_FILE} in target directory",
                         where=f"{p}:1:1")
    if not p.exists():
        problem = path_problem(p)
        raise InputError("target does not exist" if problem.startswith("no such") else problem,
                         where=f"{p}:1:1")
    return p


def load_target(path: Path | str) -> Target:
    """Parse a target directory (or its file) into a frozen `Target`, with its warnings."""
    first = find_compose(Path(path))
    overlay_doc = overlay = None
    if first.name == OVERLAY_FILE:
        overlay_doc = load_yaml(first)
        if not isinstance(overlay_doc.data, dict):
            raise overlay_doc.error(f"{OVERLAY_FILE} must be a mapping with a 'compose' key")
        overlay = _validate(overlay_doc, Overlay, {})
        compose_path = _overlay_compose(overlay_doc, overlay, first)
    else:
        compose_path = first
    root = compose_path.parent.resolve()
    doc, notes = _interpolated(load_yaml(compose_path), root)
    if not isinstance(doc.data, dict):
        raise doc.error("a target file must be a mapping with a 'services' key")
    warnings = [f"{doc.where(path)}: {message}" for path, message, _ in notes]
    others = [n for n in COMPOSE_FILES if (root / n).is_file() and n != compose_path.name]
    if others and overlay is None:
        warnings.append(f"{doc.where()}: {compose_path.name} is read; {', '.join(others)} beside "
                        "it is not (Compose picks the same one)")
    errors = [doc.error(m, p) for p, m, bad in notes if bad]
    compose, shape = _compose_model(doc)
    if compose is None:
        raise _combined(_in_order(errors + shape))
    if errors and not shape:
        raise _combined(errors)
    xroot = first.parent.resolve()
    if overlay is not None:
        if "x_continuum" in compose.model_fields_set:
            raise doc.error(f"x-continuum is given here and in {first}; keep one",
                            ("x-continuum",), key=True)
        xc = XContinuum.model_construct(
            _fields_set={f for f in overlay.model_fields_set if f in XContinuum.model_fields},
            **{f: getattr(overlay, f) for f in XContinuum.model_fields})
        update: dict[str, Any] = {"x_continuum": xc}
        if overlay.name is not None:
            update["name"] = overlay.name
        compose = compose.model_copy(update=update)

    def where(path: tuple, key: bool) -> tuple[YamlDoc, tuple]:
        if overlay_doc is not None and path[:1] == ("x-continuum",):
            return overlay_doc, path[1:]
        return doc, path

    try:
        target, issues = compose.check(root, xroot)
    except TargetProblems as exc:
        found = []
        for a in exc.problems:
            d, p = where(a.path, a.key)
            if not any(_under(a.path, getattr(s, "path", None) or ()) for s in shape):
                found.append(d.error(a.message, p, key=a.key))
        raise _combined(_in_order(errors + shape + found)) from None
    if errors or shape:
        raise _combined(_in_order(errors + shape))
    for path_, message, key in issues:
        d, p = where(path_, key)
        warnings.append(f"{d.where(p, key=key)}: {message}")
    return target.model_copy(update={"warnings": tuple(sorted(dict.fromkeys(warnings),
                                                              key=_position))})


def _compose_model(doc: YamlDoc) -> tuple[ComposeFile | None, list[InputError]]:
    """The Compose model, and the shape problems of the file. So that one `validate` lists the
    cross-checks' problems too (a bind outside the target, an unknown dependency) and not only
    the shape's, each value with a shape problem is left out and the rest validated again;
    with a required field missing, nothing is built (every cross-check would then lie)."""
    problems: list[InputError] = []
    pruned: list[tuple] = []
    data = doc.data
    for _ in range(4):
        try:
            model = ComposeFile.model_validate(data, context={FROM_FILE: True})
            return model, problems
        except ValidationError as exc:
            found = problems_of(YamlDoc(doc.file, data, doc.marks, doc.key_marks), exc,
                                set(actions()))
        # A field now missing because its bad value was left out is not a new problem.
        found = [p for p in found if getattr(p, "missing", None) not in pruned]
        seen = {str(p) for p in problems}
        problems.extend(p for p in found if str(p) not in seen)
        paths = [getattr(p, "path", None) for p in found]
        if not found or any(p is None or len(p) < 3 for p in paths):
            break                   # a missing field, a whole service or section: stop here
        pruned.extend(paths)        # type: ignore[arg-type]
        data = _without(data, paths)
    return None, problems


def _without(data: Any, paths: list[tuple]) -> Any:
    """`data` with the value at each path removed (a list item, or a mapping's key)."""
    import copy

    out = copy.deepcopy(data)
    for path in sorted(paths, key=lambda p: [str(x) for x in p], reverse=True):
        node = out
        for part in path[:-1]:
            try:
                node = node[part]
            except (KeyError, IndexError, TypeError):
                node = None
                break
        if isinstance(node, dict):
            node.pop(path[-1], None)
        elif isinstance(node, list) and isinstance(path[-1], int) and path[-1] < len(node):
            del node[path[-1]]
    return out


def _under(path: tuple, prefix: tuple) -> bool:
    return bool(prefix) and tuple(path[:len(prefix)]) == tuple(prefix)


def _overlay_compose(doc: YamlDoc, overlay: Overlay, path: Path) -> Path:
    rel = overlay.compose
    try:
        p = (path.parent / rel).resolve()
        if p.is_dir():
            found = next((p / n for n in COMPOSE_FILES if (p / n).is_file()), None)
            if found is None:
                raise doc.error(f"{rel!r} is a directory with no {' / '.join(COMPOSE_FILES)}",
                                ("compose",))
            return found
        if not p.is_file():
            raise doc.error(f"compose file {rel!r} does not exist (resolved to {p})", ("compose",))
    except OSError as exc:
        raise doc.error(f"compose file {rel!r} cannot be read: {exc}", ("compose",)) from None
    return p


def _interpolated(doc: YamlDoc, root: Path) -> tuple[YamlDoc, list[tuple[tuple, str, bool]]]:
    """Compose's `${VAR}` interpolation, from the target's `.env` (never the shell)."""
    env: dict[str, str] = {}
    dotenv = root / ".env"
    if dotenv.is_file():
        try:
            env = read_dotenv(dotenv.read_text(encoding="utf-8")[:256 * 1024])
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"cannot read .env: {exc}", where=f"{dotenv}:1:1") from None
    data, issues = interpolate(doc.data, env)
    return YamlDoc(file=doc.file, data=data, marks=doc.marks, key_marks=doc.key_marks), issues


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
    if not any((target / n).is_file() for n in (OVERLAY_FILE, *COMPOSE_FILES)):
        raise doc.error(f"target {rel!r} has no {' / '.join(COMPOSE_FILES)} or {OVERLAY_FILE} "
                        f"(looked in {target})", ("target",))
    return target


# ─────────────────────────────────────── errors ───────────────────────────────────────


def _validate(doc: YamlDoc, model: type, context: dict[str, Any]) -> Any:
    try:
        return model.model_validate(doc.data, context={**context, FROM_FILE: True})
    except ValidationError as exc:
        problems = problems_of(doc, exc, set(actions()))
    raise _combined(problems)


def _position(where: str) -> tuple[str, int, int]:
    """"file:line:column[: ...]" → (file, line, column), for sorting messages."""
    head = where.split(": ", 1)[0]
    parts = head.rsplit(":", 2)
    try:
        return parts[0], int(parts[1]), int(parts[2])
    except (ValueError, IndexError):
        return head, 0, 0


def _in_order(problems: list[InputError]) -> list[InputError]:
    """By file, then line and column (`where` is file:line:column)."""
    return sorted(dict.fromkeys(problems), key=lambda p: _position(p.where or ""))


def _combined(problems: list[InputError]) -> InputError:
    """One InputError listing every problem (the first is its headline); `.problems` keeps
    each as it is."""
    import copy

    flat: list[InputError] = []
    for p in problems:                  # an already combined error stands for its problems
        flat.extend(getattr(p, "problems", None) or [p])
    problems = flat
    for p in problems:
        if not hasattr(p, "headline"):
            p.headline = p.args[0]  # type: ignore[attr-defined]
    first = copy.copy(problems[0])
    if len(problems) > 1:
        rest = "\n".join(f"  {p.headline}" for p in problems[1:])  # type: ignore[attr-defined]
        first.args = (f"{first.headline}\n  [{len(problems) - 1} more problem"  # type: ignore[attr-defined]
                      f"{'s' if len(problems) > 2 else ''}]\n{rest}",)
    first.problems = problems  # type: ignore[attr-defined]
    return first
