"""Answers cut at max_new_tokens are reported: by the engine, and in every model stage's status."""

from __future__ import annotations

import pytest
from conftest import png_bytes, random_image
from datasets import Dataset, Image

from hfgcot import (
    add_dense_captions,
    add_gcot,
    add_grounding_predictions,
    add_region_captions,
)
from hfgcot.model.vlm import GenerationSettings, Request
from hfgcot.parsing import captions as textproc
from hfgcot.pipelines.self_check import CheckJob, CheckResult, check_sentences
from hfgcot.status import note_truncated, truncated_output, with_note
from hfgcot.testing.tiny import ScriptedVLM

pytestmark = pytest.mark.model


def n_tokens(vlm, text: str) -> int:
    return len(vlm.processor.tokenizer(text, add_special_tokens=False)["input_ids"])


def images(n: int, size=(100, 80)) -> list[dict]:
    return [png_bytes(random_image(*size, seed=i)) for i in range(n)]


def test_status_helpers():
    assert truncated_output("gcot_reasoning") == "truncated_output: gcot_reasoning"
    assert note_truncated("ok", "dense_fuse") == "ok: truncated dense_fuse"
    assert note_truncated("ok: truncated dense_fuse", "dense_fuse") == "ok: truncated dense_fuse"
    assert with_note("ok: a", "b") == "ok: a; b" and with_note("no_keywords", "b") == "no_keywords"


# ---------------------------------------------------------------------------------- the engine


def test_the_engine_reports_answers_cut_before_their_end_token(tiny_vlm, monkeypatch):
    requests = [Request(random_image(64 + 20 * i, 64, seed=i), f"Describe {i}.") for i in range(4)]
    written = []
    generate = tiny_vlm.model.generate

    def recording(*args, **kwargs):
        out = generate(*args, **kwargs)
        written.append(out[:, kwargs["input_ids"].shape[1] :].tolist())
        return out

    monkeypatch.setattr(tiny_vlm.model, "generate", recording)
    settings = GenerationSettings(max_new_tokens=3)
    out = tiny_vlm.generate(requests, settings, batch_size=4, sort_by_length=False)
    [tokens] = written
    eos = tiny_vlm.model.generation_config.eos_token_id
    assert [g.truncated for g in out] == [not set(t) & set(eos) for t in tokens]
    # the end-of-sequence token is the one row 0 writes first: row 0 ends, rows that never
    # write it are cut
    first = tokens[0][0]
    monkeypatch.setattr(tiny_vlm.model.generation_config, "eos_token_id", [first])
    written.clear()
    out = tiny_vlm.generate(requests, settings, batch_size=4, sort_by_length=False)
    assert out[0].truncated is False
    [tokens] = written
    assert [g.truncated for g in out] == [first not in t for t in tokens]
    assert any(g.truncated for g in out)  # the random model's rows differ
    # a budget the answers end within is no cut
    every = list(range(len(tiny_vlm.processor.tokenizer)))
    monkeypatch.setattr(tiny_vlm.model.generation_config, "eos_token_id", every)
    out = tiny_vlm.generate(requests, GenerationSettings(max_new_tokens=1), batch_size=4)
    assert not any(g.truncated for g in out)


def test_scripted_vlm_holds_answers_to_the_budget(tiny_vlm):
    text = "A red ball lies on the green grass next to a blue box."
    fake = ScriptedVLM(tiny_vlm, lambda r, t: text, budget=True)
    n = n_tokens(tiny_vlm, text)
    [long] = fake.generate([Request(None, "x")], GenerationSettings(max_new_tokens=n + 1))
    assert (long.text, long.truncated) == (text, False)
    [cut] = fake.generate([Request(None, "x")], GenerationSettings(max_new_tokens=n - 4))
    assert cut.truncated and text.startswith(cut.text) and len(cut.text) < len(text)
    [free] = ScriptedVLM(tiny_vlm, lambda r, t: text).generate(
        [Request(None, "x")], GenerationSettings(max_new_tokens=2)
    )
    assert (free.text, free.truncated) == (text, False)  # without budget: as scripted


# ------------------------------------------------------------------------------------- GCoT

