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
    Features,
    Image,
    Value,
    concatenate_datasets,
    load_dataset,
    load_from_disk,
)
from huggingface_hub import DatasetCard
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image as PILImage

from hfgcot import add_gcot, cli, get_provenance, load_release, prompts, publish
from hfgcot.io import load_input
from hfgcot.publishing import local as publish_local
from hfgcot.publishing.provenance import attach_provenance, record_provenance
from hfgcot.publishing.targets import (
    BadRowsError,
    VersionExistsError,
    is_local_target,
    latest_version,
    parse_version,
    version_key,
)
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
def test_add_gcot_records_provenance(gcot_ds, tiny_vlm, tiny_vlm_path):
    (record,) = get_provenance(gcot_ds)
    assert record["pipeline"] == "gcot" and record["rows"] == 4
    # a local model: its folder name and a digest of its files, never the path on this machine
    assert record["model"]["model_id"] == os.path.basename(tiny_vlm_path) == "tiny-qwen2_5_vl"
    assert os.path.dirname(tiny_vlm_path) not in json.dumps(record)
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


numbers = st.tuples(*[st.integers(0, 10**6)] * 3)
pre_ids = st.lists(
    st.one_of(st.integers(0, 99).map(str), st.from_regex(r"[a-z][a-z0-9-]{0,5}", fullmatch=True)),
    min_size=1,
    max_size=3,
)


@given(st.lists(numbers, min_size=1, max_size=8), pre_ids)
def test_version_order_is_semver_precedence(cores, pre):
    releases = [".".join(map(str, c)) for c in cores]
    ordered = sorted(releases, key=version_key)
    assert [tuple(map(int, v.split("."))) for v in ordered] == sorted(cores)
    top = ordered[-1]
    candidate = f"{top}-{'.'.join(pre)}"
    assert version_key(candidate) < version_key(top)  # a pre-release sorts before its release
    assert version_key(f"{top}+build.7") == version_key(top)  # build metadata is ignored
    assert latest_version([*releases, candidate]) == top  # never a pre-release over a release
    assert latest_version([candidate]) == candidate
    assert parse_version(f"v{candidate}") == candidate


