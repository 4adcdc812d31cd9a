"""The package's modules import each other without circles.

Every ``import`` and ``from ... import`` in livematte/ counts, the ones inside functions too (a
lazy import still ties the two modules together; it only hides the circle until run time).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "livematte"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """module -> the package modules it imports."""
    files = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in files}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                # `from pkg import mod` imports the module pkg.mod when there is one.
                targets = [
                    f"{base}.{a.name}" if f"{base}.{a.name}" in files else base for a in node.names
                ]
            graph[name].update(t for t in targets if t in files and t != name)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
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
    return found


def test_the_checker_sees_a_circle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles():
    graph = import_graph()
    assert "livematte.api" in graph and graph["livematte.api"]  # the walk found imports
    assert cycles(graph) == []


def test_every_folder_of_modules_is_a_regular_package():
    """setuptools' find_packages ships only folders with an ``__init__.py``: a folder of
    modules without one would import from a checkout and be missing from the wheel."""
    folders = {p.parent for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts}
    loose = [f.relative_to(PACKAGE) for f in folders if not (f / "__init__.py").exists()]
    assert loose == []


# The layers of docs/ARCHITECTURE.md: what each folder may import from the package (besides itself).
# The core modules at the top (frame, config, errors, ...) sit below everything.
CORE = {"livematte", "livematte.frame", "livematte.config", "livematte.errors", "livematte.outputs",
        "livematte.atomic"}
LAYERS = {
    "livematte.ops": {"livematte.frame"},
    "livematte.io": CORE | {"livematte.ops"},
    "livematte.runner": CORE | {"livematte.io", "livematte.ops"},
    "livematte.stages": CORE | {"livematte.ops", "livematte.models"},
}


def _folder(module: str) -> str:
    return ".".join(module.split(".")[:2])


def layer_breaches(graph: dict[str, set[str]]) -> list[str]:
    breaches = []
    for module, imports in sorted(graph.items()):
        allowed = LAYERS.get(_folder(module))
        if allowed is None:
            continue
        for target in sorted(imports):
            inside = _folder(target) == _folder(module)
            if not inside and target not in allowed and _folder(target) not in allowed:
                breaches.append(f"{module} -> {target}")
    return breaches


def test_the_layer_checker_sees_a_breach():
    graph = {"livematte.ops.refine": {"livematte.stages.matting", "livematte.frame"},
             "livematte.stages.matting": {"livematte.ops.refine"}}
    assert layer_breaches(graph) == ["livematte.ops.refine -> livematte.stages.matting"]


def test_each_folder_imports_only_the_layers_below_it():
    """ops/ is pure (only frame.py); io/ uses ops/ (compositing) but never reaches a stage;
    runner/ joins io/, ops/ and the core; stages/ use ops/ and the models, never a front, io/
    or the runners."""
    assert layer_breaches(import_graph()) == []


def architecture_gaps(text: str) -> list[str]:
    """What docs/ARCHITECTURE.md's folder table misses: a package without its row, a module its
    row does not name (as ``name`` or ``name.py``), a ``name.py`` named that exists neither in
    the folder nor at the top (rows refer to the top's ``frame.py``)."""
    rows = dict(re.findall(r"^\| `(livematte/[\w/]*)`(?: \(top\))? \|(.*)$", text, re.M))
    gaps = []
    for init in sorted(PACKAGE.rglob("__init__.py")):
        folder = init.parent.relative_to(PACKAGE.parent).as_posix() + "/"
        row = rows.get(folder)
        if row is None:
            gaps.append(f"{folder}: no row")
            continue
        named = set(re.findall(r"`(\w+)(?:\.py)?`", row))
        for module in sorted(init.parent.glob("*.py")):
            if module.stem not in named and module.stem != "__init__":
                gaps.append(f"{folder}{module.name}: not named")
        for name in re.findall(r"`(\w+)\.py`", row):
            if not any((where / f"{name}.py").exists() for where in (init.parent, PACKAGE)):
                gaps.append(f"{folder}{name}.py: named, does not exist")
    return gaps


def test_architecture_maps_every_module():
    text = (PACKAGE.parent / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    assert architecture_gaps(text) == []
    # The check itself: a module left out and one named that is not there are both found.
    broken = text.replace("`grey` (", "`gray` (").replace("`atomic.py`", "`atomics.py`")
    assert {"livematte/ops/grey.py: not named", "livematte/atomics.py: named, does not exist"} <= (
        set(architecture_gaps(broken))
    )


def test_test_modules_have_unique_names():
    # The test folders are not packages: pytest imports each test module by its bare name, so
    # two files of one name (tests/server/test_engine.py beside tests/distributed/test_engine.py)
    # stop the whole run at collection.
    tests = Path(__file__).resolve().parent
    seen: dict[str, Path] = {}
    clashes = []
    for path in sorted(tests.rglob("*.py")):
        if path.name == "conftest.py" or "__pycache__" in path.parts:
            continue
        if path.name in seen:
            clashes.append(f"{seen[path.name].relative_to(tests)} and {path.relative_to(tests)}")
        seen.setdefault(path.name, path)
    assert not clashes, clashes
