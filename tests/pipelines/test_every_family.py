"""Every pipeline on every Qwen-VL family, with tiny stock models of each family.

Each family's tiny model is built once per session (``build_tiny_vlm(family=...)``) and runs
through its own processor (Qwen3-VL: patch 16, merge 2). The scripted stand-in answers grounding
requests as the family writes boxes (Qwen2-VL box tokens in 0..1000, Qwen2.5-VL ``bbox_2d`` in
pixels of the resized image, Qwen3-VL ``bbox_2d`` in 0..1000), decoded like a real generation; the
boxes must come back in original pixels within one unit of the model's frame, and the same
numbers read in the other convention must land elsewhere.
"""

from __future__ import annotations

import math

import pytest
from conftest import png_bytes, random_image
from datasets import Dataset, Features, Image, List, Value

from hfgcot import (
    GroundingCollator,
    add_dense_captions,
    add_gcot,
    add_grounding_predictions,
    add_region_captions,
    evaluate_grounding,
    get_provenance,
    load_vlm,
    prompts,
    to_grounding_sft,
)
from hfgcot.collator import IGNORE_INDEX
from hfgcot.geometry.families import FAMILIES, get_family
from hfgcot.geometry.frames import Frame, iou
from hfgcot.testing import GroundingScriptedVLM, ScriptedVLM, build_tiny_vlm

pytestmark = pytest.mark.model

SIZE = (300, 200)
BOXES = {"red ball": [30.0, 40.0, 150.0, 120.0], "blue box": [180.0, 20.0, 290.0, 190.0]}
COT = (
    "Step 1: The red ball lies left of the blue box.\n"
    "Step 2: The ball is red.\n"
    "Answer: red ball\n"
    "Keywords: red ball, blue box"
)
OTHER_CONVENTION = {"relative": "qwen2_5_vl", "resized_pixels": "qwen3_vl"}


