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
    (tmp_path / "dtype.yaml").write_text("dtype: float17\n")
    (tmp_path / "flag_only.yaml").write_text("overwrite: true\n")
    (tmp_path / "no_prompt.json").write_text('{"grounding-prompt": "@nofile.txt"}')
    (tmp_path / "not_a_model").mkdir()
    return {
        "data": str(data),
        "bad": str(bad),
        "saved": str(saved),
        "model": toy_model(),
        "typo": str(tmp_path / "typo.yaml"),
        "choice": str(tmp_path / "choice.json"),
        "dtype": str(tmp_path / "dtype.yaml"),
        "flag_only": str(tmp_path / "flag_only.yaml"),
        "no_prompt": str(tmp_path / "no_prompt.json"),
        "not_a_model": str(tmp_path / "not_a_model"),
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
    "ray flags alone": (
        ["gcot", *IO, "--ray-num-actors", "2"],
        "--ray-num-actors need --ray-address",
    ),
    "publish without version": (["gcot", *IO, "--push-to-hub", "./rel"], "needs --version"),
    "config without run config": (["config", "{saved}"], "records no run config"),
    "evaluate missing column": (["evaluate", "grounding", "{data}"], "pred_bbox"),
    "no hub dataset": (
        ["gcot", "--input", "nobody/nodataset", "--output", "o", "--model", "{model}"],
        "input 'nobody/nodataset' is neither a saved dataset, a .jsonl file nor a dataset found",
    ),
    "draw a missing folder": (["draw", "./nope", "--output", "p"], "input not found: ./nope"),
    "evaluate a missing input": (
        ["evaluate", "grounding", "nope_folder"],
        "input 'nope_folder' is neither",
    ),
    "publish a missing folder": (
        ["publish", "./nope", "./rel", "--version", "1.0.0"],
        "./nope is not a saved dataset folder",
    ),
    "config of a missing path": (["config", "./nope"], "./nope does not exist"),
    "bad dtype in a file": (["gcot", *IO, "--config", "{dtype}"], "dtype: must be one of auto,"),
    "flag-only key in a file": (
        ["gcot", *IO, "--config", "{flag_only}"],
        "--overwrite is about this command, not the run",
    ),
    "missing prompt file in a file": (
        ["gcot", *IO, "--config", "{no_prompt}"],
        "grounding_prompt: cannot read nofile.txt",
    ),
    "missing processor": (
        ["sft", "--input", "{data}", "--output", "o", "--processor", "./nothere"],
        "processor folder not found: ./nothere",
    ),
    "folder without config.json": (
        ["gcot", "--input", "{data}", "--output", "o", "--model", "{not_a_model}"],
        "not a model folder: no config.json in",
    ),
    "no such cuda device": (["gcot", *IO, "--device", "cuda:99"], "--device cuda:99: "),
    "split of a jsonl": (["gcot", *IO, "--split", "test"], "--split is for a Hub dataset"),
    "served model of unknown settings": (
        ["gcot", *IO[:4], "--model", "nobody/m", "--endpoint", "http://127.0.0.1:9/v1"],
        "give --family/--min-pixels/--max-pixels with the values the server uses",
    ),
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


@pytest.mark.parametrize("bug", [RuntimeError("a bug"), KeyError("bbox_2d"), ValueError("a bug")])
def test_internal_errors_are_not_user_errors(inputs, monkeypatch, bug):
    """An exception the pipeline raises while it runs is a bug (traceback, exit 1), whatever
    its type, unless it is one of the library's user-facing errors."""
    import hfgcot.pipelines.gcot as gcot

    def broken(*args, **kwargs):
        raise bug

    monkeypatch.setattr(gcot, "add_gcot", broken)
    with pytest.raises(type(bug)) as raised:
        main(["gcot", "--input", inputs["data"], "--output", "o", "--model", inputs["model"]])
    assert raised.value is bug


def test_a_missing_column_while_running_is_a_user_error(inputs, monkeypatch, capsys):
    from hfgcot.errors import MissingColumnError

    def refuse(*args, **kwargs):
        raise MissingColumnError("column 'q' not in dataset")

    monkeypatch.setattr("hfgcot.pipelines.gcot.add_gcot", refuse)
    argv = ["gcot", "--input", inputs["data"], "--output", "o", "--model", inputs["model"]]
    assert main(argv) == 2
    assert "hfgcot: error: column 'q' not in dataset (--debug" in capsys.readouterr().err


FLAG_ERRORS = {
    "prompt file": (["--grounding-prompt", "@nofile.txt"], "cannot read nofile.txt: No such file"),
    "dtype": (["--dtype", "float17"], "must be one of auto, bfloat16, float16, float32"),
    "unknown flag": (
        ["--bogus", "1"],
        "unrecognized arguments: --bogus 1 (see hfgcot gcot --help)",
    ),
}


@pytest.mark.parametrize("argv, message", FLAG_ERRORS.values(), ids=FLAG_ERRORS.keys())
def test_flag_errors_say_what_and_where(capsys, argv, message):
    with pytest.raises(SystemExit) as exit_:
        main(["gcot", "--input", "x.jsonl", "--output", "o", *argv])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and len(err.strip().splitlines()) == 1
    assert message in err, err
