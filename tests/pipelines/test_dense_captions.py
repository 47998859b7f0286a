"""``add_dense_captions`` end to end: scripted texts, contrastive scores, bad rows, tiny model."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import png_bytes, random_image
from datasets import Dataset, Image, List, Value

from hfgcot import DenseCaptionConfig, add_dense_captions, get_provenance, prompts
from hfgcot.images import load_image
from hfgcot.model.spec import ModelSpec
from hfgcot.model.vlm import Request
from hfgcot.pipelines.dense_captions import dense_caption_stages
from hfgcot.pipelines.self_check import is_supported
from hfgcot.testing.tiny import ScriptedVLM

pytestmark = pytest.mark.model

CAPTION = "A red ball lies on the grass. A purple dragon flies above it. The sky is blue."
DRAGON_ONLY = 77  # image width whose caption has no supported sentence
EMPTY = 66  # image width whose caption comes back empty


def script(request, text: str) -> str:
    if text == prompts.DENSE_CAPTION_PROMPT:
        return {DRAGON_ONLY: "A purple dragon flies.", EMPTY: "  "}.get(
            request.image.width, CAPTION
        )
    if text.startswith("Here is a sentence about this image"):
        if "dragon" in text:
            return "No, there is no dragon."
        if "unicorn" in text:
            return "NO"
        if "sky" in text:
            return "yes, it is."
        if "shiny" in text:
            return "The answer is yes"
        return "Yes."
    if text.startswith("Here is a description of an image"):
        return (
            "Here are the questions:\n"
            "1. Describe more details about the red ball.\n"
            "2. Describe more details about **the sky**.\n"
            "3. Describe more details about the red balls.\n"
            "4. Describe more details about the image."
        )
    if text.startswith(prompts.detail_question("red ball")):
        return "The ball is shiny. It has a unicorn sticker."
    if text.startswith(prompts.position_question("red ball")):
        return "It is at the bottom left."
    if text.startswith(prompts.detail_question("sky")):
        return "The sky is clear."
    if text.startswith(prompts.position_question("sky")):
        return "It fills the top half."
    if text.startswith("Below is a verified description"):
        return "FUSED caption."
    raise AssertionError(f"unexpected prompt: {text!r}")


class RecordingVLM(ScriptedVLM):
    """A ScriptedVLM that also records the size of every generate call."""

    def __init__(self, vlm, script) -> None:
        super().__init__(vlm, script)
        self.batches: list[list[str]] = []

    def generate(self, requests, settings=None, **kwargs):
        self.batches.append([r.prompt for r in requests])
        return super().generate(requests, settings, **kwargs)


def dataset(sizes, bad: bool = True) -> Dataset:
    images = [png_bytes(random_image(w, h, seed=i)) for i, (w, h) in enumerate(sizes)]
    if bad:
        images.append({"bytes": b"not an image", "path": None})
    return Dataset.from_dict({"image": images, "id": list(range(len(images)))}).cast_column(
        "image", Image()
    )


COLUMNS = {
    "init_caption": Value("string"),
    "sentences": List(Value("string")),
    "golden_sentences": List(Value("string")),
    "sentence_scores": List(Value("float64")),
    "raw_questions": Value("string"),
    "q_list": List(Value("string")),
    "raw_answers": List(Value("string")),
    "final_details": List(Value("string")),
    "final_caption": Value("string"),
    "dense_caption_status": Value("string"),
}


def test_yesno_pipeline_with_script(tiny_vlm):
    fake = RecordingVLM(tiny_vlm, script)
    ds = dataset([(120, 90), (90, 120), (DRAGON_ONLY, 60), (EMPTY, 60)])
    out = add_dense_captions(ds, fake, max_questions=5).remove_columns("image")
    assert len(out) == 5 and out["id"] == [0, 1, 2, 3, 4]
    for name, feature in COLUMNS.items():
        assert out.features[name] == feature
    good, dragon, empty, bad = out[0], out[2], out[3], out[4]
    assert out[1] == {**good, "id": 1}
    assert good["dense_caption_status"] == "ok"
    assert good["init_caption"] == CAPTION
    assert good["sentences"] == [
        "A red ball lies on the grass.",
        "A purple dragon flies above it.",
        "The sky is blue.",
    ]
    assert good["sentence_scores"] == [1.0, 0.0, 1.0]
    assert good["golden_sentences"] == ["A red ball lies on the grass.", "The sky is blue."]
    # de-duplicated objects ("red balls", "image" dropped), each with its position variant
    assert good["q_list"] == [
        "Describe more details about the red ball.",
        "Describe the position of the red ball in the image.",
        "Describe more details about the sky.",
        "Describe the position of the sky in the image.",
    ]
    assert good["raw_answers"][0] == "The ball is shiny. It has a unicorn sticker."
    assert len(good["raw_answers"]) == 4
    assert good["final_details"] == [
        "The ball is shiny.",  # the unicorn sentence failed the check
        "It is at the bottom left.",
        "The sky is clear.",
        "It fills the top half.",
    ]
    assert good["final_caption"] == "FUSED caption."
    # the fusion request saw the checked texts only, without an image
    fuse = [c for c in fake.calls if c.startswith("Below is a verified description")]
    assert len(fuse) == 2
    assert "A red ball lies on the grass." in fuse[0] and "It fills the top half." in fuse[0]
    assert "dragon" not in fuse[0] and "unicorn" not in fuse[0]
    assert "at most 5" in next(c for c in fake.calls if c.startswith("Here is a description"))
    # all questions of all images of the map batch went into one generate call
    answer_batches = [b for b in fake.batches if b and "Answer in a few sentences" in b[0]]
    assert [len(b) for b in answer_batches] == [8]
    # a caption with no supported sentence still gets a final caption and a status
    assert dragon["golden_sentences"] == [] and dragon["q_list"] == []
    assert dragon["dense_caption_status"].startswith("no_golden_sentences")
    assert dragon["final_caption"] == "A purple dragon flies."
    assert empty["dense_caption_status"] == "empty_caption" and empty["final_caption"] == ""
    assert bad["dense_caption_status"] == "undecodable_image"
    assert bad["final_caption"] == "" and bad["sentences"] == []


def test_max_questions_caps_objects(tiny_vlm):
    fake = ScriptedVLM(tiny_vlm, script)
    out = add_dense_captions(dataset([(100, 100)], bad=False), fake, max_questions=1)
    assert out[0]["q_list"] == [
        "Describe more details about the red ball.",
        "Describe the position of the red ball in the image.",
    ]
    assert out[0]["dense_caption_status"] == "ok"


def direct_contrastive_score(vlm, image, prefix: str, sentence: str) -> float:
    """mean_t [log p(t | image, prefix) - log p(t | no image, prefix)], straight from the logits."""
    processor = vlm.processor

    def logprobs(img) -> list[float]:
        request = Request(img, prompts.DENSE_CAPTION_PROMPT)
        context = processor.apply_chat_template(
            request.messages(), tokenize=False, add_generation_prompt=True
        )
        images = [img] if img is not None else None
        head = processor(text=[context + prefix], images=images, return_tensors="pt")
        inputs = processor(text=[context + prefix + sentence], images=images, return_tensors="pt")
        ids, n_head = inputs["input_ids"][0], head["input_ids"].shape[1]
        assert torch.equal(ids[:n_head], head["input_ids"][0])  # a clean token boundary
        with torch.no_grad():
            logp = torch.log_softmax(vlm.model(**inputs).logits[0].float(), dim=-1)
        return [logp[t - 1, ids[t]].item() for t in range(n_head, len(ids))]

    with_image, without = logprobs(image), logprobs(None)
    assert len(with_image) == len(without) > 0
    return sum(a - b for a, b in zip(with_image, without, strict=True)) / len(with_image)


def test_contrastive_scores_equal_a_direct_computation(tiny_vlm):
    fake = ScriptedVLM(tiny_vlm, script)
    ds = dataset([(120, 90), (DRAGON_ONLY, 60)])
    out = add_dense_captions(
        ds, fake, checker="contrastive", threshold=-1e9, max_questions=1, batch_size=4
    )
    out = out.remove_columns("image")
    row = out[0]
    assert row["dense_caption_status"] == "ok"
    assert row["golden_sentences"] == row["sentences"]  # threshold -1e9 keeps every sentence
    image, _ = load_image(ds.cast_column("image", Image(decode=False))[0]["image"])
    expected = direct_contrastive_score(
        tiny_vlm, image, "A red ball lies on the grass. ", "A purple dragon flies above it."
    )
    assert row["sentence_scores"][1] == pytest.approx(expected, abs=1e-4)
    assert all(math.isfinite(s) for s in row["sentence_scores"])
    # the answers' sentences were scored too and (threshold -1e9) all kept
    assert row["final_details"] == [a for a in row["raw_answers"] if a]
    assert out[2]["dense_caption_status"] == "undecodable_image"
    # the same scores decide under any threshold
    scores = row["sentence_scores"]
    high = max(scores) + 1
    assert not any(is_supported(s, "contrastive", high) for s in scores)
    assert is_supported(1.0, "yesno", 5.0) and not is_supported(0.0, "yesno", -5.0)
    assert not is_supported(None, "contrastive", -1e9)
    assert not is_supported(float("nan"), "contrastive", -1e9)


def test_batched_continuation_logprobs_match_one_by_one(tiny_vlm):
    image = random_image(100, 70, seed=3)
    requests = [Request(image, "Describe."), Request(None, "Describe."), Request(image, "Hi")]
    continuations = ["A blue box.", "A blue box.", "The cat sat on the mat."]
    prefixes = ["A red ball. ", "A red ball. ", ""]
    before = tiny_vlm.vision_patches
    batched = tiny_vlm.continuation_logprobs(requests, continuations, prefixes, batch_size=3)
    grid = tiny_vlm.processor.image_processor(images=[image], return_tensors="pt")
    assert tiny_vlm.vision_patches - before == int(grid["image_grid_thw"].prod())  # encoded once
    for i, score in enumerate(batched):
        [single] = tiny_vlm.continuation_logprobs(
            requests[i : i + 1], continuations[i : i + 1], prefixes[i : i + 1]
        )
        assert score.error is None and score.token_ids == single.token_ids
        assert score.logprobs == pytest.approx(single.logprobs, abs=1e-4)
    assert batched[0].token_ids == batched[1].token_ids  # same tokens with and without image
    assert tiny_vlm.continuation_logprobs([Request(None, "x")], [""])[0].logprobs == ()
    with pytest.raises(ValueError):
        tiny_vlm.continuation_logprobs(requests, continuations[:1])


def test_config_and_fingerprints(tiny_vlm_path):
    with pytest.raises(ValueError, match="checker"):
        DenseCaptionConfig(checker="maybe")
    with pytest.raises(ValueError, match="max_questions"):
        DenseCaptionConfig(max_questions=0)
    with pytest.raises(ValueError, match="threshold"):
        DenseCaptionConfig(threshold=float("nan"))
    spec = ModelSpec(model=tiny_vlm_path)

    def prints(**kwargs) -> list[str]:
        return [s.fingerprint for s in dense_caption_stages(DenseCaptionConfig(**kwargs), spec)]

    base = prints()
    assert len(base) == 7 and len(set(base)) == 7
    assert prints() == base  # deterministic
    assert prints(checker="contrastive")[2] != base[2]
    assert prints(threshold=0.5)[2] != base[2]
    assert prints(max_questions=3)[3] != base[3]
    assert prints(max_new_tokens=7)[0] != base[0]


def test_tiny_model_end_to_end(tiny_vlm):
    """Real (random) generations through every stage: nonsense texts, but every row and column.

    (The yes/no checker on the tiny model runs in ``test_cli_and_example``.)
    """
    ds = dataset([(64, 64), (100, 50)])
    out = add_dense_captions(
        ds,
        tiny_vlm,
        checker="contrastive",
        threshold=-1e9,
        max_questions=1,
        max_new_tokens=4,
        batch_size=4,
    )
    assert len(out) == 3 and out["id"] == [0, 1, 2]
    assert out.features["image"] == Image()
    record = get_provenance(out)[-1]
    assert record["pipeline"] == "dense_captions"
    assert record["config"]["checker"] == "contrastive"
    out = out.remove_columns("image")
    for name, feature in COLUMNS.items():
        assert out.features[name] == feature
    statuses = out["dense_caption_status"]
    assert statuses[2] == "undecodable_image"
    for row in out.select(range(2)):
        assert row["dense_caption_status"].split(":")[0] in {"ok", "no_sentences", "empty_caption"}
        assert len(row["sentence_scores"]) == len(row["sentences"])
        assert len(row["raw_answers"]) == len(row["q_list"]) <= 2
        if row["golden_sentences"]:
            assert row["final_caption"]


def test_cli_and_example(tiny_vlm, tiny_vlm_path, tmp_path, capsys):
    import importlib.util
    from pathlib import Path

    from datasets import load_from_disk

    from hfgcot.cli import main

    with pytest.raises(SystemExit):
        main(["dense-captions", "--help"])
    assert "hfgcot dense-captions --input" in capsys.readouterr().out
    path = Path(__file__).resolve().parents[2] / "examples" / "dense_captions.py"
    spec = importlib.util.spec_from_file_location("example_dense_captions", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    with pytest.raises(SystemExit):
        example.main(["--help"])
    assert "python examples/dense_captions.py --model" in capsys.readouterr().out
    args = ["--model", tiny_vlm_path, "--limit", "1", "--max-new-tokens", "2"]
    assert example.main([*args, "--output", str(tmp_path / "ex")]) == 0
    out = load_from_disk(str(tmp_path / "ex"))
    assert len(out) == 1 and out["dense_caption_status"][0]


def test_every_prompt_is_an_option_and_the_system_turn_reaches_every_request(tiny_vlm):
    seen: list[tuple[str, str | None]] = []

    def custom(request, text: str) -> str:
        seen.append((text, request.system))
        if text == "CAPTION!":
            return "A red ball lies here."
        if text.startswith("CHECK "):
            return "Yes."
        if text.startswith("OBJECTS "):
            return "1. Describe more details about the red ball."
        if text.startswith("ANSWER "):
            return "It is round."
        if text.startswith("FUSE "):
            return "FUSED."
        raise AssertionError(f"unexpected prompt: {text!r}")

    options = {
        "caption_prompt": "CAPTION!",
        "check_prompt": "CHECK {sentence}",
        "questions_prompt": "OBJECTS {sentences} (at most {max_questions})",
        "detail_question": "More on {object}?",
        "position_question": "Where is {object}?",
        "answer_prompt": "ANSWER {question}",
        "fuse_prompt": "FUSE {sentences} | {details}",
        "system_prompt": "You check facts.",
    }
    out = add_dense_captions(
        dataset([(120, 90)], bad=False), ScriptedVLM(tiny_vlm, custom), **options
    )
    row = out[0]
    assert row["dense_caption_status"] == "ok" and row["final_caption"] == "FUSED."
    assert row["q_list"] == ["More on red ball?", "Where is red ball?"]
    texts = [t for t, _ in seen]
    assert "CHECK A red ball lies here." in texts and "ANSWER Where is red ball?" in texts
    assert "OBJECTS A red ball lies here. (at most 5)" in texts
    assert all(system == "You check facts." for _, system in seen)
    (record,) = get_provenance(out)
    assert {k: record["prompts"][k] for k in options} == options
    with pytest.raises(ValueError, match=r"fuse_prompt: missing \{details\}"):
        add_dense_captions(out, tiny_vlm, fuse_prompt="FUSE {sentences}")