@pytest.fixture(scope="session")
def family_paths(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("families")
    return {f: build_tiny_vlm(root / f, family=f, seed=0) for f in FAMILIES}


@pytest.fixture(params=FAMILIES)
def family(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def vlm(family: str, family_paths: dict[str, str]):
    return load_vlm(family_paths[family])


def image_dataset(n: int = 1, **columns) -> Dataset:
    images = [png_bytes(random_image(*SIZE, seed=i)) for i in range(n)]
    return Dataset.from_dict({"image": images, **columns}).cast_column("image", Image())


def unit(frame: Frame, family: str) -> tuple[float, float]:
    """One unit of the family's box numbers, in original pixels."""
    if get_family(family).relative:
        return frame.width / 1000, frame.height / 1000
    return frame.width / frame.model_width, frame.height / frame.model_height


def assert_exact(box: list[float], want: list[float], frame: Frame, family: str) -> None:
    ux, uy = unit(frame, family)
    for got, expected, tol in zip(box, want, (ux, uy, ux, uy), strict=True):
        assert abs(got - expected) <= tol, (box, want, family)


def assert_elsewhere(model_box: list[float], want: list[float], frame: Frame, family: str):
    """The numbers the model wrote, read in the other convention, do not give the box."""
    wrong = frame.box_to_pixels(model_box, OTHER_CONVENTION[get_family(family).boxes])
    assert iou(wrong, want) < 0.5, (wrong, want, family)
    ux, uy = unit(frame, family)
    assert max(abs(a - b) / u for a, b, u in zip(wrong, want, (ux, uy, ux, uy), strict=True)) > 10


def grounding_objects(request, prompt: str):
    if prompt.startswith("Question:"):
        return None  # the reasoning request: answered by the script
    return [(phrase, box) for phrase, box in BOXES.items() if phrase in prompt]


# --------------------------------------------------------------------------------------------
# The tiny models themselves
# --------------------------------------------------------------------------------------------


def test_tiny_models_load_as_the_stock_classes(family, family_paths, vlm):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    row = get_family(family)
    processor = AutoProcessor.from_pretrained(family_paths[family])
    model = AutoModelForImageTextToText.from_pretrained(family_paths[family])
    assert type(processor).__name__ in row.processor_classes
    assert model.config.model_type in row.model_types
    assert type(model).__module__.startswith("transformers.models.")
    assert processor.image_processor.patch_size == row.patch_size
    assert processor.image_processor.merge_size == row.merge_size
    assert vlm.family == family and vlm.patch_size == row.patch_size
    assert sum(p.numel() for p in model.parameters()) < 1_000_000
    (frame,) = vlm.frames([random_image(*SIZE)])
    assert frame.model_width % row.factor == 0 and frame.model_height % row.factor == 0
    text = processor.apply_chat_template(
        [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
        tokenize=False,
        add_generation_prompt=True,
    )
    assert text.endswith("<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n")
    # Qwen3-VL's template has no default system turn; the older families' has one
    assert ("You are a helpful assistant." in text) == (family != "qwen3_vl")


def test_tiny_qwen3_vl_moe(tmp_path):
    path = build_tiny_vlm(tmp_path / "moe", family="qwen3_vl", moe=True)
    vlm = load_vlm(path)
    assert vlm.family == "qwen3_vl" and vlm.model.config.model_type == "qwen3_vl_moe"
    from transformers import AutoModelForImageTextToText, AutoProcessor

    stock = AutoModelForImageTextToText.from_pretrained(path)
    assert type(stock).__name__ == "Qwen3VLMoeForConditionalGeneration"
    assert type(AutoProcessor.from_pretrained(path)).__name__ == "Qwen3VLProcessor"
    out = GroundingScriptedVLM(vlm, grounding_objects).generate([_request(vlm, "red ball")])
    (parsed,) = _parse(out[0].text)
    assert_exact(
        out[0].frame.box_to_pixels(parsed, "qwen3_vl"), BOXES["red ball"], out[0].frame, "qwen3_vl"
    )
    with pytest.raises(ValueError, match="qwen3_vl only"):
        build_tiny_vlm(tmp_path / "no", family="qwen2_vl", moe=True)


def _request(vlm, phrase: str):
    from hfgcot.model.vlm import Request

    return Request(random_image(*SIZE), f'Find "{phrase}".')


def _parse(text: str) -> list[list[float]]:
    from hfgcot.parsing.grounding import parse_grounding

    return [list(p.box) for p in parse_grounding(text)]


def test_answers_are_the_family_native_text_decoded_like_a_generation(family, vlm):
    fake = GroundingScriptedVLM(vlm, grounding_objects)
    (frame,) = vlm.frames([random_image(*SIZE)])
    model_box = [round(v) for v in frame.box_to_model(BOXES["red ball"], family)]
    out = fake.generate([_request(vlm, "red ball")])[0]
    x1, y1, x2, y2 = model_box
    expected = {  # written out by hand: what each family's model answers
        "qwen2_vl": f"red ball({x1},{y1}),({x2},{y2})",  # the box tokens are special: skipped
        "qwen2_5_vl": f'"bbox_2d": [{x1}, {y1}, {x2}, {y2}], "label": "red ball"',
        "qwen3_vl": f'"bbox_2d": [{x1}, {y1}, {x2}, {y2}], "label": "red ball"',
    }[family]
    assert expected in out.text
    if family == "qwen2_vl":
        assert fake.answer(None, 'Find "red ball".', frame) == (
            f"<|object_ref_start|>red ball<|object_ref_end|><|box_start|>({x1},{y1}),({x2},{y2})"
            "<|box_end|>"
        )
    if get_family(family).relative:
        assert model_box == [100, 200, 500, 600]


# --------------------------------------------------------------------------------------------
# GCoT
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["per_keyword", "joint"])
def test_gcot_boxes_are_exact_in_original_pixels(family, vlm, mode):
    fake = GroundingScriptedVLM(vlm, grounding_objects, lambda request, text: COT)
    ds = image_dataset(2, question=["What is left of the box?"] * 2, answer=["a red ball"] * 2)
    out = add_gcot(ds, fake, grounding=mode, batch_size=2)
    row = get_family(family)
    template = row.grounding_prompt if mode == "per_keyword" else row.joint_grounding_prompt
    sent = [c for c in fake.calls if not c.startswith("Question:")]
    if mode == "per_keyword":
        assert set(sent) == {prompts.grounding_prompt(p, template) for p in BOXES}
    else:
        assert set(sent) == {prompts.joint_grounding_prompt(list(BOXES), template)}
    assert get_provenance(out)[-1]["model"]["family"] == family
    recorded = get_provenance(out)[-1]["prompts"]
    assert recorded["grounding_prompt"] == row.grounding_prompt
    assert recorded["joint_grounding_prompt"] == row.joint_grounding_prompt
    (frame,) = vlm.frames([random_image(*SIZE)])
    for result in out:
        assert result["gcot_status"] == "ok"
        assert [g["phrase"] for g in result["groundings"]] == list(BOXES)
        for g in result["groundings"]:
            assert_exact(g["bbox"], BOXES[g["phrase"]], frame, family)
            assert_elsewhere(g["bbox_model"], BOXES[g["phrase"]], frame, family)
        assert (
            f"red ball [{', '.join(str(round(v)) for v in result['groundings'][0]['bbox'])}]"
            in (result["gcot"])
        )


def test_a_prompt_the_user_sets_wins_for_every_family(family, vlm):
    fake = GroundingScriptedVLM(vlm, grounding_objects, lambda request, text: COT)
    ds = image_dataset(1, question=["Why?"], answer=["a red ball"])
    out = add_gcot(ds, fake, grounding_prompt="Where is the {phrase}?")
    assert {c for c in fake.calls if c.startswith("Where")} == {
        "Where is the red ball?",
        "Where is the blue box?",
    }
    assert get_provenance(out)[-1]["prompts"]["grounding_prompt"] == "Where is the {phrase}?"
    assert out[0]["gcot_status"] == "ok"


# --------------------------------------------------------------------------------------------
# Dense captions, region captions
# --------------------------------------------------------------------------------------------

CAPTION = "A red ball lies on the grass. A purple dragon flies above it."


def caption_script(request, text: str) -> str:
    if text == prompts.DENSE_CAPTION_PROMPT:
        return CAPTION
    if text.startswith("Here is a sentence about this image"):
        return "No." if "dragon" in text else "Yes."
    if text.startswith("Here is a description of an image"):
        return "Describe more details about the red ball."
    if text.startswith("Below is a verified description"):
        return "FUSED caption."
    return "The ball is shiny."


@pytest.mark.parametrize("checker", ["yesno", "contrastive"])
def test_dense_captions(family, vlm, checker):
    fake = ScriptedVLM(vlm, caption_script)
    options = {"threshold": -1e9} if checker == "contrastive" else {}
    out = add_dense_captions(image_dataset(2), fake, checker=checker, max_questions=1, **options)
    for row in out:
        assert row["dense_caption_status"] == "ok"
        assert row["final_caption"] == "FUSED caption."
        assert len(row["sentence_scores"]) == 2
        assert all(math.isfinite(s) for s in row["sentence_scores"])
    if checker == "yesno":
        assert out[0]["golden_sentences"] == ["A red ball lies on the grass."]
    else:  # scored by the family's tiny model itself: a real forward pass per sentence
        assert len(out[0]["golden_sentences"]) == 2


@pytest.mark.parametrize("mode", ["marked", "crop"])
def test_region_captions(family, vlm, mode):
    def script(request, text):
        if mode == "crop":
            return "crop {}x{}".format(*request.image.size)
        return "<region1>: the ball\n<region2>: the box"

    ds = image_dataset(1, bbox=[[[30, 40, 120, 80], [180, 20, 110, 170]]])
    out = add_region_captions(ds, ScriptedVLM(vlm, script), mode=mode, bbox_format="xywh")
    row = out[0]
    assert row["region_caption_status"] == "ok" and row["valid_bboxes_num"] == 2
    if mode == "crop":
        assert row["region_captions"] == ["crop 120x80", "crop 110x170"]
    else:
        assert row["region_captions"] == ["the ball", "the box"]


# --------------------------------------------------------------------------------------------
# Grounding SFT, collator, training steps, predictions, evaluation
# --------------------------------------------------------------------------------------------


def sft_input(n: int = 2) -> Dataset:
    features = Features(
        {"image": Image(), "question": Value("string"), "bbox": List(Value("float64"))}
    )
    phrases = list(BOXES)[:n]
    return Dataset.from_dict(
        {
            "image": [png_bytes(random_image(*SIZE, seed=i)) for i in range(n)],
            "question": phrases,
            "bbox": [BOXES[p] for p in phrases],
        },
        features=features,
    ).cast_column("image", Image())


def test_sft_collator_and_a_few_training_steps(family, vlm, family_paths):
    import torch
    from transformers import AutoModelForImageTextToText

    sft = to_grounding_sft(
        sft_input(), processor=vlm.processor, model_family=family, bbox_format="xyxy"
    )
    row = get_family(family)
    assert sft["sft_status"] == ["ok", "ok"] and sft["model_family"] == [family] * 2
    (seen,) = vlm.frames([random_image(*SIZE)])  # what the family's processor produces
    for r in sft:
        assert r["messages"][0]["content"][1]["text"] == row.grounding_sft_prompt.format(
            question=r["question"]
        )
        frame = Frame.from_dict(r["sft_frame"])
        assert frame == seen
        (model_box,) = _parse(r["messages"][1]["content"][0]["text"])
        assert_exact(frame.box_to_pixels(model_box, family), r["gt_bbox"], frame, family)
        assert_elsewhere(model_box, r["gt_bbox"], frame, family)
    batch = GroundingCollator(vlm.processor)([sft[0], sft[1]])
    tokenizer = vlm.processor.tokenizer
    for i in range(2):
        kept = batch["labels"][i][batch["labels"][i] != IGNORE_INDEX]
        assert tokenizer.decode(kept) == sft[i]["messages"][1]["content"][0]["text"] + "<|im_end|>"
    model = AutoModelForImageTextToText.from_pretrained(family_paths[family])
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(3):
        loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert all(math.isfinite(v) for v in losses) and losses[-1] < losses[0]


def test_predictions_and_evaluation(family, vlm):
    sft = to_grounding_sft(
        sft_input(), processor=vlm.processor, model_family=family, bbox_format="xyxy"
    )

    def objects(request, prompt):
        return [(p, BOXES[p]) for p in BOXES if p in prompt][:1]

    fake = GroundingScriptedVLM(vlm, objects)
    pred = add_grounding_predictions(sft, fake)
    (frame,) = vlm.frames([random_image(*SIZE)])
    assert pred["pred_status"] == ["ok", "ok"]
    assert get_provenance(pred)[-1]["model"]["family"] == family
    for r in pred:
        assert_exact(r["pred_bbox"], r["gt_bbox"], frame, family)
        (model_box,) = _parse(r["pred_text"])
        assert_elsewhere(model_box, r["gt_bbox"], frame, family)
        if family == "qwen2_vl":
            assert "<|box_start|>" not in r["pred_text"]  # decoded as a real answer would be
    scores = evaluate_grounding(pred)
    assert scores["acc@0.5"] == 1.0 and scores["mean_iou"] > 0.97
    # plain rows (no chat turns) are asked with the family's default prompt
    plain = add_grounding_predictions(sft_input().rename_column("bbox", "gt_bbox"), fake)
    assert fake.calls[-1] == get_family(family).grounding_sft_prompt.format(question="blue box")
    assert plain["pred_status"] == ["ok", "ok"]
    assert evaluate_grounding(plain, frame_column=None)["acc@0.5"] == 1.0


@pytest.mark.parametrize(
    "name",
    [
        "qwen2_vl",
        "qwen2_5_vl",
        "qwen3_vl",
    ],
)
def test_requests_on_one_image_are_answered_in_one_batch(name, family_paths, monkeypatch):
    from hfgcot.model.vlm import GenerationSettings, Request

    vlm = load_vlm(family_paths[name])
    calls = []
    original = vlm.model.generate

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(vlm.model, "generate", counting)
    image = random_image(*SIZE)
    requests = [Request(image, "a"), Request(image, "b")]
    settings = GenerationSettings(max_new_tokens=4)
    out = vlm.generate(requests, settings)
    assert [o.error for o in out] == [None, None]
    assert len(calls) == 1
    monkeypatch.setattr(vlm, "reuse_vision", False)  # the image encoded once per request
    assert [o.text for o in vlm.generate(requests, settings)] == [o.text for o in out]


def test_the_resolved_family_prompt_is_in_the_stage_fingerprint(family_paths, monkeypatch):
    import dataclasses

    from hfgcot import GCoTConfig
    from hfgcot.geometry import families
    from hfgcot.model.spec import ModelSpec
    from hfgcot.pipelines.config import config_for_model
    from hfgcot.pipelines.gcot import gcot_stages

    spec = ModelSpec(family_paths["qwen3_vl"])

    def fingerprints() -> list[str]:
        config = config_for_model(GCoTConfig(), spec)
        return [stage.fingerprint for stage in gcot_stages(config, spec)]

    config = config_for_model(GCoTConfig(), spec)
    assert config.grounding_prompt == get_family("qwen3_vl").grounding_prompt
    before = fingerprints()
    changed = tuple(
        dataclasses.replace(row, grounding_prompt="Box the {phrase}.")
        if row.name == "qwen3_vl"
        else row
        for row in families.FAMILY_TABLE
    )
    monkeypatch.setattr(families, "FAMILY_TABLE", changed)
    after = fingerprints()
    # reasoning, parse: unchanged; grounding: changed (and inject follows it in the chain)
    assert [a == b for a, b in zip(before, after, strict=True)] == [True, True, False, True]
    explicit = config_for_model(GCoTConfig(grounding_prompt="Mine: {phrase}"), spec)
    assert explicit.grounding_prompt == "Mine: {phrase}"
