"""The package's imports point one way: no module imports, directly or through others, a
module that imports it back. Checked on the source (ast), lazy imports inside functions
included, so a cycle hidden in a function body counts too."""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "kanopy"
FIXTURE = Path(__file__).resolve().parent / "fixtures" / "cyclic" / "pkg"


def module_names(root: Path) -> dict[str, Path]:
    """Dotted names of the modules under the package folder ``root``."""
    names = {}
    for path in root.rglob("*.py"):
        parts = path.relative_to(root.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module -> the package modules it imports (anywhere in its source)."""
    modules = module_names(root)
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                for alias in node.names:  # `from . import io` names a module, `from .io import x` does not
                    sub = f"{target}.{alias.name}"
                    graph[name].add(sub if sub in modules else target)
            elif isinstance(node, ast.Import):
                graph[name].update(alias.name for alias in node.names)
        graph[name] = {m for m in graph[name] if m in modules and m != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
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
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def test_the_checker_finds_a_cycle_in_a_fixture_package():
    # pkg.a -> pkg.b -> pkg.c -> pkg.a (the last one a lazy import in a function body)
    assert cycles(import_graph(FIXTURE)) == [["pkg.a", "pkg.b", "pkg.c"]]


def test_the_checker_accepts_a_tree():
    graph = {"p": {"p.x", "p.y"}, "p.x": {"p.y"}, "p.y": set()}
    assert cycles(graph) == []


def test_kanopy_has_no_import_cycle():
    found = cycles(import_graph(PACKAGE))
    assert not found, "import cycles: " + "; ".join(" <-> ".join(c) for c in found)


# ----------------------------------------------------------------------------- layers
ARCHITECTURE = PACKAGE.parent.parent / "ARCHITECTURE.md"


def documented_layers(text: str) -> dict[str, int]:
    """Module pattern (dotted; a trailing ".*" for a whole subpackage) -> layer number, from
    the table of ARCHITECTURE.md's "Layers" section (rows "| 3 name | `mod`, `mod` | ... |")."""
    layers = {}
    for row in re.findall(r"^\| (\d+) [^|]*\|([^|]*)\|", text, flags=re.M):
        number, modules = int(row[0]), re.findall(r"`([^`]+)`", row[1])
        for module in modules:
            dotted = "kanopy" if module == "kanopy" else "kanopy." + module.replace("/", ".")
            layers[dotted] = number
    return layers


def layer_of(module: str, layers: dict[str, int]) -> int | None:
    if module in layers:
        return layers[module]
    package = module.rpartition(".")[0]
    while package:
        if package + ".*" in layers:
            return layers[package + ".*"]
        package = package.rpartition(".")[0]
    return None


def test_every_module_has_a_documented_layer_and_imports_point_down():
    layers = documented_layers(ARCHITECTURE.read_text())
    graph = import_graph(PACKAGE)
    missing = sorted(m for m in graph if layer_of(m, layers) is None and m.rpartition(".")[2] != "__init__"
                     and m + ".*" not in layers)
    assert not missing, f"modules missing from ARCHITECTURE.md's layer table: {missing}"
    climbing = []
    for module, imported in graph.items():
        own = layer_of(module, layers) if module + ".*" not in layers else layers[module + ".*"]
        for target in imported:
            theirs = layer_of(target, layers) if target + ".*" not in layers else layers[target + ".*"]
            if own is not None and theirs is not None and theirs > own:
                climbing.append(f"{module} (layer {own}) imports {target} (layer {theirs})")
    assert not climbing, "imports that climb: " + "; ".join(sorted(climbing))


def test_the_layer_check_sees_a_climbing_import():
    layers = documented_layers("| 1 low | `a` | |\n| 2 high | `b/*` | |\n")
    assert layers == {"kanopy.a": 1, "kanopy.b.*": 2}
    assert layer_of("kanopy.b.c", layers) == 2 and layer_of("kanopy.z", layers) is None
