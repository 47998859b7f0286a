"""Grounding SFT rows (``to_grounding_sft``) and predictions (``add_grounding_predictions``)."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest
from conftest import png_bytes, random_image
from datasets import Dataset, DatasetDict, Features, Image, List, Value, load_from_disk
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hfgcot import (
    add_grounding_predictions,
    evaluate_grounding,
    get_provenance,
    to_grounding_sft,
)
from hfgcot.geometry.frames import FAMILIES, MAX_ASPECT_RATIO, Frame, patch_factor
from hfgcot.parsing.grounding import parse_grounding
from hfgcot.pipelines.grounding_predictions import GroundingPredictionStage
from hfgcot.pipelines.grounding_sft import MESSAGES_FEATURE, GroundingSFTStage, user_text
from hfgcot.testing.tiny import ScriptedVLM

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
HUB_MAX_PIXELS = 12845056
LIB_MAX_PIXELS = 1003520


def assistant_box(row: dict) -> list[float]:
    """The box written in the assistant turn, parsed back like a model answer would be."""
    text = row["messages"][1]["content"][0]["text"]
    if row["model_family"] == "qwen2_vl":  # box tokens, as Qwen2-VL writes boxes
        assert text == "<|box_start|>({},{}),({},{})<|box_end|>".format(*row["gt_bbox_model"])
    else:
        assert json.loads(text) == {"bbox_2d": row["gt_bbox_model"]}
        assert all(type(v) is int for v in json.loads(text)["bbox_2d"])
    (parsed,) = parse_grounding(text)
    return list(parsed.box)


def tolerance(frame: Frame, family: str) -> tuple[float, float]:
    """Half a unit of the family's grid, in original pixels (+ float slack)."""
    if family == "qwen2_5_vl":
        return 0.5 * frame.width / frame.model_width + 1e-6, (
            0.5 * frame.height / frame.model_height + 1e-6
        )
    return 0.5 * frame.width / 1000 + 1e-6, 0.5 * frame.height / 1000 + 1e-6


# --------------------------------------------------------------------------------------------
# Round trip: assistant JSON -> frame -> original box
# --------------------------------------------------------------------------------------------


@st.composite
def image_and_box(draw):
    width = draw(st.integers(28, 5000))
    lo = max(28, math.ceil(width / MAX_ASPECT_RATIO))
    hi = min(5000, width * MAX_ASPECT_RATIO)
    height = draw(st.integers(lo, hi))
    x1 = draw(st.floats(0, width - 1, allow_nan=False))
    y1 = draw(st.floats(0, height - 1, allow_nan=False))
    w = draw(st.floats(min(1.0, width - x1), width - x1, allow_nan=False))
    h = draw(st.floats(min(1.0, height - y1), height - y1, allow_nan=False))
    return width, height, [x1, y1, w, h]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=image_and_box(),
    family=st.sampled_from(FAMILIES),
    max_pixels=st.sampled_from([50176, LIB_MAX_PIXELS, HUB_MAX_PIXELS]),
)
def test_round_trip_within_one_grid_unit(data, family, max_pixels):
    width, height, xywh = data
    stage = GroundingSFTStage(model_family=family, min_pixels=3136, max_pixels=max_pixels)
    row = stage.row_for_size(width, height, "the thing", xywh)
    if row["sft_status"] == "bbox_too_small":  # narrower than one unit of the model's grid
        return
    assert row["sft_status"] == "ok"
    frame = Frame.from_dict(row["sft_frame"])
    assert (frame.width, frame.height) == (width, height)
    assert row["sft_frame"]["factor"] == patch_factor(family)
    back = frame.box_to_pixels(assistant_box(row), family)
    x, y, w, h = xywh
    original = [x, y, min(x + w, width), min(y + h, height)]
    assert row["gt_bbox"] == pytest.approx(original)
    tx, ty = tolerance(frame, family)
    for got, want, tol in zip(back, original, (tx, ty, tx, ty), strict=True):
        assert abs(got - want) <= tol, (back, original, frame)
    # "within one resized pixel": a grid unit is at most one resized pixel for qwen2_5_vl
    if family == "qwen2_5_vl":
        assert tx <= frame.width / frame.model_width


