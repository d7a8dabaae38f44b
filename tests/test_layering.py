"""The packages' imports go one way, flows -> spiders -> storage, and no module imports one that imports it back.

Read from the source (every import statement, at the top or inside a function), so a
lazy import cannot hide a cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("flows", "spiders", "storage")
LAYER = {"flows": 2, "spiders": 1, "storage": 0}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports() -> dict[str, set[str]]:
    modules = {module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                # `from pkg import mod` imports the module mod; `from mod import name`, mod
                subs = [f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in modules]
                targets = subs if len(subs) == len(node.names) else [node.module, *subs]
            found |= {t for t in targets if t in modules}
        graph[name] = found - {name}
    return graph


def test_imports_go_one_way():
    wrong = [(a, b) for a, deps in imports().items() for b in deps
             if LAYER[b.split(".")[0]] > LAYER[a.split(".")[0]]]
    assert wrong == []


def test_no_import_cycles():
    graph = imports()
    cycles = []

    def visit(node, path, on_path):
        for dep in sorted(graph.get(node, ())):
            if dep in on_path:
                cycles.append(path[path.index(dep):] + [dep])
            elif dep not in done:
                visit(dep, path + [dep], on_path | {dep})
        done.add(node)

    done: set[str] = set()
    for start in sorted(graph):
        if start not in done:
            visit(start, [start], {start})
    assert cycles == [], cycles[:5]