@pytest.mark.model
def test_two_versions_end_to_end(gcot_ds, tmp_path):
    root = tmp_path / "releases" / "gcot"
    with pytest.raises(BadRowsError, match="1 of 4 rows"):  # row 3's bytes are no image
        publish(gcot_ds, root, version="1.0.0")
    assert not root.exists()
    r1 = publish(
        gcot_ds,
        root,
        version="1.0.0",
        card={"license": "apache-2.0", "pretty_name": "GCoT test"},
        drop_bad_rows=True,
    )
    kept = gcot_ds.select([0, 1, 2])
    v2_ds = record_provenance(gcot_ds.select([0, 2]), "filtered", extra={"kept": "ok rows"})
    r2 = publish(v2_ds, str(root), version="1.1.0")
    assert sorted(os.listdir(root)) == ["v1.0.0", "v1.1.0"]  # no temporary folders left
    assert r1.location == str(root / "v1.0.0") and r1.backend == "local" and r1.commit is None
    assert r1.rows == {"train": 3} and r1.dropped == {"train": 1} and r2.dropped == {}
    assert sorted(os.listdir(root / "v1.0.0")) == ["README.md", "data", "provenance"]
    assert os.listdir(root / "v1.0.0" / "data") == ["train-00000-of-00001.parquet"]

    for result, expected in [(r1, kept), (r2, v2_ds)]:
        back = load(result.location, tmp_path, split="train")
        assert len(back) == len(expected) and back.features == expected.features
        columns = [c for c in expected.column_names if c != "image"]
        assert back.select_columns(columns).to_list() == expected.select_columns(columns).to_list()
        for got, want in zip(back["image"], expected["image"], strict=True):
            assert isinstance(got, PILImage.Image) and got.size == want.size
            assert got.tobytes() == want.convert(got.mode).tobytes()
        assert f"'{result.location}'" in result.load_code

    card1 = DatasetCard.load(root / "v1.0.0" / "README.md")
    assert card1.data.pretty_name == "GCoT test" and card1.data.license == "apache-2.0"
    assert card1.data.hfgcot["version"] == "1.0.0" and card1.data.hfgcot["pipelines"] == ["gcot"]
    assert card1.data.hfgcot["rows"] == {"train": 3} and card1.data.size_categories == ["n<1K"]
    assert card1.data.hfgcot["dropped_rows"] == {"train": 1}
    assert card1.data.hfgcot["previous_versions"] == []
    assert "visual-question-answering" in card1.data.task_categories
    assert card1.data.configs == [
        {"config_name": "default", "data_files": [{"split": "train", "path": "data/train-*"}]}
    ]
    assert card1.data.dataset_info["splits"][0]["num_examples"] == 3
    text = card1.text
    record = get_provenance(gcot_ds)[0]
    for needle in [
        record["model"]["model_id"],
        record["model"]["revision"],
        "qwen2_5_vl",
        f"{record['model']['min_pixels']} / {record['model']['max_pixels']}",
        record["prompts"]["version"],
        "ok 3, undecodable_image 1",  # the pipeline's record
        "1 rows whose image could not be embedded (undecodable_image 1",
        "max_new_tokens=512",
        "original-image pixels",
        "load_dataset('gcot/v1.0.0', split='train')",
        "hfgcot.load_release('gcot', version='1.0.0', split='train')",
        '"question": "What is left?"',
        '"image": "<image>"',
    ]:
        assert needle in text, needle
    for version in ["v1.0.0", "v1.1.0"]:  # nothing names this machine's folders
        for path in (root / version).rglob("*"):
            if path.is_file():
                assert str(tmp_path).encode() not in path.read_bytes(), path

    card2 = DatasetCard.load(root / "v1.1.0" / "README.md")
    assert card2.data.hfgcot["version"] == "1.1.0" and card2.data.license == "unknown"
    assert card2.data.hfgcot["pipelines"] == ["gcot", "filtered"]
    assert card2.data.hfgcot["previous_versions"] == ["1.0.0"] and "`v1.0.0`" in card2.text
    assert '"kept": "ok rows"' in card2.text and "ok 2" in card2.text

    before = sorted(p.stat().st_mtime_ns for p in (root / "v1.0.0").rglob("*"))
    with pytest.raises(VersionExistsError):
        publish(v2_ds, root, version="1.0.0")
    assert sorted(p.stat().st_mtime_ns for p in (root / "v1.0.0").rglob("*")) == before
    assert sorted(os.listdir(root)) == ["v1.0.0", "v1.1.0"]


def test_load_release_reads_one_version_with_its_provenance(tmp_path):
    root = tmp_path / "rel"
    first = attach_provenance(simple_ds(3), {"pipeline": "a"})
    second = attach_provenance(simple_ds(2), {"pipeline": "b", "note": "second"})
    for version, ds in [("1.0.0", first), ("1.10.0", second), ("2.0.0-rc.1", first)]:
        publish(ds, root, version=version)
    cache = str(tmp_path / "hf-cache")
    latest = load_release(root, split="train", cache_dir=cache)  # 1.10.0: no pre-release
    assert latest["x"] == [0, 1] and get_provenance(latest) == get_provenance(second)
    old = load_release(str(root), version="1.0.0", cache_dir=cache)
    assert old["train"]["x"] == [0, 1, 2] and get_provenance(old["train"]) == get_provenance(first)
    rc = load_release(root, version="v2.0.0-rc.1", split="train", cache_dir=cache)
    assert len(rc) == 3
    with pytest.raises(FileNotFoundError, match=r"versions: 1\.0\.0, 1\.10\.0, 2\.0\.0-rc\.1"):
        load_release(root, version="1.2.0")
    with pytest.raises(FileNotFoundError, match="no published versions"):
        load_release(tmp_path / "empty")
    assert sorted(os.listdir(root)) == ["v1.0.0", "v1.10.0", "v2.0.0-rc.1"]  # nothing written