SHORT_BALL = "Step 1: The ball is red.\nAnswer: yes\nKeywords: ball"
SHORT_TREE = "Step 1: The tree is tall.\nAnswer: yes\nKeywords: tree"
LONG_COT = "Step 1: " + "The ball is red and round. " * 30 + "\nAnswer: yes\nKeywords: ball"
FIRST_BOX = '{"bbox_2d": [2, 2, 20, 20], "label": "ball"}'
BALL = f'[{FIRST_BOX}, {{"bbox_2d": [30, 30, 50, 50], "label": "ball"}}]'
TREE = "Let me look for the tree carefully. " * 6 + '[{"bbox_2d": [1, 1, 9, 9], "label": "tree"}]'


def gcot_script(request, text: str) -> str:
    if text.startswith("Question:"):
        return {"ball": SHORT_BALL, "tree": SHORT_TREE}.get(text.split("\n")[0][10:], LONG_COT)
    return BALL if '"ball"' in text else TREE


@pytest.mark.parametrize("mode", ["per_keyword", "joint"])
def test_gcot_statuses_of_cut_reasoning_and_groundings(tiny_vlm, mode):
    ds = Dataset.from_dict(
        {"image": images(3), "question": ["ball", "tree", "long"], "answer": ["yes"] * 3}
    ).cast_column("image", Image())
    budget = max(n_tokens(tiny_vlm, SHORT_BALL), n_tokens(tiny_vlm, SHORT_TREE)) + 1
    box_budget = n_tokens(tiny_vlm, f"[{FIRST_BOX}, ") + 2  # the first box fits, not the second
    assert n_tokens(tiny_vlm, LONG_COT) >= budget and n_tokens(tiny_vlm, BALL) > box_budget
    fake = ScriptedVLM(tiny_vlm, gcot_script, budget=True)
    out = add_gcot(
        ds,
        fake,
        max_new_tokens=budget,
        grounding_max_new_tokens=box_budget,
        grounding=mode,
        batch_size=3,
    )
    assert out["gcot_status"] == [
        "ok: truncated gcot_grounding",  # the box written before the cut is kept
        "truncated_output: gcot_grounding",  # cut before any box
        "truncated_output: gcot_reasoning",  # no keyword line, no conclusion
    ]
    assert [len(g) for g in out["groundings"]] == [1, 0, 0]
    assert out["raw_cot_output"][2] and LONG_COT.startswith(out["raw_cot_output"][2])
    assert out["extracted_keywords"][2] == []


# --------------------------------------------------------------------------- dense captions

CAPTION = "A red ball lies on the grass. A blue box stands near it. " + "The sky is clear. " * 8
OBJECTS = "".join(f"Describe more details about the {o}.\n" for o in ["ball", "box", "sky"] * 4)
DETAIL = "The ball is round and red. " * 8
FUSED = "A red ball and a blue box lie on the grass under a clear sky. " * 6


def dense_script(request, text: str) -> str:
    if text.startswith("Here is a sentence"):
        return "Yes."
    if text.startswith("Describe this image"):
        return CAPTION
    if text.startswith("Here is a description"):
        return OBJECTS
    if text.startswith("Below is a verified"):
        return FUSED
    return DETAIL


def test_dense_caption_notes_every_cut_stage_and_fuses_from_checked_texts(tiny_vlm):
    ds = Dataset.from_dict({"image": images(2)}).cast_column("image", Image())
    fake = ScriptedVLM(tiny_vlm, dense_script, budget=True)
    budget = n_tokens(tiny_vlm, "A red ball lies on the grass. A blue box stands near it.") + 6
    assert budget < min(n_tokens(tiny_vlm, t) for t in (CAPTION, OBJECTS, DETAIL, FUSED))
    out = add_dense_captions(ds, fake, max_new_tokens=budget, batch_size=2)
    notes = ["dense_init_caption", "dense_questions", "dense_answers", "dense_fuse"]
    assert out["dense_caption_status"] == ["ok: " + "; ".join(f"truncated {s}" for s in notes)] * 2
    for row in out:
        joined = textproc.join_sentences(row["golden_sentences"] + row["final_details"])
        assert row["final_caption"] == joined  # not the cut fusion
        assert row["q_list"]  # the objects listed before the cut are asked about


