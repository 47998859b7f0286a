"""The shipped toy model end to end: real grounded reasoning on held-out shape scenes.

Random tiny models prove the plumbing; this proves the numbers: GCoT keyword boxes must land on
the true objects (original pixels) and the caption pipelines must talk about what is in the
image. Greedy, so deterministic.
"""

from __future__ import annotations

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

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "eval_tiny_shapes.py"
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


# -- the training script -----------------------------------------------------------------------


def test_training_script_runs_with_every_option(tmp_path):
    """examples/train_tiny_shapes.py end to end on a minute-sized model: steps, probes, save."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    from transformers import AutoConfig

    script = Path(__file__).resolve().parents[1] / "examples" / "train_tiny_shapes.py"
    out = tmp_path / "toy"
    argv = [sys.executable, str(script), "--output-dir", str(out), "--max-steps", "3"]
    argv += ["--batch-size", "4", "--hidden-size", "32", "--layers", "1", "--heads", "2"]
    argv += ["--vision-hidden", "32", "--vision-depth", "1", "--vocab-size", "400"]
    argv += ["--tokenizer-scenes", "40", "--rope-theta", "20", "--mrope-section", "2,3,3"]
    argv += ["--aux-position", "1", "--aux-box", "1", "--easy-scenes", "--curriculum", "1"]
    argv += ["--aux-dense", "1", "--aux-dense-layer", "1", "--ground-turns", "3"]
    argv += ["--aux-attention", "1", "--aux-attention-layer", "0", "--aux-attention-heads", "2"]
    argv += ["--aux-attention-on", "coordinates"]
    argv += ["--aux-attention-shapes", "1", "--tasks", "ground,crop,gcot"]
    argv += ["--one-task-batches", "--number-tokens", "400", "--box-code", "--box-code-next"]
    argv += ["--phrase-tokens", "--dense-shape-balance", "1", "--aux-dense-shape-balance", "0.5"]
    argv += ["--number-smoothing", "8", "--number-smoothing-end", "1"]
    argv += ["--eval-every", "0", "--save-every", "2", "--final-eval-scenes", "2", "--threads", "1"]
    argv += ["--log-every", "1"]
    argv += [
        "--vision-pretrain",
        "0.5",
        "--vision-pretrain-steps",
        "2",
        "--vision-pretrain-batch",
        "2",
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    info = json.loads((out / "training_info.json").read_text())
    assert info["steps"] == 3 and info["args"]["aux_box"] == 1.0
    assert info["args"]["aux_dense_shape_balance"] == 0.5
    assert "acc50" in info["quick_eval"] and "step 3  loss" in done.stderr
    assert 0 < info["final_aux_loss"] < 100  # the probes ran (cell and box targets are O(1))
    assert info["final_attention_loss"] > 0  # grounding rows taught the attention head
    assert info["vision_pretrain"]["steps"] == 2 and "vision step 2  loss" in done.stderr
    assert 0 <= info["vision_pretrain"]["final_shape_accuracy"] <= 1
    config = AutoConfig.from_pretrained(out)
    assert config.text_config.rope_parameters["mrope_section"] == [2, 3, 3]
    assert config.text_config.rope_parameters["rope_theta"] == 20.0
    assert (tmp_path / "toy-ckpt" / "model.safetensors").exists()
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(out)
    assert tokenizer.tokenize("[191, 7]") == ["[", "191", ",", "Ġ", "7", "]"]
    assert tokenizer.tokenize("You are a helpful assistant.") == ["You are a helpful assistant."]


def _training_script():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "examples" / "train_tiny_shapes.py"
    spec = importlib.util.spec_from_file_location("train_tiny_shapes", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _big_and_tiny_scene():
    """336x336 px (frame 168x168 on a 12x12 patch grid): a red circle whose frame box is
    (28, 28, 84, 84) and a tiny blue triangle whose centre lies in token cell (4, 4)."""
    from dataclasses import replace

    from hfgcot.testing.shapes import ShapeObject

    big = ShapeObject("circle", "red", (56.0, 56.0, 168.0, 168.0))
    tiny = ShapeObject("triangle", "blue", (240.0, 240.0, 250.0, 250.0))
    return replace(make_scene(0), width=336, height=336, objects=(big, tiny))


def _right_dense_prediction(script, dense):
    """Probe outputs that :func:`dense_terms` scores as exactly right for ``dense``."""
    import torch

    n_col, n_shape = script.DENSE_CLASSES
    n = dense["colour"].shape[0]
    right = torch.full((n, n_col + n_shape + 4 + 2), -20.0)
    right[torch.arange(n), dense["colour"]] = 20.0
    right[torch.arange(n), n_col + dense["shape"]] = 20.0
    right[:, n_col + n_shape : -2] = dense["box"].nan_to_num(0.0)
    right[:, -2:] = dense["cell"]
    return right


def test_dense_targets_mark_the_tokens_an_object_covers():
    script = _training_script()
    scene = _big_and_tiny_scene()
    found = script.dense_targets(scene, 12, 12)  # 12x12 patches: 6x6 tokens, frame 168x168
    red, circle = 1 + list(COLOURS).index("red"), 1 + SHAPES.index("circle")
    cells = {(k // 6, k % 6) for k, c in enumerate(found["colour"]) if c == red}
    assert cells == {(1, 1), (1, 2), (2, 1), (2, 2)}
    assert {found["shape"][r * 6 + c] for r, c in cells} == {circle}
    assert found["box"][1 * 6 + 1] == pytest.approx([28 / 168, 28 / 168, 84 / 168, 84 / 168])
    assert found["colour"][4 * 6 + 4] == 1 + list(COLOURS).index("blue")
    assert sum(c != 0 for c in found["colour"]) == 5
    assert found["cell"][4 * 6 + 5] == pytest.approx([4 / 6, 5 / 6])
    assert found["tokens"][1 * 6 + 1] == 4 and found["tokens"][4 * 6 + 4] == 1
    assert found["tokens"][0] == 0  # background


def test_balanced_shape_term_counts_a_one_token_object_like_a_large_one():
    import torch

    script = _training_script()
    scene = _big_and_tiny_scene()  # a circle on 4 tokens, a triangle on 1
    dense = script.dense_batch([{"image": 1}], [scene], torch.tensor([[1, 12, 12]]))
    n_col, n_shape = script.DENSE_CLASSES
    right = _right_dense_prediction(script, dense)

    def misread(pred, tokens):  # every token of the object: a uniform shape guess
        pred = pred.clone()
        pred[tokens, n_col + 1 : n_col + n_shape] = 0.0
        return pred

    small_wrong = misread(right, dense["tokens"] == 1)
    big_wrong = misread(right, dense["tokens"] == 4)
    plain = [float(script.dense_terms(p, dense)) for p in (small_wrong, big_wrong)]
    balanced = [float(script.dense_terms(p, dense, balance=1.0)) for p in (small_wrong, big_wrong)]
    assert plain[1] == pytest.approx(4 * plain[0], rel=1e-4)  # token by token: 4 to 1
    extra = [b - p for b, p in zip(balanced, plain, strict=True)]
    assert extra[0] == pytest.approx(extra[1], rel=1e-4) and extra[0] > 0.1  # one object each
    assert float(script.dense_terms(right, dense, balance=1.0)) < 1e-6


def test_dense_terms_reward_the_right_colour_shape_box_and_cell():
    import torch

    script = _training_script()
    scene = make_scene(7)
    dense = script.dense_batch([{"image": 1}], [scene], torch.tensor([[1, 8, 12]]))
    n_col, n_shape = script.DENSE_CLASSES
    right = _right_dense_prediction(script, dense)
    assert float(script.dense_terms(right, dense)) < 1e-6
    wrong_shape = right.clone()
    objects = dense["shape"] > 0
    wrong_shape[objects, n_col + n_shape - 3 : n_col + n_shape] = right[
        objects, n_col + n_shape - 3 : n_col + n_shape
    ].roll(1, dims=1)
    assert float(script.dense_terms(wrong_shape, dense)) > 1.0
    far_box = right.clone()
    far_box[:, n_col + n_shape : -2] += 0.5
    assert float(script.dense_terms(far_box, dense)) > 0.5
    with pytest.raises(RuntimeError):  # box codes need 4 * BOX_CODE outputs
        script.dense_terms(right, dense, code=True)


def test_dense_batch_lines_up_with_the_image_tokens_of_mixed_rows():
    import torch

    script = _training_script()
    scene = make_scene(5)
    text_only = {"messages": []}
    rows = [{"image": 1}, text_only, {"image": 2}]  # a scene picture, a text row, a crop
    grids = torch.tensor([[1, 8, 12], [1, 4, 4]])
    dense = script.dense_batch(rows, [scene, None, None], grids)
    assert dense["colour"].shape == (4 * 6 + 2 * 2,) and dense["box"].shape == (28, 4)
    assert dense["colour"][:24].tolist() == script.dense_targets(scene, 8, 12)["colour"]
    assert (dense["colour"][24:] == -100).all() and dense["box"][24:].isnan().all()
    assert (dense["tokens"][24:] == 0).all()
    empty = script.dense_batch([text_only], [None], torch.zeros(0, 3, dtype=torch.long))
    assert empty["colour"].shape == (0,) and empty["box"].shape == (0, 4)


def test_dense_targets_only_label_cells_their_object_overlaps():
    from hfgcot.geometry.frames import smart_resize

    script = _training_script()
    colours = list(COLOURS)
    for seed in range(60):
        scene = make_scene(seed)
        h, w = smart_resize(scene.height, scene.width, min_pixels=3136, max_pixels=28224)
        found = script.dense_targets(scene, h // 14, w // 14)
        assert len(found["colour"]) == (h // 28) * (w // 28)
        sx, sy = w / scene.width, h / scene.height
        for k, colour in enumerate(found["colour"]):
            if colour == 0:
                continue
            obj = next(o for o in scene.objects if o.colour == colours[colour - 1])
            r, c = divmod(k, w // 28)
            x1, y1, x2, y2 = obj.bbox
            assert x1 * sx < 28 * (c + 1) and x2 * sx > 28 * c
            assert y1 * sy < 28 * (r + 1) and y2 * sy > 28 * r
            assert found["box"][k] == pytest.approx(
                [x1 * sx / 168, y1 * sy / 168, x2 * sx / 168, y2 * sy / 168]
            )


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


def test_number_features_are_close_for_close_values():
    import torch

    train = _training_script()
    feats = train.number_features(torch.arange(400), 16)
    sim = feats @ feats.T
    assert torch.allclose(sim.diagonal(), torch.ones(400), atol=1e-5)
    # each value is most like itself, and likeness falls off with distance
    assert bool((sim.argmax(dim=1) == torch.arange(400)).all())
    assert bool((sim[200, 201] > sim[200, 210]) and (sim[200, 210] > sim[200, 260]))
    code = train.box_code(torch.tensor([[10.0, 20.0, 30.0, 40.0], [11.0, 20.0, 30.0, 40.0]]))
    assert code.shape == (2, 4 * train.BOX_CODE) and float(code.abs().max()) <= 1.0
    assert torch.equal(code[0, train.BOX_CODE :], code[1, train.BOX_CODE :])  # per coordinate


def test_smoothed_answer_loss_forgives_near_misses_on_box_coordinates_only():
    import torch

    train = _training_script()
    torch.manual_seed(0)
    vocab, hidden = 14, 6
    # ids 2..9 are the numbers 0..7, id 12 is "[" and id 13 is "]"
    numbers = {
        "value": torch.tensor([-1, -1, 0, 1, 2, 3, 4, 5, 6, 7, -1, -1, -1, -1]),
        "bracket": torch.tensor([0] * 12 + [1, -1]),
    }

    class Out:
        def __init__(self, h):
            self.last_hidden_state, self.hidden_states = h, None

    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lm_head = torch.nn.Linear(hidden, vocab)
            self.h = torch.randn(1, 6, hidden)

        def model(self, **_):
            return Out(self.h)

    def loss(labels, sigma, table=numbers):
        batch = {"labels": torch.tensor([labels])}
        return train.answer_loss(model, batch, False, table, sigma)[1].detach()

    model = Model()
    words = [-100, 0, 1, 10, 11, 13]
    plain = loss(words, 0.0, None)
    assert torch.allclose(loss(words, 2.0), plain)
    outside = [-100, 0, 5, 1, 10, 11]  # a number outside brackets ("Step 3") stays one-hot
    assert torch.allclose(loss(outside, 2.0), loss(outside, 0.0, None))
    inside = [-100, -100, -100, 12, 5, 13]  # "[3]": the 3 is a coordinate
    assert not torch.allclose(loss(inside, 2.0), loss(inside, 0.0, None))
    assert torch.allclose(loss(inside, 0.05), loss(inside, 0.0, None), atol=1e-4)
    # a model sure of the true value beats one sure of a value 1 away, which beats one 4 away
    losses = []
    for guess in (5, 6, 9):
        with torch.no_grad():
            model.lm_head.weight.zero_()
            model.lm_head.bias.zero_()
            model.lm_head.bias[guess] = 8.0
        losses.append(float(loss(inside, 1.0)))
    assert losses[0] < losses[1] < losses[2]


def test_number_table_marks_numbers_and_brackets():
    from hfgcot.testing.tiny import build_tiny_tokenizer

    train = _training_script()
    tokenizer = build_tiny_tokenizer(number_tokens=400)
    table = train.number_table(tokenizer, len(tokenizer))
    ids = tokenizer.encode("[191, 7] bbox_2d", add_special_tokens=False)
    values = [int(table["value"][i]) for i in ids]
    assert 191 in values and 7 in values and 2 in values
    assert int(table["bracket"][ids].cumsum(0)[-1]) == 0
    assert int(table["bracket"][ids[0]]) == 1


def test_shape_word_queries_find_colour_words_followed_by_a_shape():
    import torch

    from hfgcot.testing.tiny import build_tiny_tokenizer

    train = _training_script()
    tokenizer = build_tiny_tokenizer(1200, texts=train.corpus(40), number_tokens=400)
    words = train.word_table(tokenizer, len(tokenizer))
    assert int((words["colour"] > 0).sum()) == 6 and int(words["shape"].sum()) == 3
    prompt = tokenizer.encode("Where is the red circle? Answer:", add_special_tokens=False)
    answer = tokenizer.encode(
        " The yellow object is a red square, not the blue triangle. Keywords: blue triangle",
        add_special_tokens=False,
    )
    ids = torch.tensor([prompt + answer])
    labels = torch.tensor([[-100] * len(prompt) + answer])
    rows, cols, colours = train.shape_word_queries({"input_ids": ids, "labels": labels}, words)
    tokens = [tokenizer.decode(ids[0, c]) for c in cols.tolist()]
    # prompt and answer alike; "yellow object" names no shape
    assert tokens == [" red", " red", " blue", " blue"] and rows.tolist() == [0, 0, 0, 0]
    assert colours.tolist() == [1 + list(train.COLOURS).index(t.strip()) for t in tokens]
    assert all(tokenizer.decode(ids[0, c + 1]).strip() in train.SHAPES for c in cols.tolist())


def test_next_coordinate_numbers_each_box_coordinate_of_every_turn():
    import random

    from hfgcot import GroundingCollator
    from hfgcot.testing.tiny import build_tiny_tokenizer

    train = _training_script()
    tokenizer = build_tiny_tokenizer(number_tokens=400)
    processor = train.build_processor(tokenizer, train.MIN_PIXELS, train.MAX_PIXELS)
    processor.tokenizer.padding_side = "right"
    maker = train.RowMaker(train.MIN_PIXELS, train.MAX_PIXELS, ground_turns=3)
    scene = next(s for s in map(make_scene, range(100)) if len(s.objects) >= 3)
    for seed in range(50):
        row = maker.ground(scene, scene.image(), random.Random(seed))
        if len(row.pop("turn_objects")) >= 2:
            break
    batch = GroundingCollator(processor)([row])
    k = train.next_coordinate(batch["labels"], train.number_table(tokenizer, len(tokenizer)))
    turn = train.answer_turns(batch["labels"])
    boxes = train.answer_boxes(row)
    assert len(boxes) >= 2
    for t, box in enumerate(boxes):
        at = ((turn[0] == t) & (k[0] >= 0)).nonzero()[:, 0]
        assert k[0, at].tolist() == [0, 1, 2, 3]  # the 2 of bbox_2d is not a coordinate
        written = [int(tokenizer.decode([int(i)])) for i in batch["labels"][0, at]]
        assert written == [int(v) for v in box]


def test_training_script_refuses_coordinate_options_without_number_tokens():
    train = _training_script()
    with pytest.raises(SystemExit):
        train.main(["--number-tokens", "0", "--box-code-next"])
    with pytest.raises(SystemExit):
        train.main(
            ["--number-tokens", "0", "--no-box-code-next", "--aux-attention-on", "coordinates"]
        )