def test_qwen2_5_vl_frame_is_the_processors(tiny_vlm):
    """The frame written into the data equals the tiny processor's real resize."""
    processor = tiny_vlm.processor
    sizes = [(10, 10), (100, 60), (200, 300), (640, 480), (1000, 90), (333, 777)]
    images = [random_image(w, h, seed=i) for i, (w, h) in enumerate(sizes)]
    grid = processor.image_processor(images=images, return_tensors="pt")["image_grid_thw"]
    stage = GroundingSFTStage(
        min_pixels=tiny_vlm.min_pixels, max_pixels=tiny_vlm.max_pixels, image_policy=_policy(1)
    )
    for (w, h), thw in zip(sizes, grid.tolist(), strict=True):
        frame = stage.row_for_size(w, h, "x", [0, 0, w, h])["sft_frame"]
        assert Frame.from_dict(frame) == Frame.from_grid_thw(w, h, thw)


def _policy(min_side: int):
    from hfgcot.images import ImagePolicy

    return ImagePolicy(min_side=min_side)


def test_relative_families_write_0_to_1000():
    for family in ("qwen2_vl", "qwen3_vl"):
        stage = GroundingSFTStage(model_family=family, bbox_format="xyxy")
        row = stage.row_for_size(400, 200, "x", [100, 50, 400, 200])
        assert row["gt_bbox_model"] == [250, 250, 1000, 1000]
    assert GroundingSFTStage(model_family="qwen3_vl").min_pixels == 65536


def test_xyxy_and_xywh_agree():
    a = GroundingSFTStage(bbox_format="xywh").row_for_size(640, 480, "x", [10, 20, 100, 50])
    b = GroundingSFTStage(bbox_format="xyxy").row_for_size(640, 480, "x", [10, 20, 110, 70])
    assert a["messages"] == b["messages"] and a["gt_bbox"] == b["gt_bbox"] == [10, 20, 110, 70]


# --------------------------------------------------------------------------------------------
# Dataset level
# --------------------------------------------------------------------------------------------


def make_dataset(rows: list[tuple]) -> Dataset:
    features = Features(
        {"image": Image(), "question": Value("string"), "bbox": List(Value("float64"))}
    )
    return Dataset.from_dict(
        {
            "image": [r[0] for r in rows],
            "question": [r[1] for r in rows],
            "bbox": [r[2] for r in rows],
        },
        features=features,
    )


BAD_ROWS = [
    (png_bytes(random_image(200, 100, 0)), "the red ball", [10, 10, 50, 40], "ok"),
    ({"bytes": b"not an image", "path": None}, "x", [1, 1, 5, 5], "undecodable_image"),
    (png_bytes(random_image(200, 100, 1)), "x", None, "missing_bbox"),
    (png_bytes(random_image(200, 100, 2)), "x", [1, 2, 3], "invalid_bbox"),
    (png_bytes(random_image(200, 100, 3)), "x", [1, 2, float("nan"), 4], "invalid_bbox"),
    (png_bytes(random_image(200, 100, 4)), "x", [10, 10, -5, 4], "invalid_bbox"),
    (png_bytes(random_image(200, 100, 5)), "x", [500, 500, 10, 10], "invalid_bbox"),
    (png_bytes(random_image(200, 100, 6)), "", [10, 10, 5, 5], "empty_question"),
    (png_bytes(random_image(200, 100, 7)), "x", [10, 10, 0.01, 0.01], "bbox_too_small"),
    (png_bytes(random_image(10, 10, 8)), "x", [1, 1, 5, 5], "image_too_small"),
    (png_bytes(random_image(200, 100, 9)), "clipped", [150, 50, 100, 100], "ok"),
]


