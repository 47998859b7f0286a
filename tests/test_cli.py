"""The command line (`hfgcot gcot`, `hfgcot demo`) and the tiny model's determinism."""

from __future__ import annotations

import json

import pytest
from conftest import random_image
from datasets import load_from_disk
from safetensors.torch import load_file

from hfgcot.cli import build_parser, main
from hfgcot.testing.tiny import build_tiny_vlm


def test_help_has_examples(capsys):
    with pytest.raises(SystemExit):
        main(["gcot", "--help"])
    out = capsys.readouterr().out
    assert "--input" in out and "hfgcot gcot --input" in out
    commands = build_parser()._subparsers._group_actions[0].choices
    assert {"gcot", "demo", "publish"} <= set(commands)


@pytest.mark.model
def test_gcot_from_jsonl_and_saved_dir(tiny_vlm_path, tmp_path, capsys):
    rows = []
    for i in range(3):
        random_image(80 + 10 * i, 60, seed=i).save(tmp_path / f"img{i}.png")
        rows.append({"image": f"img{i}.png", "question": f"q{i}", "answer": "a"})
    rows.append({"image": "missing.png", "question": "q3", "answer": "a"})
    data = tmp_path / "rows.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows))
    out_dir = tmp_path / "out"
    common = ["--model", tiny_vlm_path, "--max-new-tokens", "6", "--batch-size", "2"]
    assert main(["gcot", "--input", str(data), "--output", str(out_dir), *common]) == 0
    out = load_from_disk(str(out_dir))
    assert len(out) == 4 and out["question"] == ["q0", "q1", "q2", "q3"]
    assert out["gcot_status"][3] == "file_not_found: missing.png"
    assert "4 rows ->" in capsys.readouterr().out

    again = tmp_path / "again"
    args = ["gcot", "--input", str(out_dir), "--output", str(again), "--limit", "2", *common]
    assert main(args) == 0
    assert len(load_from_disk(str(again))) == 2


@pytest.mark.model
def test_demo_writes_dataset_and_pictures(tiny_vlm_path, tmp_path, capsys):
    assert main(["demo", "--output", str(tmp_path), "--model", tiny_vlm_path]) == 0
    printed = capsys.readouterr().out
    assert str(tmp_path / "gcot") in printed and str(tmp_path / "pictures") in printed
    ds = load_from_disk(str(tmp_path / "gcot"))
    assert len(ds) == len(list((tmp_path / "pictures").glob("row_*.png")))


def test_tiny_model_is_deterministic_for_a_seed(tmp_path):
    a = load_file(f"{build_tiny_vlm(tmp_path / 'a', seed=3)}/model.safetensors")
    b = load_file(f"{build_tiny_vlm(tmp_path / 'b', seed=3)}/model.safetensors")
    c = load_file(f"{build_tiny_vlm(tmp_path / 'c', seed=4)}/model.safetensors")
    assert a.keys() == b.keys()
    assert all((a[k] == b[k]).all() for k in a)
    assert any((a[k] != c[k]).any() for k in a)
    tok_a = (tmp_path / "a" / "tokenizer.json").read_text()
    assert tok_a == (tmp_path / "b" / "tokenizer.json").read_text()