@pytest.mark.model
@pytest.mark.parametrize("reader", ["load_input", "load_dataset"])
def test_files_outside_the_input_are_never_published(tiny_vlm, tmp_path, monkeypatch, reader):
    """A ``.jsonl`` pointing at ``../secret.txt`` and an absolute path to a private file: the
    pipeline runs, ``publish`` refuses, and with ``drop_bad_rows`` no byte of them is published
    (read with the root check of ``load_input``, or plainly with ``load_dataset``)."""
    marker = os.urandom(24).hex()  # incompressible: would survive Parquet's compression
    private = tmp_path / "etc"
    private.mkdir()
    (private / "passwd").write_text(f"root:x:0:0:{marker}:/root:/bin/sh\n")
    (tmp_path / "secret.txt").write_text(f"password={marker}\n")
    data = tmp_path / "data"
    data.mkdir()
    random_image(60, 40).save(data / "ok.png")
    rows = [{"image": "ok.png"}, {"image": "../secret.txt"}, {"image": str(private / "passwd")}]
    rows = [{**r, "question": "What is left?", "answer": "red ball"} for r in rows]
    (data / "rows.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    if reader == "load_input":
        ds = load_input(data / "rows.jsonl")
    else:  # no root check: paths are read as they are (relative to the working directory)
        monkeypatch.chdir(data)
        ds = load_dataset("json", data_files=str(data / "rows.jsonl"), split="train")
    out = add_gcot(ds, ScriptedVLM(tiny_vlm, script), batch_size=2, max_pixels=None)
    assert out["gcot_status"][0] == "ok" and len(out) == 3

    rel = tmp_path / "rel"
    with pytest.raises(BadRowsError) as info:
        publish(out, rel, version="1.0.0", image_columns="auto")
    message = str(info.value)
    assert "2 of 3 rows" in message and "train row 1" in message and "train row 2" in message
    assert "input_columns='gcot_status'" in message and "drop_bad_rows=True" in message
    assert not rel.exists()  # nothing written

    result = publish(out, rel, version="1.0.0", image_columns="auto", drop_bad_rows=True)
    assert result.rows == {"train": 1} and result.dropped == {"train": 2}
    files = [p for p in rel.rglob("*") if p.is_file()]
    assert len(files) >= 3
    for path in files:
        content = path.read_bytes()
        assert marker.encode() not in content and str(tmp_path).encode() not in content, path
    back = load(result.location, tmp_path, split="train")
    assert back[0]["image"].size == (60, 40)
    card = DatasetCard.load(rel / "v1.0.0" / "README.md")
    assert card.data.hfgcot["dropped_rows"] == {"train": 2}


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


def test_cli_publish_and_preflight(tmp_path, capsys, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))
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
        (["--push-to-hub", "me/data", "--version", "1.0.0"], "needs a token"),
    ]:
        assert cli.main(gcot + extra) == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_an_empty_image_is_refused_only_when_its_row_lost_it(tmp_path):
    from hfgcot.publishing.targets import BadRowsError

    ds = Dataset.from_dict(
        {
            "image": [None, None, None],
            "x_status": ["ok", "no_valid_boxes", "file_not_found: a.png"],
        },
        features=Features({"image": Image(), "x_status": Value("string")}),
    )
    with pytest.raises(BadRowsError, match=r"1 of 3 rows .*row 2 image: file_not_found"):
        publish(ds, tmp_path / "rel", version="1.0.0")
    kept = publish(ds, tmp_path / "rel", version="1.0.0", drop_bad_rows=True)
    assert kept.rows == {"train": 2}
