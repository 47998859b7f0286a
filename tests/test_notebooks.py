"""Notebooks are committed without outputs and run here top to bottom, with nothing on stderr and no
warning in what they show; examples have usage."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
PLUMBING = {"grounding_sft.ipynb"}  # about columns, frames and training: a random model will do


def test_there_are_notebooks():
    names = {p.name for p in NOTEBOOKS}
    assert {
        "quickstart.ipynb",
        "dense_captions.ipynb",
        "region_captions.ipynb",
        "grounding_sft.ipynb",
    } <= names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_has_no_outputs(path):
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    nbformat.validate(nb)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name} cell {i} has outputs: clear them"
            assert cell.execution_count is None, f"{path.name} cell {i} has an execution count"
    assert "widgets" not in nb.metadata, f"{path.name}: widget state saved in the metadata"


def _cells(path, kind):
    nb = json.loads(path.read_text())
    return ["".join(cell["source"]) for cell in nb["cells"] if cell["cell_type"] == kind]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_has_one_model_line(path):
    """Each notebook runs offline on the shipped toy model, or (plumbing only, and it says so) on
    a tiny random one; one `MODEL = ...` line switches to a real model."""
    lines = [
        line
        for source in _cells(path, "code")
        for line in source.splitlines()
        if line.startswith("MODEL =")
    ]
    assert len(lines) == 1, lines
    intro = _cells(path, "markdown")[0]
    if path.name in PLUMBING:
        assert "get_tiny_vlm_path()" in lines[0]
        assert "random" in intro and "plumbing" in intro
    else:
        assert "tiny_shapes_path()" in lines[0] and "toy model" in intro


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_asserts_what_it_shows_and_ends_with_the_gpu_recipe(path):
    asserts = [s for s in _cells(path, "code") if "assert " in s]
    assert len(asserts) >= 3, f"{path.name}: check what the notebook shows"
    last = _cells(path, "markdown")[-1]
    assert last.startswith("## On a GPU") and "Qwen2.5-VL" in last and "MODEL =" in last


def execute(path: Path, timeout: int = 900):
    """Run a notebook top to bottom in its own folder, as a user would; a failing cell raises."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(str(path), as_version=4)
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute()
    return nb


def noise(nb) -> list[str]:
    """What an executed notebook shows that a reader should not see: stderr and warnings."""
    found = []
    for i, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream" and output.get("name") == "stderr":
                found.append(f"cell {i} stderr: {output['text'][:200]}")
                continue
            text = output.get("text") or output.get("data", {}).get("text/plain", "")
            if "Warning" in "".join(text):
                found.append(f"cell {i} shows a warning: {''.join(text)[:200]}")
    return found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_without_errors_or_warnings(path):
    nb = execute(path)
    assert noise(nb) == [], f"{path.name}: " + "\n".join(noise(nb))


def test_a_warning_in_a_notebook_is_seen(tmp_path):
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("import warnings\nwarnings.warn('careful')"),
        nbformat.v4.new_code_cell("import sys\nprint('oops', file=sys.stderr)"),
        nbformat.v4.new_code_cell("print('RuntimeWarning: shown as text')"),
        nbformat.v4.new_code_cell("print('fine')"),
    ]
    path = tmp_path / "warns.ipynb"
    nbformat.write(nb, str(path))
    found = noise(execute(path, timeout=120))
    assert len(found) == 3, found
    assert "UserWarning: careful" in found[0] and "oops" in found[1] and "shown as" in found[2]


def test_progress_bars_in_notebooks_need_ipywidgets():
    # without it tqdm.auto prints "TqdmWarning: IProgress not found" in every notebook
    assert importlib.util.find_spec("ipywidgets") is not None, "pip install ipywidgets (dev extra)"


def test_gcot_example_help_shows_a_full_command(capsys):
    spec = importlib.util.spec_from_file_location("example_gcot", ROOT / "examples" / "gcot.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with pytest.raises(SystemExit) as exit_info:
        module.parse_args(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "python examples/gcot.py" in out and "--model Qwen/Qwen2.5-VL-3B-Instruct" in out
    assert "--push-to-hub me/my-gcot --version 1.0.0" in out
    assert module.parse_args([]).model is None  # default: the tiny model
