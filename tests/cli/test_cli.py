"""The command line end to end on the shipped toy model: pipelines from .jsonl and saved folders,
portable outputs, resume, a run repeated from its recorded config, exit statuses."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
from cli_inputs import scene_jsonl, toy_model
from datasets import Image, load_from_disk
from safetensors.torch import load_file

from hfgcot import get_provenance
from hfgcot.cli import build_parser, main
from hfgcot.io import load_input
from hfgcot.testing.tiny import build_tiny_vlm

SMALL = ["--max-new-tokens", "48", "--grounding-max-new-tokens", "24", "--batch-size", "4"]
SUBCOMMANDS = {
    "gcot",
    "dense-captions",
    "region-captions",
    "sft",
    "predict",
    "evaluate",
    "draw",
    "config",
    "publish",
    "demo",
}


def test_help_lists_every_subcommand_with_examples(capsys):
    commands = build_parser()._subparsers._group_actions[0].choices
    assert set(commands) >= SUBCOMMANDS
    for name in sorted(SUBCOMMANDS):
        with pytest.raises(SystemExit) as exc:
            main([name, "--help"])
        assert exc.value.code == 0
        assert capsys.readouterr().out.startswith(f"usage: hfgcot {name}")
    with pytest.raises(SystemExit):
        main(["gcot", "--help"])
    assert "hfgcot gcot --input" in capsys.readouterr().out


@pytest.mark.model
def test_gcot_jsonl_output_is_portable(tmp_path, capsys):
    """A .jsonl input's images are embedded: the saved folder moves, its images still decode, and
    no file of it names the input's folder."""
    data = scene_jsonl(tmp_path / "data")
    out = tmp_path / "out"
    argv = ["gcot", "--input", str(data), "--output", str(out), "--model", toy_model(), *SMALL]
    assert main(argv) == 0
    assert "4 rows ->" in capsys.readouterr().out
    moved = tmp_path / "elsewhere" / "gcot"
    shutil.move(str(out), str(moved))
    shutil.rmtree(tmp_path / "data")  # the images are in the dataset now
    ds = load_from_disk(str(moved))
    assert isinstance(ds.features["image"], Image) and len(ds) == 4
    assert [ds[i]["image"].size[0] > 0 for i in range(3)] == [True] * 3
    assert ds[3]["image"] is None and ds["gcot_status"][3] == "file_not_found: missing.png"
    for f in moved.rglob("*"):
        if f.is_file():
            data = f.read_bytes()
            assert str(tmp_path).encode() not in data and toy_model().encode() not in data, f.name


@pytest.mark.model
def test_no_embed_images_keeps_paths_and_saved_folder_input(tmp_path):
    data = scene_jsonl(tmp_path / "data", n=2, missing=False)
    out = tmp_path / "out"
    argv = ["gcot", "--input", str(data), "--output", str(out), "--model", toy_model(), *SMALL]
    assert main([*argv, "--no-embed-images"]) == 0
    paths = load_from_disk(str(out))["image"]
    assert all(p.startswith(str(tmp_path / "data")) for p in paths)
    again = tmp_path / "again"  # a saved folder as input: images stay as they are unless asked
    argv = ["gcot", "--input", str(out), "--output", str(again), "--limit", "1", "--model"]
    assert main([*argv, toy_model(), *SMALL]) == 0
    assert load_from_disk(str(again))["image"] == paths[:1]


@pytest.mark.model
def test_rerun_reuses_finished_shards_and_says_how_many(tmp_path, capsys):
    data = scene_jsonl(tmp_path / "data", n=3)
    ckpt = tmp_path / "ckpt"
    argv = ["gcot", "--input", str(data), "--output", str(tmp_path / "out"), "--model", toy_model()]
    argv += [*SMALL, "--checkpoint-dir", str(ckpt), "--shard-size", "2"]
    assert main(argv) == 0
    assert "checkpoint: reused 0 of 2 shards" in capsys.readouterr().out
    first = load_from_disk(str(tmp_path / "out")).to_dict()
    assert main([*argv, "--overwrite"]) == 0
    assert "checkpoint: reused 2 of 2 shards" in capsys.readouterr().out
    assert load_from_disk(str(tmp_path / "out")).to_dict() == first


