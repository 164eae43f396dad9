"""The shape of the code: no import circle under harness/, a fault is one module, the docs
tables are generated from the models, and the layers point one way."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from harness import docs
from harness.faults import FaultSpec, actions, families

ROOT = Path(__file__).resolve().parents[2]
PKG = ROOT / "harness"


def _modules() -> dict[str, Path]:
    out = {}
    for path in PKG.rglob("*.py"):
        rel = path.relative_to(ROOT).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _imports(mods: dict[str, Path]) -> dict[str, set[str]]:
    """module → the harness modules it imports (at the top or inside functions)."""
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for mod, path in mods.items():
        package = mod if path.name == "__init__.py" else mod.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
                names = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names]
            else:
                continue
            for name in names:
                if name in mods and name != mod:
                    graph[mod].add(name)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_no_import_circle_under_harness():
    graph = _imports(_modules())
    assert sum(len(v) for v in graph.values()) > 50, "the import graph looks empty: the parser is broken"
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize("lower, upper", [
    ("harness.model", "harness.run"), ("harness.model", "harness.stack"), ("harness.faults", "harness.stack"),
    ("harness.faults", "harness.load"), ("harness.measure", "harness.stack"), ("harness.measure", "harness.faults"),
    ("harness.measure", "harness.load"), ("harness.model", "harness.report"),
    ("harness.monitor", "harness.stack"), ("harness.monitor", "harness.load"), ("harness.monitor", "harness.run"),
    ("harness.monitor", "harness.faults"), ("harness.monitor", "harness.report"), ("harness.measure", "harness.monitor"),
])
def test_dependencies_point_one_way(lower, upper):
    graph = _imports(_modules())
    bad = sorted(f"{m} -> {d}" for m, deps in graph.items() if m.startswith(lower)
                 for d in deps if d.startswith(upper))
    assert bad == [], f"{lower} must not import {upper}"


def test_every_action_is_one_class_in_its_family_module():
    for action, cls in actions().items():
        assert cls.__module__ == f"harness.faults.{cls.family()}"
        assert cls.summary, f"{action} has no summary for the docs table"
        assert cls.plan_line is not FaultSpec.plan_line and cls.inject is not FaultSpec.inject, action
    assert set(families()) >= {"container", "network", "partition", "loss", "resource", "dns"}


def test_docs_tables_are_generated_from_the_models():
    assert docs.main(["--check"]) == 0, "run `python -m harness.docs`"
