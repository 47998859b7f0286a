"""Region captions: box validation, numbered drawing, ``add_region_captions`` end to end."""

from __future__ import annotations

import math
import re

import pytest
from conftest import png_bytes, random_image
from datasets import Dataset, Image, List, Value
from PIL import Image as PILImage

from hfgcot import RegionCaptionConfig, add_region_captions, get_provenance
from hfgcot.geometry.regions import crop_box, describe_skipped, normalize_box, validate_boxes
from hfgcot.model.spec import ModelSpec
from hfgcot.pipelines.region_captions import region_caption_stages
from hfgcot.testing.tiny import ScriptedVLM
from hfgcot.viz.draw import PALETTE, colour, draw_regions, label_colour

# ------------------------------------------------------------------------------------------------
# Pure parts
# ------------------------------------------------------------------------------------------------


def test_validate_boxes_xywh_and_xyxy():
    valid, skipped = validate_boxes([[10, 20, 30, 40]], 100, 100)
    assert (valid, skipped) == ([[10.0, 20.0, 40.0, 60.0]], [])
    valid, skipped = validate_boxes([[10, 20, 30, 40]], 100, 100, bbox_format="xyxy")
    assert (valid, skipped) == ([[10.0, 20.0, 30.0, 40.0]], [])
    # one flat box; clipped to the image
    assert validate_boxes([90, 90, 50, 50], 100, 100) == ([[90.0, 90.0, 100.0, 100.0]], [])


def test_validate_boxes_reports_every_skipped_box():
    boxes = [
        [10, 10, 10, 10],  # 1 ok
        [200, 200, 10, 10],  # 2 outside
        [-50, 10, 20, 20],  # 3 outside (left of the image)
        [10, 10, 0, 5],  # 4 zero width
        [10, 10, -5, 5],  # 5 negative width
        [1, 2, 3],  # 6 malformed
        "box",  # 7 malformed
        [1, 2, float("nan"), 4],  # 8 not finite
        [True, 1, 2, 3],  # 9 malformed (bool is no coordinate)
        [20, 20, 5, 5],  # 10 ok
        [30, 30, 5, 5],  # 11 over max_boxes
    ]
    valid, skipped = validate_boxes(boxes, 100, 100, max_boxes=2)
    assert valid == [[10.0, 10.0, 20.0, 20.0], [20.0, 20.0, 25.0, 25.0]]
    assert skipped == [
        (2, "outside_image"),
        (3, "outside_image"),
        (4, "non_positive_size"),
        (5, "non_positive_size"),
        (6, "malformed"),
        (7, "malformed"),
        (8, "not_finite"),
        (9, "malformed"),
        (11, "over max_boxes=2"),
    ]
    assert len(valid) + len(skipped) == len(boxes)
    # xyxy with reversed corners is not silently reordered
    assert validate_boxes([[50, 50, 10, 10]], 100, 100, bbox_format="xyxy")[1] == [
        (1, "non_positive_size")
    ]
    assert validate_boxes(None, 10, 10) == ([], [])
    assert validate_boxes([], 10, 10) == ([], [])
    assert validate_boxes("nope", 10, 10) == ([], [(1, "malformed")])


def test_describe_skipped_groups_reasons():
    skipped = [(2, "outside_image"), (3, "outside_image"), (5, "outside_image")]
    skipped += [(11, "over max_boxes=10"), (12, "over max_boxes=10")]
    assert describe_skipped(skipped, 12) == (
        "skipped 5 of 12 boxes: boxes 2-3, 5 outside_image; boxes 11-12 over max_boxes=10"
    )


def test_normalize_and_crop_boxes_round_trip():
    for w, h in [(100, 80), (333, 77), (7, 1000)]:
        box = [1.0, 2.0, w - 1.0, h - 3.0]
        norm = normalize_box(box, w, h)
        assert all(0 <= v <= 1 for v in norm)
        assert crop_box(norm, w, h) == (1, 2, w - 1, h - 3)
    assert crop_box([0.5, 0.5, 0.5, 0.5], 10, 10) == (5, 5, 6, 6)  # never empty


def test_config_validation():
    with pytest.raises(ValueError, match="mode"):
        RegionCaptionConfig(mode="boxes")
    with pytest.raises(ValueError, match="bbox_format"):
        RegionCaptionConfig(bbox_format="cxcywh")
    with pytest.raises(ValueError, match="max_boxes"):
        RegionCaptionConfig(max_boxes=0)


