"""Notebooks are committed without outputs (CI executes them with nbmake); examples have usage."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


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


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_has_one_model_line(path):
    """Each notebook runs on the tiny model; one `MODEL = ...` line switches to the real one."""
    nb = json.loads(path.read_text())
    lines = [
        line
        for cell in nb["cells"]
        if cell["cell_type"] == "code"
        for line in "".join(cell["source"]).splitlines()
        if line.startswith("MODEL =")
    ]
    assert len(lines) == 1 and "get_tiny_vlm_path()" in lines[0]


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
