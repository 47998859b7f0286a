"""One shape for every pipeline: config fields, options on top of a config, prompts as options."""

from __future__ import annotations

import dataclasses
import typing

import pytest
from conftest import png_bytes, random_image
from datasets import Dataset, Image

from hfgcot import (
    DenseCaptionConfig,
    GCoTConfig,
    GroundingPredictionConfig,
    GroundingSFTConfig,
    RegionCaptionConfig,
    RunOptions,
    add_gcot,
    get_provenance,
    to_grounding_sft,
)
from hfgcot import prompts as prompt_module
from hfgcot.geometry.families import get_family, known_families
from hfgcot.images import ImagePolicy
from hfgcot.model.spec import ModelSpec
from hfgcot.pipelines.config import resolve_model, split_options
from hfgcot.testing.tiny import ScriptedVLM

CONFIGS = [
    GCoTConfig,
    DenseCaptionConfig,
    RegionCaptionConfig,
    GroundingSFTConfig,
    GroundingPredictionConfig,
]
MODEL_CONFIGS = [c for c in CONFIGS if c is not GroundingSFTConfig]


def prompt_fields(cls: type) -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(cls) if f.metadata.get("prompt")]


def prompt_kind(f: dataclasses.Field) -> str:
    return f.metadata["prompt"] if isinstance(f.metadata["prompt"], str) else f.name


def default_text(f: dataclasses.Field) -> str:
    """The field's default template; a family-default field (None): Qwen2.5-VL's."""
    return f.default if f.default is not None else getattr(get_family("qwen2_5_vl"), prompt_kind(f))


@pytest.mark.parametrize("cls", [*CONFIGS, RunOptions])
def test_every_field_has_a_one_line_help_text(cls):
    for f in dataclasses.fields(cls):
        text = f.metadata.get("help", "")
        assert text and "\n" not in text and len(text) < 120, f"{cls.__name__}.{f.name}"
        assert "%" not in text  # argparse formats help texts with %


@pytest.mark.parametrize("cls", CONFIGS)
def test_common_fields_are_declared_once_in_the_base(cls):
    names = {f.name for f in dataclasses.fields(cls)}
    assert {"image_column", "batch_size", "image_policy", "overwrite_columns"} <= names
    assert "image_policy" not in cls.__dict__.get("__annotations__", {})
    assert isinstance(cls().image_policy, ImagePolicy)
    if cls in MODEL_CONFIGS:
        assert {"max_new_tokens", "do_sample", "seed", "system_prompt"} <= names
        assert "system_prompt" not in cls.__dict__.get("__annotations__", {})


EXPECTED_PROMPTS = {
    GCoTConfig: {"reasoning_prompt", "grounding_prompt", "joint_grounding_prompt"},
    DenseCaptionConfig: {
        "caption_prompt",
        "check_prompt",
        "questions_prompt",
        "detail_question",
        "position_question",
        "answer_prompt",
        "fuse_prompt",
    },
    RegionCaptionConfig: {"marked_prompt", "crop_prompt"},
    GroundingSFTConfig: {"prompt"},
    GroundingPredictionConfig: {"prompt"},
}


@pytest.mark.parametrize("cls", CONFIGS)
def test_every_prompt_is_a_field_with_todays_text_as_default(cls):
    assert {f.name for f in prompt_fields(cls)} == EXPECTED_PROMPTS[cls]
    defaults = set(prompt_module.default_prompts().values())
    for f in prompt_fields(cls):
        if f.default is None:  # the model family's default: one per row of the table
            assert prompt_kind(f) in prompt_module.FAMILY_PROMPTS
            for family in known_families():
                prompt_module.check_template(
                    prompt_kind(f), getattr(get_family(family), prompt_kind(f))
                )
        assert default_text(f) in defaults  # Qwen2.5-VL's are today's texts


@pytest.mark.parametrize("cls", CONFIGS)
def test_a_bad_placeholder_is_refused_when_the_config_is_built(cls):
    for f in prompt_fields(cls):
        with pytest.raises(ValueError, match=r"unknown placeholder \{bogus\}"):
            cls(**{f.name: default_text(f) + " {bogus}"})
        required, _allowed = prompt_module.PLACEHOLDERS[prompt_kind(f)]
        for name in required:
            without = default_text(f).replace("{" + name + "}", "it")
            with pytest.raises(ValueError, match="missing"):
                cls(**{f.name: without})