def test_fingerprints_are_deterministic_and_config_sensitive(tiny_vlm_path):
    spec = ModelSpec(model=tiny_vlm_path)
    a = [s.fingerprint for s in region_caption_stages(RegionCaptionConfig(), spec)]
    b = [s.fingerprint for s in region_caption_stages(RegionCaptionConfig(), spec)]
    c = [s.fingerprint for s in region_caption_stages(RegionCaptionConfig(max_boxes=3), spec)]
    assert a == b and a[0] != c[0]


# ------------------------------------------------------------------------------------------------
# Drawing
# ------------------------------------------------------------------------------------------------


def test_drawn_outlines_sit_on_the_box_edges():
    white = (255, 255, 255)
    img = PILImage.new("RGB", (200, 150), white)
    boxes = [[20, 40, 90, 120], [110, 30, 190, 100], [0, 0, 200, 150]]
    out = draw_regions(img, boxes, width=2)
    assert out.size == img.size and img.getpixel((20, 80)) == white  # the input is untouched
    for i, (x1, y1, x2, y2) in enumerate(boxes[:2]):
        c = colour(i)
        my, mx = (y1 + y2) // 2, (x1 + x2) // 2
        # outer edge of the outline = the box edge: columns x1 and x2 - 1, rows y1 and y2 - 1
        for x in (x1, x1 + 1, x2 - 1, x2 - 2):
            assert out.getpixel((x, my)) == c, (i, x)
        for y in (y1, y2 - 1):
            assert out.getpixel((mx, y)) == c, (i, y)
        assert out.getpixel((x1 - 1, my)) == white
        assert out.getpixel((x2, my)) == white
        assert out.getpixel((mx, y2)) == white
        assert out.getpixel((x1 + 3, my)) == white  # the inside stays clear
        assert out.getpixel((x2 - 1, y1 - 1)) == white  # nothing above the right corner
    # a box on the image border stays visible
    assert out.getpixel((0, 75)) == colour(2) and out.getpixel((199, 75)) == colour(2)


def near(colours: set, target: tuple, tol: int = 40) -> bool:
    return any(all(abs(a - b) <= tol for a, b in zip(c, target, strict=True)) for c in colours)


def test_region_labels_are_numbered_and_readable():
    img = PILImage.new("RGB", (300, 200), (128, 128, 128))
    boxes = [[30, 60, 120, 150], [150, 60, 280, 150]]
    out = draw_regions(img, boxes)
    for i, (x1, y1, _, _) in enumerate(boxes):
        tag = out.crop((x1, y1 - 20, x1 + 14, y1))  # the tag sits above the top-left corner
        colours = {c for _, c in tag.getcolors(10_000)}
        assert colour(i) in colours and near(colours, label_colour(colour(i)))
    # no room above: the tag goes beside the box, not on what the box frames
    beside = draw_regions(img, [[10, 0, 100, 100]])
    colours = {c for _, c in beside.crop((100, 0, 120, 30)).getcolors(10_000)}
    assert colour(0) in colours and near(colours, label_colour(colour(0)))
    inner = {c for _, c in beside.crop((14, 4, 96, 96)).getcolors(10_000)}
    assert inner == {(128, 128, 128)}
    assert len(set(PALETTE)) == len(PALETTE)
    # dark text on light colours, light text on dark ones
    assert label_colour((210, 245, 60)) == (0, 0, 0) and label_colour((0, 0, 0)) == (255, 255, 255)


# ------------------------------------------------------------------------------------------------
# End to end
# ------------------------------------------------------------------------------------------------

SIZES = [(200, 120), (120, 90), (90, 100), (150, 150), (100, 100), (100, 100)]
BOXES = [
    [[10, 20, 50, 40], [160, 30, 60, 60]],  # two valid boxes, the second clipped
    [[5, 5, 20, 20], [10, 10, 5, 5], [30, 30, 10, 10], [40, 40, 10, 10], [50, 50, 5, 5]],
    [],  # no boxes
    [[500, 500, 10, 10]],  # outside
    [[10, 10, 30, 30], [400, 10, 5, 5]],  # one valid, one outside
    [[10, 10, 20, 20]],  # bad image
]


def region_dataset() -> Dataset:
    images = [png_bytes(random_image(w, h, seed=i)) for i, (w, h) in enumerate(SIZES)]
    images[-1] = {"bytes": b"not an image", "path": None}
    return Dataset.from_dict({"image": images, "bbox": BOXES}).cast_column("image", Image())


