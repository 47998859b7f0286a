"""Boxes: what a number is, the two formats users give, the one validator, areas and IoU.

Pure (stdlib only). Every box inside hfgcot is ``[x1, y1, x2, y2]`` in original-image pixels
unless a name says otherwise. Boxes given by users (a dataset's ``bbox`` column, ground truth
for the metrics) come as ``[x, y, w, h]`` or ``[x1, y1, x2, y2]`` (:data:`BBoxFormat`) and go
through one validator, :func:`check_box`, which names why a box cannot be used with one of
:data:`BOX_REASONS`; :func:`cell_boxes` reads a cell holding one box or a list of boxes.
The pipelines turn the reason into their row status: region captions list every skipped box
(:func:`hfgcot.geometry.regions.validate_boxes`), grounding SFT writes
``invalid_bbox: <reason>``, the metrics skip the row.

    >>> check_box([10, 20, 30, 40], "xywh")
    ([10.0, 20.0, 40.0, 60.0], None)
    >>> check_box([10, 20, 5, 5], "xyxy")
    (None, 'non_positive_size')
    >>> check_box([500, 500, 10, 10], "xywh", width=100, height=100)
    (None, 'outside_image')
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any, Literal, get_args

__all__ = [
    "BBOX_FORMATS",
    "BOX_REASONS",
    "MALFORMED",
    "MISSING",
    "NON_POSITIVE_SIZE",
    "NOT_FINITE",
    "OUTSIDE_IMAGE",
    "BBoxFormat",
    "as_box",
    "box_area",
    "cell_boxes",
    "check_box",
    "check_format",
    "clip_box",
    "iou",
    "is_finite_box",
    "is_number",
    "xywh_to_xyxy",
    "xyxy_to_xywh",
]

BBoxFormat = Literal["xywh", "xyxy"]
"""How a user's box is written: ``[x, y, w, h]`` or ``[x1, y1, x2, y2]``, in image pixels."""

BBOX_FORMATS: tuple[str, ...] = get_args(BBoxFormat)

# Why a box given by a user is not used (stable: statuses name them).
MISSING = "missing"
MALFORMED = "malformed"
NOT_FINITE = "not_finite"
NON_POSITIVE_SIZE = "non_positive_size"
OUTSIDE_IMAGE = "outside_image"
BOX_REASONS: tuple[str, ...] = (MISSING, MALFORMED, NOT_FINITE, NON_POSITIVE_SIZE, OUTSIDE_IMAGE)
"""Every reason :func:`check_box` gives: no box; not 4 numbers; a nan/inf number; zero or
negative width/height; nothing left inside the image after clipping."""


def is_number(value: object) -> bool:
    """Whether ``value`` is one real, non-boolean number, usable as a coordinate.

    Yes: ``int``, ``float`` (nan and inf too: finiteness is checked apart), ``Fraction``,
    numpy integer and floating scalars, 0-d numpy arrays and tensors of such a dtype. No:
    ``bool`` and ``numpy.bool_`` (a flag, not a coordinate), complex numbers, ``Decimal`` (not
    a real in Python's numeric tower; its signalling NaN cannot become a float), strings
    (``"3"``), bytes, ``None``, arrays with dimensions.

    >>> is_number(3), is_number(2.5), is_number(float("nan")), is_number(True), is_number("3")
    (True, True, True, False, False)
    """
    if isinstance(value, bool | complex | str | bytes):
        return False
    if isinstance(value, numbers.Real):  # int, float, Fraction, numpy integer/floating scalars
        return True
    if getattr(value, "ndim", None) == 0 and hasattr(type(value), "__float__"):
        dtype = str(getattr(value, "dtype", ""))  # 0-d numpy arrays, torch scalar tensors
        return bool(dtype) and "bool" not in dtype and "complex" not in dtype
    return False


def as_box(box: object) -> list[float]:
    """``box`` as 4 floats; ``ValueError`` unless it is exactly 4 finite numbers.

    >>> as_box((1, 2, 3, 4))
    [1.0, 2.0, 3.0, 4.0]
    """
    if isinstance(box, str | bytes):
        raise ValueError(f"box must be 4 numbers, got {box!r}")
    try:
        items = list(box)  # type: ignore[call-overload]
    except TypeError as err:
        raise ValueError(f"box must be 4 numbers, got {box!r}") from err
    if len(items) != 4:
        raise ValueError(f"box must have 4 numbers, got {len(items)}: {box!r}")
    if not all(is_number(v) for v in items):
        raise ValueError(f"box must be 4 numbers, got {box!r}")
    values = [float(v) for v in items]  # type: ignore[arg-type]
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"box has a non-finite number: {box!r}")
    return values


def is_finite_box(box: object) -> bool:
    """Whether ``box`` is exactly 4 finite numbers (list, tuple, array...).

    >>> is_finite_box([0, 1, 2.5, 3]), is_finite_box([0, 1, float("nan"), 3]), is_finite_box([1])
    (True, False, False)
    """
    try:
        as_box(box)
    except ValueError:
        return False
    return True


def xywh_to_xyxy(box: Sequence[float]) -> list[float]:
    """``[x, y, w, h]`` -> ``[x1, y1, x2, y2]``.

    >>> xywh_to_xyxy([10, 20, 30, 40])
    [10.0, 20.0, 40.0, 60.0]
    """
    x, y, w, h = as_box(box)
    return [x, y, x + w, y + h]


def xyxy_to_xywh(box: Sequence[float]) -> list[float]:
    """``[x1, y1, x2, y2]`` -> ``[x, y, w, h]``.

    >>> xyxy_to_xywh([10, 20, 40, 60])
    [10.0, 20.0, 30.0, 40.0]
    """
    x1, y1, x2, y2 = as_box(box)
    return [x1, y1, x2 - x1, y2 - y1]


