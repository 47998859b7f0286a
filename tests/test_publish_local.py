"""Provenance on datasets and the local publishing backend, end to end: GCoT (scripted tiny model)
-> two versions in a folder -> ``load_dataset`` reads each back with its images and its card."""

from __future__ import annotations

import json
import os

import pytest
from conftest import png_bytes, random_image
from datasets import (
    Dataset,
    DatasetDict,
    Image,
    concatenate_datasets,
    load_dataset,
    load_from_disk,
)
from huggingface_hub import DatasetCard
from PIL import Image as PILImage

from hfgcot import add_gcot, cli, get_provenance, prompts, publish
from hfgcot.publishing import local as publish_local
from hfgcot.publishing.hub import VersionExistsError, is_local_target, parse_version
from hfgcot.publishing.provenance import attach_provenance, record_provenance
from hfgcot.testing.tiny import ScriptedVLM

COT = "Step 1: The red ball is left of the blue box.\nAnswer: red\nKeywords: red ball, blue box"


def script(request, text: str) -> str:
    if "Keywords" in text:
        return COT
    return '```json\n[{"bbox_2d": [10, 20, 100, 150], "label": "x"}]\n```'


def load(path, tmp_path, **kw):
    return load_dataset(str(path), cache_dir=str(tmp_path / "hf-cache"), **kw)


@pytest.fixture(scope="module")
def gcot_ds(tiny_vlm) -> Dataset:
    images = [
        png_bytes(random_image(w, h, seed=i))
        for i, (w, h) in enumerate([(300, 200), (64, 96), (120, 120)])
    ]
    ds = Dataset.from_dict(
        {
            "image": images + [{"bytes": b"not an image", "path": None}],
            "question": ["What is left?"] * 4,
            "answer": ["red ball"] * 4,
        }
    ).cast_column("image", Image())
    return add_gcot(ds, ScriptedVLM(tiny_vlm, script), batch_size=2, max_pixels=None)


def simple_ds(n: int = 3) -> Dataset:
    return Dataset.from_dict({"x": list(range(n)), "text": [f"row {i}" for i in range(n)]})


# ------------------------------------------------------------------------------------------
# Provenance
# ------------------------------------------------------------------------------------------


@pytest.mark.model
def test_add_gcot_records_provenance(gcot_ds, tiny_vlm):
    (record,) = get_provenance(gcot_ds)
    assert record["pipeline"] == "gcot" and record["rows"] == 4
    assert record["model"]["model_id"] == tiny_vlm.model_id
    assert record["model"]["family"] == "qwen2_5_vl"
    assert record["model"]["min_pixels"] == tiny_vlm.min_pixels
    assert record["model"]["max_pixels"] == tiny_vlm.max_pixels
    assert record["model"]["revision"].startswith("local:")
    assert record["prompts"]["reasoning_prompt"] == prompts.GCOT_PROMPT  # the prompts it used
    assert record["prompts"]["system_prompt"] is None and record["prompts"]["version"]
    assert record["config"]["batch_size"] == 2 and record["config"]["box_space"] == "pixels"
    assert [s["name"] for s in record["stages"]] == [
        "gcot_reasoning",
        "gcot_parse",
        "gcot_grounding",
        "gcot_inject",
    ]
    assert record["stages"][0]["config"]["generation"]["max_new_tokens"] == 512
    assert record["status_column"] == "gcot_status"
    assert record["status"] == {"ok": 3, "undecodable_image": 1}
    assert "original-image pixels" in record["boxes"]
    json.dumps(record)  # JSON-able


def test_provenance_survives_dataset_operations(tmp_path):
    base = simple_ds()
    base.info.description = "User text."
    ds = attach_provenance(base, {"pipeline": "a", "n": 1})
    assert get_provenance(base) == [] and base.info.description == "User text."  # not mutated
    ds = record_provenance(ds, "b", extra={"note": "second"})
    assert [r["pipeline"] for r in get_provenance(ds)] == ["a", "b"]
    assert get_provenance(ds)[1]["note"] == "second" and get_provenance(ds)[1]["rows"] == 3
    assert ds.info.description.startswith("User text.")
    ops = [
        ds.map(lambda r: {"y": r["x"] * 2}),
        ds.select([0]),
        ds.filter(lambda r: r["x"] > 0),
        ds.rename_column("x", "z"),
        ds.shuffle(seed=0).flatten_indices(),
        concatenate_datasets([ds, ds]),
    ]
    for out in ops:
        assert [r["pipeline"] for r in get_provenance(out)] == ["a", "b"]
    ds.save_to_disk(str(tmp_path / "saved"))
    assert get_provenance(load_from_disk(str(tmp_path / "saved"))) == get_provenance(ds)
    replaced = attach_provenance(ds, {"pipeline": "c"}, replace=True)
    assert [r["pipeline"] for r in get_provenance(replaced)] == ["c"]


