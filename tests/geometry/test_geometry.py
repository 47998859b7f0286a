"""hfgcot.geometry.frames: smart_resize, frames and box conversions (pure: no transformers needed).

The comparisons with transformers' own smart_resize and image processor are in
test_geometry_transformers.py, skipped where transformers is missing; these never are.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from hfgcot.geometry.frames import (
    FAMILIES,
    Frame,
    box_area,
    clip_box,
    family_for_model_type,
    iou,
    is_finite_box,
    patch_factor,
    smart_resize,
    xywh_to_xyxy,
    xyxy_to_xywh,
)

HUB_MAX_PIXELS = 12845056  # Qwen2.5-VL preprocessor_config.json on the Hub
LIB_MAX_PIXELS = 1003520  # transformers' default (28 * 28 * 1280)
MIN_PIXELS = 3136  # 56 * 56


def test_smart_resize_documented_cases():
    assert smart_resize(10, 10, max_pixels=LIB_MAX_PIXELS) == (56, 56)
    # Worked by hand: smart_resize of 200x300 (w x h) with 3136..50176 gives 168x252.
    assert smart_resize(300, 200, min_pixels=3136, max_pixels=50176) == (252, 168)
    # thin image: a side rounds to 0, so the min_pixels branch scales it up to one factor
    assert smart_resize(10, 1816, min_pixels=3136, max_pixels=50176) == (28, 756)
    # thin image that must shrink: the short side stays at the factor, the area exceeds max_pixels
    h, w = smart_resize(20, 3000, min_pixels=3136, max_pixels=50176)
    assert (h, w) == (28, 2716) and h * w > 50176


@pytest.mark.parametrize(
    "args",
    [(1, 201), (201, 1), (10, 2020), (0, 10), (10, 0), (-5, 10)],
)
def test_smart_resize_rejects(args):
    with pytest.raises(ValueError):
        smart_resize(*args)


def test_smart_resize_rejects_non_integers():
    with pytest.raises(ValueError, match="height"):
        smart_resize(10.5, 10)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="factor"):
        smart_resize(10, 10, factor=0)
    for max_pixels in (0, -5):
        with pytest.raises(ValueError, match="max_pixels"):
            smart_resize(100, 100, max_pixels=max_pixels)


# --------------------------------------------------------------------------------------------
# Families
# --------------------------------------------------------------------------------------------


def test_families():
    assert FAMILIES == ("qwen2_vl", "qwen2_5_vl", "qwen3_vl")
    assert family_for_model_type("qwen2_vl") == "qwen2_vl"
    assert family_for_model_type("qwen2_5_vl") == "qwen2_5_vl"
    assert family_for_model_type("qwen3_vl") == "qwen3_vl"
    assert family_for_model_type("qwen3_vl_moe") == "qwen3_vl"
    with pytest.raises(ValueError, match="qwen2_5_vl"):
        family_for_model_type("llava")
    assert [patch_factor(f) for f in FAMILIES] == [28, 28, 32]
    with pytest.raises(ValueError):
        patch_factor("llava")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Frame(10, 10, 28, 28).box_to_pixels([0, 0, 1, 1], "llava")  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# Frame basics
# --------------------------------------------------------------------------------------------


def test_frame_dict_round_trip_and_validation():
    frame = Frame.for_image(640, 480, min_pixels=MIN_PIXELS, max_pixels=HUB_MAX_PIXELS)
    assert frame == Frame(640, 480, 644, 476)
    assert Frame.from_dict(frame.to_dict()) == frame
    assert Frame.from_dict({**frame.to_dict(), "extra": 1}) == frame
    with pytest.raises(ValueError, match="model_width"):
        Frame.from_dict({"width": 1, "height": 1, "model_height": 28})
    for bad in [(0, 10, 28, 28), (10, -1, 28, 28), (10, 10, 28.5, 28), (10, 10, True, 28)]:
        with pytest.raises(ValueError):
            Frame(*bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Frame.from_grid_thw(10, 10, [4, 4])
    assert Frame.from_grid_thw(10, 10, [1, 4, 6]) == Frame(10, 10, 84, 56)
    assert Frame.from_grid_thw(10, 10, [1, 4, 6], patch_size=16) == Frame(10, 10, 96, 64)


def test_box_conventions():
    frame = Frame(200, 100, 196, 112)
    # relative families: 0..1000
    for family in ("qwen2_vl", "qwen3_vl"):
        assert frame.box_to_pixels([0, 0, 1000, 1000], family) == [0.0, 0.0, 200.0, 100.0]
        assert frame.box_to_pixels([250, 500, 500, 750], family) == [50.0, 50.0, 100.0, 75.0]
        assert frame.box_to_model([50, 50, 100, 75], family) == [250.0, 500.0, 500.0, 750.0]
    # qwen2_5_vl: pixels of the resized image
    assert frame.box_to_pixels([0, 0, 196, 112], "qwen2_5_vl") == [0.0, 0.0, 200.0, 100.0]
    assert frame.box_to_pixels([98, 56, 196, 112], "qwen2_5_vl") == [100.0, 50.0, 200.0, 100.0]
    assert frame.box_to_model([100, 50, 200, 100], "qwen2_5_vl") == [98.0, 56.0, 196.0, 112.0]


def test_box_to_pixels_overshoot_negative_reversed():
    frame = Frame(200, 100, 196, 112)
    assert frame.box_to_pixels([1200, 500, -30, -1], "qwen2_vl") == [0.0, 0.0, 200.0, 50.0]
    assert frame.box_to_pixels([300, 200, 100, 50], "qwen2_5_vl") == pytest.approx(
        [100 * 200 / 196, 50 * 100 / 112, 200.0, 100.0]
    )
    assert frame.box_to_pixels([-5, -5, -1, -1], "qwen3_vl") == [0.0, 0.0, 0.0, 0.0]
    assert frame.box_to_model([-10, 500, 300, -3], "qwen2_5_vl") == [0.0, 0.0, 196.0, 112.0]
    assert frame.box_to_model([-10, 500, 300, -3], "qwen2_vl") == [0.0, 0.0, 1000.0, 1000.0]


@pytest.mark.parametrize(
    "box",
    [
        [0, 0, float("nan"), 1],
        [0, float("inf"), 1, 1],
        [0, 0, 1],
        [0, 0, 1, 1, 1],
        ["a", 0, 1, 1],
        None,
    ],
)
def test_bad_boxes_raise(box):
    frame = Frame(200, 100, 196, 112)
    for family in FAMILIES:
        with pytest.raises(ValueError):
            frame.box_to_pixels(box, family)
        with pytest.raises(ValueError):
            frame.box_to_model(box, family)
    with pytest.raises(ValueError):
        clip_box(box, 10, 10)
    assert not is_finite_box(box)


# --------------------------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------------------------

_real = st.floats(-5000, 5000, allow_nan=False, allow_infinity=False)
_any_box = st.lists(_real, min_size=4, max_size=4)


@st.composite
def frame_and_box(draw):
    """A frame from smart_resize and a box inside its original image."""
    width = draw(st.integers(1, 6000))
    height = draw(st.integers(1, 6000))
    assume(max(width, height) / min(width, height) <= 200)
    factor = draw(st.sampled_from([28, 32]))
    max_pixels = draw(st.sampled_from([50176, LIB_MAX_PIXELS, HUB_MAX_PIXELS]))
    frame = Frame.for_image(
        width, height, min_pixels=MIN_PIXELS, max_pixels=max_pixels, factor=factor
    )
    xs = sorted(draw(st.lists(st.floats(0, width), min_size=2, max_size=2)))
    ys = sorted(draw(st.lists(st.floats(0, height), min_size=2, max_size=2)))
    return frame, [xs[0], ys[0], xs[1], ys[1]]


def _ordered_inside(box, width, height):
    x1, y1, x2, y2 = box
    return 0 <= x1 <= x2 <= width and 0 <= y1 <= y2 <= height


@settings(max_examples=150, deadline=None)
@given(data=frame_and_box(), family=st.sampled_from(FAMILIES))
def test_box_round_trip_within_one_resized_pixel(data, family):
    frame, box = data
    tol_x = frame.width / frame.model_width
    tol_y = frame.height / frame.model_height
    model = frame.box_to_model(box, family)
    extent = (1000, 1000) if family != "qwen2_5_vl" else (frame.model_width, frame.model_height)
    assert _ordered_inside(model, *extent)
    back = frame.box_to_pixels(model, family)
    assert _ordered_inside(back, frame.width, frame.height)
    for i, (a, b) in enumerate(zip(back, box, strict=True)):
        assert abs(a - b) <= (tol_x if i % 2 == 0 else tol_y) * 1e-6 + 1e-9

    # The model writes integers: rounding costs at most half a unit of the family's grid,
    # i.e. half a resized pixel for qwen2_5_vl.
    rounded = [round(v) for v in model]
    back = frame.box_to_pixels(rounded, family)
    assert _ordered_inside(back, frame.width, frame.height)
    if family == "qwen2_5_vl":
        unit_x, unit_y = tol_x, tol_y
    else:
        unit_x, unit_y = frame.width / 1000, frame.height / 1000
    for i, (a, b) in enumerate(zip(back, box, strict=True)):
        assert abs(a - b) <= (unit_x if i % 2 == 0 else unit_y) * 0.5 + 1e-9


@settings(max_examples=100, deadline=None)
@given(
    box=_any_box,
    width=st.integers(1, 5000),
    height=st.integers(1, 5000),
    family=st.sampled_from(FAMILIES),
)
def test_conversions_always_ordered_and_clipped(box, width, height, family):
    frame = Frame(width, height, 28 * max(1, width // 28), 28 * max(1, height // 28))
    assert _ordered_inside(frame.box_to_pixels(box, family), width, height)
    extent = (1000, 1000) if family != "qwen2_5_vl" else (frame.model_width, frame.model_height)
    assert _ordered_inside(frame.box_to_model(box, family), *extent)
    assert _ordered_inside(clip_box(box, width, height), width, height)


@settings(max_examples=150, deadline=None)
@given(a=_any_box, b=_any_box)
def test_iou_properties(a, b):
    v = iou(a, b)
    assert 0.0 <= v <= 1.0
    assert v == iou(b, a)
    if box_area(a) > 0:
        assert iou(a, a) == pytest.approx(1.0)
    else:
        assert iou(a, a) == 0.0


def test_iou_and_area_examples():
    assert iou([0, 0, 10, 10], [0, 0, 10, 10]) == 1.0
    assert iou([0, 0, 10, 10], [10, 0, 20, 10]) == 0.0
    assert iou([0, 0, 10, 10], [5, 0, 15, 10]) == pytest.approx(1 / 3)
    assert iou([0, 0, 10, 10], [2, 2, 4, 4]) == pytest.approx(4 / 100)
    assert iou([0, 0, 0, 0], [0, 0, 0, 0]) == 0.0
    assert iou([3, 3, 3, 9], [3, 3, 3, 9]) == 0.0
    assert box_area([0, 0, 4, 5]) == 20.0
    assert box_area([4, 5, 0, 0]) == 0.0


@settings(max_examples=100, deadline=None)
@given(box=st.lists(st.floats(-1e4, 1e4, allow_nan=False), min_size=4, max_size=4))
def test_xywh_round_trip(box):
    back = xywh_to_xyxy(xyxy_to_xywh(box))
    assert back == pytest.approx(box, abs=1e-9)
    again = xyxy_to_xywh(xywh_to_xyxy(box))
    assert again == pytest.approx(box, abs=1e-8)


def test_xywh_examples_and_finiteness():
    assert xywh_to_xyxy([10, 20, 30, 40]) == [10.0, 20.0, 40.0, 60.0]
    assert xyxy_to_xywh([10, 20, 40, 60]) == [10.0, 20.0, 30.0, 40.0]
    assert is_finite_box([0, 1, 2, 3.5])
    assert is_finite_box((0, 1, 2, 3))
    assert not is_finite_box([0, 1, 2, math.inf])
    assert not is_finite_box([0, 1, 2])
    assert not is_finite_box("abcd")
    assert not is_finite_box([0, 1, 2, "3"])
    assert not is_finite_box([0, 1, 2, True])
    assert clip_box([120, -5, 30, 50], 100, 80) == [30.0, 0.0, 100.0, 50.0]


def test_accepts_numpy_and_tensor_scalars():
    np = pytest.importorskip("numpy")
    torch = pytest.importorskip("torch")
    assert smart_resize(np.int64(480), np.int32(640)) == (476, 644)
    frame = Frame.from_grid_thw(np.int64(640), 480, torch.tensor([1, 34, 46]))
    assert frame == Frame(640, 480, 644, 476)
    assert all(type(v) is int for v in frame.to_dict().values())
    assert is_finite_box(np.array([0.0, 1.0, 2.0, 3.0]))
    assert frame.box_to_pixels(torch.tensor([0.0, 0.0, 322.0, 238.0]), "qwen2_5_vl") == [
        0.0,
        0.0,
        320.0,
        240.0,
    ]
