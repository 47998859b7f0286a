"""The shape of the package, checked from the source with ``ast`` (no hfgcot module is imported).

- no import cycle between modules of ``hfgcot`` (function-level imports count; imports under
  ``if TYPE_CHECKING:`` do not, they never run);
- the pure modules (``hfgcot/geometry/*``, ``hfgcot/parsing/*``, ``hfgcot/prompts.py``,
  ``hfgcot/status.py``, ``hfgcot/untrusted.py``) import the standard library and other pure modules only: no torch,
  transformers, datasets or PIL, and no numpy either (none of them needs it today);
- the executors (``hfgcot/run/*``) import no ``hfgcot.pipelines`` module;
- no module uses another module's private (``_name``) name;
- modules stay under :data:`MAX_MODULE_LINES` lines and functions under :data:`MAX_FUNCTION_LINES`
  lines of code (docstring not counted), except the listed offenders of today, each with the
  reason and the helper who shrinks it. A listed module that got small enough must leave the list.

Each check is a function over ``{module name: source}``; the ``*_can_fail`` tests feed it a small
made-up package that breaks the rule, so no check passes vacuously.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "hfgcot"

MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 80

# Today's offenders: delete a line when its module or function is back under the limit.
BIG_MODULES: dict[str, str] = {}
BIG_FUNCTIONS: dict[str, str] = {}
# Import cycles being removed by their owner; the test fails once a listed cycle is gone.
KNOWN_CYCLES: dict[frozenset[str], str] = {}

PURE_PREFIXES = ("hfgcot.geometry", "hfgcot.parsing")
PURE_MODULES = {"hfgcot.errors", "hfgcot.prompts", "hfgcot.status", "hfgcot.untrusted"}
EXECUTOR_PREFIX = "hfgcot.run"
PIPELINE_PREFIX = "hfgcot.pipelines"


# ------------------------------------------------------------------------------------------------
# Reading the package
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Import:
    """One imported thing: the module it resolves to and the name taken from it (if any)."""

    module: str  # absolute module name as written (``hfgcot.x`` or a third-party module)
    name: str | None  # ``from module import name``; None for ``import module``
    line: int
    type_checking: bool


def read_package(root: Path = ROOT, package: str = PACKAGE) -> dict[str, str]:
    """``{module name: source}`` of every ``.py`` file of the package."""
    sources = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        sources[".".join(parts)] = path.read_text(encoding="utf-8")
    return sources


def _is_package(name: str, sources: dict[str, str]) -> bool:
    return any(other.startswith(name + ".") for other in sources)


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            inside.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    return inside


def imports_of(name: str, sources: dict[str, str]) -> list[Import]:
    """Every import statement of a module, anywhere in it (functions included)."""
    tree = ast.parse(sources[name])
    guarded = _type_checking_nodes(tree)
    here = name if _is_package(name, sources) else name.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        tc = id(node) in guarded
        if isinstance(node, ast.Import):
            found += [Import(a.name, None, node.lineno, tc) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                base = here.split(".")[: len(here.split(".")) - (node.level - 1)]
                module = ".".join([*base, module] if module else base)
            found += [Import(module, a.name, node.lineno, tc) for a in node.names]
    return found


def target(imp: Import, sources: dict[str, str]) -> str | None:
    """The package module an import runs (``from pkg import submodule`` is the submodule)."""
    if imp.name and f"{imp.module}.{imp.name}" in sources:
        return f"{imp.module}.{imp.name}"
    module = imp.module
    while module and module not in sources:
        module = module.rpartition(".")[0]
    return module or None


def import_graph(sources: dict[str, str]) -> dict[str, set[str]]:
    """Module -> package modules it imports when it runs (``TYPE_CHECKING`` imports left out)."""
    graph: dict[str, set[str]] = {name: set() for name in sources}
    for name in sources:
        for imp in imports_of(name, sources):
            dest = target(imp, sources)
            if dest and dest != name and not imp.type_checking:
                graph[name].add(dest)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
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
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(frozenset(component))
    return found


def _lazy_exports(sources: dict[str, str]) -> dict[str, str]:
    """``hfgcot.__getattr__``'s table: public name -> the module that defines it."""
    for node in ast.walk(ast.parse(sources.get(PACKAGE, ""))):
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "_EXPORTS" for t in node.targets
        ):
            return ast.literal_eval(node.value)
    return {}


def _is_pure(name: str) -> bool:
    return name in PURE_MODULES or any(name == p or name.startswith(p + ".") for p in PURE_PREFIXES)


# ------------------------------------------------------------------------------------------------
# The rules (each returns the violations it finds)
# ------------------------------------------------------------------------------------------------


