"""Tests for hfgcot.geometry.frames: smart_resize parity with transformers, frames, box conversions."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
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

tf_qwen2_vl = pytest.importorskip("transformers.models.qwen2_vl.image_processing_qwen2_vl")
tf_smart_resize = tf_qwen2_vl.smart_resize

HUB_MAX_PIXELS = 12845056  # Qwen2.5-VL preprocessor_config.json on the Hub
LIB_MAX_PIXELS = 1003520  # transformers' default (28 * 28 * 1280)
MIN_PIXELS = 3136  # 56 * 56

# --------------------------------------------------------------------------------------------
# smart_resize == transformers' smart_resize
# --------------------------------------------------------------------------------------------


def _reference(height, width, factor, min_pixels, max_pixels):
    """transformers' result, or the exception type it raised."""
    try:
        return tf_smart_resize(
            height, width, factor=factor, min_pixels=min_pixels, max_pixels=max_pixels
        )
    except Exception as err:  # any failure must be mirrored as a ValueError
        return type(err)


def _assert_agrees(height, width, factor, min_pixels, max_pixels):
    expected = _reference(height, width, factor, min_pixels, max_pixels)
    if isinstance(expected, type):
        with pytest.raises(ValueError):
            smart_resize(height, width, factor, min_pixels, max_pixels)
    else:
        got = smart_resize(
            height, width, factor=factor, min_pixels=min_pixels, max_pixels=max_pixels
        )
        assert got == expected, (height, width, factor, min_pixels, max_pixels)
        assert all(type(v) is int for v in got)


def _side():
    """Image sides: anything from 1 to 20000, with extra weight on tiny sides and rounding ties."""
    parts = [
        st.integers(1, 20000),
        st.integers(1, 64),
        st.integers(1, 1500).map(lambda k: 14 * k),  # .5 ties for factor 28
        st.integers(1, 1250).map(lambda k: 16 * k),  # .5 ties for factor 32
    ]
    return st.one_of(*parts)


_pixels = st.one_of(
    st.sampled_from([3136, 4096, 50176, 65536, 200704, LIB_MAX_PIXELS, HUB_MAX_PIXELS, 16777216]),
    st.integers(-10, 20_000_000),
)


@settings(max_examples=500, deadline=None)
@given(
    height=_side(),
    width=_side(),
    factor=st.sampled_from([28, 32]),
    min_pixels=_pixels,
    max_pixels=_pixels,
)
@example(height=10, width=1816, factor=28, min_pixels=3136, max_pixels=50176)
@example(height=1816, width=10, factor=28, min_pixels=3136, max_pixels=50176)
@example(height=10, width=10, factor=28, min_pixels=3136, max_pixels=LIB_MAX_PIXELS)
@example(height=1, width=201, factor=28, min_pixels=3136, max_pixels=LIB_MAX_PIXELS)
@example(height=1, width=200, factor=28, min_pixels=3136, max_pixels=LIB_MAX_PIXELS)
@example(height=20000, width=20000, factor=32, min_pixels=3136, max_pixels=HUB_MAX_PIXELS)
@example(height=42, width=70, factor=28, min_pixels=3136, max_pixels=LIB_MAX_PIXELS)
def test_smart_resize_matches_transformers(height, width, factor, min_pixels, max_pixels):
    _assert_agrees(height, width, factor, min_pixels, max_pixels)


@pytest.mark.parametrize("factor", [28, 32])
@pytest.mark.parametrize("limits", [(3136, 50176), (3136, LIB_MAX_PIXELS), (3136, HUB_MAX_PIXELS)])
def test_smart_resize_matches_transformers_sweep(factor, limits):
    min_pixels, max_pixels = limits
    sides = list(range(1, 120)) + list(range(120, 4000, 37)) + [5000, 8191, 10000, 16384, 20000]
    for height in sides:
        for width in sides[::3]:
            _assert_agrees(height, width, factor, min_pixels, max_pixels)


def test_smart_resize_documented_cases():
    assert smart_resize(10, 10, max_pixels=LIB_MAX_PIXELS) == (56, 56)
    # DESIGN.md: direct smart_resize of 200x300 (w x h) with 3136..50176 gives 168x252.
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
        assert isinstance(_reference(100, 100, 28, 3136, max_pixels), type)  # transformers raises
        with pytest.raises(ValueError, match="max_pixels"):
            smart_resize(100, 100, max_pixels=max_pixels)


# --------------------------------------------------------------------------------------------
# Frame vs the real processor
# --------------------------------------------------------------------------------------------


def _processor(min_pixels, max_pixels, patch_size=14):
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("torchvision")
    return transformers.Qwen2VLImageProcessor(
        size={"shortest_edge": min_pixels, "longest_edge": max_pixels}, patch_size=patch_size
    )


_PROCESSORS: dict[tuple[int, int, int], object] = {}


def _grid_for(width, height, min_pixels, max_pixels, patch_size=14):
    from PIL import Image

    key = (min_pixels, max_pixels, patch_size)
    if key not in _PROCESSORS:
        _PROCESSORS[key] = _processor(min_pixels, max_pixels, patch_size)
    image = Image.new("RGB", (width, height), (120, 30, 200))
    out = _PROCESSORS[key](images=[image], return_tensors="pt")
    return [int(v) for v in out["image_grid_thw"][0]]


_small_side = st.integers(1, 400)


@pytest.mark.slow
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    width=_small_side,
    height=_small_side,
    limits=st.sampled_from([(3136, 50176), (3136, 12544), (3136, LIB_MAX_PIXELS)]),
)
@example(width=10, height=10, limits=(3136, LIB_MAX_PIXELS))
@example(width=200, height=300, limits=(3136, 50176))
@example(width=399, height=3, limits=(3136, 50176))
def test_frame_for_image_matches_processor(width, height, limits):
    assume(max(width, height) / min(width, height) <= 200)
    min_pixels, max_pixels = limits
    grid = _grid_for(width, height, min_pixels, max_pixels)
    expected = Frame.from_grid_thw(width, height, grid)
    frame = Frame.for_image(width, height, min_pixels=min_pixels, max_pixels=max_pixels)
    assert frame == expected
    assert (frame.model_height, frame.model_width) == (grid[1] * 14, grid[2] * 14)


@pytest.mark.slow
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(width=_small_side, height=_small_side)
def test_frame_for_image_matches_processor_qwen3_patch16(width, height):
    assume(max(width, height) / min(width, height) <= 200)
    grid = _grid_for(width, height, MIN_PIXELS, 65536, patch_size=16)
    frame = Frame.for_image(
        width, height, min_pixels=MIN_PIXELS, max_pixels=65536, factor=patch_factor("qwen3_vl")
    )
    assert frame == Frame.from_grid_thw(width, height, grid, patch_size=16)


@pytest.mark.slow
def test_frame_matches_processor_large_max_pixels():
    # a larger max_pixels: shrinking is triggered only for the big image
    for width, height in [(1200, 900), (333, 1000), (57, 29)]:
        grid = _grid_for(width, height, MIN_PIXELS, 802816)
        frame = Frame.for_image(width, height, min_pixels=MIN_PIXELS, max_pixels=802816)
        assert frame == Frame.from_grid_thw(width, height, grid)


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


@pytest.mark.parametrize(
    ("height", "width", "max_pixels"), [(1, 1, 0), (10, 10, 0), (300, 200, 0), (300, 200, -5)]
)
def test_non_positive_max_pixels_agrees_with_transformers(height, width, max_pixels):
    # 1x1 and 10x10 round to area 0 and are grown (transformers returns); 300x200 must shrink
    _assert_agrees(height, width, 28, 3136, max_pixels)
