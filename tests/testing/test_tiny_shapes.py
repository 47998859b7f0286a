"""The shipped toy model end to end: real grounded reasoning on held-out shape scenes.

Random tiny models prove the plumbing; this proves the numbers: GCoT keyword boxes must land on
the true objects (original pixels) and the caption pipelines must talk about what is in the
image. Greedy, so deterministic.
"""

from __future__ import annotations

import hashlib
import random

import pytest
from datasets import Dataset

from hfgcot.parsing import gcot_text
from hfgcot.parsing import grounding as parsing
from hfgcot.testing.shapes import COLOURS, SHAPES, make_scene, make_scenes
from hfgcot.testing.toy import tiny_shapes_path, vqa_rows

TEST_SEED = 3  # held out: training uses seeds from 10**9 up, the benchmark seed 2

needs_model = pytest.mark.skipif(tiny_shapes_path() is None, reason="toy model not shipped")

# The shipped checkpoint is undertrained (42 CPU-minutes, 1.3M parameters): it writes every
# pipeline's format, reads colour well and shape less well.
# benchmarks/eval_tiny_shapes.py on 200 held-out scenes: Acc@0.5 0.748 (0.195 if its numbers
# are misread as original pixels; 0.82 among keywords that name an object of the picture),
# answer accuracy 0.91. On the 30 scenes below it scores 0.684 (misread: 0.079); the gate is
# issue 8's, and far above what the coordinate bug scores, so a wrong conversion fails it.
ACC50_FLOOR = 0.6


def _labels_in(text: str) -> set[str]:
    low = " ".join(text.lower().split())
    return {f"{c} {s}" for c in COLOURS for s in SHAPES if f"{c} {s}" in low}


@pytest.fixture(scope="module")
def toy():
    from hfgcot import load_vlm

    return load_vlm(tiny_shapes_path(), dtype="float32", device="cpu")


# -- the generator (no model) ----------------------------------------------------------------


def test_scenes_are_seeded_and_varied():
    scenes = make_scenes(60, seed=11)
    assert make_scenes(60, seed=11) == scenes
    assert {len(s.objects) for s in scenes} == {1, 2, 3, 4}
    assert {s.background for s in scenes} == {"plain", "noisy", "gradient"}
    ratios = [s.width / s.height for s in scenes]
    assert min(ratios) < 0.5 and max(ratios) > 2
    assert all(64 <= max(s.width, s.height) <= 2048 for s in scenes)
    for s in scenes:
        assert len(set(o.colour for o in s.objects)) == len(s.objects)
        for o in s.objects:
            x1, y1, x2, y2 = o.bbox
            assert 0 <= x1 < x2 <= s.width and 0 <= y1 < y2 <= s.height


# Digests of the first 200 scenes (seeds 0-199): their pictures, and their questions (every
# field, in order, drawn with ``random.Random(seed)``), caption, a false sentence and layout.
# The shipped toy was trained on such scenes and the CI gates score it on them: a change that
# redraws a picture or rewords, reorders or re-draws a question fails here. The pictures are
# pinned per Pillow major version (its rasteriser draws the shapes).
SCENE_TEXTS_DIGEST = "f4e2eac47b443c78"
SCENE_PICTURES_DIGEST = {13: "c1e84ab69f7e1c71"}


def scene_digests(n: int = 200) -> tuple[str, str]:
    """``(pictures, texts)`` digests of scenes ``0 .. n-1``."""
    pictures, texts = hashlib.sha256(), hashlib.sha256()
    for seed in range(n):
        scene = make_scene(seed)
        image = scene.image()
        pictures.update(repr((image.mode, image.size)).encode() + image.tobytes())
        rng = random.Random(seed)
        rows = [(i.question, i.answer, i.steps, i.keywords, i.kind) for i in scene.vqa(rng)]
        targets = (scene.caption(), scene.false_sentence(rng), scene.to_dict())
        texts.update(repr((rows, targets)).encode())
    return pictures.hexdigest()[:16], texts.hexdigest()[:16]


def test_the_first_scenes_and_their_questions_stay_byte_identical():
    import PIL

    pictures, texts = scene_digests()
    assert texts == SCENE_TEXTS_DIGEST
    expected = SCENE_PICTURES_DIGEST.get(int(PIL.__version__.split(".")[0]))
    if expected is None:
        pytest.skip(f"no picture digest recorded for Pillow {PIL.__version__}")
    assert pictures == expected


def test_every_question_kind_is_asked():
    from hfgcot.testing.shapes.questions import QUESTION_KINDS

    asked = {item.kind for seed in range(40) for item in make_scene(seed).vqa(random.Random(0))}
    assert asked == {kind.kind for kind in QUESTION_KINDS}


def test_boxes_are_exact_on_the_rendered_image():
    scene = make_scene(5)
    image = scene.image()
    for obj in scene.objects:
        x1, y1, x2, y2 = (int(v) for v in obj.bbox)
        cx, cy = (x1 + x2) // 2, (y1 + y2 - 1) // 2 + (y2 - y1) // 4
        assert image.getpixel((cx, cy)) == COLOURS[obj.colour]


