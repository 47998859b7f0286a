"""The command line (`hfgcot gcot`, `hfgcot demo`) and the tiny model's determinism."""

from __future__ import annotations

import json
import re

import pytest
from conftest import random_image
from datasets import load_from_disk
from safetensors.torch import load_file

from hfgcot import get_provenance
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


def _rows_jsonl(tmp_path, n=2):
    rows = []
    for i in range(n):
        random_image(70 + 10 * i, 60, seed=i).save(tmp_path / f"img{i}.png")
        rows.append({"image": f"img{i}.png", "question": f"q{i}", "answer": "a"})
    data = tmp_path / "rows.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows))
    return data


@pytest.mark.model
def test_config_file_flags_win_and_checkpoint_resume(tiny_vlm_path, tmp_path, capsys):
    data = _rows_jsonl(tmp_path, 3)
    prompt = tmp_path / "reasoning.txt"
    prompt.write_text("Q: {question} A: {answer}. Think, then write Keywords: a, b")
    config = tmp_path / "run.yaml"
    config.write_text(
        f"model: {tiny_vlm_path}\ninput: {data}\nmax-new-tokens: 5\nbatch_size: 4\n"
        f"reasoning_prompt: '@{prompt}'\ncheckpoint_dir: {tmp_path / 'ckpt'}\nshard_size: 2\n"
    )
    out = tmp_path / "out"
    argv = ["gcot", "--config", str(config), "--output", str(out), "--batch-size", "2"]
    assert main(argv) == 0
    ds = load_from_disk(str(out))
    assert len(ds) == 3
    record = get_provenance(ds)[-1]
    assert "Think, then write Keywords" in json.dumps(record)
    assert len(list((tmp_path / "ckpt").rglob("_SUCCESS"))) == 2
    capsys.readouterr()
    # the same command again: refused while the output exists, reuses every shard with --overwrite
    assert main(argv) == 2
    assert "exists and is not empty" in capsys.readouterr().err
    assert main([*argv, "--overwrite"]) == 0


@pytest.mark.parametrize(
    "argv, message",
    [
        (["gcot", "--input", "nope.jsonl", "--output", "o"], "input file not found"),
        (["gcot", "--output", "o"], "--input is required"),
        (["gcot", "--input", "{data}", "--output", "{data}"], "is the input"),
        (["gcot", "--config", "{bad}", "--input", "{data}", "--output", "o"], "batch_sise"),
        (["gcot", "--input", "{data}", "--output", "o", "--config", "{worse}"], "box_space"),
        (
            ["gcot", "--input", "{data}", "--output", "o", "--question-column", "q"],
            "column 'q' not in",
        ),
        (
            ["gcot", "--input", "{data}", "--output", "o", "--model", "./no/such/folder"],
            "not found",
        ),
    ],
)
def test_user_errors_are_one_line_exit_2(tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    data = _rows_jsonl(tmp_path, 1)
    (tmp_path / "bad.yaml").write_text("batch_sise: 2\n")
    (tmp_path / "worse.json").write_text('{"box_space": "nowhere"}')
    fill = {
        "data": str(data),
        "bad": str(tmp_path / "bad.yaml"),
        "worse": str(tmp_path / "worse.json"),
    }
    assert main([a.format(**fill) for a in argv]) == 2
    err = capsys.readouterr().err
    last = re.split(r"[\r\n]", err.strip())[-1]  # progress bars may come before it
    assert message in last and last.startswith("hfgcot: error:") and "Traceback" not in err


def test_negative_limit_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["gcot", "--input", "x.jsonl", "--output", "o", "--limit", "-1"])
    assert exc.value.code == 2 and "must be >= 0" in capsys.readouterr().err


def test_cli_subprocess_exit_status(tmp_path):
    import subprocess
    import sys

    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "hfgcot.cli",
            "gcot",
            "--input",
            str(tmp_path / "x.jsonl"),
            "--output",
            "o",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].startswith("hfgcot: error: input file not found")
