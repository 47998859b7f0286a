"""The one family table (hfgcot.geometry.families) and every place that reads it."""

from __future__ import annotations

import dataclasses
import json

import pytest
from conftest import png_bytes, random_image
from datasets import Dataset, Image

from hfgcot.geometry import families
from hfgcot.geometry.families import (
    FAMILIES,
    FAMILY_TABLE,
    ModelFamily,
    UnknownFamilyError,
    box_text,
    family_for_model_type,
    family_for_processor,
    get_family,
    known_families,
)
from hfgcot.geometry.frames import Frame, smart_resize
from hfgcot.parsing.grounding import parse_grounding

FAKE = ModelFamily(
    name="fake_vl",
    title="Fake-VL",
    model_types=("fake_vl", "fake_vl_moe"),
    processor_classes=("FakeVLProcessor",),
    patch_size=10,
    merge_size=3,
    boxes="relative",
    text_form="bbox_json",
    min_pixels=900,
    max_pixels=90_000,
    grounding_prompt='Fake: find "{phrase}".',
    joint_grounding_prompt="Fake: find {phrases}.",
    grounding_sft_prompt="{question}\nFake: box it.",
    prompt_source="a test",
)


@pytest.fixture
def fake_family(monkeypatch: pytest.MonkeyPatch) -> ModelFamily:
    """A fourth family added to the table as one row, for this test only."""
    monkeypatch.setattr(families, "FAMILY_TABLE", (*FAMILY_TABLE, FAKE))
    return FAKE


# --------------------------------------------------------------------------------------------
# The table itself
# --------------------------------------------------------------------------------------------


def test_the_table_holds_the_known_facts():
    assert known_families() == FAMILIES == ("qwen2_vl", "qwen2_5_vl", "qwen3_vl")
    assert [(r.patch_size, r.merge_size, r.factor) for r in FAMILY_TABLE] == [
        (14, 2, 28),
        (14, 2, 28),
        (16, 2, 32),
    ]
    assert [r.boxes for r in FAMILY_TABLE] == ["relative", "resized_pixels", "relative"]
    assert [r.text_form for r in FAMILY_TABLE] == ["box_tokens", "bbox_json", "bbox_json"]
    assert get_family("qwen3_vl").min_pixels == 65536
    names = [m for r in FAMILY_TABLE for m in r.model_types]
    assert len(names) == len(set(names)), "a model_type belongs to one family"
    assert len({r.name for r in FAMILY_TABLE}) == len(FAMILY_TABLE)


def test_unknown_names_are_one_error_listing_the_known_families():
    for call in (
        lambda: get_family("llava"),
        lambda: family_for_model_type("llava"),
        lambda: families.patch_factor("idefics3"),
        lambda: Frame(10, 10, 28, 28).box_to_pixels([0, 0, 1, 1], "llava"),
    ):
        with pytest.raises(UnknownFamilyError) as err:
            call()
        assert isinstance(err.value, ValueError)
        for row in FAMILY_TABLE:
            assert row.name in str(err.value)
        assert "qwen3_vl_moe" in str(err.value)


@pytest.mark.parametrize("family", FAMILIES)
def test_box_text_is_read_back_by_the_parser(family):
    text = box_text(family, [12, 34, 560, 780], "red ball")
    (parsed,) = parse_grounding(text)
    assert parsed.box == (12, 34, 560, 780) and parsed.label == "red ball"
    if get_family(family).text_form == "box_tokens":
        assert text.startswith("<|object_ref_start|>red ball<|object_ref_end|><|box_start|>")
    else:
        assert json.loads(text) == {"bbox_2d": [12, 34, 560, 780], "label": "red ball"}


# --------------------------------------------------------------------------------------------
# Every place agrees with the table
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
def test_frames_follow_the_convention_of_the_row(family):
    row = get_family(family)
    frame = Frame.for_image(
        640, 480, min_pixels=row.min_pixels, max_pixels=row.max_pixels, factor=row.factor
    )
    assert frame.model_width % row.factor == 0 and frame.model_height % row.factor == 0
    full = [0, 0, 1000, 1000] if row.relative else [0, 0, frame.model_width, frame.model_height]
    assert frame.box_to_pixels(full, family) == [0.0, 0.0, 640.0, 480.0]
    assert frame.box_to_model([0, 0, 640, 480], family) == [float(v) for v in full]


