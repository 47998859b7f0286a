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
    ]
    ds = load_input(_jsonl(data / "rows.jsonl", rows))
    statuses = [load_image(v, ImagePolicy(min_side=1))[1] for v in ds["image"]]
    assert statuses == [
        "ok",
        "path_outside_root: secret.txt",
        "path_outside_root: passwd",
        "path_outside_root: link.png",
        "ok",
    ]
    assert not any("TOP SECRET" in str(v) for v in ds["image"])


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
