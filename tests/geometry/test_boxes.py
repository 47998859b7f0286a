"""hfgcot.geometry.boxes: what a coordinate is, and the one validator of boxes given by users.

Region captions, grounding SFT and the metrics all read user boxes through ``check_box``; the
tests below hold them to the same answer for the same box.
"""

from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hfgcot.geometry import boxes
from hfgcot.geometry.boxes import BOX_REASONS, cell_boxes, check_box, is_finite_box, is_number
from hfgcot.geometry.regions import validate_boxes

# ------------------------------------------------------------------------------------------------
# is_number: the one rule of what a coordinate is
# ------------------------------------------------------------------------------------------------

NUMBERS = [
    0,
    -3,
    2.5,
    float("nan"),  # a number (finiteness is checked apart)
    float("inf"),
    -float("inf"),
    Fraction(1, 3),
    np.int8(3),
    np.uint16(7),
    np.int64(-2),
    np.float16(1.5),
    np.float32("nan"),
    np.float64(2.0),
    np.array(4.0),  # 0-d array
    np.array(5),
    2**80,
]
NOT_NUMBERS = [
    True,
    False,
    np.bool_(True),
    np.array(True),
    "3",
    b"3",
    "",
    None,
    1 + 2j,
    np.complex64(1),
    np.complex128(1),
    Decimal("1.5"),
    Decimal("sNaN"),
    [1],
    (1,),
    np.array([1.0]),  # an array with a dimension is no scalar
    {"x": 1},
    object(),
]


@pytest.mark.parametrize("value", NUMBERS, ids=repr)
def test_is_number_accepts_real_scalars(value):
    assert is_number(value)


@pytest.mark.parametrize("value", NOT_NUMBERS, ids=repr)
def test_is_number_refuses_flags_text_complex_and_containers(value):
    assert not is_number(value)


def test_is_number_on_tensors():
    torch = pytest.importorskip("torch")
    assert is_number(torch.tensor(2.0)) and is_number(torch.tensor(3))
    assert not is_number(torch.tensor(True))
    assert not is_number(torch.tensor([1.0]))
    assert check_box(torch.tensor([1.0, 2.0, 3.0, 4.0]), "xyxy") == ([1.0, 2.0, 3.0, 4.0], None)


def test_a_boolean_is_no_coordinate_anywhere():
    for flag in (True, np.bool_(True)):
        box = [flag, 1, 5, 5]
        assert not is_finite_box(box)
        assert check_box(box) == (None, "malformed")


# ------------------------------------------------------------------------------------------------
# check_box: one validator, one set of reasons
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "fmt", "expected"),
    [
        ([10, 20, 30, 40], "xywh", ([10.0, 20.0, 40.0, 60.0], None)),
        ([10, 20, 30, 40], "xyxy", ([10.0, 20.0, 30.0, 40.0], None)),
        ((1, 2, 3, 4), "xywh", ([1.0, 2.0, 4.0, 6.0], None)),
        (np.array([1, 2, 3, 4]), "xyxy", ([1.0, 2.0, 3.0, 4.0], None)),
        (None, "xywh", (None, "missing")),
        ([], "xywh", (None, "malformed")),
        ([1, 2, 3], "xywh", (None, "malformed")),
        ([1, 2, 3, 4, 5], "xywh", (None, "malformed")),
        ("1, 2, 3, 4", "xywh", (None, "malformed")),
        (["1", 2, 3, 4], "xywh", (None, "malformed")),
        ([[1, 2, 3, 4]], "xywh", (None, "malformed")),
        (5, "xywh", (None, "malformed")),
        (np.array(5.0), "xywh", (None, "malformed")),
        ({"x": 1, "y": 2, "w": 3, "h": 4}, "xywh", (None, "malformed")),
        ([0, 0, float("nan"), 4], "xywh", (None, "not_finite")),
        ([0, 0, 4, float("inf")], "xyxy", (None, "not_finite")),
        ([1e308, 0, 1e308, 4], "xywh", (None, "not_finite")),  # x + w overflows
        ([10, 10, 0, 5], "xywh", (None, "non_positive_size")),
        ([10, 10, -5, 5], "xywh", (None, "non_positive_size")),
        ([10, 10, 5, 20], "xyxy", (None, "non_positive_size")),
        ([10, 10, 10, 20], "xyxy", (None, "non_positive_size")),
    ],
    ids=repr,
)
def test_check_box_reasons(value, fmt, expected):
    assert check_box(value, fmt) == expected