# ------------------------------------------------------------------------------------------
# Local backend
# ------------------------------------------------------------------------------------------


def test_target_rule_and_version_parsing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert not is_local_target("me/my-gcot")
    for local in ["./out", "../x", "/abs/x", "~/x", "file:///x", "a/b/c", "a\\b", tmp_path]:
        assert is_local_target(local), local
    (tmp_path / "me" / "data").mkdir(parents=True)
    assert is_local_target("me/data")  # exists locally
    assert parse_version("v1.2.3") == "1.2.3" and parse_version("0.1") == "0.1"
    assert parse_version("1.0.0-rc.1+build.5") == "1.0.0-rc.1+build.5"
    for bad in ["1", "1.0.0.0", "01.0.0", "latest", "", "1.0.0/"]:
        with pytest.raises(ValueError):
            parse_version(bad)
    with pytest.raises(ValueError, match="ambiguous"):
        publish(simple_ds(), "bare-name", version="1.0.0")


@pytest.mark.model
def test_two_versions_end_to_end(gcot_ds, tmp_path):
    root = tmp_path / "releases" / "gcot"
    r1 = publish(
        gcot_ds, root, version="1.0.0", card={"license": "apache-2.0", "pretty_name": "GCoT test"}
    )
    v2_ds = record_provenance(gcot_ds.select([0, 2]), "filtered", extra={"kept": "ok rows"})
    r2 = publish(v2_ds, str(root), version="1.1.0")
    assert sorted(os.listdir(root)) == ["v1.0.0", "v1.1.0"]  # no temporary folders left
    assert r1.location == str(root / "v1.0.0") and r1.backend == "local" and r1.commit is None
    assert sorted(os.listdir(root / "v1.0.0")) == ["README.md", "data"]
    assert os.listdir(root / "v1.0.0" / "data") == ["train-00000-of-00001.parquet"]

    for result, expected in [(r1, gcot_ds), (r2, v2_ds)]:
        back = load(result.location, tmp_path, split="train")
        assert len(back) == len(expected) and back.features == expected.features
        columns = [c for c in expected.column_names if c != "image"]
        assert back.select_columns(columns).to_list() == expected.select_columns(columns).to_list()
        for got, want in zip(back["image"][:3], expected["image"][:3], strict=False):
            assert isinstance(got, PILImage.Image) and got.size == want.size
            assert got.tobytes() == want.convert(got.mode).tobytes()
        assert f"'{result.location}'" in result.load_code

    card1 = DatasetCard.load(root / "v1.0.0" / "README.md")
    assert card1.data.pretty_name == "GCoT test" and card1.data.license == "apache-2.0"
    assert card1.data.hfgcot["version"] == "1.0.0" and card1.data.hfgcot["pipelines"] == ["gcot"]
    assert card1.data.hfgcot["rows"] == {"train": 4} and card1.data.size_categories == ["n<1K"]
    assert "visual-question-answering" in card1.data.task_categories
    assert card1.data.configs == [
        {"config_name": "default", "data_files": [{"split": "train", "path": "data/train-*"}]}
    ]
    assert card1.data.dataset_info["splits"][0]["num_examples"] == 4
    text = card1.text
    record = get_provenance(gcot_ds)[0]
    for needle in [
        record["model"]["model_id"],
        record["model"]["revision"],
        "qwen2_5_vl",
        f"{record['model']['min_pixels']} / {record['model']['max_pixels']}",
        record["prompts"]["version"],
        "ok 3, undecodable_image 1",
        "max_new_tokens=512",
        "original-image pixels",
        r1.load_code,
        '"question": "What is left?"',
        '"image": "<image>"',
    ]:
        assert needle in text, needle

    card2 = DatasetCard.load(root / "v1.1.0" / "README.md")
    assert card2.data.hfgcot["version"] == "1.1.0" and card2.data.license == "unknown"
    assert card2.data.hfgcot["pipelines"] == ["gcot", "filtered"]
    assert '"kept": "ok rows"' in card2.text and "ok 2" in card2.text

    before = sorted(p.stat().st_mtime_ns for p in (root / "v1.0.0").rglob("*"))
    with pytest.raises(VersionExistsError):
        publish(v2_ds, root, version="1.0.0")
    assert sorted(p.stat().st_mtime_ns for p in (root / "v1.0.0").rglob("*")) == before
    assert sorted(os.listdir(root)) == ["v1.0.0", "v1.1.0"]