def _clamp(v: float, hi: float) -> float:
    return min(max(v, 0.0), hi)


def clip_box(box: Sequence[float], width: float, height: float) -> list[float]:
    """Order the corners (``x1 <= x2``, ``y1 <= y2``) and clip to ``[0, width] x [0, height]``.

    >>> clip_box([120, -5, 30, 50], 100, 80)
    [30.0, 0.0, 100.0, 50.0]

    Raises:
        ValueError: if ``box`` is not 4 finite numbers.
    """
    x1, y1, x2, y2 = as_box(box)
    x1, x2 = sorted((x1, x2))
    y1, y2 = sorted((y1, y2))
    w, h = float(width), float(height)
    return [_clamp(x1, w), _clamp(y1, h), _clamp(x2, w), _clamp(y2, h)]


def box_area(box: Sequence[float]) -> float:
    """Area of an xyxy box; reversed or degenerate boxes have area 0.

    >>> box_area([0, 0, 10, 5]), box_area([10, 0, 0, 5])
    (50.0, 0.0)
    """
    x1, y1, x2, y2 = as_box(box)
    return max(0.0, x2 - x1) * max(0.0, y2 - y1)


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two xyxy boxes, in ``[0, 1]``; 0.0 when the union is empty.

    >>> iou([0, 0, 10, 10], [5, 0, 15, 10])
    0.3333333333333333
    >>> iou([0, 0, 0, 0], [0, 0, 0, 0])
    0.0
    """
    ax1, ay1, ax2, ay2 = as_box(a)
    bx1, by1, bx2, by2 = as_box(b)
    inter_w = max(0.0, min(ax2, bx2) - max(ax1, bx1))
    inter_h = max(0.0, min(ay2, by2) - max(ay1, by1))
    inter = inter_w * inter_h
    union = box_area(a) + box_area(b) - inter
    if union <= 0.0 or inter <= 0.0:
        return 0.0
    return min(1.0, inter / union)


# --------------------------------------------------------------------------------------------
# Boxes given by users: the one validator
# --------------------------------------------------------------------------------------------


def check_format(bbox_format: Any, name: str = "bbox_format") -> BBoxFormat:
    """``bbox_format`` if it is one of :data:`BBOX_FORMATS`, else ``ValueError`` naming ``name``.

    >>> check_format("xyxy")
    'xyxy'
    >>> check_format("cxcywh", "gt_format")
    Traceback (most recent call last):
    ...
    ValueError: gt_format must be one of ('xywh', 'xyxy'), got 'cxcywh'
    """
    if bbox_format not in BBOX_FORMATS:
        raise ValueError(f"{name} must be one of {BBOX_FORMATS}, got {bbox_format!r}")
    return bbox_format  # type: ignore[no-any-return]


def check_box(
    value: Any,
    bbox_format: BBoxFormat = "xywh",
    *,
    width: float | None = None,
    height: float | None = None,
) -> tuple[list[float] | None, str | None]:
    """The one check of a box given by a user: ``(xyxy box, None)`` or ``(None, reason)``.

    ``value`` is one box in ``bbox_format``; the reason is one of :data:`BOX_REASONS`. With
    the image's ``width`` and ``height`` the box is clipped to the image (``outside_image``
    when nothing is left); without them it is only checked. Never raises for bad box data.

    >>> check_box(None), check_box([1, 2, 3]), check_box([0, 0, float("inf"), 1])
    ((None, 'missing'), (None, 'malformed'), (None, 'not_finite'))
    >>> check_box([-10, 90, 30, 30], width=100, height=100)   # clipped to the image
    ([0.0, 90.0, 20.0, 100.0], None)
    """
    check_format(bbox_format)
    if value is None:
        return None, MISSING
    items = _items(value)
    if items is None or len(items) != 4 or not all(is_number(v) for v in items):
        return None, MALFORMED
    a, b, c, d = (float(v) for v in items)
    if not all(math.isfinite(v) for v in (a, b, c, d)):
        return None, NOT_FINITE
    box = [a, b, a + c, b + d] if bbox_format == "xywh" else [a, b, c, d]
    if not all(math.isfinite(v) for v in box):  # x + w overflowed
        return None, NOT_FINITE
    if box[2] <= box[0] or box[3] <= box[1]:
        return None, NON_POSITIVE_SIZE
    if width is None or height is None:
        return box, None
    clipped = clip_box(box, width, height)
    if box_area(clipped) <= 0:
        return None, OUTSIDE_IMAGE
    return clipped, None


def cell_boxes(value: Any) -> list[Any] | None:
    """The boxes of a cell holding one box or a list of boxes; ``None`` if it is neither.

    A flat list of 4 numbers is one box; ``None`` is no box. The items are not checked
    (:func:`check_box` does that).

    >>> cell_boxes([1, 2, 3, 4]), cell_boxes([[1, 2, 3, 4], "x"]), cell_boxes(None), cell_boxes("x")
    ([[1, 2, 3, 4]], [[1, 2, 3, 4], 'x'], [], None)
    """
    if value is None:
        return []
    items = _items(value)
    if items is not None and len(items) == 4 and all(is_number(v) for v in items):
        return [items]
    return items


def _items(value: Any) -> list[Any] | None:
    """The items of a list-like value (list, tuple, array...); ``None`` for anything else."""
    if isinstance(value, str | bytes | dict):
        return None
    try:
        return list(value)
    except TypeError:  # not iterable (numbers, None, 0-d arrays)
        return None
