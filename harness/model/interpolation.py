"""Compose's variable interpolation in a file's values: `${VAR}`, `$VAR`, `${VAR:-default}`,
`${VAR-default}`, `${VAR:?message}`, `${VAR?message}`, `${VAR:+other}`, `${VAR+other}`, and
`$$` for a literal `$` (so `CMD-SHELL` health checks that write `$$` get their `$`).

Values come from the target's `.env` file only, never from the shell that runs the harness:
a CI run and a laptop run of the same folder see the same file. As in Compose, an unset
variable without a default becomes an empty string, with a warning; `?` makes it an error.
Only values are interpolated (not keys), in one pass; a default may itself hold `${...}`.
"""

from __future__ import annotations

import re
from typing import Any

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
MAX_DEPTH = 8


class InterpolationError(ValueError):
    pass


def interpolate(data: Any, env: dict[str, str]) -> tuple[Any, list[tuple[tuple, str, bool]]]:
    """Every string value of `data` interpolated. Returns (new data, issues), each issue
    (path, message, is_error)."""
    issues: list[tuple[tuple, str, bool]] = []

    def walk(node: Any, path: tuple) -> Any:
        if isinstance(node, dict):
            return {k: walk(v, path + (k,)) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v, path + (i,)) for i, v in enumerate(node)]
        if isinstance(node, str) and "$" in node:
            unset: list[str] = []
            try:
                out = substitute(node, env, unset)
            except InterpolationError as exc:
                issues.append((path, str(exc), True))
                return node
            for name in dict.fromkeys(unset):
                issues.append((path, f"variable {name} is not set (not in the target's .env); "
                                     "it becomes an empty string, as in Compose", False))
            return out
        return node

    return walk(data, ()), issues


def substitute(text: str, env: dict[str, str], unset: list[str], depth: int = 0) -> str:
    if depth > MAX_DEPTH:
        raise InterpolationError("interpolation nested too deeply")
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c != "$":
            out.append(c)
            i += 1
            continue
        nxt = text[i + 1] if i + 1 < n else ""
        if nxt == "$":
            out.append("$")
            i += 2
            continue
        if nxt == "{":
            end = _closing(text, i + 2)
            if end < 0:
                raise InterpolationError(f"unclosed ${{ in {text[i:i + 40]!r}")
            out.append(_braced(text[i + 2:end], env, unset, depth))
            i = end + 1
            continue
        m = _NAME.match(text, i + 1)
        if m is None:
            raise InterpolationError(f"a lone $ in {text[max(0, i - 10):i + 10]!r}: write $$ "
                                     "for a literal $")
        name = m.group(0)
        if name in env:
            out.append(env[name])
        else:
            unset.append(name)
        i = m.end()
    return "".join(out)


def _closing(text: str, start: int) -> int:
    depth = 1
    i = start
    while i < len(text):
        if text.startswith("${", i):
            depth += 1
            i += 2
            continue
        if text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return -1


def _braced(body: str, env: dict[str, str], unset: list[str], depth: int) -> str:
    m = _NAME.match(body)
    if m is None:
        raise InterpolationError(f"${{{body}}} does not start with a variable name")
    name, rest = m.group(0), body[m.end():]
    value = env.get(name)
    if not rest:
        if value is None:
            unset.append(name)
            return ""
        return value
    for op in (":-", "-", ":?", "?", ":+", "+"):
        if rest.startswith(op):
            arg = rest[len(op):]
            break
    else:
        raise InterpolationError(f"${{{body}}}: {rest[:10]!r} is not one of :- - :? ? :+ +")
    empty_counts = op.startswith(":")
    missing = value is None or (empty_counts and value == "")
    if op in (":-", "-"):
        return substitute(arg, env, unset, depth + 1) if missing else value  # type: ignore[return-value]
    if op in (":?", "?"):
        if missing:
            raise InterpolationError(f"variable {name} is required: "
                                     f"{substitute(arg, env, [], depth + 1) or 'not set'}")
        return value  # type: ignore[return-value]
    return "" if missing else substitute(arg, env, unset, depth + 1)


def read_dotenv(text: str) -> dict[str, str]:
    """A `.env` file (the same syntax as env_file) → variables; invalid lines are skipped by
    the caller, which reports them."""
    from harness.model.compose import parse_env_file

    return {k: v for _, k, v in parse_env_file(text) if v is not None}