def test_external_image_files_are_embedded(tmp_path):
    paths = []
    for i in range(2):
        path = tmp_path / f"img{i}.png"
        random_image(20 + i, 10, seed=i).save(path)
        paths.append(str(path))
    ds = Dataset.from_dict({"image": paths, "q": ["a", "b"]}).cast_column("image", Image())
    result = publish(ds, tmp_path / "rel", version="0.1.0")
    for path in paths:
        os.remove(path)
    back = load(result.location, tmp_path, split="train")
    assert [im.size for im in back["image"]] == [(20, 10), (21, 10)]


def test_image_path_strings_are_published_as_images(tmp_path):
    path = tmp_path / "img.png"
    random_image(20, 10).save(path)
    ds = Dataset.from_dict({"image": [str(path)], "q_image": [str(path)], "note": [str(path)]})
    result = publish(ds, tmp_path / "rel", version="1.0.0")  # auto: image, *_image
    kept = publish(ds, tmp_path / "rel", version="1.0.1", image_columns=None)
    os.remove(path)
    back = load(result.location, tmp_path, split="train")
    assert back[0]["image"].size == (20, 10) and back[0]["q_image"].size == (20, 10)
    assert back[0]["note"] == str(path)  # not an image column by name
    assert load(kept.location, tmp_path, split="train")[0]["image"] == str(path)
    with pytest.raises(KeyError):
        publish(ds, tmp_path / "rel", version="1.0.2", image_columns=["nope"])


def test_failure_leaves_no_version(tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(publish_local, "_write_split", boom)
    with pytest.raises(OSError, match="disk full"):
        publish(simple_ds(), tmp_path / "rel", version="1.0.0")
    assert os.listdir(tmp_path / "rel") == []


def test_datasetdict_config_and_shards(tmp_path):
    dd = DatasetDict({"train": simple_ds(6), "test": simple_ds(2)})
    result = publish(dd, tmp_path / "rel", version="2.0.0", config_name="small", max_shard_size=1)
    assert result.rows == {"train": 6, "test": 2}
    files = sorted(os.listdir(tmp_path / "rel" / "v2.0.0" / "small"))
    assert files[0] == "test-00000-of-00002.parquet" and len(files) == 2 + 6
    back = load(result.location, tmp_path, name="small")
    assert back["train"]["x"] == list(range(6)) and back["test"]["text"] == ["row 0", "row 1"]
    assert "name='small'" in result.load_code
    card = DatasetCard.load(tmp_path / "rel" / "v2.0.0" / "README.md")
    assert card.data.configs[0]["config_name"] == "small"
    assert "No hfgcot provenance was recorded" in card.text


def test_custom_card_text_is_used(tmp_path):
    result = publish(
        simple_ds(), tmp_path / "rel", version="1.0.0", card="---\nlicense: mit\n---\n# Mine\n"
    )
    card = DatasetCard.load(tmp_path / "rel" / "v1.0.0" / "README.md")
    assert card.data.license == "mit" and "# Mine" in card.text and card.data.configs
    assert result.card.data.license == "mit"
    with pytest.raises(ValueError, match="unknown card option"):
        publish(simple_ds(), tmp_path / "rel", version="1.0.1", card={"licence": "mit"})


# ------------------------------------------------------------------------------------------
# CLI
# ------------------------------------------------------------------------------------------


def test_cli_publish_and_preflight(tmp_path, capsys):
    saved = tmp_path / "saved"
    attach_provenance(simple_ds(), {"pipeline": "gcot"}).save_to_disk(str(saved))
    rel = tmp_path / "rel"
    assert (
        cli.main(["publish", str(saved), str(rel), "--version", "1.0.0", "--license", "mit"]) == 0
    )
    assert "v1.0.0" in capsys.readouterr().out
    card = DatasetCard.load(rel / "v1.0.0" / "README.md")
    assert card.data.license == "mit" and card.data.hfgcot["pipelines"] == ["gcot"]
    # a user error: one line on stderr, exit status 2 (the exception itself with --debug)
    assert cli.main(["publish", str(saved), str(rel), "--version", "1.0.0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hfgcot: error:") and len(err.strip().splitlines()) == 1
    with pytest.raises(VersionExistsError):
        cli.main(["publish", str(saved), str(rel), "--version", "1.0.0", "--debug"])

    gcot = ["gcot", "--input", str(saved), "--output", str(tmp_path / "out")]
    # the existing version, a missing --version, a stray --version: refused before any model runs
    for extra, message in [
        (["--push-to-hub", str(rel), "--version", "1.0.0"], "never overwritten"),
        (["--push-to-hub", str(rel)], "needs --version"),
        (["--version", "1.0.0"], "only used with --push-to-hub"),
        (["--push-to-hub", str(rel), "--version", "one"], "version must look like"),
    ]:
        assert cli.main(gcot + extra) == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