@pytest.mark.parametrize("family", FAMILIES)
def test_sft_rows_take_limits_prompt_and_text_form_from_the_row(family):
    from hfgcot.pipelines.grounding_sft import GroundingSFTConfig, GroundingSFTStage

    row = get_family(family)
    stage = GroundingSFTStage(model_family=family, bbox_format="xyxy")
    assert (stage.min_pixels, stage.max_pixels, stage.factor) == (
        row.min_pixels,
        row.max_pixels,
        row.factor,
    )
    assert stage.prompt == row.grounding_sft_prompt
    assert GroundingSFTConfig(model_family=family).for_family(family).prompt == stage.prompt
    out = stage.row_for_size(400, 200, "the cat", [100, 50, 400, 200])
    assert out["sft_status"] == "ok"
    answer = out["messages"][1]["content"][0]["text"]
    assert answer == box_text(family, out["gt_bbox_model"])
    assert out["messages"][0]["content"][1]["text"] == row.grounding_sft_prompt.format(
        question="the cat"
    )


def test_the_collator_knows_each_processor_class_of_the_table():
    from hfgcot.collator import processor_family

    for row in FAMILY_TABLE:
        for class_name in row.processor_classes:
            processor = type(class_name, (), {})()
            subclass = type("Custom" + class_name, (type(processor),), {})()
            assert processor_family(processor) == family_for_processor(subclass) == row.name
    assert processor_family(object()) is None


def test_the_card_words_each_family_from_the_table():
    from hfgcot.publishing.card import build_card
    from hfgcot.publishing.provenance import attach_provenance

    for row in FAMILY_TABLE:
        ds = attach_provenance(
            Dataset.from_dict({"x": [1]}),
            {"pipeline": "gcot", "model": {"family": row.name, "min_pixels": 1, "max_pixels": 2}},
        )
        text = str(build_card(ds, version="1.0.0", load_code="load()"))
        assert f"The model ({row.name}) writes boxes as {row.box_wording}" in text


def test_the_cli_offers_the_families_of_the_table():
    from hfgcot.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")  # noqa: SLF001
    sft = sub.choices["sft"]
    (family,) = (a for a in sft._actions if a.dest == "model_family")  # noqa: SLF001
    assert tuple(family.choices) == known_families()


def test_the_endpoint_resizes_with_the_factor_of_the_row():
    from hfgcot.model.endpoint import EndpointSpec, frame_limits

    for row in FAMILY_TABLE:
        spec = EndpointSpec("http://h/v1", "m", family=row.name, min_pixels=1, max_pixels=10**6)
        assert frame_limits(spec).factor == row.factor
    with pytest.raises(UnknownFamilyError, match="qwen2_5_vl"):
        EndpointSpec("http://h/v1", "m", family="llava")


# --------------------------------------------------------------------------------------------
# A new family is one row
# --------------------------------------------------------------------------------------------


def test_a_fourth_row_flows_through_frames_sft_card_and_lookups(fake_family, tmp_path):
    from hfgcot.collator import processor_family
    from hfgcot.model.family import config_family
    from hfgcot.pipelines.grounding_sft import GroundingSFTStage
    from hfgcot.publishing.card import build_card
    from hfgcot.publishing.provenance import attach_provenance

    assert known_families()[-1] == "fake_vl" and FAMILIES[-1] == "qwen3_vl"
    assert family_for_model_type("fake_vl_moe") == "fake_vl"
    assert families.patch_factor("fake_vl") == 30
    assert processor_family(type("FakeVLProcessor", (), {})()) == "fake_vl"
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "fake_vl"}))
    assert config_family(str(tmp_path), None) == "fake_vl"

    frame = Frame(200, 100, 210, 120)
    assert frame.box_to_pixels([0, 0, 500, 500], "fake_vl") == [0.0, 0.0, 100.0, 50.0]

    stage = GroundingSFTStage(model_family="fake_vl", bbox_format="xyxy")
    row = stage.row_for_size(400, 200, "the cat", [100, 50, 400, 200])
    assert row["sft_status"] == "ok" and row["gt_bbox_model"] == [250, 250, 1000, 1000]
    assert row["sft_frame"]["factor"] == 30
    h, w = smart_resize(200, 400, factor=30, min_pixels=900, max_pixels=90_000)
    assert (row["sft_frame"]["model_width"], row["sft_frame"]["model_height"]) == (w, h)
    assert row["messages"][0]["content"][1]["text"] == "the cat\nFake: box it."

    ds = attach_provenance(Dataset.from_dict({"x": [1]}), {"model": {"family": "fake_vl"}})
    text = str(build_card(ds, version="1.0.0", load_code="load()"))
    assert f"writes boxes as {FAKE.box_wording}" in text