def test_check_box_clips_to_the_image_or_says_outside():
    assert check_box([-10, 90, 30, 30], width=100, height=100) == ([0.0, 90.0, 20.0, 100.0], None)
    assert check_box([500, 500, 5, 5], width=100, height=100) == (None, "outside_image")
    assert check_box([-20, -20, 20, 20], width=100, height=100) == (None, "outside_image")
    assert check_box([500, 500, 5, 5]) == ([500.0, 500.0, 505.0, 505.0], None)  # no image: no clip


def test_check_box_refuses_an_unknown_format():
    with pytest.raises(ValueError, match="bbox_format must be one of"):
        check_box([1, 2, 3, 4], "cxcywh")  # type: ignore[arg-type]


def test_cell_boxes():
    assert cell_boxes(None) == []
    assert cell_boxes([1, 2, 3, 4]) == [[1, 2, 3, 4]]
    assert cell_boxes([[1, 2, 3, 4], [5, 6, 7, 8]]) == [[1, 2, 3, 4], [5, 6, 7, 8]]
    assert cell_boxes([]) == []
    assert cell_boxes("box") is None and cell_boxes(7) is None
    assert [list(b) for b in cell_boxes(np.array([[1, 2, 3, 4], [5, 6, 7, 8]]))] == [
        [1, 2, 3, 4],
        [5, 6, 7, 8],
    ]


# ------------------------------------------------------------------------------------------------
# The three readers of user boxes agree with check_box
# ------------------------------------------------------------------------------------------------

coordinate = st.one_of(
    st.integers(-300, 300),
    st.floats(-300, 300),
    st.sampled_from([float("nan"), float("inf"), True, np.bool_(False), "3", None, np.int32(5)]),
)
user_box = st.one_of(
    st.none(),
    st.lists(coordinate, min_size=0, max_size=6),
    st.tuples(coordinate, coordinate, coordinate, coordinate),
)


@given(user_box, st.sampled_from(["xywh", "xyxy"]), st.integers(1, 200), st.integers(1, 200))
def test_region_captions_skip_exactly_what_check_box_refuses(value, fmt, width, height):
    box, reason = check_box(value, fmt, width=width, height=height)
    valid, skipped = validate_boxes([value], width, height, bbox_format=fmt)
    if box is None:
        assert valid == [] and skipped == [(1, "malformed" if reason == "missing" else reason)]
    else:
        assert valid == [box] and skipped == []


@given(user_box, st.sampled_from(["xywh", "xyxy"]), st.integers(28, 200), st.integers(28, 200))
def test_grounding_sft_status_names_the_check_box_reason(value, fmt, width, height):
    from hfgcot.pipelines.grounding_sft import GroundingSFTStage

    box, reason = check_box(value, fmt, width=width, height=height)
    row = GroundingSFTStage(bbox_format=fmt).row_for_size(width, height, "q", value)
    if reason == "missing":
        assert row["sft_status"] == "missing_bbox"
    elif reason is not None:
        assert row["sft_status"] == f"invalid_bbox: {reason}"
    else:
        assert row["sft_status"] in ("ok", "bbox_too_small")
        if row["sft_status"] == "ok":
            assert row["gt_bbox"] == box


@given(user_box, st.sampled_from(["xywh", "xyxy"]))
def test_metrics_skip_exactly_the_reference_boxes_check_box_refuses(value, fmt):
    from hfgcot.evaluation import evaluate_grounding

    box, _ = check_box(value, fmt)
    result = evaluate_grounding(
        [{"pred_bbox": [0, 0, 1, 1], "gt_bbox": value}], gt_format=fmt, image_column=None
    )
    assert result["skipped"] == (1 if box is None else 0)
    if box is not None and all(math.isfinite(v) for v in box):
        assert result["n"] == 1


def test_one_set_of_reason_names():
    assert BOX_REASONS == (
        "missing",
        "malformed",
        "not_finite",
        "non_positive_size",
        "outside_image",
    )
    assert boxes.BBOX_FORMATS == ("xywh", "xyxy")