def test_marked_mode_end_to_end_with_script(tiny_vlm):
    seen = []

    def script(request, text):
        seen.append(request.image)
        n = int(re.search(r"to <region(\d+)>", text).group(1))
        return "\n".join(f"<region{k}>: thing {k}" for k in range(1, n + 1))

    fake = ScriptedVLM(tiny_vlm, script)
    out = add_region_captions(region_dataset(), fake, max_boxes=3, batch_size=4)
    assert len(out) == len(SIZES)
    assert out.features["image"] == Image() and out.features["image_with_bbox"] == Image()
    assert out.features["answer"] == Value("string")
    rows = list(out.remove_columns("image"))  # row 5's image does not decode
    assert [r["region_caption_status"] for r in rows] == [
        "ok",
        "boxes_skipped: skipped 2 of 5 boxes: boxes 4-5 over max_boxes=3",
        "no_boxes",
        "no_valid_boxes: skipped 1 of 1 boxes: box 1 outside_image",
        "boxes_skipped: skipped 1 of 2 boxes: box 2 outside_image",
        "undecodable_image",
    ]
    assert [r["valid_bboxes_num"] for r in rows] == [2, 3, 0, 0, 1, 0]
    expected = [[10 / 200, 20 / 120, 60 / 200, 60 / 120], [160 / 200, 30 / 120, 1.0, 90 / 120]]
    for got, want in zip(rows[0]["normalized_bbox"], expected, strict=True):
        assert got == pytest.approx(want)
    assert "<region1> to <region3>" in rows[1]["prompt"]
    assert rows[1]["answer"] == "<region1>: thing 1\n<region2>: thing 2\n<region3>: thing 3"
    assert rows[1]["region_captions"] == ["thing 1", "thing 2", "thing 3"]
    assert [r["region_captions"] for r in rows[2:4] + rows[5:]] == [[], [], []]
    for r in rows[2:4] + rows[5:]:
        assert r["answer"] == "" and r["image_with_bbox"] is None and r["prompt"] == ""
    # the marked image is stored (same size as the original) and is what the model was shown
    marked = rows[0]["image_with_bbox"]
    assert marked.size == SIZES[0]
    assert marked.getpixel((10, 40)) == colour(0) and marked.getpixel((160, 60)) == colour(1)
    assert marked.getpixel((199, 60)) == colour(1)
    assert len(seen) == 3 and seen[0].getpixel((10, 40)) == colour(0)
    record = get_provenance(out)[-1]
    assert record["pipeline"] == "region_captions" and record["config"]["max_boxes"] == 3


def test_marked_answers_that_skip_regions_are_flagged(tiny_vlm):
    # the model describes region 2 only (bold markdown) for three-box rows, nothing usable else
    def script(request, text):
        n = int(re.search(r"to <region(\d+)>", text).group(1))
        return "**Region 2**: the middle one" if n == 3 else "no markers here"

    out = add_region_captions(region_dataset(), ScriptedVLM(tiny_vlm, script), max_boxes=3)
    rows = list(out.remove_columns("image"))
    assert rows[1]["region_captions"] == ["", "the middle one", ""]
    assert rows[1]["region_caption_status"] == (
        "regions_missing: 1, 3 of 3 (after boxes_skipped: skipped 2 of 5 boxes: "
        "boxes 4-5 over max_boxes=3)"
    )
    assert rows[0]["region_captions"] == ["", ""]
    assert rows[0]["region_caption_status"] == "regions_missing: 1, 2 of 2"
    # a single region answered without a marker is that region's description
    assert rows[4]["region_captions"] == ["no markers here"]
    assert rows[4]["region_caption_status"].startswith("boxes_skipped")
    assert len(out) == len(SIZES)


def test_crop_mode_end_to_end_with_script(tiny_vlm):
    fake = ScriptedVLM(tiny_vlm, lambda request, text: "crop {}x{}".format(*request.image.size))
    ds = region_dataset()
    out = add_region_captions(ds, fake, mode="crop", bbox_format="xywh", max_boxes=3)
    assert out.features["answer"] == List(Value("string"))
    out = out.remove_columns("image")
    assert out[0]["answer"] == ["crop 50x40", "crop 40x60"]  # second box clipped at the border
    assert out[1]["answer"] == ["crop 20x20", "crop 5x5", "crop 10x10"]
    assert out[2]["answer"] == [] and out[5]["answer"] == []
    assert out["region_captions"] == out["answer"]
    assert out[0]["prompt"] and out[0]["image_with_bbox"] is not None
    # processing rows sorted by image size gives the same rows back in the input order
    resorted = add_region_captions(ds, fake, mode="crop", max_boxes=3, sort_window=6)
    assert resorted.remove_columns("image")["answer"] == out["answer"]