def test_a_fourth_row_is_offered_by_the_cli(fake_family):
    from hfgcot.cli import build_parser

    parser = build_parser()
    args = parser.parse_args(["sft", "--input", "i", "--output", "o", "--model-family", "fake_vl"])
    assert args.model_family == "fake_vl"


def test_rows_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        FAKE.patch_size = 3  # type: ignore[misc]


# --------------------------------------------------------------------------------------------
# Models outside the table: one clear error, before anything long runs
# --------------------------------------------------------------------------------------------


@pytest.fixture(params=["llava", "idefics3"])
def other_model(request: pytest.FixtureRequest, tmp_path) -> str:
    """A LLaVA or Idefics3 style model folder (its config only: nothing may be loaded)."""
    from transformers import Idefics3Config, LlavaConfig

    config = LlavaConfig() if request.param == "llava" else Idefics3Config()
    folder = tmp_path / request.param
    config.save_pretrained(folder)
    return str(folder)


def assert_lists_the_families(message: str, model_type: str) -> None:
    assert f"model_type {model_type!r} is not a Qwen-VL family" in message
    for row in FAMILY_TABLE:
        assert f"{row.name} (model_type {', '.join(row.model_types)})" in message


def _rows(tmp_path) -> Dataset:
    ds = Dataset.from_dict(
        {"image": [png_bytes(random_image(40, 30))], "question": ["q"], "answer": ["a"]}
    )
    return ds.cast_column("image", Image())


def test_load_vlm_refuses_another_model_type_before_loading_it(other_model, monkeypatch):
    import transformers

    from hfgcot import load_vlm

    def never(*args, **kwargs):
        raise AssertionError("nothing may be loaded")

    monkeypatch.setattr(transformers.AutoProcessor, "from_pretrained", never)
    monkeypatch.setattr(transformers.AutoModelForImageTextToText, "from_pretrained", never)
    with pytest.raises(UnknownFamilyError) as err:
        load_vlm(other_model)
    assert_lists_the_families(
        str(err.value), json.load(open(f"{other_model}/config.json"))["model_type"]
    )


def test_pipelines_refuse_another_model_type_before_any_row(other_model, tmp_path, monkeypatch):
    from hfgcot import add_gcot, add_grounding_predictions
    from hfgcot.model import spec as spec_module
    from hfgcot.model.endpoint import EndpointSpec

    monkeypatch.setattr(spec_module, "_load", lambda *a: pytest.fail("a model was loaded"))
    model_type = json.load(open(f"{other_model}/config.json"))["model_type"]
    for model in (other_model, EndpointSpec("http://127.0.0.1:9/v1", other_model)):
        for entry in (add_gcot, add_grounding_predictions):
            with pytest.raises(UnknownFamilyError) as err:
                entry(_rows(tmp_path), model)
            assert_lists_the_families(str(err.value), model_type)


@pytest.mark.parametrize("endpoint", [False, True])
def test_the_cli_says_it_in_one_line(other_model, tmp_path, capsys, endpoint):
    from hfgcot.cli import main

    random_image(40, 30).save(tmp_path / "img.png")
    row = {"image": "img.png", "question": "q", "answer": "a"}
    (tmp_path / "rows.jsonl").write_text(json.dumps(row))
    argv = ["gcot", "--input", str(tmp_path / "rows.jsonl"), "--output", str(tmp_path / "out")]
    argv += ["--model", other_model]
    if endpoint:
        argv += ["--endpoint", "http://127.0.0.1:9/v1"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    last = err.splitlines()[-1]
    assert last.startswith("hfgcot: error: ") and "Traceback" not in err
    assert "is not a Qwen-VL family" in last and "qwen3_vl_moe" in last
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name", ["CLIPImageProcessor", "Idefics3ImageProcessor"])
def test_sft_and_the_collator_refuse_another_processor(name):
    import transformers

    from hfgcot import GroundingCollator, to_grounding_sft

    processor = getattr(transformers, name)()
    rows = Dataset.from_dict({"image": [png_bytes(random_image(40, 30))], "question": ["q"]})
    rows = rows.add_column("bbox", [[1, 2, 10, 12]])
    for build in (
        lambda: to_grounding_sft(rows, processor=processor, bbox_format="xyxy"),
        lambda: GroundingCollator(processor),
    ):
        with pytest.raises(UnknownFamilyError) as err:
            build()
        message = str(err.value)
        assert f"{name} is not the processor of a Qwen-VL family" in message
        assert all(row.name in message for row in FAMILY_TABLE)
