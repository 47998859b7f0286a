"""Every subcommand through ``main(argv)`` on the toy model and small inputs: sft -> predict ->
evaluate, evaluate gcot, draw, dense and region captions, publish + config of a release, Ray."""

from __future__ import annotations

import html
import importlib.util
import json
import os

import pytest
from cli_inputs import scene_jsonl, toy_model
from datasets import Dataset, Image, load_from_disk

from hfgcot import evaluate_gcot, evaluate_grounding, get_provenance
from hfgcot.cli import main


@pytest.mark.model
def test_sft_predict_evaluate(tmp_path, capsys):
    data = scene_jsonl(tmp_path / "data", n=3)
    sft, pred = tmp_path / "sft", tmp_path / "pred"
    argv = ["sft", "--input", str(data), "--output", str(sft), "--bbox-format", "xyxy"]
    assert main([*argv, "--max-pixels", "200704"]) == 0
    rows = load_from_disk(str(sft))
    assert rows["sft_status"][:3] == ["ok"] * 3 and rows["sft_status"][3] != "ok"
    assert get_provenance(rows)[-1]["run_config"]["max_pixels"] == 200704
    argv = ["predict", "--input", str(sft), "--output", str(pred), "--model", toy_model()]
    assert main([*argv, "--max-new-tokens", "32"]) == 0
    predicted = load_from_disk(str(pred))
    assert len(predicted) == 4 and predicted["pred_status"][3] == rows["sft_status"][3]
    capsys.readouterr()
    metrics_file = tmp_path / "metrics.json"
    argv = ["evaluate", "grounding", str(pred), "--output", str(metrics_file)]
    assert main([*argv, "--iou-threshold", "0.3"]) == 0
    printed = json.loads(capsys.readouterr().out)
    expected = evaluate_grounding(predicted, iou_threshold=0.3)
    assert printed == json.loads(metrics_file.read_text()) == json.loads(json.dumps(expected))
    assert printed["n"] == 3 and "acc@0.3" in printed
    assert main([*argv, "--iou-threshold", "0.3"]) == 2  # the metrics file exists
    assert main([*argv, "--iou-threshold", "0.3", "--overwrite"]) == 0


def test_evaluate_gcot_of_a_jsonl(tmp_path, capsys):
    rows = [
        {
            "pred_answer": "Answer: red",
            "answer": ["red"],
            "pred_bbox": [0, 0, 9, 9],
            "gt_bbox": [0, 0, 9, 9],
        },
        {"pred_answer": "blue", "answer": ["red"], "pred_bbox": [], "gt_bbox": [0, 0, 9, 9]},
    ]
    path = tmp_path / "scored.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    assert main(["evaluate", "gcot", str(path), "--gt-format", "xyxy"]) == 0
    assert json.loads(capsys.readouterr().out) == evaluate_gcot(rows)
    with pytest.raises(SystemExit) as exc:
        main(["evaluate", "gcot", str(path), "--gt-format", "cxcy"])
    assert exc.value.code == 2 and "--gt-format: must be one of" in capsys.readouterr().err


@pytest.mark.model
def test_draw_a_saved_gcot_dataset(tmp_path, capsys):
    data = scene_jsonl(tmp_path / "data", n=2, missing=False)
    out = tmp_path / "out"
    argv = ["gcot", "--input", str(data), "--output", str(out), "--model", toy_model()]
    assert main([*argv, "--max-new-tokens", "48", "--grounding-max-new-tokens", "24"]) == 0
    pictures = tmp_path / "pictures"
    assert main(["draw", str(out), "--output", str(pictures), "--cols", "2", "--width", "200"]) == 0
    assert "2 rows ->" in capsys.readouterr().out
    assert sorted(p.name for p in pictures.iterdir()) == [
        "grid.png",
        "index.html",
        "row_000.png",
        "row_001.png",
    ]
    from PIL import Image

    assert Image.open(pictures / "grid.png").width == 2 + 2 * (200 + 8) + 8 - 2
    assert main(["draw", str(out), "--output", str(pictures)]) == 2  # not empty
    regions = ["--text-column", "question", "--groundings-column", "none", "--overwrite"]
    assert main(["draw", str(out), "--output", str(pictures), "--limit", "1", *regions]) == 0
    page = (pictures / "index.html").read_text()
    question = load_from_disk(str(out))["question"][0]
    assert html.escape(question) in page and "row 1" not in page  # --limit 1