def test_xyxy_jpeg_and_single_box_rows(tiny_vlm, caplog):
    fake = ScriptedVLM(tiny_vlm, lambda request, text: "described")
    ds = Dataset.from_dict(
        {
            "image": [png_bytes(random_image(100, 80))],
            "box": [[10.0, 10.0, 60.0, 50.0]],
            "answer": ["a VQA answer"],
        }
    ).cast_column("image", Image())
    options = {"bbox_column": "box", "bbox_format": "xyxy", "image_format": "JPEG"}
    with pytest.raises(ValueError, match=r"\['answer'\].*overwrite_columns=True"):
        add_region_captions(ds, fake, **options)  # the user's own answer column is refused
    out = add_region_captions(ds, fake, **options, overwrite_columns=True)
    assert out[0]["normalized_bbox"] == [[0.1, 0.125, 0.6, 0.625]]
    assert out[0]["image_with_bbox"].format == "JPEG"
    assert out[0]["answer"] == "described"
    again = add_region_captions(out, fake, **options)  # a rerun on its own output is allowed
    assert again[0]["answer"] == "described"
    with pytest.raises(KeyError, match="bbox"):
        add_region_captions(ds, fake)


@pytest.mark.parametrize("mode", ["marked", "crop"])
def test_tiny_model_end_to_end(tiny_vlm, mode):
    ds = region_dataset()
    out = add_region_captions(ds, tiny_vlm, mode=mode, max_boxes=3, max_new_tokens=4, batch_size=3)
    assert len(out) == len(ds)
    assert out["bbox"] == ds["bbox"]  # input columns untouched, order kept
    statuses = out["region_caption_status"]
    # 4 tokens of nonsense, cut before any end-of-sequence token: flagged, none is lost
    assert statuses[0] == "truncated_output: region_caption"
    assert statuses[5] == "undecodable_image"
    answers = out["answer"]
    if mode == "marked":
        assert isinstance(answers[0], str)
    else:
        assert [len(a) for a in answers] == out["valid_bboxes_num"]
    captions = out["region_captions"]
    assert [len(c) for c in captions] == out["valid_bboxes_num"]
    assert all(math.isfinite(v) for box in out["normalized_bbox"] for b in box for v in b)


def load_example(name: str):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "examples" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"example_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_and_example(tiny_vlm, tiny_vlm_path, tmp_path, capsys):
    import json

    from datasets import load_from_disk

    from hfgcot.cli import main

    with pytest.raises(SystemExit):
        main(["region-captions", "--help"])
    assert "hfgcot region-captions --input" in capsys.readouterr().out
    random_image(120, 80).save(tmp_path / "a.png")
    rows = [{"image": "a.png", "bbox": [[10, 10, 30, 20]]}, {"image": "a.png", "bbox": []}]
    (tmp_path / "in.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    argv = ["region-captions", "--input", str(tmp_path / "in.jsonl"), "--output"]
    argv += [str(tmp_path / "out"), "--model", tiny_vlm_path, "--max-new-tokens", "2"]
    assert main(argv) == 0
    out = load_from_disk(str(tmp_path / "out"))
    assert out["region_caption_status"] == ["truncated_output: region_caption", "no_boxes"]
    assert out["normalized_bbox"][0] == [[10 / 120, 10 / 80, 40 / 120, 30 / 80]]

    example = load_example("region_captions")
    with pytest.raises(SystemExit):
        example.main(["--help"])
    assert "python examples/region_captions.py --model" in capsys.readouterr().out
    args = ["--model", tiny_vlm_path, "--limit", "1", "--max-new-tokens", "2", "--mode", "crop"]
    assert example.main([*args, "--output", str(tmp_path / "ex")]) == 0
    assert (tmp_path / "ex" / "preview.png").exists()
    assert load_from_disk(str(tmp_path / "ex"))["valid_bboxes_num"] == [2]


@pytest.mark.model
@pytest.mark.parametrize("mode", ["marked", "crop"])
def test_region_prompts_are_options(tiny_vlm, mode):
    seen = []

    def custom(request, text):
        seen.append((text, request.system))
        return "<region1>: a thing" if mode == "marked" else "a thing"

    ds = Dataset.from_dict(
        {"image": [png_bytes(random_image(100, 80))], "bbox": [[[10.0, 10.0, 30.0, 30.0]]]}
    ).cast_column("image", Image())
    prompt = {"marked_prompt": "Describe <region1>..<region{n}>."} if mode == "marked" else {}
    prompt = prompt or {"crop_prompt": "What is in this crop?"}
    out = add_region_captions(
        ds, ScriptedVLM(tiny_vlm, custom), mode=mode, system_prompt="Short answers.", **prompt
    )
    assert out[0]["region_captions"] == ["a thing"]
    expected = "Describe <region1>..<region1>." if mode == "marked" else "What is in this crop?"
    assert seen == [(expected, "Short answers.")]
    assert out[0]["prompt"] == expected
    with pytest.raises(ValueError, match="crop_prompt"):
        RegionCaptionConfig(crop_prompt="{n} crops")
