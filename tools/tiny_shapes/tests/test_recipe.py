"""The toy model's training recipe (tools/tiny_shapes): targets, losses, options, a short run.

No retraining: a minute-sized model runs every option for a few steps; the rest are unit tests of
the targets and losses. The shipped checkpoint's own tests are tests/testing/test_tiny_shapes.py.
"""

from __future__ import annotations

import pytest

from hfgcot.testing.shapes import COLOURS, SHAPES, make_scene
from tools.tiny_shapes import data, losses, options, train
from tools.tiny_shapes import model as toy_model
from tools.tiny_shapes import rows as toy_rows


def test_the_recipe_runs_with_every_option(tmp_path):
    """``python -m tools.tiny_shapes`` end to end on a minute-sized model: steps, probes, save."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    from transformers import AutoConfig

    root = Path(__file__).resolve().parents[3]
    out = tmp_path / "toy"
    argv = [sys.executable, "-m", "tools.tiny_shapes", "--output-dir", str(out), "--max-steps", "3"]
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
    done = subprocess.run(argv, env=env, cwd=root, capture_output=True, text=True, timeout=600)
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


def _big_and_tiny_scene():
    """336x336 px (frame 168x168 on a 12x12 patch grid): a red circle whose frame box is
    (28, 28, 84, 84) and a tiny blue triangle whose centre lies in token cell (4, 4)."""
    from dataclasses import replace

    from hfgcot.testing.shapes import ShapeObject

    big = ShapeObject("circle", "red", (56.0, 56.0, 168.0, 168.0))
    tiny = ShapeObject("triangle", "blue", (240.0, 240.0, 250.0, 250.0))
    return replace(make_scene(0), width=336, height=336, objects=(big, tiny))


def _right_dense_prediction(dense):
    """Probe outputs that :func:`dense_terms` scores as exactly right for ``dense``."""
    import torch

    n_col, n_shape = data.DENSE_CLASSES
    n = dense["colour"].shape[0]
    right = torch.full((n, n_col + n_shape + 4 + 2), -20.0)
    right[torch.arange(n), dense["colour"]] = 20.0
    right[torch.arange(n), n_col + dense["shape"]] = 20.0
    right[:, n_col + n_shape : -2] = dense["box"].nan_to_num(0.0)
    right[:, -2:] = dense["cell"]
    return right


def test_dense_targets_mark_the_tokens_an_object_covers():
    scene = _big_and_tiny_scene()
    found = data.dense_targets(scene, 12, 12)  # 12x12 patches: 6x6 tokens, frame 168x168
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

    scene = _big_and_tiny_scene()  # a circle on 4 tokens, a triangle on 1
    dense = data.dense_batch([{"image": 1}], [scene], torch.tensor([[1, 12, 12]]))
    n_col, n_shape = data.DENSE_CLASSES
    right = _right_dense_prediction(dense)

    def misread(pred, tokens):  # every token of the object: a uniform shape guess
        pred = pred.clone()
        pred[tokens, n_col + 1 : n_col + n_shape] = 0.0
        return pred

    small_wrong = misread(right, dense["tokens"] == 1)
    big_wrong = misread(right, dense["tokens"] == 4)
    plain = [float(losses.dense_terms(p, dense)) for p in (small_wrong, big_wrong)]
    balanced = [float(losses.dense_terms(p, dense, balance=1.0)) for p in (small_wrong, big_wrong)]
    assert plain[1] == pytest.approx(4 * plain[0], rel=1e-4)  # token by token: 4 to 1
    extra = [b - p for b, p in zip(balanced, plain, strict=True)]
    assert extra[0] == pytest.approx(extra[1], rel=1e-4) and extra[0] > 0.1  # one object each
    assert float(losses.dense_terms(right, dense, balance=1.0)) < 1e-6


def test_dense_terms_reward_the_right_colour_shape_box_and_cell():
    import torch

    scene = make_scene(7)
    dense = data.dense_batch([{"image": 1}], [scene], torch.tensor([[1, 8, 12]]))
    n_col, n_shape = data.DENSE_CLASSES
    right = _right_dense_prediction(dense)
    assert float(losses.dense_terms(right, dense)) < 1e-6
    wrong_shape = right.clone()
    objects = dense["shape"] > 0
    wrong_shape[objects, n_col + n_shape - 3 : n_col + n_shape] = right[
        objects, n_col + n_shape - 3 : n_col + n_shape
    ].roll(1, dims=1)
    assert float(losses.dense_terms(wrong_shape, dense)) > 1.0
    far_box = right.clone()
    far_box[:, n_col + n_shape : -2] += 0.5
    assert float(losses.dense_terms(far_box, dense)) > 0.5
    with pytest.raises(RuntimeError):  # box codes need 4 * BOX_CODE outputs
        losses.dense_terms(right, dense, code=True)


def test_dense_batch_lines_up_with_the_image_tokens_of_mixed_rows():
    import torch

    scene = make_scene(5)
    text_only = {"messages": []}
    rows = [{"image": 1}, text_only, {"image": 2}]  # a scene picture, a text row, a crop
    grids = torch.tensor([[1, 8, 12], [1, 4, 4]])
    dense = data.dense_batch(rows, [scene, None, None], grids)
    assert dense["colour"].shape == (4 * 6 + 2 * 2,) and dense["box"].shape == (28, 4)
    assert dense["colour"][:24].tolist() == data.dense_targets(scene, 8, 12)["colour"]
    assert (dense["colour"][24:] == -100).all() and dense["box"][24:].isnan().all()
    assert (dense["tokens"][24:] == 0).all()
    empty = data.dense_batch([text_only], [None], torch.zeros(0, 3, dtype=torch.long))
    assert empty["colour"].shape == (0,) and empty["box"].shape == (0, 4)


def test_dense_targets_only_label_cells_their_object_overlaps():
    from hfgcot.geometry.frames import smart_resize

    colours = list(COLOURS)
    for seed in range(60):
        scene = make_scene(seed)
        h, w = smart_resize(scene.height, scene.width, min_pixels=3136, max_pixels=28224)
        found = data.dense_targets(scene, h // 14, w // 14)
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


def test_number_features_are_close_for_close_values():
    import torch

    feats = toy_model.number_features(torch.arange(400), 16)
    sim = feats @ feats.T
    assert torch.allclose(sim.diagonal(), torch.ones(400), atol=1e-5)
    # each value is most like itself, and likeness falls off with distance
    assert bool((sim.argmax(dim=1) == torch.arange(400)).all())
    assert bool((sim[200, 201] > sim[200, 210]) and (sim[200, 210] > sim[200, 260]))
    code = toy_model.box_code(torch.tensor([[10.0, 20.0, 30.0, 40.0], [11.0, 20.0, 30.0, 40.0]]))
    assert code.shape == (2, 4 * toy_model.BOX_CODE) and float(code.abs().max()) <= 1.0
    assert torch.equal(
        code[0, toy_model.BOX_CODE :], code[1, toy_model.BOX_CODE :]
    )  # per coordinate


def test_smoothed_answer_loss_forgives_near_misses_on_box_coordinates_only():
    import torch

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
        return losses.answer_loss(model, batch, False, table, sigma)[1].detach()

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
    scores = []
    for guess in (5, 6, 9):
        with torch.no_grad():
            model.lm_head.weight.zero_()
            model.lm_head.bias.zero_()
            model.lm_head.bias[guess] = 8.0
        scores.append(float(loss(inside, 1.0)))
    assert scores[0] < scores[1] < scores[2]


def test_number_table_marks_numbers_and_brackets():
    from hfgcot.testing.tiny import build_tiny_tokenizer

    tokenizer = build_tiny_tokenizer(number_tokens=400)
    table = toy_model.number_table(tokenizer, len(tokenizer))
    ids = tokenizer.encode("[191, 7] bbox_2d", add_special_tokens=False)
    values = [int(table["value"][i]) for i in ids]
    assert 191 in values and 7 in values and 2 in values
    assert int(table["bracket"][ids].cumsum(0)[-1]) == 0
    assert int(table["bracket"][ids[0]]) == 1


def test_shape_word_queries_find_colour_words_followed_by_a_shape():
    import torch

    from hfgcot.testing.tiny import build_tiny_tokenizer

    tokenizer = build_tiny_tokenizer(1200, texts=toy_rows.corpus(40), number_tokens=400)
    words = toy_model.word_table(tokenizer, len(tokenizer))
    assert int((words["colour"] > 0).sum()) == 6 and int(words["shape"].sum()) == 3
    prompt = tokenizer.encode("Where is the red circle? Answer:", add_special_tokens=False)
    answer = tokenizer.encode(
        " The yellow object is a red square, not the blue triangle. Keywords: blue triangle",
        add_special_tokens=False,
    )
    ids = torch.tensor([prompt + answer])
    labels = torch.tensor([[-100] * len(prompt) + answer])
    rows, cols, colours = losses.shape_word_queries({"input_ids": ids, "labels": labels}, words)
    tokens = [tokenizer.decode(ids[0, c]) for c in cols.tolist()]
    # prompt and answer alike; "yellow object" names no shape
    assert tokens == [" red", " red", " blue", " blue"] and rows.tolist() == [0, 0, 0, 0]
    assert colours.tolist() == [1 + list(COLOURS).index(t.strip()) for t in tokens]
    assert all(tokenizer.decode(ids[0, c + 1]).strip() in SHAPES for c in cols.tolist())


def test_next_coordinate_numbers_each_box_coordinate_of_every_turn():
    import random

    from hfgcot import GroundingCollator
    from hfgcot.testing.tiny import build_tiny_tokenizer

    tokenizer = build_tiny_tokenizer(number_tokens=400)
    processor = toy_model.build_processor(tokenizer, options.MIN_PIXELS, options.MAX_PIXELS)
    processor.tokenizer.padding_side = "right"
    maker = toy_rows.RowMaker(options.MIN_PIXELS, options.MAX_PIXELS, ground_turns=3)
    scene = next(s for s in map(make_scene, range(100)) if len(s.objects) >= 3)
    for seed in range(50):
        row = maker.ground(scene, scene.image(), random.Random(seed))
        if len(row.pop("turn_objects")) >= 2:
            break
    batch = GroundingCollator(processor, single_turn=False)([row])
    k = losses.next_coordinate(batch["labels"], toy_model.number_table(tokenizer, len(tokenizer)))
    turn = losses.answer_turns(batch["labels"])
    boxes = toy_rows.answer_boxes(row)
    assert len(boxes) >= 2
    for t, box in enumerate(boxes):
        at = ((turn[0] == t) & (k[0] >= 0)).nonzero()[:, 0]
        assert k[0, at].tolist() == [0, 1, 2, 3]  # the 2 of bbox_2d is not a coordinate
        written = [int(tokenizer.decode([int(i)])) for i in batch["labels"][0, at]]
        assert written == [int(v) for v in box]


def test_the_recipe_refuses_coordinate_options_without_number_tokens():
    with pytest.raises(SystemExit):
        train.main(["--number-tokens", "0", "--box-code-next"])
    with pytest.raises(SystemExit):
        train.main(
            ["--number-tokens", "0", "--no-box-code-next", "--aux-attention-on", "coordinates"]
        )