def test_gcot_targets_parse_and_inject():
    rng = random.Random(0)
    for scene in make_scenes(20, seed=12):
        for item in scene.vqa(rng):
            cot, keywords = gcot_text.parse_gcot(item.gcot())
            assert gcot_text.merge_keywords(keywords, cot) == list(item.keywords)
            assert all(scene.by_label(k) is not None for k in keywords)
            injected = gcot_text.inject_groundings(cot, [(k, "[1, 2, 3, 4]") for k in keywords])
            assert injected.count("[1, 2, 3, 4]") == len(keywords)
            assert cot.splitlines()[-1] == f"Answer: {item.answer}"


def test_grounding_answer_is_in_the_resized_frame():
    scene = next(s for s in make_scenes(50, seed=13) if s.width > 400)
    obj = scene.objects[0]
    frame = scene.frame(3136, 28 * 28 * 36)
    (parsed,) = parsing.parse_grounding(scene.grounding_answer(obj, 3136, 28 * 28 * 36))
    back = frame.box_to_pixels(list(parsed.box), "qwen2_5_vl")
    assert (
        max(abs(a - b) for a, b in zip(back, obj.bbox, strict=True))
        <= scene.width / frame.model_width
    )
    assert max(parsed.box) <= max(frame.model_width, frame.model_height)


# -- the shipped model -----------------------------------------------------------------------


@needs_model
def test_toy_drives_every_gcot_stage(toy):
    from hfgcot import add_gcot

    scenes = make_scenes(8, seed=TEST_SEED)
    ds = Dataset.from_dict(vqa_rows(scenes, seed=TEST_SEED))
    out = add_gcot(ds, toy, batch_size=8, max_new_tokens=80, grounding_max_new_tokens=28)
    ok = [row for row in out if row["gcot_status"] == "ok"]
    # a toy may write a zero-width box ("no_groundings") or an empty Keywords line
    # ("no_keywords"): those rows say so and stay in the output
    assert len(ok) >= 4, out["gcot_status"]
    assert set(out["gcot_status"]) <= {"ok", "no_groundings", "no_keywords"}
    assert all(row["extracted_keywords"] and row["groundings"] for row in ok)
    # boxes are injected where a keyword is written in the steps (the toy does not always do so)
    assert sum(row["gcot"] != row["cleaned_cot"] for row in ok) >= len(ok) // 2
    for row, scene in zip(out, scenes, strict=True):
        for g in row["groundings"]:
            x1, y1, x2, y2 = g["bbox"]
            assert 0 <= x1 < x2 <= scene.width and 0 <= y1 < y2 <= scene.height


@needs_model
def test_toy_keyword_boxes_land_on_the_objects_in_original_pixels(toy):
    """GCoT end to end on 30 held-out scenes: keyword Acc@0.5 against the true boxes, and the
    same outputs read as original pixels (the classic coordinate bug) must score far lower."""
    from hfgcot import add_gcot
    from hfgcot.testing.toy import score_gcot

    scenes = make_scenes(30, seed=TEST_SEED)
    ds = Dataset.from_dict(vqa_rows(scenes, seed=TEST_SEED))
    out = add_gcot(ds, toy, batch_size=16, max_new_tokens=96, grounding_max_new_tokens=32)
    keywords, groundings = out["extracted_keywords"], out["groundings"]
    right = score_gcot(scenes, keywords, groundings)
    misread = score_gcot(scenes, keywords, groundings, box_key="bbox_model")
    assert right["acc50"] >= ACC50_FLOOR, right
    assert misread["acc50"] <= right["acc50"] / 3, (right, misread)


@needs_model
def test_toy_dense_captions_name_an_object_of_the_picture(toy):
    """The whole ScaleCap chain (caption, self-check, questions, answers, fusion): the final
    caption names a true colour+shape of its own picture. The shipped toy does so for 7 of these
    12 scenes (a random model: none); the gate is 5, so a change that moves a greedy decode or
    two without a bug still passes, and the captions must also fit their own pictures clearly
    better than their neighbours' (the toy: 1 of 12), so captions of the wrong image fail."""
    from hfgcot import add_dense_captions

    scenes = make_scenes(12, seed=4)
    ds = Dataset.from_dict({"image": [s.image() for s in scenes]})
    out = add_dense_captions(ds, toy, max_questions=2, batch_size=12, max_new_tokens=64)
    assert len(out) == 12
    captions = out["final_caption"]
    on_topic = sum(
        bool(_labels_in(c) & set(s.labels)) for c, s in zip(captions, scenes, strict=True)
    )
    neighbours = scenes[1:] + scenes[:1]
    off_topic = sum(
        bool(_labels_in(c) & set(s.labels)) for c, s in zip(captions, neighbours, strict=True)
    )
    assert on_topic >= 5, captions
    assert off_topic <= on_topic / 2, (on_topic, off_topic, captions)