def impure_imports(sources: dict[str, str]) -> list[str]:
    """Imports of a pure module that are neither the standard library nor another pure module."""
    bad = []
    for name in sorted(filter(_is_pure, sources)):
        for imp in imports_of(name, sources):
            root = imp.module.partition(".")[0]
            if root == PACKAGE:
                dest = target(imp, sources)
                if dest == PACKAGE and imp.name in _lazy_exports(sources):
                    dest = _lazy_exports(sources)[imp.name]
                if dest is None or not _is_pure(dest):
                    bad.append(f"{name}:{imp.line} imports {dest or imp.module}")
            elif root not in sys.stdlib_module_names and root != "__future__":
                bad.append(f"{name}:{imp.line} imports {imp.module}")
    return bad


def executor_imports_of_pipelines(sources: dict[str, str]) -> list[str]:
    """Imports of ``hfgcot.pipelines`` (directly or through ``from hfgcot import x``) in ``run/``."""
    bad = []
    exports = _lazy_exports(sources)
    for name in sorted(sources):
        if not (name == EXECUTOR_PREFIX or name.startswith(EXECUTOR_PREFIX + ".")):
            continue
        for imp in imports_of(name, sources):
            dest = target(imp, sources) or imp.module
            if dest == PACKAGE and imp.name in exports:
                dest = exports[imp.name]
            if dest == PIPELINE_PREFIX or dest.startswith(PIPELINE_PREFIX + "."):
                bad.append(f"{name}:{imp.line} imports {dest}")
    return bad


def _private(name: str | None) -> bool:
    return bool(name) and name.startswith("_") and not name.startswith("__")  # type: ignore[union-attr]


def private_uses(sources: dict[str, str]) -> list[str]:
    """``from hfgcot.x import _y`` and ``x._y`` on an imported hfgcot module, across modules."""
    bad = []
    for name in sorted(sources):
        tree = ast.parse(sources[name])
        module_aliases: dict[str, str] = {}
        for imp in imports_of(name, sources):
            if imp.module.partition(".")[0] != PACKAGE:
                continue
            dest = target(imp, sources)
            if dest == name:
                continue
            if _private(imp.name) and f"{imp.module}.{imp.name}" not in sources:
                bad.append(f"{name}:{imp.line} imports {imp.module}.{imp.name}")
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    if a.name.partition(".")[0] == PACKAGE and a.asname:
                        module_aliases[a.asname] = a.name
            elif isinstance(node, ast.ImportFrom) and node.module:
                for a in node.names:
                    full = f"{node.module}.{a.name}"
                    if full in sources and full != name:
                        module_aliases[a.asname or a.name] = full
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in module_aliases
                and _private(node.attr)
            ):
                bad.append(f"{name}:{node.lineno} uses {module_aliases[node.value.id]}.{node.attr}")
    return bad


def _code_lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    lines = (node.end_lineno or node.lineno) - node.lineno + 1
    first = node.body[0]
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
        if isinstance(first.value.value, str):
            lines -= (first.end_lineno or first.lineno) - first.lineno + 1
    return lines


def big_modules(sources: dict[str, str], limit: int = MAX_MODULE_LINES) -> dict[str, int]:
    return {n: len(s.splitlines()) for n, s in sources.items() if len(s.splitlines()) > limit}


def big_functions(sources: dict[str, str], limit: int = MAX_FUNCTION_LINES) -> dict[str, int]:
    """``module.function`` (methods: ``module.Class.method``) -> lines of code, over ``limit``."""
    found = {}
    for name, source in sources.items():
        tree = ast.parse(source)
        for parent in [tree, *(n for n in ast.walk(tree) if isinstance(n, ast.ClassDef))]:
            prefix = name if parent is tree else f"{name}.{parent.name}"
            for node in ast.iter_child_nodes(parent):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    if _code_lines(node) > limit:
                        found[f"{prefix}.{node.name}"] = _code_lines(node)
    return found


# ------------------------------------------------------------------------------------------------
# The package obeys them
# ------------------------------------------------------------------------------------------------

SOURCES = read_package()


def test_the_package_is_read():
    assert {"hfgcot.status", "hfgcot.run.local", "hfgcot.pipelines.base"} <= set(SOURCES)
    assert _lazy_exports(SOURCES)["add_gcot"] == "hfgcot.pipelines.gcot"


def test_no_import_cycle():
    found = set(cycles(import_graph(SOURCES)))
    unknown = [sorted(c) for c in found if c not in KNOWN_CYCLES]
    assert not unknown, f"import cycles: {unknown}"
    gone = [sorted(c) for c in KNOWN_CYCLES if c not in found]
    assert not gone, f"these cycles are gone: remove them from KNOWN_CYCLES: {gone}"


def test_pure_modules_import_only_the_standard_library_and_pure_modules():
    assert impure_imports(SOURCES) == []


def test_executors_import_no_pipeline():
    assert executor_imports_of_pipelines(SOURCES) == []


def test_no_module_uses_another_modules_private_names():
    assert private_uses(SOURCES) == []


