"""The documentation is true: its links resolve, its names exist, its examples run.

Pages checked: ``docs/*.md``, ``benchmarks/README.md`` and the notes under ``tools/`` (and the
links of ``README.md``). What is checked (the conventions are written down in ``docs/README.md``):

- every relative link (``[text](target)``, ``<img src=...>``) points at a file or folder of the
  repository, and an ``#anchor`` at a heading of the page it names; no link leaves the
  repository;
- every repository path written in code (`` `benchmarks/eval_tiny_shapes.py` ``, and paths in
  shell blocks) exists;
- every dotted ``hfgcot.`` name written in code resolves (module, then attributes);
- every ``python`` block compiles and every name it imports from ``hfgcot`` exists;
- the ``python`` blocks of a page that do not start with a ``# needs: <what>`` line run, one
  after another in one namespace, offline on the CPU (they use the shipped toy model).
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [*DOCS, ROOT / "benchmarks" / "README.md", *sorted((ROOT / "tools").rglob("*.md"))]
LINKED = [ROOT / "README.md", *PAGES]
"""The README's links are checked too (the rest of it is being rewritten)."""
NEEDS = re.compile(r"^#\s*needs:\s*\S")
"""First line of a ``python`` block that is not run (``# needs: gpu``, ``# needs: hub``...)."""

FENCE = re.compile(r"^(```+|~~~+)[ \t]*([\w+-]*)[^\n]*\n(.*?)^\1[ \t]*$", re.M | re.S)
LINK = re.compile(r"(?<!!)\[[^\]\n]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)|<img[^>]+src=\"([^\"]+)\"")
IMAGE_LINK = re.compile(r"!\[[^\]\n]*\]\(([^)\s]+)\)")
CODE_SPAN = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
REPO_PATH = re.compile(
    r"(?<![\w./-])((?:hfgcot|tests|tools|benchmarks|examples|notebooks|docs)/[\w./-]*[\w/])"
)
DOTTED = re.compile(r"(?<![\w.])(hfgcot(?:\.[A-Za-z_]\w*)+)")


def _rel(page: Path) -> str:
    return page.relative_to(ROOT).as_posix()


def _blocks(text: str) -> list[tuple[str, str]]:
    """``(language, body)`` of every fenced block."""
    return [(m.group(2).lower(), m.group(3)) for m in FENCE.finditer(text)]


def _prose(text: str) -> str:
    """The page without its fenced blocks."""
    return FENCE.sub("", text)


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading."""
    text = re.sub(r"[`*]|\[|\]\([^)]*\)", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    prose = _prose(page.read_text())
    return {_slug(m.group(1)) for m in re.finditer(r"^#+\s+(.*)$", prose, re.M)}


def _links(page: Path) -> list[str]:
    prose = _prose(page.read_text())
    found = [a or b for a, b in LINK.findall(prose)] + IMAGE_LINK.findall(prose)
    return [t for t in found if not re.match(r"^[a-z]+:", t)]  # http:, https:, mailto:


def _code_texts(page: Path) -> list[str]:
    """Inline code spans and shell/python blocks: where names and paths are written."""
    text = page.read_text()
    spans = CODE_SPAN.findall(_prose(text))
    blocks = [body for lang, body in _blocks(text) if lang in ("", "bash", "sh", "python", "py")]
    return spans + blocks


def _resolve(name: str) -> object:
    """The object a dotted name denotes: the longest importable module, then attributes."""
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError as err:
            if err.name and not ".".join(parts[:cut]).startswith(err.name):
                raise  # a module that exists failed to import one of its own dependencies
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise ModuleNotFoundError(name)


def _python_blocks(page: Path) -> list[str]:
    return [body for lang, body in _blocks(page.read_text()) if lang in ("python", "py")]


def test_the_pages_exist():
    assert len(DOCS) >= 10
    index = (ROOT / "docs" / "README.md").read_text()
    for page in DOCS:
        if page.name != "README.md":
            assert f"]({page.name})" in index, f"docs/README.md does not list {page.name}"


@pytest.mark.parametrize("page", LINKED, ids=_rel)
def test_links_resolve_inside_the_repository(page):
    for target in _links(page):
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        assert dest.is_relative_to(ROOT), f"{_rel(page)}: {target} points outside the repository"
        assert dest.exists(), f"{_rel(page)}: {target} does not exist"
        if anchor and dest.suffix == ".md":
            assert anchor in _anchors(dest), f"{_rel(page)}: no heading #{anchor} in {path or page}"


@pytest.mark.parametrize("page", PAGES, ids=_rel)
def test_repository_paths_in_code_exist(page):
    for code in _code_texts(page):
        for path in REPO_PATH.findall(code):
            path = path.split("::")[0]
            assert (ROOT / path).exists(), f"{_rel(page)}: `{path}` does not exist"


@pytest.mark.parametrize("page", PAGES, ids=_rel)
def test_hfgcot_names_in_code_exist(page):
    names = {n for code in _code_texts(page) for n in DOTTED.findall(code)}
    for name in sorted(names):
        try:
            _resolve(name)
        except (ImportError, AttributeError) as err:
            pytest.fail(f"{_rel(page)}: `{name}` does not resolve ({err})")


@pytest.mark.parametrize("page", PAGES, ids=_rel)
def test_python_blocks_compile_and_import_what_exists(page):
    for body in _python_blocks(page):
        tree = ast.parse(body, filename=_rel(page))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("hfgcot"):
                module = importlib.import_module(node.module)
                for alias in node.names:
                    assert hasattr(module, alias.name) or importlib.util.find_spec(
                        f"{node.module}.{alias.name}"
                    ), f"{_rel(page)}: from {node.module} import {alias.name}: no such name"
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("hfgcot"):
                        importlib.import_module(alias.name)


RUNNABLE = [p for p in PAGES if any(not NEEDS.match(b) for b in _python_blocks(p))]


@pytest.mark.parametrize("page", RUNNABLE, ids=_rel)
def test_runnable_examples_run(page, tmp_path, monkeypatch):
    """Blocks without ``# needs:`` run in order, in one namespace, in an empty folder."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HFGCOT_QUIET", "1")
    namespace: dict[str, object] = {"__name__": "__docs__"}
    for number, body in enumerate(_python_blocks(page), 1):
        if NEEDS.match(body):
            continue
        code = compile(body, f"{_rel(page)} (python block {number})", "exec")
        exec(code, namespace)  # noqa: S102 - the documentation's own examples