def test_bad_rows_become_statuses_never_crash(tmp_path):
    ds = make_dataset([r[:3] for r in BAD_ROWS])
    out = to_grounding_sft(ds, max_pixels=LIB_MAX_PIXELS)
    assert len(out) == len(ds)
    assert out.features["image"] == Image()
    assert out.features["messages"] == MESSAGES_FEATURE
    assert out["question"] == ds["question"]  # order kept
    statuses = [s.split(":")[0] for s in out["sft_status"]]
    assert statuses == [r[3] for r in BAD_ROWS]
    for row in out.remove_columns("image"):  # (decoding the bad image would raise)
        if row["sft_status"] == "ok":
            assert [m["role"] for m in row["messages"]] == ["user", "assistant"]
            assert row["messages"][0]["content"][0] == {"type": "image", "text": None}
            assert len(row["gt_bbox"]) == 4 and len(row["gt_bbox_model"]) == 4
        else:
            assert row["messages"] == [] and row["gt_bbox"] == [] and row["gt_bbox_model"] == []
    assert out[-1]["gt_bbox"] == [150.0, 50.0, 200.0, 100.0]  # clipped to the image
    # the image-less row has no frame; the others do
    assert out["sft_frame"][1] is None and out["sft_frame"][0]["width"] == 200
    record = get_provenance(out)[-1]
    assert record["pipeline"] == "grounding_sft"
    assert record["rows"] == len(ds) and "model" not in record  # no model runs
    assert record["status_column"] == "sft_status" and record["status"]["ok"] == 2
    assert record["config"]["max_pixels"] == LIB_MAX_PIXELS and record["config"]["min_pixels"]
    assert [s["name"] for s in record["stages"]] == ["grounding_sft"]
    assert "gt_bbox" in record["boxes"]
    out.save_to_disk(str(tmp_path / "sft"))
    back = load_from_disk(str(tmp_path / "sft"))
    assert back[0]["messages"] == out[0]["messages"]
    assert get_provenance(back)[-1]["pipeline"] == "grounding_sft"


def test_messages_column_is_arrow_friendly_and_chat_template_ready(tiny_vlm):
    ds = make_dataset([BAD_ROWS[0][:3], BAD_ROWS[-1][:3]])
    out = to_grounding_sft(ds, processor=tiny_vlm.processor)
    table = out.data.table
    assert str(table.schema.field("messages").type).startswith("list<item: struct<role: string")
    text = tiny_vlm.processor.apply_chat_template(out[0]["messages"], tokenize=False)
    assert "<|vision_start|><|image_pad|><|vision_end|>the red ball\n" in text
    assert text.endswith(out[0]["messages"][1]["content"][0]["text"] + "<|im_end|>\n")
    assert user_text(out[0]["messages"]).startswith("the red ball\nLocate the region")


def test_custom_prompt_and_validation():
    stage = GroundingSFTStage(prompt="Find {question}. Answer as JSON {{bbox_2d}}.")
    row = stage.row_for_size(100, 100, "the dog", [1, 1, 50, 50])
    assert row["messages"][0]["content"][1]["text"] == "Find the dog. Answer as JSON {bbox_2d}."
    with pytest.raises(ValueError, match="question"):
        GroundingSFTStage(prompt="no placeholder")
    with pytest.raises(ValueError, match=r"unknown placeholder \{other\}"):
        GroundingSFTStage(prompt="{question} {other}")
    with pytest.raises(ValueError, match="literal braces"):
        GroundingSFTStage(prompt="{question} {")
    with pytest.raises(ValueError, match="bbox_format"):
        GroundingSFTStage(bbox_format="cxcywh")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="model_family"):
        GroundingSFTStage(model_family="llava")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="min_pixels"):
        GroundingSFTStage(min_pixels=10**8, max_pixels=10**6)


def test_fingerprint_deterministic_and_config_sensitive():
    ds = make_dataset([BAD_ROWS[0][:3]])
    a = to_grounding_sft(ds, max_pixels=LIB_MAX_PIXELS)
    b = to_grounding_sft(ds, max_pixels=LIB_MAX_PIXELS)
    c = to_grounding_sft(ds, max_pixels=HUB_MAX_PIXELS)
    d = to_grounding_sft(ds, max_pixels=LIB_MAX_PIXELS, model_family="qwen3_vl")
    assert a._fingerprint == b._fingerprint
    assert len({a._fingerprint, c._fingerprint, d._fingerprint}) == 3
    base = GroundingSFTStage()
    assert base.fingerprint == GroundingSFTStage(min_pixels=3136).fingerprint  # defaults resolved
    assert base.fingerprint != GroundingSFTStage(prompt="{question}?").fingerprint


def test_image_paths_header_only_and_dataset_dict(tmp_path):
    path = tmp_path / "a.png"
    random_image(120, 80, 0).save(path)
    ds = Dataset.from_dict(
        {
            "image": [str(path), str(tmp_path / "missing.png")],
            "q": ["x", "y"],
            "box": [[0, 0, 60, 40]] * 2,
        }
    )
    dd = DatasetDict({"train": ds, "test": ds})
    out = to_grounding_sft(
        dd, text_column="q", bbox_column="box", bbox_format="xyxy", verify_images=False
    )
    assert set(out) == {"train", "test"}
    assert get_provenance(out["test"])[-1]["pipeline"] == "grounding_sft"
    assert out["train"]["sft_status"][0] == "ok"
    assert out["train"]["sft_status"][1] != "ok"
    with pytest.raises(KeyError, match="nope"):
        to_grounding_sft(ds, text_column="nope", bbox_column="box")


