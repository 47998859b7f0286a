"""Reading inputs (hfgcot.io): the .jsonl root, clear errors, image files in the fingerprint."""

from __future__ import annotations

import json
import os

import pytest
from conftest import random_image
from PIL import Image

from hfgcot.images import ImagePolicy, load_image
from hfgcot.io import load_input


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_paths_outside_the_jsonl_folder_are_never_read(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (tmp_path / "secret.txt").write_text("TOP SECRET")
    random_image(40, 40).save(data / "ok.png")
    os.symlink(tmp_path / "secret.txt", data / "link.png")
    rows = [
        {"image": "ok.png"},
        {"image": "../secret.txt"},
        {"image": "/etc/passwd"},
        {"image": "link.png"},
        {"image": str(data / "ok.png")},  # absolute but inside: fine
        {"image": f"file://{tmp_path / 'secret.txt'}"},  # a file URL is a path like any other
        {"image": "FILE:///etc/passwd"},
        {"image": (data / "ok.png").as_uri()},
        {"image": "ok\x00.png"},
    ]
    ds = load_input(_jsonl(data / "rows.jsonl", rows))
    statuses = [load_image(v, ImagePolicy(min_side=1))[1] for v in ds["image"]]
    assert statuses == [
        "ok",
        "path_outside_root: secret.txt",
        "path_outside_root: passwd",
        "path_outside_root: link.png",
        "ok",
        "path_outside_root: secret.txt",
        "path_outside_root: passwd",
        "ok",
        "unreadable_file: ok.png",
    ]
    assert not any("TOP SECRET" in str(v) for v in ds["image"])


def test_cells_of_any_type_are_resolved_inside_the_folder(tmp_path):
    """One cell of another type makes datasets read the column as JSON values: the paths of
    such a column are still resolved inside the folder, and other values are refused."""
    data = tmp_path / "data"
    data.mkdir()
    random_image(40, 40).save(data / "ok.png")
    rows = [
        {"image": "ok.png"},
        {"image": "../secret.png"},
        {"image": 5},
        {"image": {"path": "/etc/passwd"}},
        {"image": ["ok.png"]},
        {"image": None},
    ]
    ds = load_input(_jsonl(data / "rows.jsonl", rows))
    statuses = [load_image(v, ImagePolicy(min_side=1))[1] for v in ds["image"]]
    assert statuses == [
        "ok",
        "path_outside_root: secret.png",
        "unsupported_value: int",
        "path_outside_root: passwd",
        "unsupported_value: list",
        "missing_image",
    ]


def test_image_root_names_the_folder(tmp_path):
    (tmp_path / "imgs").mkdir()
    (tmp_path / "meta").mkdir()
    random_image(40, 40).save(tmp_path / "imgs" / "a.png")
    rows = _jsonl(tmp_path / "meta" / "rows.jsonl", [{"image": "a.png"}, {"image": "../meta/x"}])
    ds = load_input(rows, image_root=tmp_path / "imgs")
    assert ds["image"][0] == str((tmp_path / "imgs" / "a.png").resolve())
    assert ds["image"][1].endswith("path_outside_root: x")


def test_bad_jsonl_files_give_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="empty.jsonl has no rows"):
        load_input(_jsonl(tmp_path / "empty.jsonl", []))
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"image": "a.png"}\n{"image": oops}\n')
    with pytest.raises(ValueError, match="bad.jsonl line 2: not valid JSON"):
        load_input(bad)
    with pytest.raises(ValueError, match="input file not found"):
        load_input(tmp_path / "missing.jsonl")
    with pytest.raises(ValueError, match="limit must be >= 0"):
        load_input(_jsonl(tmp_path / "one.jsonl", [{"image": "a"}]), limit=-1)


def test_replacing_an_image_file_changes_the_fingerprint(tmp_path):
    random_image(40, 40, seed=1).save(tmp_path / "a.png")
    rows = _jsonl(tmp_path / "rows.jsonl", [{"image": "a.png"}])
    before = load_input(rows)._fingerprint
    assert load_input(rows)._fingerprint == before  # deterministic
    random_image(48, 40, seed=2).save(tmp_path / "a.png")
    assert load_input(rows)._fingerprint != before


def test_decompression_bombs_in_the_warning_range(tmp_path):
    """PIL only warns between its limit and twice it: the policy refuses from its limit on."""
    bomb = tmp_path / "bomb.png"
    Image.new("L", (9500, 9500)).save(bomb)  # 90.25 Mpx, a small file
    assert bomb.stat().st_size < 1_000_000
    assert load_image(str(bomb))[1] == "decompression_bomb"
    small = Image.new("RGB", (40, 40))
    assert load_image(small, ImagePolicy(max_image_pixels=1000))[1] == "decompression_bomb"
    assert load_image(small, ImagePolicy(max_image_pixels=1600))[1] == "ok"
    with pytest.raises(ValueError, match="max_image_pixels"):
        ImagePolicy(max_image_pixels=0)


