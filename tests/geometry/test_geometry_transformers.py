"""hfgcot.geometry.frames against transformers: smart_resize and the Qwen2-VL image processor.

Skipped as a whole where transformers is missing (the pure tests are in test_geometry.py).
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from hfgcot.geometry.frames import (
    Frame,
    patch_factor,
    smart_resize,
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


def test_transformers_refuses_non_positive_max_pixels_too():
    for max_pixels in (0, -5):
        assert isinstance(_reference(100, 100, 28, 3136, max_pixels), type)


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


@pytest.mark.parametrize(
    ("height", "width", "max_pixels"), [(1, 1, 0), (10, 10, 0), (300, 200, 0), (300, 200, -5)]
)
def test_non_positive_max_pixels_agrees_with_transformers(height, width, max_pixels):
    # 1x1 and 10x10 round to area 0 and are grown (transformers returns); 300x200 must shrink
    _assert_agrees(height, width, 28, 3136, max_pixels)
