"""Label placement (hfgcot.viz.layout): inside the image, no overlaps, complete, off the boxes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hfgcot.viz.layout import place_labels, rects_overlap


@st.composite
def scenes(draw, max_side=400, integers=False):
    number = st.integers if integers else st.floats
    kw = {} if integers else {"allow_nan": False, "allow_infinity": False}
    W = draw(st.integers(8, max_side))
    H = draw(st.integers(8, max_side))
    n = draw(st.integers(0, 12))
    boxes, sizes = [], []
    for _ in range(n):
        x1 = draw(number(0, W - 1, **kw))
        y1 = draw(number(0, H - 1, **kw))
        x2 = draw(number(x1 + 1, W, **kw))
        y2 = draw(number(y1 + 1, H, **kw))
        boxes.append([x1, y1, x2, y2])
        sizes.append((draw(number(1, W + 10, **kw)), draw(number(1, H + 10, **kw))))
    return W, H, boxes, sizes


@settings(max_examples=300, deadline=None)
@given(scenes())
def test_labels_stay_inside_keep_their_size_and_never_overlap(scene):
    W, H, boxes, sizes = scene
    rects = place_labels(W, H, boxes, sizes)
    assert len(rects) == len(boxes)
    placed = []
    for rect, (w, h) in zip(rects, sizes, strict=True):
        if rect is None:
            continue
        x1, y1, x2, y2 = rect
        assert 0 <= x1 and 0 <= y1 and x2 <= W + 1e-9 and y2 <= H + 1e-9
        assert x2 - x1 == pytest.approx(w) and y2 - y1 == pytest.approx(h)
        for other in placed:
            ox = min(x2, other[2]) - max(x1, other[0])
            oy = min(y2, other[3]) - max(y1, other[1])
            assert ox <= 1e-6 or oy <= 1e-6, (rect, other)
        placed.append(rect)
    assert place_labels(W, H, boxes, sizes) == rects  # deterministic


@settings(max_examples=200, deadline=None)
@given(scenes(max_side=24, integers=True))
def test_a_label_is_left_out_only_when_no_spot_is_free(scene):
    """Brute force over every integer position (exact for integer inputs: a free label pushed
    left and up until it touches something sits on integer coordinates)."""
    W, H, boxes, sizes = scene
    rects = place_labels(W, H, boxes, sizes)
    for i, rect in enumerate(rects):
        if rect is not None:
            continue
        w, h = sizes[i]
        if w > W or h > H:
            continue
        before = [r for r in rects[:i] if r is not None]
        free = [
            (x, y)
            for x in range(W - w + 1)
            for y in range(H - h + 1)
            if not any(rects_overlap((x, y, x + w, y + h), r) for r in before)
        ]
        assert not free, (i, free[:3])


@settings(max_examples=200, deadline=None)
@given(scenes())
def test_one_label_that_fits_is_always_placed(scene):
    W, H, boxes, sizes = scene
    if boxes:
        w, h = min(sizes[0][0], W), min(sizes[0][1], H)
        assert place_labels(W, H, boxes[:1], [(w, h)])[0] is not None


def test_labels_go_off_the_boxes_when_there_is_room():
    # two overlapping boxes with the same top-left corner: the labels must not cover each
    # other, and neither lies on a box (room above and below)
    boxes = [[20, 30, 80, 70], [20, 30, 60, 60]]
    a, b = place_labels(100, 100, boxes, [(30, 10), (30, 10)])
    assert a == (20.0, 20.0, 50.0, 30.0)  # above its box, left-aligned
    assert not rects_overlap(a, b)
    assert not any(rects_overlap(b, tuple(box)) for box in boxes)


def test_a_long_label_is_moved_inside_the_image_not_cut():
    (rect,) = place_labels(100, 50, [[70, 20, 95, 45]], [(60, 10)])
    assert rect == (40.0, 10.0, 100.0, 20.0)


def test_a_box_at_the_top_gets_its_label_beside_not_on_the_shape():
    box = (10, 0, 40, 30)  # no room above
    (rect,) = place_labels(64, 64, [box], [(12, 14)])
    assert not rects_overlap(rect, box)  # the shape inside stays visible
    assert rect == (40.0, 0.0, 52.0, 14.0)  # the nearest free spot: right of the top edge


def test_a_full_image_leaves_no_room():
    rects = place_labels(20, 10, [[0, 0, 20, 10]] * 3, [(20, 5)] * 3)
    assert rects[:2] in ([(0, 0, 20, 5), (0, 5, 20, 10)], [(0, 5, 20, 10), (0, 0, 20, 5)])
    assert rects[2] is None
    with pytest.raises(ValueError):
        place_labels(10, 10, [[0, 0, 1, 1]], [])