@pytest.mark.model
@pytest.mark.parametrize("options", [{}, {"sort_window": 2}, {"checkpoint_dir": "ckpt"}])
def test_a_saved_input_folder_is_never_written_to(tiny_vlm, tmp_path, monkeypatch, options):
    """datasets writes a map's cache (and a temporary file while writing) next to the files it
    maps; for load_from_disk that is the user's folder. hfgcot's caches go to HFGCOT_CACHE."""
    from datasets import Dataset, load_from_disk

    from hfgcot import add_gcot, to_grounding_sft
    from hfgcot.testing.tiny import ScriptedVLM

    monkeypatch.setenv("HFGCOT_CACHE", str(tmp_path / "cache"))
    for i in range(3):
        random_image(48 + 8 * i, 40, seed=i).save(tmp_path / f"{i}.png")
    rows = {
        "image": [str(tmp_path / f"{i}.png") for i in range(3)],  # a path column: resolved
        "question": ["what?"] * 3,
        "answer": ["x"] * 3,
        "bbox": [[1.0, 1.0, 9.0, 9.0]] * 3,
    }
    folder = tmp_path / "input"
    Dataset.from_dict(rows).save_to_disk(folder)
    Dataset.from_dict({k: [] for k in rows}).save_to_disk(tmp_path / "empty")

    def listing() -> dict:  # the input folders (and the images' folder)
        folders = (tmp_path, folder, tmp_path / "empty")
        return {p: p.stat().st_mtime_ns for f in folders for p in f.iterdir() if p.is_file()}

    before = listing()

    def script(request, text):
        return "Step 1: x.\nAnswer: x\nKeywords: x" if text.startswith("Q") else "[1, 1, 9, 9]"

    if "checkpoint_dir" in options:
        options = {**options, "checkpoint_dir": tmp_path / "ckpt", "shard_size": 2}
    for source, n in ((folder, 3), (tmp_path / "empty", 0)):  # load_input reads 0-row folders
        out = add_gcot(load_input(source), ScriptedVLM(tiny_vlm, script), **options)
        assert len(out) == n
        to_grounding_sft(load_from_disk(str(folder)), bbox_format="xyxy", **options)
    after = listing()
    assert sorted(set(after) - set(before)) == []  # no cache-*.arrow, no tmp* file
    assert all(after[p] == before[p] for p in before)  # nothing rewritten either
    assert list((tmp_path / "cache").glob("cache-*.arrow"))  # the caches are here


KILLED_RUN = """
import os, sys
from hfgcot import add_gcot, load_vlm
from hfgcot.io import load_input
from hfgcot.testing.tiny import ScriptedVLM

grounded = []

def script(request, text):
    if not text.startswith("Q"):
        grounded.append(text)
        if len(grounded) == 2:  # killed in the grounding stage's map, one batch written
            os._exit(9)
        return "[1, 1, 9, 9]"
    return "Step 1: x.\\nAnswer: x\\nKeywords: x"

add_gcot(load_input(sys.argv[1]), ScriptedVLM(load_vlm(sys.argv[2]), script), batch_size=1)
"""


@pytest.mark.model
def test_a_killed_run_leaves_nothing_in_the_input_folder(tiny_vlm_path, tmp_path):
    import subprocess
    import sys

    from datasets import Dataset

    folder = tmp_path / "input"
    images = [{"bytes": _png(i), "path": None} for i in range(3)]
    Dataset.from_dict({"image": images, "question": ["q"] * 3, "answer": ["a"] * 3}).save_to_disk(
        folder
    )
    before = sorted(folder.iterdir())
    env = {**os.environ, "HFGCOT_CACHE": str(tmp_path / "cache"), "HFGCOT_QUIET": "1"}
    run = subprocess.run(
        [sys.executable, "-c", KILLED_RUN, str(folder), tiny_vlm_path], env=env, timeout=300
    )
    assert run.returncode == 9
    assert sorted(folder.iterdir()) == before
    assert len(list((tmp_path / "cache").glob("tmp*"))) == 1  # the killed map's file is here


def _png(seed: int) -> bytes:
    import io

    buffer = io.BytesIO()
    random_image(40, 40, seed=seed).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("feature", "checkpoint"), [("paths", False), ("paths", True), ("image", True)]
)
def test_a_pipeline_rerun_sees_a_replaced_image_file_however_the_dataset_was_built(
    tmp_path, feature, checkpoint
):
    """Not only load_input: a dataset of paths built by hand (or by load_dataset) is fingerprinted
    with its files' state by the run itself, for the datasets cache and for checkpoints."""
    from datasets import Dataset, load_from_disk
    from datasets import Image as ImageFeature

    from hfgcot import to_grounding_sft

    path = tmp_path / "a.png"
    random_image(64, 48, seed=1).save(path)
    ds = Dataset.from_dict({"image": [str(path)], "question": ["q"], "bbox": [[1, 1, 20, 20]]})
    if feature == "image":  # Image() storage that names the file (kept in memory: save_to_disk
        ds = ds.cast_column("image", ImageFeature())  # would embed the bytes)
    else:
        ds.save_to_disk(str(tmp_path / "saved"))  # a dataset on disk: its maps are cached
        ds = load_from_disk(str(tmp_path / "saved"))
    options = {"checkpoint_dir": str(tmp_path / "ckpt")} if checkpoint else {}

    def width() -> int:
        return to_grounding_sft(ds, bbox_format="xyxy", **options)[0]["sft_frame"]["width"]

    assert width() == 64
    random_image(96, 80, seed=2).save(path)
    assert width() == 96
