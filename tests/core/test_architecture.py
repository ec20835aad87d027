"""The shape of the code base (issue 12): no import cycles, no god functions or modules, no
argparse in plugins, and every preset's resolved config unchanged by refactoring.

The import graph and the sizes are read from the source with :mod:`ast` (nothing is imported), so
a cycle hidden inside a function body counts as well. ``benchmarks/`` and ``tests/`` are exempt.
"""

from __future__ import annotations

import ast
import contextlib
import io
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [ROOT / "core", *(ROOT / "plugins").iterdir()]
MAX_FUNCTION_LINES = 60
MAX_MODULE_LINES = 500
SNAPSHOTS = Path(__file__).resolve().parents[1] / "snapshots" / "print_config"


def _modules() -> dict[str, Path]:
    """Dotted module name -> file, for every package under core/ and plugins/*/ (templates excluded)."""
    out = {}
    for src in SOURCES:
        for path in src.rglob("*.py"):
            rel = path.relative_to(src)
            if "templates" in rel.parts or not rel.parts[0].startswith("dltk"):
                continue
            parts = list(rel.with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """Modules of this code base that ``name`` imports anywhere in its source."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                prefix = package[: len(package) - node.level + 1]
                base = ".".join(prefix + ([base] if base else []))
            targets = [base] + [f"{base}.{a.name}" for a in node.names]
        found |= {t for t in targets if t in MODULES and t != name}
    return found


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_the_scan_sees_every_package() -> None:
    tops = {name.split(".")[0] for name in MODULES}
    assert tops >= {"dltk", "dltk_chem", "dltk_genomics", "dltk_imaging", "dltk_video"}, tops
    assert len(MODULES) > 60


def test_no_import_cycles() -> None:
    graph = {name: _imports(name, path) for name, path in MODULES.items()}
    assert _cycles(graph) == []


def test_cycle_detection_finds_a_planted_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]


def test_no_function_over_60_lines_and_no_module_over_500() -> None:
    too_long = []
    for name, path in MODULES.items():
        text = path.read_text()
        if len(text.splitlines()) > MAX_MODULE_LINES:
            too_long.append(f"module {name}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text, str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1  # type: ignore[operator]
                if lines > MAX_FUNCTION_LINES:
                    too_long.append(f"function {name}.{node.name} (line {node.lineno}): {lines} lines")
    assert too_long == []


def test_no_argparse_in_plugins() -> None:
    """Plugins declare their options (dltk.options); core parses them."""
    offenders = []
    for name, path in MODULES.items():
        if name.startswith("dltk."):
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            if "argparse" in names:
                offenders.append(f"{name}:{node.lineno}")
    assert offenders == []


def _presets() -> list[tuple[str, str]]:
    return sorted(tuple(p.stem.split("-", 1)) for p in SNAPSHOTS.glob("*.yaml"))  # type: ignore[misc]


@pytest.mark.parametrize(("plugin", "task"), _presets())
def test_print_config_is_unchanged(plugin: str, task: str) -> None:
    """Every preset resolves to the config committed before the refactoring (compared as parsed
    YAML: key order may differ, values may not)."""
    from dltk.cli import main
    from dltk.discovery import discover

    info = discover().get(plugin)
    if info is None or info.spec is None or info.status != "ok":
        pytest.skip(f"plugin {plugin} not installed here")
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(["train", "--plugin", plugin, "--task", task, "--print-config"]) == 0
    expected = yaml.safe_load((SNAPSHOTS / f"{plugin}-{task}.yaml").read_text())
    assert yaml.safe_load(buf.getvalue()) == expected
