"""Grounding / GCoT metrics: hand-computed values, buckets, answers, input kinds, purity."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import png_bytes, random_image
from datasets import Dataset, Image

from hfgcot import evaluate_gcot, evaluate_grounding
from hfgcot.evaluation import SIZE_BUCKETS, extract_answer, normalize_answer, size_bucket

GT = [0.0, 0.0, 100.0, 100.0]


def shifted(box, dx):
    return [box[0] + dx, box[1], box[2] + dx, box[3]]


def frame(width, height):
    return {"width": width, "height": height, "model_width": 28, "model_height": 28}


def test_perfect_predictions_score_one():
    rows = {"pred_bbox": [GT, [5, 5, 50, 80]], "gt_bbox": [GT, [5, 5, 50, 80]]}
    r = evaluate_grounding(rows)
    assert r["acc@0.5"] == 1.0 and r["mean_iou"] == 1.0
    assert r["n"] == 2 and r["unparseable"] == 0 and r["skipped"] == 0


def test_known_shift_gives_the_hand_computed_value():
    # shift 20: intersection 80*100 = 8000, union 12000 -> IoU 2/3 (correct)
    # shift 50: intersection 50*100 = 5000, union 15000 -> IoU 1/3 (wrong)
    preds = [shifted(GT, 20), shifted(GT, -20), shifted(GT, 50), shifted(GT, -50)]
    r = evaluate_grounding({"pred_bbox": preds, "gt_bbox": [GT] * 4})
    assert r["acc@0.5"] == 0.5
    assert r["mean_iou"] == pytest.approx((2 / 3 + 2 / 3 + 1 / 3 + 1 / 3) / 4)
    assert r["n"] == 4 and r["unparseable"] == 0


def test_threshold_is_strictly_greater():
    # shift so that IoU is exactly 0.5: intersection (100-d)*100, union (100+d)*100 -> d = 100/3
    # is irrational; use a vertical split instead: pred covers half of gt and nothing else.
    r = evaluate_grounding({"pred_bbox": [[0, 0, 50, 100]], "gt_bbox": [GT]})
    assert r["mean_iou"] == 0.5 and r["acc@0.5"] == 0.0
    r = evaluate_grounding({"pred_bbox": [[0, 0, 50, 100]], "gt_bbox": [GT]}, iou_threshold=0.4)
    assert r["acc@0.4"] == 1.0


def test_unparseable_and_skipped_rows():
    rows = {
        "pred_bbox": [[], None, [1, 2, 3], GT, GT, GT],
        "gt_bbox": [GT, GT, GT, [], [5, 5, 5, 9], None],
    }
    r = evaluate_grounding(rows)
    assert r["n"] == 3 and r["skipped"] == 3
    assert r["unparseable"] == 3 and r["acc@0.5"] == 0.0 and r["mean_iou"] == 0.0


def test_xywh_ground_truth_and_several_gt_boxes():
    r = evaluate_grounding(
        {"p": [[10, 10, 30, 40]], "g": [[10, 10, 20, 30]]}, "p", "g", gt_format="xywh"
    )
    assert r["mean_iou"] == 1.0
    many = {"pred_bbox": [[200, 200, 300, 300]], "gt_bbox": [[GT, [200, 200, 300, 300]]]}
    assert evaluate_grounding(many)["acc@0.5"] == 1.0
    nested_pred = {"pred_bbox": [[GT, [500, 500, 600, 600]]], "gt_bbox": [GT]}
    assert evaluate_grounding(nested_pred)["mean_iou"] == 1.0
    with pytest.raises(ValueError, match="gt_format"):
        evaluate_grounding(many, gt_format="cxcywh")  # type: ignore[arg-type]
    with pytest.raises(KeyError, match="nope"):
        evaluate_grounding(many, "nope")


def test_size_buckets_from_frames():
    assert [b[0] for b in SIZE_BUCKETS] == ["small", "medium", "large"]
    assert size_bucket(511, 100) == "small" and size_bucket(512, 100) == "medium"
    assert size_bucket(1023, 1023) == "medium" and size_bucket(100, 1024) == "large"
    rows = {
        "pred_bbox": [GT, shifted(GT, 50), GT, []],
        "gt_bbox": [GT, GT, GT, GT],
        "sft_frame": [frame(300, 200), frame(200, 300), frame(800, 600), frame(4000, 3000)],
    }
    r = evaluate_grounding(rows)
    by = r["by_size"]
    assert set(by) == {"small", "medium", "large"}
    assert by["small"]["n"] == 2 and by["small"]["acc@0.5"] == 0.5
    assert by["small"]["mean_iou"] == pytest.approx((1 + 1 / 3) / 2)
    assert by["medium"] == {"acc@0.5": 1.0, "mean_iou": 1.0, "n": 1, "unparseable": 0}
    assert by["large"]["unparseable"] == 1 and by["large"]["acc@0.5"] == 0.0


def test_unknown_sizes_and_empty_selection():
    r = evaluate_grounding({"pred_bbox": [GT], "gt_bbox": [GT]})
    assert r["by_size"]["unknown"]["n"] == 1 and r["by_size"]["small"]["acc@0.5"] is None
    empty = evaluate_grounding({"pred_bbox": [], "gt_bbox": []})
    assert empty["n"] == 0 and empty["acc@0.5"] is None and empty["mean_iou"] is None


def test_dataset_and_row_list_inputs_with_image_sizes():
    images = [png_bytes(random_image(w, h, i)) for i, (w, h) in enumerate([(600, 100), (50, 60)])]
    ds = Dataset.from_dict(
        {"image": images, "pred_bbox": [GT, []], "gt_bbox": [GT, [0, 0, 10, 10]]}
    ).cast_column("image", Image())
    r = evaluate_grounding(ds)
    assert r["by_size"]["medium"]["n"] == 1 and r["by_size"]["small"]["unparseable"] == 1
    rows = [{"pred_bbox": GT, "gt_bbox": GT}, {"pred_bbox": shifted(GT, 50), "gt_bbox": GT}]
    assert evaluate_grounding(rows)["acc@0.5"] == 0.5


# --------------------------------------------------------------------------------------------
# Answers and GCoT
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Yes", "yes"),
        ("  The Red Car. ", "red car"),
        ("two", "2"),
        ("an apple", "apple"),
        ("3.14", "3.14"),
        ("1,000", "1000"),
        ("dont", "don't"),
        ("left-hand", "left hand"),
        ("what?!", "what"),
        ("coca - cola", "coca cola"),
        (None, ""),
        (7, "7"),
    ],
)
def test_normalize_answer(text, expected):
    assert normalize_answer(text) == expected


def test_extract_answer():
    assert extract_answer("Step 1: ...\nAnswer: The sign\nKeywords: sign") == "The sign"
    assert extract_answer("answer：stop") == "stop"
    assert extract_answer("just text") == "just text"
    assert extract_answer("Answer:") == ""


def test_markdown_final_answers_score_right():
    """One final-answer rule (parsing.answers.find_answer) for extraction and scoring."""
    assert extract_answer("Step 1: ...\n**Answer:** red") == "red"
    assert extract_answer("✅ Correct answer: **B. Blue.**") == "B. Blue."
    assert extract_answer("---\n\n**Answer: D. D.**") == "D. D."
    assert extract_answer("**Answer:**\nred") == "red"
    assert extract_answer("A long reasoning with no marker that goes on and on for a while.") == ""
    rows = [{"pred_answer": "Step 1: the ball is red.\n**Answer:** red", "answer": ["red"]}]
    rows[0].update(pred_bbox=GT, gt_bbox=GT)
    assert evaluate_gcot(rows)["answer_acc"] == 1.0


def test_gcot_metrics_by_hand():
    rows = [
        # answer right, box right
        {"pred_answer": "Answer: Two", "answer": ["2", "two"], "pred_bbox": GT, "gt_bbox": GT},
        # answer right, box wrong (IoU 1/3)
        {"pred_answer": "red", "answer": "Red", "pred_bbox": shifted(GT, 50), "gt_bbox": GT},
        # answer wrong, box right (IoU 2/3)
        {"pred_answer": "cat", "answer": ["dog"], "pred_bbox": shifted(GT, 20), "gt_bbox": GT},
        # both wrong, unparseable box
        {"pred_answer": "", "answer": ["dog"], "pred_bbox": [], "gt_bbox": GT},
        # skipped: no reference box / no reference answer
        {"pred_answer": "x", "answer": ["x"], "pred_bbox": GT, "gt_bbox": []},
        {"pred_answer": "x", "answer": [], "pred_bbox": GT, "gt_bbox": GT},
    ]
    r = evaluate_gcot(rows)
    assert r["n"] == 4 and r["skipped"] == 2 and r["unparseable"] == 1
    assert r["answer_acc"] == 0.5
    assert r["acc@0.5"] == 0.5
    assert r["mean_iou"] == pytest.approx((1 + 1 / 3 + 2 / 3 + 0) / 4)
    assert r["consistency"] == pytest.approx(1 / 3)  # both: 1 row; either: 3 rows
    assert list(r) == [
        "answer_acc",
        "acc@0.5",
        "mean_iou",
        "consistency",
        "n",
        "unparseable",
        "skipped",
    ]


def test_gcot_perfect_and_nothing_right():
    perfect = {"pred_answer": ["a b"], "answer": [["A B"]], "pred_bbox": [GT], "gt_bbox": [GT]}
    assert evaluate_gcot(perfect)["consistency"] == 1.0
    wrong = {
        "pred_answer": ["no"],
        "answer": [["yes"]],
        "pred_bbox": [[500, 500, 501, 501]],
        "gt_bbox": [GT],
    }
    r = evaluate_gcot(wrong)
    assert r["answer_acc"] == 0.0 and r["acc@0.5"] == 0.0 and r["consistency"] is None
    custom = evaluate_gcot(
        {"ans": ["x"], "refs": [["x"]], "b": [GT], "g": [[0, 0, 100, 100]]},
        pred_answer_column="ans",
        answer_column="refs",
        pred_column="b",
        gt_column="g",
        gt_format="xywh",
    )
    assert custom["consistency"] == 1.0


def test_evaluation_imports_no_torch():
    code = (
        "import sys, hfgcot.evaluation as e; "
        "e.evaluate_grounding({'pred_bbox': [[0, 0, 1, 1]], 'gt_bbox': [[0, 0, 1, 1]]}); "
        "print('torch' in sys.modules, 'datasets' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_empty_rows_and_bad_thresholds():
    empty = evaluate_grounding([])
    assert empty["n"] == 0 and empty["mean_iou"] is None
    for bad in (float("nan"), 0, 1.5, -0.1):
        with pytest.raises(ValueError, match="iou_threshold must be in"):
            evaluate_grounding([{"pred_bbox": GT, "gt_bbox": GT}], iou_threshold=bad)
    assert (
        evaluate_grounding([{"pred_bbox": GT, "gt_bbox": GT}], iou_threshold=0.9)["acc@0.9"] == 1.0
    )
    with pytest.raises(ValueError, match="iou_threshold must be in"):
        evaluate_gcot(
            [{"pred_answer": "a", "answer": "a", "pred_bbox": GT, "gt_bbox": GT}],
            iou_threshold=float("nan"),
        )