def test_no_new_big_module():
    sizes = big_modules(SOURCES)
    new = {n: lines for n, lines in sizes.items() if n not in BIG_MODULES}
    assert not new, f"modules over {MAX_MODULE_LINES} lines (split them): {new}"
    shrunk = sorted(set(BIG_MODULES) - set(sizes))
    assert not shrunk, f"now under {MAX_MODULE_LINES} lines: remove from BIG_MODULES: {shrunk}"


def test_no_new_big_function():
    sizes = big_functions(SOURCES)
    new = {n: lines for n, lines in sizes.items() if n not in BIG_FUNCTIONS}
    assert not new, f"functions over {MAX_FUNCTION_LINES} lines of code (split them): {new}"
    shrunk = sorted(set(BIG_FUNCTIONS) - set(sizes))
    assert not shrunk, f"now short enough: remove from BIG_FUNCTIONS: {shrunk}"


# ------------------------------------------------------------------------------------------------
# Each rule can fail: a small made-up package that breaks it
# ------------------------------------------------------------------------------------------------

BAD = {
    "hfgcot": '_EXPORTS = {"add_x": "hfgcot.pipelines.x"}\n',
    "hfgcot.geometry": "",
    "hfgcot.geometry.a": "import numpy\nfrom hfgcot.run import b\nimport math\n",
    "hfgcot.geometry.ok": "import math\nfrom hfgcot.geometry import a\nfrom hfgcot import status\n",
    "hfgcot.status": "from collections import Counter\n",
    "hfgcot.run": "",
    "hfgcot.run.b": (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from hfgcot.pipelines import x\n"
        "def f():\n    from hfgcot.geometry.a import _hidden\n"
    ),
    "hfgcot.run.c": "from hfgcot import add_x\nimport hfgcot.status as st\nst._cap\n",
    "hfgcot.pipelines": "",
    "hfgcot.pipelines.x": "from ..run import b\n" + "def long():\n" + "    x = 1\n" * 81,
}


def unmirrored_test_folders(tests: Path, package: Path) -> list[str]:
    """Test folders that name no subpackage of ``package`` (``tests/<sub>/`` tests ``<sub>/``)."""
    bad = []
    for folder in sorted(p for p in tests.iterdir() if p.is_dir() and p.name != "__pycache__"):
        if not (package / folder.name / "__init__.py").exists():
            bad.append(f"tests/{folder.name}/ has no hfgcot/{folder.name}/ package")
    return bad


def test_tests_mirror_the_package():
    """``tests/<sub>/`` holds the tests of ``hfgcot/<sub>/``; tests of top-level modules, and
    of the whole, stay in ``tests/``."""
    assert not unmirrored_test_folders(ROOT / "tests", ROOT / PACKAGE)


def test_the_mirror_check_can_fail(tmp_path):
    (tmp_path / "tests" / "geometry").mkdir(parents=True)
    (tmp_path / "tests" / "widgets").mkdir()
    (tmp_path / "hfgcot" / "geometry").mkdir(parents=True)
    (tmp_path / "hfgcot" / "geometry" / "__init__.py").write_text("")
    assert unmirrored_test_folders(tmp_path / "tests", tmp_path / "hfgcot") == [
        "tests/widgets/ has no hfgcot/widgets/ package"
    ]


def test_the_cycle_check_can_fail():
    graph = import_graph(BAD)
    assert "hfgcot.geometry.a" in graph["hfgcot.run.b"]  # a function-level import counts
    assert "hfgcot.pipelines.x" not in graph["hfgcot.run.b"]  # a TYPE_CHECKING one does not
    assert "hfgcot.run.b" in graph["hfgcot.pipelines.x"]  # relative import resolved
    assert cycles(graph) == [frozenset({"hfgcot.geometry.a", "hfgcot.run.b"})]


def test_the_purity_check_can_fail():
    assert impure_imports(BAD) == [
        "hfgcot.geometry.a:1 imports numpy",
        "hfgcot.geometry.a:2 imports hfgcot.run.b",
    ]


def test_the_executor_check_can_fail():
    assert executor_imports_of_pipelines(BAD) == [
        "hfgcot.run.b:3 imports hfgcot.pipelines.x",
        "hfgcot.run.c:1 imports hfgcot.pipelines.x",
    ]


def test_the_private_name_check_can_fail():
    assert private_uses(BAD) == [
        "hfgcot.run.b:5 imports hfgcot.geometry.a._hidden",
        "hfgcot.run.c:3 uses hfgcot.status._cap",
    ]


def test_the_size_checks_can_fail():
    assert big_functions(BAD) == {"hfgcot.pipelines.x.long": 82}
    assert big_modules(BAD, limit=80) == {"hfgcot.pipelines.x": 83}


@pytest.mark.parametrize("name", sorted(BIG_MODULES) + sorted(BIG_FUNCTIONS))
def test_every_allowed_offender_names_a_reason(name):
    reason = BIG_MODULES.get(name) or BIG_FUNCTIONS.get(name)
    assert reason and ":" in reason  # "<owner>: <what shrinks it>"