@pytest.mark.model
def test_run_config_prints_and_reproduces_the_rows(tmp_path, capsys):
    """Run, print the recorded config, run again with it: the same rows."""
    data = scene_jsonl(tmp_path / "data", n=3)
    out, again, run_yaml = tmp_path / "out", tmp_path / "again", tmp_path / "run.yaml"
    argv = ["gcot", "--input", str(data), "--output", str(out), "--model", toy_model(), *SMALL]
    argv += ["--box-space", "normalized", "--max-keywords", "3", "--no-allow-urls"]
    assert main(argv) == 0
    capsys.readouterr()
    assert main(["config", str(out), "--output", str(run_yaml)]) == 0
    printed = capsys.readouterr().out
    assert printed == run_yaml.read_text() and printed.startswith("# run config of a gcot run")
    assert "box_space: normalized\n" in printed and "max_keywords: 3\n" in printed
    assert "\nallow_urls: false\n" in printed and "\nmodel: tiny-shapes\n" in printed
    assert "revision: local:" in printed and str(tmp_path) not in printed
    assert toy_model() not in printed and "device" not in printed  # no machine detail
    rerun = ["gcot", "--config", str(run_yaml), "--input", str(data), "--output", str(again)]
    assert main(rerun) == 2  # the recorded model is a local folder: it must be given
    assert "give that folder with --model" in capsys.readouterr().err
    assert main([*rerun, "--model", toy_model()]) == 0
    first, second = load_from_disk(str(out)), load_from_disk(str(again))
    assert second.to_dict() == first.to_dict()
    assert get_provenance(second)[-1]["run_config"] == get_provenance(first)[-1]["run_config"]


@pytest.mark.model
def test_demo_writes_dataset_and_pictures(tiny_vlm_path, tmp_path, capsys):
    assert main(["demo", "--output", str(tmp_path), "--model", tiny_vlm_path]) == 0
    printed = capsys.readouterr().out
    assert str(tmp_path / "gcot") in printed and str(tmp_path / "pictures") in printed
    ds = load_from_disk(str(tmp_path / "gcot"))
    assert len(ds) == len(list((tmp_path / "pictures").glob("row_*.png")))
    assert (tmp_path / "pictures" / "grid.png").exists()


def test_tiny_model_is_deterministic_for_a_seed(tmp_path):
    a = load_file(f"{build_tiny_vlm(tmp_path / 'a', seed=3)}/model.safetensors")
    b = load_file(f"{build_tiny_vlm(tmp_path / 'b', seed=3)}/model.safetensors")
    c = load_file(f"{build_tiny_vlm(tmp_path / 'c', seed=4)}/model.safetensors")
    assert a.keys() == b.keys()
    assert all((a[k] == b[k]).all() for k in a)
    assert any((a[k] != c[k]).any() for k in a)
    tok_a = (tmp_path / "a" / "tokenizer.json").read_text()
    assert tok_a == (tmp_path / "b" / "tokenizer.json").read_text()


def _cli(
    tmp_path, *argv: str, code: str = "from hfgcot.cli import main"
) -> subprocess.CompletedProcess:
    script = f"import sys\n{code}\nsys.exit(main({list(argv)!r}))"
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path
    )


def test_exit_statuses_in_a_subprocess(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "hfgcot.cli", "gcot", "--input", "x.jsonl", "--output", "o"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("hfgcot: error: input file not found")
    usage = _cli(tmp_path, "gcot", "--seed", "x")
    assert usage.returncode == 2 and len(usage.stderr.strip().splitlines()) == 1
    debug = _cli(tmp_path, "gcot", "--input", "x.jsonl", "--output", "o", "--debug")
    assert debug.returncode == 1 and "Traceback" in debug.stderr  # --debug: the traceback
    broken = "import hfgcot.cli.run as r\nr.run_pipeline_command = lambda args: 1 / 0\n"
    internal = _cli(tmp_path, "gcot", code=broken + "from hfgcot.cli import main")
    assert internal.returncode == 1 and "ZeroDivisionError" in internal.stderr
    assert "Traceback" in internal.stderr and "hfgcot: error" not in internal.stderr
    ok = _cli(tmp_path, "config", "--help")
    assert ok.returncode == 0 and "hfgcot config" in ok.stdout


def test_docs_name_every_subcommand():
    from pathlib import Path

    text = (Path(__file__).parents[2] / "docs" / "cli.md").read_text()
    for name in build_parser()._subparsers._group_actions[0].choices:
        assert f"`{name}" in text, f"docs/cli.md does not describe `hfgcot {name}`"
    assert "```yaml" in text and "| 2 |" in text and "| 1 |" in text


@pytest.mark.model
@pytest.mark.parametrize(
    ("command", "extra", "status"),
    [
        ("gcot", [], "gcot_status"),
        ("dense-captions", [], "dense_caption_status"),
        (
            "region-captions",
            ["--bbox-format", "xyxy", "--overwrite-columns"],
            "region_caption_status",
        ),
        ("sft", ["--bbox-format", "xyxy"], "sft_status"),
    ],
)
def test_limit_zero_gives_zero_rows_with_every_column(tmp_path, capsys, command, extra, status):
    data = scene_jsonl(tmp_path / "data", n=1)
    out = tmp_path / "out"
    argv = [command, "--input", str(data), "--output", str(out), "--limit", "0", *extra]
    if command != "sft":
        argv += ["--model", toy_model()]
    assert main(argv) == 0
    assert "0 rows ->" in capsys.readouterr().out
    saved = load_input(str(out))
    assert len(saved) == 0 and status in saved.column_names
    assert isinstance(saved.features["image"], Image)
    assert get_provenance(saved)[-1]["run_config"]