@pytest.mark.model
def test_dense_and_region_captions(tmp_path):
    data = scene_jsonl(tmp_path / "data", n=2, missing=False)
    small = ["--model", toy_model(), "--max-new-tokens", "24", "--batch-size", "4"]
    dense = tmp_path / "dense"
    argv = ["dense-captions", "--input", str(data), "--output", str(dense), *small]
    assert main([*argv, "--max-questions", "1", "--check-max-new-tokens", "4"]) == 0
    assert len(load_from_disk(str(dense))["final_caption"]) == 2
    regions = tmp_path / "regions"
    argv = ["region-captions", "--input", str(data), "--output", str(regions), *small]
    assert main([*argv, "--bbox-format", "xyxy", "--mode", "crop", "--overwrite-columns"]) == 0
    out = load_from_disk(str(regions))
    assert out["region_caption_status"] == ["ok", "ok"]
    assert get_provenance(out)[-1]["run_config"]["mode"] == "crop"


@pytest.mark.model
def test_publish_locally_then_config_of_the_release(tmp_path, capsys):
    data = scene_jsonl(tmp_path / "data", n=2, missing=False)
    out, rel = tmp_path / "out", tmp_path / "releases" / "shapes"
    argv = ["sft", "--input", str(data), "--output", str(out), "--bbox-format", "xyxy"]
    assert main([*argv, "--push-to-hub", str(rel), "--version", "1.0.0"]) == 0
    assert "published v1.0.0" in capsys.readouterr().out
    assert main(["config", str(rel), "--version", "1.0.0"]) == 0
    printed = capsys.readouterr().out
    assert "pipeline: grounding_sft\n" in printed and "bbox_format: xyxy\n" in printed
    assert "hfgcot sft --config <this file>" in printed
    card = (rel / "v1.0.0" / "README.md").read_text()
    assert "Run config (`hfgcot config" in card and "\nbbox_format: xyxy\n" in card
    assert str(tmp_path) not in card


RAY_RUNS = {
    "gcot": ["--max-new-tokens", "32", "--grounding-max-new-tokens", "16"],
    "dense-captions": ["--max-new-tokens", "16", "--max-questions", "1", "--batch-size", "2"],
}


@pytest.mark.slow
@pytest.mark.model
@pytest.mark.parametrize("command", RAY_RUNS)
def test_pipeline_on_ray_equals_the_local_run(command, tmp_path, capsys):
    ray = pytest.importorskip("ray", reason="needs pip install 'hfgcot[ray]'")
    data = scene_jsonl(tmp_path / "data", n=2, missing=False)
    small = ["--model", toy_model(), *RAY_RUNS[command]]
    local, remote = tmp_path / "local", tmp_path / "ray"
    assert main([command, "--input", str(data), "--output", str(local), *small]) == 0
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=200 * 1024**2)
    try:
        argv = [command, "--input", str(data), "--output", str(remote), *small]
        assert main([*argv, "--ray-address", "local", "--ray-num-actors", "1"]) == 0
    finally:
        ray.shutdown()
    on_ray, here = load_from_disk(str(remote)), load_from_disk(str(local))
    assert get_provenance(on_ray)[-1]["executor"]["name"] == "ray"
    assert on_ray.features == here.features
    rows = [ds.cast_column("image", Image(decode=False)).to_dict() for ds in (on_ray, here)]
    assert rows[0] == rows[1]


