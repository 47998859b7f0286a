"""Boxes given for region captions: a row's boxes checked, skip reasons, normalised and crop rectangles.

Pure (no torch, no ``datasets``): :func:`validate_boxes` checks a row's boxes against its image
with the one box validator (:func:`hfgcot.geometry.boxes.check_box`) and names every box it
skips; :func:`normalize_box` and :func:`crop_box` convert between pixels and fractions of the
image. Used by :mod:`hfgcot.pipelines.region_captions`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from hfgcot.geometry.boxes import (
    MALFORMED,
    MISSING,
    NON_POSITIVE_SIZE,
    NOT_FINITE,
    OUTSIDE_IMAGE,
    BBoxFormat,
    cell_boxes,
    check_box,
)

__all__ = [
    "MALFORMED",
    "NON_POSITIVE_SIZE",
    "NOT_FINITE",
    "OUTSIDE_IMAGE",
    "BBoxFormat",
    "box_count",
    "crop_box",
    "describe_skipped",
    "normalize_box",
    "validate_boxes",
]


def _over_max(max_boxes: int) -> str:
    return f"over max_boxes={max_boxes}"


def validate_boxes(
    value: Any,
    width: int,
    height: int,
    *,
    bbox_format: BBoxFormat = "xywh",
    max_boxes: int = 10,
) -> tuple[list[list[float]], list[tuple[int, str]]]:
    """Check a row's boxes against a ``width`` x ``height`` image.

    Returns ``(valid, skipped)``: ``valid`` = the first ``max_boxes`` valid boxes in input order,
    as clipped ``[x1, y1, x2, y2]`` pixels; ``skipped`` = ``(1-based input index, reason)`` for
    every other box, reason one of :func:`~hfgcot.geometry.boxes.check_box`'s (``malformed``:
    not 4 numbers, ``not_finite``, ``non_positive_size``: ``w``/``h`` <= 0, or ``x2 <= x1``/
    ``y2 <= y1`` in ``xyxy``, ``outside_image``: no area left after clipping) or
    ``over max_boxes=N``. A single flat box ``[x, y, w, h]`` counts as a list of one box.
    Never raises for bad box data.

    >>> validate_boxes([[10, 10, 20, 20], [500, 500, 5, 5], [0, 0, 0, 5]], 100, 100)
    ([[10.0, 10.0, 30.0, 30.0]], [(2, 'outside_image'), (3, 'non_positive_size')])
    >>> validate_boxes([-10, 90, 30, 30], 100, 100)   # one box, clipped to the image
    ([[0.0, 90.0, 20.0, 100.0]], [])
    """
    boxes = cell_boxes(value)
    if boxes is None:
        return [], [(1, MALFORMED)]
    valid: list[list[float]] = []
    skipped: list[tuple[int, str]] = []
    for k, item in enumerate(boxes, start=1):
        box, reason = check_box(item, bbox_format, width=width, height=height)
        if box is None:
            skipped.append((k, MALFORMED if reason == MISSING else str(reason)))
        elif len(valid) >= max_boxes:
            skipped.append((k, _over_max(max_boxes)))
        else:
            valid.append(box)
    return valid, skipped


def _ranges(indices: list[int]) -> str:
    """``[1, 2, 3, 7]`` -> ``"1-3, 7"``."""
    parts, start = [], None
    for i, k in enumerate(indices):
        if start is None:
            start = k
        if i + 1 == len(indices) or indices[i + 1] != k + 1:
            parts.append(str(start) if start == k else f"{start}-{k}")
            start = None
    return ", ".join(parts)


def describe_skipped(skipped: Sequence[tuple[int, str]], total: int) -> str:
    """A short status detail naming every skipped box, grouped by reason.

    >>> describe_skipped([(2, "outside_image"), (11, "over max_boxes=10"), (12, "over max_boxes=10")], 12)
    'skipped 3 of 12 boxes: box 2 outside_image; boxes 11-12 over max_boxes=10'
    """
    by_reason: dict[str, list[int]] = {}
    for k, reason in skipped:
        by_reason.setdefault(reason, []).append(k)
    groups = [
        f"{'box' if len(ks) == 1 else 'boxes'} {_ranges(ks)} {reason}"
        for reason, ks in by_reason.items()
    ]
    return f"skipped {len(skipped)} of {total} boxes: " + "; ".join(groups)


def normalize_box(box: Sequence[float], width: int, height: int) -> list[float]:
    """``[x1, y1, x2, y2]`` pixels -> fractions of the image width and height.

    >>> normalize_box([10, 20, 50, 40], 100, 80)
    [0.1, 0.25, 0.5, 0.5]
    """
    x1, y1, x2, y2 = box
    return [x1 / width, y1 / height, x2 / width, y2 / height]


def crop_box(normalized: Sequence[float], width: int, height: int) -> tuple[int, int, int, int]:
    """The integer pixel rectangle covering a normalized box (at least one pixel each way).

    >>> crop_box([0.1, 0.25, 0.5, 0.5], 100, 80)
    (10, 20, 50, 40)
    """
    x1, y1, x2, y2 = normalized
    eps = 1e-6  # fractions of integer pixels come back as 9.999999999 or 10.000000001
    left = min(max(0, math.floor(x1 * width + eps)), width - 1)
    top = min(max(0, math.floor(y1 * height + eps)), height - 1)
    right = max(left + 1, min(width, math.ceil(x2 * width - eps)))
    bottom = max(top + 1, min(height, math.ceil(y2 * height - eps)))
    return left, top, right, bottom


def box_count(value: Any) -> int:
    """How many boxes a row holds (a value that is not a list counts as one malformed box)."""
    boxes = cell_boxes(value)
    return 1 if boxes is None else len(boxes)