@pytest.mark.parametrize("cls", CONFIGS)
def test_literal_choices_and_minimums_are_checked(cls):
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if typing.get_origin(hints[f.name]) is typing.Literal:
            with pytest.raises(ValueError, match=f.name):
                cls(**{f.name: "no-such-choice"})
        if f.metadata.get("min") is not None:
            with pytest.raises(ValueError, match=f"{f.name} must be >= "):
                cls(**{f.name: f.metadata["min"] - 1})
    with pytest.raises(ValueError, match="batch_size"):
        cls(batch_size=0)


def test_floats_must_be_finite():
    with pytest.raises(ValueError, match="threshold"):
        DenseCaptionConfig(threshold=float("nan"))
    with pytest.raises(ValueError, match="temperature"):
        GCoTConfig(temperature=float("inf"))


def test_options_go_on_top_of_a_config_and_unknown_ones_name_the_valid_ones():
    base = GCoTConfig(batch_size=2, box_space="model")
    config, run, load = split_options(
        GCoTConfig, base, {"max_keywords": 3, "num_proc": 2, "dtype": "bfloat16"}
    )
    assert (config.batch_size, config.box_space, config.max_keywords) == (2, "model", 3)
    assert run == RunOptions(num_proc=2) and load == {"dtype": "bfloat16"}
    with pytest.raises(TypeError, match=r"max_keyword\b.*valid options: .*max_keywords"):
        split_options(GCoTConfig, None, {"max_keyword": 3})
    with pytest.raises(TypeError, match="GCoTConfig"):
        split_options(GCoTConfig, DenseCaptionConfig(), {})
    run_base = RunOptions(shard_size=10)
    _, run, _ = split_options(GCoTConfig, None, {"run": run_base, "sort_window": 4})
    assert run == RunOptions(shard_size=10, sort_window=4)
    with pytest.raises(ValueError, match="shard_size"):
        RunOptions(shard_size=0)


def test_model_may_be_a_spec_with_every_loading_option():
    spec = resolve_model(ModelSpec("org/m", trust_remote_code=True), {"revision": "v1"})
    assert spec == ModelSpec("org/m", revision="v1", trust_remote_code=True)
    assert resolve_model("org/m", {"trust_remote_code": True}).trust_remote_code


@pytest.mark.model
def test_loading_options_cannot_change_a_loaded_model(tiny_vlm):
    assert resolve_model(tiny_vlm, {"max_pixels": None}) == tiny_vlm.spec  # defaults are fine
    with pytest.raises(TypeError, match="max_pixels.*load_vlm"):
        resolve_model(tiny_vlm, {"max_pixels": 1000})


def gcot_rows(n: int = 2) -> Dataset:
    return Dataset.from_dict(
        {
            "image": [png_bytes(random_image(64, 48, seed=i)) for i in range(n)],
            "question": ["What is it?"] * n,
            "answer": ["a ball"] * n,
        }
    ).cast_column("image", Image())


@pytest.mark.model
def test_custom_prompts_and_system_prompt_reach_every_request(tiny_vlm):
    seen = []

    def script(request, text):
        seen.append((request.prompt, request.system))
        if request.prompt.startswith("WHY"):
            return "Step 1: the ball.\nAnswer: a ball\nKeywords: ball"
        return '[{"bbox_2d": [1, 1, 20, 20], "label": "ball"}]'

    fake = ScriptedVLM(tiny_vlm, script)
    config = GCoTConfig(reasoning_prompt="WHY {question} -> {answer}", batch_size=2)
    out = add_gcot(
        gcot_rows(),
        fake,
        config=config,
        grounding_prompt="WHERE {phrase}",
        system_prompt="Be brief.",
    )
    assert out["gcot_status"] == ["ok", "ok"]
    assert ("WHY What is it? -> a ball", "Be brief.") in seen
    assert ("WHERE ball", "Be brief.") in seen
    assert all(system == "Be brief." for _, system in seen)
    (record,) = get_provenance(out)
    assert record["config"]["batch_size"] == 2  # the config, with the options on top
    assert record["prompts"]["reasoning_prompt"] == "WHY {question} -> {answer}"
    assert record["prompts"]["grounding_prompt"] == "WHERE {phrase}"
    assert record["prompts"]["system_prompt"] == "Be brief."
    with pytest.raises(TypeError, match="valid options"):
        add_gcot(gcot_rows(), fake, batch_sise=2)