def test_config_record_choice(tmp_path, capsys):
    from hfgcot import GCoTConfig, attach_provenance
    from hfgcot.config_files import run_config

    ds = Dataset.from_dict({"x": [1]})
    for n in (2, 3):
        record = {"pipeline": "gcot", "run_config": run_config("gcot", GCoTConfig(batch_size=n))}
        ds = attach_provenance(ds, record)
    ds.save_to_disk(str(tmp_path / "d"))
    assert main(["config", str(tmp_path / "d"), "--record", "1"]) == 0
    assert "batch_size: 2\n" in capsys.readouterr().out
    assert main(["config", str(tmp_path / "d")]) == 0
    assert "batch_size: 3\n" in capsys.readouterr().out
    assert main(["config", str(tmp_path / "d"), "--record", "3"]) == 2
    assert "--record must be 1..2" in capsys.readouterr().err


def test_run_config_records_no_machine_detail(tmp_path, monkeypatch):
    from hfgcot import EndpointSpec, GCoTConfig
    from hfgcot.config_files import run_config
    from hfgcot.model.spec import ModelSpec
    from hfgcot.publishing.provenance import run_model_options

    def config_of(spec):
        return run_config("gcot", GCoTConfig(), run_model_options(spec))

    folder = tmp_path / "my-model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    local = config_of(ModelSpec(str(folder), device="cuda:3"))
    assert local["model"] == "my-model" and local["revision"].startswith("local:")
    assert "device" not in local and str(tmp_path) not in json.dumps(local)
    monkeypatch.setenv("MY_KEY", "sk-secret")
    record = config_of(EndpointSpec("http://10.0.0.7:8000/v1", str(folder), api_key_env="MY_KEY"))
    text = json.dumps(record)
    assert record["model"] == "my-model" and record["api_key_env"] == "MY_KEY"
    assert "10.0.0.7" not in text and "sk-secret" not in text and str(tmp_path) not in text
    hub = config_of(ModelSpec("org/model", revision="v2"))
    assert hub["model"] == "org/model" and hub["revision"] == "v2"  # offline: as requested


def test_view_is_registered_when_the_viewer_is_installed(monkeypatch, capsys):
    import sys
    import types

    from hfgcot.cli import build_parser
    from hfgcot.cli.tools import VIEWER

    seen = []
    viewer = types.ModuleType(VIEWER)
    viewer.__spec__ = types.SimpleNamespace(name=VIEWER)
    viewer.add_view_parser = lambda sub: sub.add_parser("view").add_argument("dataset")
    viewer.run_view = lambda args: seen.append(args.dataset) or 0
    monkeypatch.setitem(sys.modules, VIEWER, viewer)
    assert "view" in build_parser()._subparsers._group_actions[0].choices
    assert main(["view", "out/gcot"]) == 0 and seen == ["out/gcot"]
    monkeypatch.delitem(sys.modules, VIEWER)
    if importlib.util.find_spec(VIEWER) is None:  # the viewer not installed: no view subcommand
        assert "view" not in build_parser()._subparsers._group_actions[0].choices


def test_publish_refuses_a_lost_image_unless_drop_bad_rows(tmp_path, capsys):
    data = scene_jsonl(tmp_path / "data", n=2, missing=True)  # the last row's file is missing
    out, rel = tmp_path / "out", tmp_path / "releases" / "shapes"
    argv = ["sft", "--input", str(data), "--output", str(out), "--bbox-format", "xyxy"]
    assert main([*argv, "--push-to-hub", str(rel), "--version", "1.0.0"]) == 2
    err = capsys.readouterr().err
    assert "publish refused: 1 of 3 rows" in err and "file_not_found" in err
    assert [line for line in err.splitlines() if line.startswith("hfgcot: ")] == [
        err[err.index("hfgcot: error") :].strip()
    ]
    assert not (rel / "v1.0.0").exists()
    assert load_from_disk(str(out)).num_rows == 3  # the run's output is saved all the same
    publish = ["publish", str(out), str(rel), "--version", "1.0.0", "--drop-bad-rows"]
    assert main(publish) == 0
    assert "published v1.0.0 ({'train': 2})" in capsys.readouterr().out
    assert "dropped" in (rel / "v1.0.0" / "README.md").read_text()
