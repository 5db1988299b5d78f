"""The import graph has no cycles: between the top-level packages, nor between modules.

Why: a cycle means two layers each need the other, so neither can change alone (evaluation that imports the linker
that imports evaluation, a run time that imports the CLI). The allowed direction is the one docs/architecture.md
draws: schemas and models at the bottom, ontologies over models, pipeline over both, beam_jobs (with the product
CLI) on top. Imports inside functions count too: they are dependencies all the same.
"""
from __future__ import annotations

import ast
import importlib.util
from collections import defaultdict
from pathlib import Path

import pytest

TOP_LEVEL = ("schemas", "models", "ontologies", "pipeline", "beam_jobs")
#: What each top-level package may import (the layering of docs/architecture.md).
ALLOWED = {
    "schemas": set(),
    "models": set(),
    "ontologies": {"models"},
    "pipeline": {"models", "ontologies", "schemas"},
    "beam_jobs": {"models", "ontologies", "pipeline", "schemas"},
}


def _modules() -> dict[str, Path]:
    """Every module of the installed packages, by dotted name (wherever the install put their folders)."""
    out: dict[str, Path] = {}
    for top in TOP_LEVEL:
        spec = importlib.util.find_spec(f"clin_linker.{top}")
        assert spec is not None and spec.submodule_search_locations, f"clin_linker.{top} is not installed"
        root = Path(next(iter(spec.submodule_search_locations)))
        for path in root.rglob("*.py"):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(["clin_linker", top, *parts])] = path
    return out


def _import_edges(modules: dict[str, Path]) -> dict[str, set[str]]:
    """module -> the modules of ours it imports (``from .x import y`` resolves to ``.x.y`` when that is a module)."""
    edges: dict[str, set[str]] = defaultdict(set)
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                wanted = [f"{target}.{alias.name}" for alias in node.names] + [target]
            elif isinstance(node, ast.Import):
                wanted = [alias.name for alias in node.names]
            else:
                continue
            for candidate in wanted:
                while candidate and candidate not in modules:
                    candidate = candidate.rpartition(".")[0]
                if candidate and candidate != name and candidate.startswith("clin_linker."):
                    edges[name].add(candidate)
    return edges


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one member (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges.get(root, ()))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


@pytest.fixture(scope="module")
def edges() -> dict[str, set[str]]:
    return _import_edges(_modules())


def _top(module: str) -> str:
    return module.split(".")[1]


def test_top_level_packages_import_only_downwards(edges):
    wrong = sorted(f"{a} -> {b}" for a, targets in edges.items() for b in targets
                   if _top(a) != _top(b) and _top(b) not in ALLOWED[_top(a)])
    assert not wrong, "imports against the layering of docs/architecture.md:\n" + "\n".join(wrong)


def test_no_module_import_cycle(edges):
    assert _cycles(edges) == []


def test_the_cycle_finder_finds_a_cycle():
    """The check itself can fail: a two-module and a three-module cycle are both reported."""
    graph = {"a": {"b"}, "b": {"a"}, "c": {"d"}, "d": {"e"}, "e": {"c", "a"}, "f": {"a"}}
    assert sorted(_cycles(graph)) == [["a", "b"], ["c", "d", "e"]]