# --------------------------------------------------------------------------------------------
# Predictions
# --------------------------------------------------------------------------------------------


def boxed_dataset(sizes):
    rows = []
    for i, (w, h) in enumerate(sizes):
        box = [w * 0.1 + i, h * 0.2, w * 0.5, h * 0.6]  # xywh
        rows.append((png_bytes(random_image(w, h, seed=i)), f"object number {i}", box))
    return make_dataset(rows)


@pytest.mark.model
def test_predictions_map_the_model_frame_back_to_original_pixels(tiny_vlm):
    sizes = [(300, 200), (64, 64), (1000, 90), (90, 400)]
    sft = to_grounding_sft(boxed_dataset(sizes), processor=tiny_vlm.processor)
    assert sft["sft_status"] == ["ok"] * len(sizes)
    gt_of = {user_text(m): box for m, box in zip(sft["messages"], sft["gt_bbox"], strict=True)}

    def script(request, text):
        if "number 3" in text:
            return "I do not know."
        frame = tiny_vlm.frames([request.image])[0]
        model_box = [round(v) for v in frame.box_to_model(gt_of[text], "qwen2_5_vl")]
        return f'```json\n[{{"bbox_2d": {model_box}, "label": "x"}}]\n```'

    fake = ScriptedVLM(tiny_vlm, script)
    out = add_grounding_predictions(sft, fake, batch_size=3)
    assert len(out) == len(sft)
    assert out["pred_status"] == ["ok", "ok", "ok", "unparseable"]
    assert out[3]["pred_bbox"] == [] and out[3]["pred_text"] == "I do not know."
    assert set(fake.calls) == set(gt_of)  # asked exactly the training prompts
    for row in out.select(range(3)):
        frame = Frame.from_dict(row["sft_frame"])
        tol = frame.width / frame.model_width
        assert row["pred_bbox"] == pytest.approx(row["gt_bbox"], abs=tol)
    records = get_provenance(out)
    assert [r["pipeline"] for r in records] == ["grounding_sft", "grounding_predictions"]
    assert records[-1]["status_column"] == "pred_status"
    assert records[-1]["status"] == {"ok": 3, "unparseable": 1}
    assert records[-1]["model"]["family"] == "qwen2_5_vl"
    metrics = evaluate_grounding(out)
    assert metrics["n"] == 4 and metrics["unparseable"] == 1
    assert metrics["acc@0.5"] == 0.75


@pytest.mark.model
def test_predictions_skip_bad_rows_and_work_without_messages(tiny_vlm):
    ds = make_dataset([BAD_ROWS[0][:3], BAD_ROWS[1][:3], BAD_ROWS[2][:3]])
    sft = to_grounding_sft(ds, processor=tiny_vlm.processor)
    fake = ScriptedVLM(tiny_vlm, lambda req, text: '{"bbox_2d": [0, 0, 28, 28]}')
    out = add_grounding_predictions(sft, fake, prefix="zs")
    assert [s.split(":")[0] for s in out["zs_status"]] == [
        "ok",
        "undecodable_image",
        "missing_bbox",
    ]
    assert len(fake.calls) == 1
    # plain eval rows: no messages, the question is asked with the SFT prompt
    plain = add_grounding_predictions(ds, fake, status_column="none")
    assert plain["pred_status"][0] == "ok" and plain["pred_status"][1] == "undecodable_image"
    assert get_provenance(out)[-1]["status_column"] == "zs_status"
    assert [r["pipeline"] for r in get_provenance(plain)] == ["grounding_predictions"]
    assert fake.calls[1] == user_text(sft[0]["messages"])


@pytest.mark.model
def test_predictions_with_the_random_tiny_model(tiny_vlm_path):
    sft = to_grounding_sft(boxed_dataset([(100, 60), (60, 100)]), max_pixels=50176)
    out = add_grounding_predictions(sft, tiny_vlm_path, max_new_tokens=8, batch_size=2)
    assert len(out) == 2
    for row in out:  # nonsense text, but a row-level status and a well-formed box column
        statuses = ("ok", "unparseable", "ok: truncated grounding_predict")
        assert row["pred_status"] in (*statuses, "truncated_output: grounding_predict")
        assert len(row["pred_bbox"]) in (0, 4)
    stage = GroundingPredictionStage()
    assert stage.status_column == "pred_status"