@needs_model
def test_the_accuracy_benchmark_accounts_for_every_keyword():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "eval_tiny_shapes.py"
    spec = importlib.util.spec_from_file_location("eval_tiny_shapes", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    m = bench.evaluate(scenes=6, seed=TEST_SEED)
    assert m["keywords"] > 0 and 0 <= m["acc50"] <= m["acc50_of_matched_keywords"] <= 1
    assert m["keywords_wrong_colour"] + m["keywords_wrong_shape"] == m["unmatched_keywords"]
    assert sum(m["status"].values()) == 6


@needs_model
def test_toy_names_the_shape_in_each_cropped_region(toy):
    """Region captions (crop mode) must cut the right pixels: the toy names the true colour and
    shape of most regions, so a crop at the wrong place (a coordinate bug) fails this."""
    from hfgcot import add_region_captions

    scenes = make_scenes(12, seed=TEST_SEED)
    ds = Dataset.from_dict(
        {
            "image": [s.image() for s in scenes],
            "bbox": [[list(o.bbox) for o in s.objects] for s in scenes],
        }
    )
    out = add_region_captions(ds, toy, mode="crop", bbox_format="xyxy", max_new_tokens=24)
    named = [
        scene.objects[k].label in _labels_in(caption)
        for captions, scene in zip(out["region_captions"], scenes, strict=True)
        for k, caption in enumerate(captions)
    ]
    assert len(named) == sum(len(s.objects) for s in scenes)
    assert sum(named) >= 0.8 * len(named), out["region_captions"]


def test_number_tokens_keep_the_text_and_make_each_coordinate_one_token():
    from hfgcot.parsing.grounding import parse_grounding
    from hfgcot.testing.tiny import build_tiny_tokenizer, number_token_ids

    digits = build_tiny_tokenizer()
    numbers = build_tiny_tokenizer(number_tokens=400)
    text = '{"bbox_2d": [7, 40, 191, 399], "label": "red circle"} Step 1: 1234 and 007'
    for tokenizer in (digits, numbers):
        ids = tokenizer.encode(text, add_special_tokens=False)
        assert tokenizer.decode(ids) == text
        assert parse_grounding(tokenizer.decode(ids))[0].box == (7, 40, 191, 399)
    assert sorted(number_token_ids(digits, 1000).values()) == list(range(10))
    found = number_token_ids(numbers, 1000)
    assert sorted(found.values()) == list(range(400))
    pieces = numbers.tokenize(text)
    assert {"7", "40", "191", "399", "123", "4"} <= set(pieces)  # longest match first
    assert "400" not in pieces and {"0", "7"} <= set(numbers.tokenize("007"))


def test_phrase_tokens_keep_every_prompt_and_make_each_fixed_piece_one_token(tmp_path):
    from transformers import AutoTokenizer

    from hfgcot import prompts
    from hfgcot.testing.shapes import make_scene
    from hfgcot.testing.tiny import build_tiny_tokenizer, prompt_phrases

    phrases = prompt_phrases()
    # every fixed piece of every template, none with a placeholder left in it
    assert "You are a helpful assistant." in phrases and len(phrases) >= 15
    assert not any("{" in p and "bbox_2d" not in p for p in phrases)
    assert phrases == sorted(phrases, key=len, reverse=True)
    plain = build_tiny_tokenizer(number_tokens=400)
    short = build_tiny_tokenizer(number_tokens=400, phrases=phrases)
    short.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    scene = make_scene(5)
    labels = scene.labels
    texts = [
        prompts.gcot_prompt("What shape is red?", "circle"),
        prompts.grounding_prompt(labels[0]),
        prompts.joint_grounding_prompt(labels),
        prompts.grounding_sft_prompt("the red circle"),
        prompts.dense_caption_prompt(),
        prompts.sentence_check_prompt(scene.caption_sentences()[0]),
        prompts.object_questions_prompt(scene.caption_sentences(), 5),
        prompts.detail_answer_prompt(prompts.detail_question(labels[0])),
        prompts.detail_answer_prompt(prompts.position_question(labels[0])),
        prompts.fuse_caption_prompt(scene.caption_sentences(), ["It is small."]),
        prompts.region_marked_prompt(2),
        prompts.region_crop_prompt(),
        "\n".join(prompts.detail_question(label) for label in labels),
        '{"bbox_2d": [7, 40, 191, 399]}',
    ]
    for text in texts:
        ids = short.encode(text, add_special_tokens=False)
        assert short.decode(ids) == text
        assert loaded.encode(text, add_special_tokens=False) == ids
        assert len(ids) <= len(plain.encode(text, add_special_tokens=False))
    for phrase in phrases:
        assert short.tokenize(phrase) == [phrase]
    gcot = texts[0]
    assert 4 * len(short.encode(gcot)) < len(plain.encode(gcot))
    # numbers inside the answers are still one token each
    assert short.tokenize("[191, 7]") == plain.tokenize("[191, 7]")