def test_a_yes_no_verdict_lost_to_a_cut_is_reported(tiny_vlm):
    verdicts = {"cat": "Yes, it clearly is.", "dog": "No.", "owl": "Looking at it closely, yes."}

    def script(request, text):
        return next(v for k, v in verdicts.items() if k in request.prompt)

    fake = ScriptedVLM(tiny_vlm, script, budget=True)
    jobs = [CheckJob(random_image(64, 48), "Describe.", "", f"A {k} sits.") for k in verdicts]
    out = check_sentences(
        fake, jobs, checker="yesno", generation=GenerationSettings(max_new_tokens=2), batch_size=3
    )
    # "Yes" is read before the cut; "Looking at" has no verdict
    assert out == [CheckResult(1.0), CheckResult(0.0), CheckResult(None, None, True)]


def test_dense_rows_whose_verdicts_were_all_cut_are_truncated_output(tiny_vlm):
    def script(request, text):
        return "Looking at it closely, yes." if text.startswith("Here is a sentence") else CAPTION

    ds = Dataset.from_dict({"image": images(1)}).cast_column("image", Image())
    fake = ScriptedVLM(tiny_vlm, script, budget=True)
    out = add_dense_captions(ds, fake, check_max_new_tokens=2, max_new_tokens=400)
    assert out["dense_caption_status"] == ["truncated_output: dense_check_sentences"]
    assert out["final_caption"] == [CAPTION.strip()]  # unchecked initial caption, flagged


def test_a_cut_caption_whose_sentences_all_fail_the_check_is_truncated_output(tiny_vlm):
    """The caption was cut mid-sentence and nothing in it was kept: the cut is why, not the
    model's sentences (was: no_golden_sentences, the truncation forgotten)."""

    def script(request, text):
        return "No." if text.startswith("Here is a sentence") else CAPTION

    ds = Dataset.from_dict({"image": images(1)}).cast_column("image", Image())
    fake = ScriptedVLM(tiny_vlm, script, budget=True)
    budget = n_tokens(tiny_vlm, "A red ball lies on the grass. A blue box stands near it.") + 6
    out = add_dense_captions(ds, fake, checker="yesno", max_new_tokens=budget)
    assert out["dense_caption_status"] == ["truncated_output: dense_init_caption"]
    assert CAPTION.startswith(out["final_caption"][0])  # the cut caption, flagged


# ---------------------------------------------------------------------- region captions


@pytest.mark.parametrize("mode", ["marked", "crop"])
def test_a_cut_region_caption_is_truncated_output(tiny_vlm, mode):
    long = "a red ball on the green grass next to a blue box " * 4

    def script(request, text):
        if "from <region1>" in text:
            return f"<region1>: {long}\n<region2>: a box"
        return long

    ds = Dataset.from_dict(
        {
            "image": images(2, (120, 90)),
            "bbox": [[[5, 5, 30, 30], [40, 40, 30, 30]], [[5, 5, 9, 9]]],
        }
    ).cast_column("image", Image())
    fake = ScriptedVLM(tiny_vlm, script, budget=True)
    out = add_region_captions(ds, fake, mode=mode, max_new_tokens=12)
    assert out["region_caption_status"] == ["truncated_output: region_caption"] * 2
    fits = add_region_captions(ds, ScriptedVLM(tiny_vlm, script, budget=True), mode=mode)
    assert "truncated" not in " ".join(fits["region_caption_status"])


# -------------------------------------------------------------------- grounding predictions


def test_prediction_statuses_of_cut_answers(tiny_vlm):
    answers = {
        "ball": '{"bbox_2d": [2, 2, 20, 20]} The ball is the round red object on the left side.',
        "tree": "The tree is the tall green object on the right. " * 3
        + '{"bbox_2d": [1, 1, 9, 9]}',
    }

    def script(request, text):
        return next(v for k, v in answers.items() if k in text)

    ds = Dataset.from_dict({"image": images(2), "question": ["the ball", "the tree"]})
    fake = ScriptedVLM(tiny_vlm, script, budget=True)
    budget = n_tokens(tiny_vlm, '{"bbox_2d": [2, 2, 20, 20]}') + 3
    out = add_grounding_predictions(ds, fake, max_new_tokens=budget)
    assert out["pred_status"] == [
        "ok: truncated grounding_predict",
        "truncated_output: grounding_predict",
    ]
    assert len(out["pred_bbox"][0]) == 4 and out["pred_bbox"][1] == []
