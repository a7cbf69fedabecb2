"""The package's import graph has no circles, typing-only imports included (issue #19): every module
can be read, and loaded, after the modules it names."""

from __future__ import annotations

import ast
from pathlib import Path

import proxy

ROOT = Path(proxy.__file__).parent


def _module_name(path: Path) -> tuple[str, list[str]]:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
        return ".".join(parts), parts
    return ".".join(parts), parts[:-1]


def import_graph() -> dict[str, set[str]]:
    """Module → the proxy modules it imports (``if TYPE_CHECKING:`` blocks and functions too)."""
    files = {name: (path, package) for path in ROOT.rglob("*.py") for name, package in [_module_name(path)]}
    graph: dict[str, set[str]] = {}
    for name, (path, package) in files.items():
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                base = package[: len(package) - node.level + 1] if node.level else []
                target = ".".join(base + ([node.module] if node.module else []))
                for alias in node.names:
                    if f"{target}.{alias.name}" in files:
                        deps.add(f"{target}.{alias.name}")  # from package import module
                    elif target in files:
                        deps.add(target)
            elif isinstance(node, ast.Import):
                deps.update(alias.name for alias in node.names if alias.name in files)
        deps.discard(name)
        graph[name] = deps
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
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


def test_the_graph_is_read_right() -> None:
    graph = import_graph()
    assert "proxy.sessions.store" in graph["proxy.app"]
    assert "proxy.metrics_registry" in graph["proxy.keys"]  # a TYPE_CHECKING import counts
    assert "proxy.pages" in graph["proxy.handlers.access"]  # from .. import pages
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles() -> None:
    assert cycles(import_graph()) == []


def test_sessions_is_persistence_only() -> None:
    """Who asks is ``proxy.identity``'s; config and authorisation never reach into the store."""
    graph = import_graph()
    for name, deps in graph.items():
        if name.startswith(("proxy.config", "proxy.authz", "proxy.forward_headers", "proxy.identity")):
            assert not {d for d in deps if d.startswith("proxy.sessions")}, name