# --------------------------------------------------------------------------------------------
# examples/textvqa_grounding.py on a local dataset of the TextVQA-with-boxes schema
# --------------------------------------------------------------------------------------------


def load_example(name: str):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def textvqa_like(tmp_path: Path) -> Path:
    features = Features(
        {
            "image": Image(),
            "question": Value("string"),
            "answer": List(Value("string")),
            "bbox": List(Value("float64")),
        }
    )
    ds = Dataset.from_dict(
        {
            "image": [
                png_bytes(random_image(w, h, i))
                for i, (w, h) in enumerate([(640, 480), (300, 500), (200, 100)])
            ],
            "question": ["what brand is this?", "what is the number?", "what does it say?"],
            "answer": [["nokia"] * 10, ["42", "forty two"], ["stop"]],
            "bbox": [[100, 50, 200, 100], [10, 20, 30, 40], [0, 0, 0, 0]],
        },
        features=features,
    )
    path = tmp_path / "textvqa"
    ds.save_to_disk(str(path))
    return path


def test_textvqa_example_converts_local_dataset(tmp_path, capsys):
    module = load_example("textvqa_grounding")
    src = textvqa_like(tmp_path)
    out_dir = tmp_path / "sft"
    sft = module.main(
        ["--input", str(src), "--output", str(out_dir), "--max-pixels", str(LIB_MAX_PIXELS)]
    )
    printed = capsys.readouterr().out
    assert "3 rows" in printed and "bbox_2d" in printed
    assert sft["sft_status"][:2] == ["ok", "ok"] and sft["sft_status"][2].startswith("invalid_bbox")
    assert sft[0]["answer"] == ["nokia"] * 10  # the answers stay, for evaluate_gcot
    # 640x480 -> 644x476 with max 1,003,520: [100, 50, 300, 150] -> [101, 50, 302, 149]
    assert sft[0]["sft_frame"]["model_width"] == 644
    assert sft[0]["gt_bbox_model"] == [101, 50, 302, 149]
    assert load_from_disk(str(out_dir))["sft_status"] == sft["sft_status"]
    dropped = module.convert(load_from_disk(str(src)), model_family="qwen3_vl", drop_bad=True)
    assert len(dropped) == 2 and dropped[0]["gt_bbox_model"] == [156, 104, 469, 312]


def test_textvqa_example_help():
    module = load_example("textvqa_grounding")
    help_text = module.build_parser().format_help()
    assert "examples:" in help_text and "--max-pixels" in help_text


def test_cli_sft_subcommand(tmp_path, capsys):
    from hfgcot.cli import main

    src = textvqa_like(tmp_path)
    out_dir = tmp_path / "cli_sft"
    argv = ["sft", "--input", str(src), "--output", str(out_dir), "--max-pixels", "1003520"]
    assert main(argv) == 0
    assert "3 rows" in capsys.readouterr().out
    out = load_from_disk(str(out_dir))
    assert out["gt_bbox_model"][0] == [101, 50, 302, 149]


@pytest.mark.model
def test_existing_output_columns_are_refused_reruns_allowed(tiny_vlm):
    ds = boxed_dataset([(100, 60)])
    with pytest.raises(ValueError, match=r"\['messages'\]"):
        to_grounding_sft(ds.add_column("messages", ["mine"]))
    sft = to_grounding_sft(ds)
    assert to_grounding_sft(sft, bbox_format="xyxy")["sft_status"] == ["ok"]  # rerun: allowed
    fake = ScriptedVLM(tiny_vlm, lambda req, text: '{"bbox_2d": [0, 0, 28, 28]}')
    with pytest.raises(ValueError, match=r"\['pred_text'\]"):
        add_grounding_predictions(sft.add_column("pred_text", ["mine"]), fake)
    once = add_grounding_predictions(sft, fake)
    assert add_grounding_predictions(once, fake)["pred_status"] == ["ok"]
    kept = add_grounding_predictions(
        sft.add_column("pred_text", ["mine"]), fake, overwrite_columns=True
    )
    assert kept["pred_text"] == ['{"bbox_2d": [0, 0, 28, 28]}']
