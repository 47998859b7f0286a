"""User errors are one line on stderr with exit status 2, found before any model is loaded;
``--debug`` raises the error itself."""

from __future__ import annotations

import re

import pytest
from cli_inputs import scene_jsonl, toy_model
from datasets import Dataset

from hfgcot.cli import main


@pytest.fixture
def no_model_loads(monkeypatch):
    """Loading any model weights fails the test (the errors must come first)."""
    import transformers

    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded before the user error was found")

    monkeypatch.setattr(transformers.AutoModelForImageTextToText, "from_pretrained", refuse)


@pytest.fixture
def inputs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = scene_jsonl(tmp_path / "data", n=1, missing=False)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"image": "a.png", "question": "q"}\n{"image": "b.png", "question": \n')
    saved = tmp_path / "saved"
    Dataset.from_dict({"image": [None], "question": ["q"], "answer": ["a"]}).save_to_disk(saved)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    (tmp_path / "typo.yaml").write_text("batch_sise: 2\n")
    (tmp_path / "choice.json").write_text('{"box_space": "nowhere"}')
    return {
        "data": str(data),
        "bad": str(bad),
        "saved": str(saved),
        "model": toy_model(),
        "typo": str(tmp_path / "typo.yaml"),
        "choice": str(tmp_path / "choice.json"),
    }


IO = ["--input", "{data}", "--output", "out", "--model", "{model}"]
CASES = {
    "missing input": (["gcot", "--input", "nope.jsonl", "--output", "o"], "input file not found"),
    "missing folder": (["gcot", "--input", "./nope", "--output", "o"], "input not found: ./nope"),
    "no input": (["gcot", "--output", "o"], "--input is required"),
    "malformed line": (
        ["gcot", "--input", "{bad}", "--output", "o"],
        "bad.jsonl line 2: not valid",
    ),
    "wrong column": (["gcot", *IO, "--question-column", "q"], "column 'q' not in"),
    "wrong column sft": (
        ["sft", "--input", "{data}", "--output", "o", "--bbox-column", "box"],
        "column 'box'",
    ),
    "bad value": (["gcot", *IO, "--batch-size", "0"], "batch_size must be >= 1, got 0"),
    "bad prompt": (["gcot", *IO, "--grounding-prompt", "Find it"], "missing {phrase}"),
    "bad file key": (["gcot", *IO, "--config", "{typo}"], "did you mean 'batch_size'?"),
    "bad file value": (["gcot", *IO, "--config", "{choice}"], "box_space: must be one of"),
    "no folder": (
        ["gcot", "--input", "{data}", "--output", "o", "--model", "./no/such"],
        "model folder not found: ./no/such",
    ),
    "not on the hub": (
        ["gcot", "--input", "{data}", "--output", "o", "--model", "nobody/no-such-model"],
        "model 'nobody/no-such-model' is neither a local folder nor reachable on the Hub (HF_HUB_OFFLINE",
    ),
    "output not empty": (
        ["gcot", "--input", "{data}", "--output", "full"],
        "output full exists and is not empty",
    ),
    "output is input": (
        ["gcot", "--input", "{saved}", "--output", "{saved}"],
        "is (or holds) the input",
    ),
    "output holds input": (
        ["gcot", "--input", "{saved}", "--output", "."],
        "is (or holds) the input",
    ),
    "endpoint and dtype": (
        ["gcot", *IO, "--endpoint", "http://h/v1", "--dtype", "bfloat16"],
        "--endpoint runs no model here: drop dtype",
    ),
    "served option alone": (
        ["gcot", *IO, "--family", "qwen2_vl"],
        "--family only apply to a served model",
    ),
    "ray and checkpoints": (
        ["gcot", *IO, "--ray-address", "auto", "--checkpoint-dir", "c"],
        "are for runs on this machine",
    ),
    "ray flags alone": (["gcot", *IO, "--ray-actors", "2"], "need --ray-address"),
    "publish without version": (["gcot", *IO, "--push-to-hub", "./rel"], "needs --version"),
    "config without run config": (["config", "{saved}"], "records no run config"),
    "evaluate missing column": (["evaluate", "grounding", "{data}"], "pred_bbox"),
}


@pytest.mark.parametrize("argv, message", CASES.values(), ids=CASES.keys())
def test_user_error_is_one_line_exit_2(inputs, no_model_loads, capsys, argv, message):
    assert main([a.format(**inputs) for a in argv]) == 2
    err = capsys.readouterr().err
    lines = [line for line in re.split(r"[\r\n]", err) if line.startswith("hfgcot")]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("hfgcot: error:") and message in lines[0], lines[0]
    assert lines[0].endswith("(--debug shows the traceback)")


def test_debug_raises_the_error_itself(inputs):
    with pytest.raises(FileNotFoundError, match="input file not found"):
        main(["gcot", "--input", "nope.jsonl", "--output", "o", "--debug"])
    with pytest.raises(ValueError, match="line 2"):
        main(["gcot", "--input", inputs["bad"], "--output", "o", "--debug"])


def test_internal_errors_are_not_user_errors(inputs, monkeypatch):
    import hfgcot.pipelines.gcot as gcot

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(gcot, "add_gcot", broken)
    with pytest.raises(RuntimeError, match="a bug"):
        main(["gcot", "--input", inputs["data"], "--output", "o", "--model", inputs["model"]])
