"""Pydantic's validation errors → InputErrors at their file:line:column, in file order.

Each error's location path is walked through the parsed YAML data: parts that are not in the
data (discriminator tags, validator markers) are dropped, an `At` raised by a validator extends
the path below it, and the messages are rewritten in the project's words ("expected integer,
got a string '5'", "missing required field 'for'").
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from harness.errors import InputError
from harness.model.base import At
from harness.model.units import got, short
from harness.yamlsafe import YamlDoc, field_name


def problems_of(doc: YamlDoc, exc: ValidationError, tags: set[str] = frozenset()) -> list[InputError]:
    """Every problem Pydantic found, as InputErrors at their file:line:column, in file order."""
    out: dict[tuple[str, str], tuple[tuple[int, int], InputError]] = {}
    for e in exc.errors(include_url=False):
        path, key = _data_path(doc.data, e["loc"], tags)
        message = _message(e, path)
        err = e.get("ctx", {}).get("error") if e.get("ctx") else None
        if isinstance(err, At):
            path, key = path + err.path, err.key
            message = err.message
        if e["type"] == "union_tag_invalid":
            path = path + ("action",)
        if e["type"] == "missing":
            missing = path[-1] if path else "?"
            parent = path[:-1]
            problem = InputError(f"missing required field {missing!r}", where=doc.where(parent),
                                 field=field_name(path))
            mark = doc.mark(parent)
        else:
            problem = doc.error(message, path, key=key)
            mark = doc.mark(path, key=key)
        # Where it is in the data (None for a missing field; `missing` says which one).
        problem.path = path if e["type"] != "missing" else None  # type: ignore[attr-defined]
        problem.missing = path if e["type"] == "missing" else None  # type: ignore[attr-defined]
        out.setdefault((problem.where or "", str(problem)), (mark, problem))
    return [p for _, p in sorted(out.values(), key=lambda mp: mp[0])]


def _data_path(data: Any, loc: tuple, tags: set[str]) -> tuple[tuple, bool]:
    """Pydantic's location → the path into the YAML data. Parts that are not in the data
    (discriminator tags, validator markers) are dropped; a trailing '[key]' marks a key."""
    path: list[Any] = []
    node = data
    key = False
    for part in loc:
        if part == "[key]":
            key = True
            break
        if isinstance(node, dict) and isinstance(part, str) and part in node:
            path.append(part)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            path.append(part)
            node = node[part]
        elif isinstance(part, str) and (part in tags or "[" in part or not isinstance(node, (dict, list))):
            continue                                    # a tag or marker, not in the data
        else:
            path.append(part)                           # a missing key: point at its parent
            node = None
    return tuple(path), key


def _message(e: dict[str, Any], path: tuple) -> str:
    t = e["type"]
    value = e.get("input")
    ctx = e.get("ctx") or {}
    if e["loc"] and e["loc"][-1] == "[key]":
        why = e["msg"].removeprefix("Value error, ")
        if "error" in ctx:
            why = str(ctx["error"])
        why = why.split(", got ")[0]
        return f"{value!r} is not an accepted key here; {why}"
    if t in ("value_error", "assertion_error"):
        return str(ctx.get("error", e["msg"])).removeprefix("Value error, ")
    if t == "union_tag_invalid":
        expected = ctx.get("expected_tags", "").replace("'", "")
        return f"{short(ctx.get('tag'))} is not one of: {expected}"
    if t == "union_tag_not_found":
        return f"missing required field {ctx.get('discriminator', 'action').strip(chr(39))!r}"
    if t == "literal_error":
        return f"expected {ctx.get('expected')}, {got(value)}"
    kinds = {"int_type": "integer", "int_parsing": "integer", "float_type": "number",
             "float_parsing": "number", "bool_type": "a boolean", "bool_parsing": "a boolean",
             "string_type": "a string", "dict_type": "a mapping", "model_type": "a mapping",
             "model_attributes_type": "a mapping", "tuple_type": "a list", "list_type": "a list",
             "int_from_float": "integer"}
    if t in kinds:
        return f"expected {kinds[t]}, {got(value)}"
    if t == "too_short":
        return f"must have at least {ctx.get('min_length')} item(s)"
    if t == "too_long":
        return f"must have at most {ctx.get('max_length')} item(s)"
    return e["msg"]