def test_sft_config_and_options():
    rows = Dataset.from_dict(
        {
            "image": [png_bytes(random_image(64, 48))],
            "question": ["the ball"],
            "bbox": [[1.0, 1.0, 20.0, 20.0]],
        }
    ).cast_column("image", Image())
    config = GroundingSFTConfig(prompt="Find {question}.", bbox_format="xyxy")
    out = to_grounding_sft(rows, config, image_policy=ImagePolicy(min_side=100))
    assert out["sft_status"] == ["image_too_small: 64x48"]  # the policy object reached the read
    out = to_grounding_sft(rows, config, overwrite_columns=False)
    assert out[0]["messages"][0]["content"][1]["text"] == "Find the ball."
    (record,) = get_provenance(out)
    assert record["prompts"]["prompt"] == "Find {question}."
    with pytest.raises(TypeError, match="valid options"):
        to_grounding_sft(rows, max_new_tokens=3)


def empty_input() -> Dataset:
    from datasets import Features, List, Value

    ds = Dataset.from_dict({"image": [], "question": [], "answer": [], "bbox": []})
    return ds.cast(
        Features(
            {
                "image": Image(),
                "question": Value("string"),
                "answer": Value("string"),
                "bbox": List(Value("float64")),
            }
        )
    )


def entry_points():
    from hfgcot import add_dense_captions, add_grounding_predictions, add_region_captions
    from hfgcot.pipelines.dense_captions import dense_caption_stages
    from hfgcot.pipelines.gcot import gcot_stages
    from hfgcot.pipelines.grounding_predictions import GroundingPredictionStage
    from hfgcot.pipelines.grounding_sft import sft_stage
    from hfgcot.pipelines.region_captions import region_caption_stages

    spec = ModelSpec("org/m")
    return {
        "gcot": (add_gcot, gcot_stages(GCoTConfig(), spec)),
        "dense": (add_dense_captions, dense_caption_stages(DenseCaptionConfig(), spec)),
        "region": (add_region_captions, region_caption_stages(RegionCaptionConfig(), spec)),
        "sft": (None, [sft_stage(GroundingSFTConfig())]),
        "predict": (add_grounding_predictions, [GroundingPredictionStage()]),
    }


@pytest.mark.model
@pytest.mark.parametrize("name", ["gcot", "dense", "region", "sft", "predict"])
@pytest.mark.parametrize(
    "run", [{}, {"num_proc": 2}, {"checkpoint_dir": "ckpt", "shard_size": 2}, {"sort_window": 4}]
)
def test_zero_rows_give_every_output_column_and_feature(name, run, tiny_vlm, tmp_path):
    entry, stages = entry_points()[name]
    if "checkpoint_dir" in run:
        run = {**run, "checkpoint_dir": tmp_path / "ckpt"}
    ds = empty_input()
    if name == "region":  # its own `answer` output column
        ds = ds.remove_columns("answer")
    if entry is None:
        out = to_grounding_sft(ds, **run)
    else:
        out = entry(ds, ScriptedVLM(tiny_vlm, lambda request, text: ""), **run)
    assert len(out) == 0
    expected = {**ds.features}
    for stage in stages:
        expected.update(stage.features())
    assert dict(out.features) == expected
    assert get_provenance(out)[-1]["rows"] == 0


def test_the_config_policy_reaches_every_stage_that_reads_an_image():
    from hfgcot.pipelines.dense_captions import dense_caption_stages
    from hfgcot.pipelines.gcot import gcot_stages
    from hfgcot.pipelines.region_captions import region_caption_stages

    policy = ImagePolicy(min_side=3, allow_urls=False)
    spec = ModelSpec("org/m")
    built = [
        *gcot_stages(GCoTConfig(image_policy=policy), spec),
        *dense_caption_stages(DenseCaptionConfig(image_policy=policy), spec),
        *region_caption_stages(RegionCaptionConfig(image_policy=policy), spec),
        *region_caption_stages(RegionCaptionConfig(image_policy=policy, mode="crop"), spec),
    ]
    readers = [s for s in built if hasattr(s, "image_policy")]
    assert len(readers) == 2 + 4 + 4
    assert all(s.image_policy == policy for s in readers)
    from hfgcot.pipelines.grounding_sft import sft_stage

    assert sft_stage(GroundingSFTConfig(image_policy=policy)).image_policy == policy
    from hfgcot.pipelines.grounding_predictions import prediction_stage

    config = GroundingPredictionConfig(image_policy=policy, system_prompt="S")
    stage = prediction_stage(config, spec)
    assert stage.image_policy == policy and stage.system_prompt == "S"


@pytest.mark.parametrize("cls", [*CONFIGS, RunOptions])
def test_docs_list_every_field(cls):
    from pathlib import Path

    text = (Path(__file__).parents[2] / "docs" / "pipelines.md").read_text()
    for f in dataclasses.fields(cls):
        assert f"| `{f.name}` |" in text, f"{cls.__name__}.{f.name} missing from docs/pipelines.md"
