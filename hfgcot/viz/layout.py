"""Where box labels go: inside the image, never on another label, off the boxes when possible.

Pure geometry (numpy, no PIL). :func:`place_labels` puts one ``w x h`` label per box, in order.
It first tries the spots next to the box (above, below, beside, inside its corners), and when
every one of them covers a box or another label, searches the whole image. The search is
complete: a label gets ``None`` only when no spot of the image is free of the labels already
placed (or it is larger than the image); the caller then shrinks the labels or numbers them.

>>> place_labels(100, 80, [[10, 30, 60, 70]], [(20, 10)])
[(10.0, 20.0, 30.0, 30.0)]
>>> place_labels(100, 80, [[0, 0, 100, 80]], [(120, 10)])
[None]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["Rect", "place_labels", "rects_overlap"]

Rect = tuple[float, float, float, float]
"""``(x1, y1, x2, y2)``."""

# Cost of a spot: the share of the label lying on boxes (what they frame stays visible), plus
# this much per label height away from the box's top-left corner.
_DISTANCE_WEIGHT = 0.02
# Boxes whose edges are tried as label positions in the full search (more: only the labels').
_MAX_EDGE_BOXES = 24


def rects_overlap(a: Rect, b: Rect) -> bool:
    """Whether two rectangles share area (touching edges do not count).

    >>> rects_overlap((0, 0, 10, 10), (10, 0, 20, 10)), rects_overlap((0, 0, 10, 10), (9, 9, 20, 20))
    (False, True)
    """
    return min(a[2], b[2]) > max(a[0], b[0]) and min(a[3], b[3]) > max(a[1], b[1])


def _near_spots(box: np.ndarray, w: float, h: float) -> np.ndarray:
    x1, y1, x2, y2 = box
    return np.array(
        [
            (x1, y1 - h),  # above, left-aligned: the usual place
            (x2 - w, y1 - h),
            (x1, y2),  # below
            (x2 - w, y2),
            (x1 - w, y1),  # beside
            (x2, y1),
            (x1, y1),  # inside the corners
            (x2 - w, y1),
            (x1, y2 - h),
            (x2 - w, y2 - h),
        ]
    )


def _all_spots(
    box: np.ndarray, w: float, h: float, W: float, H: float, placed: np.ndarray, boxes: np.ndarray
) -> np.ndarray:
    """Every top-left corner worth trying. It includes ``{0} U {placed right edges}`` x
    ``{0} U {placed bottom edges}``: a free label pushed left, then up, until it touches a
    placed label or the image edge ends at one of these, so if any spot is free one of them is."""
    xs = [0.0, W - w, box[0], box[2] - w, box[0] - w, box[2]]
    ys = [0.0, H - h, box[1], box[3] - h, box[1] - h, box[3]]
    xs += list(placed[:, 2]) + list(placed[:, 0] - w)
    ys += list(placed[:, 3]) + list(placed[:, 1] - h)
    if len(boxes) <= _MAX_EDGE_BOXES:
        xs += list(boxes[:, 2]) + list(boxes[:, 0] - w)
        ys += list(boxes[:, 3]) + list(boxes[:, 1] - h)
    gx = np.unique(np.clip(np.array(xs, dtype=float), 0.0, W - w))
    gy = np.unique(np.clip(np.array(ys, dtype=float), 0.0, H - h))
    return np.stack(np.meshgrid(gx, gy, indexing="ij"), axis=-1).reshape(-1, 2)


def _best(
    spots: np.ndarray,
    w: float,
    h: float,
    anchor: tuple[float, float],
    placed: np.ndarray,
    boxes: np.ndarray,
) -> tuple[float, np.ndarray] | None:
    """The cheapest free spot and its cost, or ``None`` when every spot touches a placed label."""
    x, y = spots[:, 0:1], spots[:, 1:2]
    if len(placed):
        hit = (np.minimum(x + w, placed[:, 2]) > np.maximum(x, placed[:, 0])) & (
            np.minimum(y + h, placed[:, 3]) > np.maximum(y, placed[:, 1])
        )
        free = ~hit.any(axis=1)
    else:
        free = np.ones(len(spots), dtype=bool)
    if not free.any():
        return None
    if len(boxes):
        ox = np.clip(np.minimum(x + w, boxes[:, 2]) - np.maximum(x, boxes[:, 0]), 0, None)
        oy = np.clip(np.minimum(y + h, boxes[:, 3]) - np.maximum(y, boxes[:, 1]), 0, None)
        cover = (ox * oy).sum(axis=1) / (w * h)
    else:
        cover = np.zeros(len(spots))
    distance = np.hypot(spots[:, 0] - anchor[0], spots[:, 1] - anchor[1]) / h
    cost = cover + _DISTANCE_WEIGHT * distance + 1e-9 * np.arange(len(spots))  # ties: first
    cost[~free] = np.inf
    k = int(np.argmin(cost))
    return float(cost[k]) - 1e-9 * k, spots[k]


def place_labels(
    width: float,
    height: float,
    boxes: Sequence[Sequence[float]],
    sizes: Sequence[tuple[float, float]],
) -> list[Rect | None]:
    """One label rectangle per box (``boxes[i]`` is ``[x1, y1, x2, y2]``, ``sizes[i]`` the
    label's ``(width, height)``), placed in order inside ``[0, width] x [0, height]`` so that no
    two share area, preferring spots off every box and close to the box's top-left corner.
    ``None`` for a label larger than the image or when no free spot is left.

    >>> a, b = place_labels(60, 60, [[10, 10, 50, 50]] * 2, [(30, 10), (30, 10)])
    >>> a, b
    ((10.0, 0.0, 40.0, 10.0), (10.0, 50.0, 40.0, 60.0))
    """
    if len(boxes) != len(sizes):
        raise ValueError(f"{len(boxes)} boxes but {len(sizes)} label sizes")
    W, H = float(width), float(height)
    all_boxes = np.array([[float(v) for v in b] for b in boxes], dtype=float).reshape(-1, 4)
    placed: list[Rect] = []
    out: list[Rect | None] = []
    for box, (w, h) in zip(all_boxes, sizes, strict=True):
        w, h = float(w), float(h)
        if not (0 < w <= W and 0 < h <= H):
            out.append(None)
            continue
        taken = np.array(placed, dtype=float).reshape(-1, 4)
        anchor = (box[0], box[1] - h)
        near = np.clip(_near_spots(box, w, h), 0.0, [W - w, H - h])
        best = _best(near, w, h, anchor, taken, all_boxes)
        if best is None or best[0] >= _DISTANCE_WEIGHT * 4 + 0.01:  # covers a box, or far
            spots = _all_spots(box, w, h, W, H, taken, all_boxes)
            other = _best(spots, w, h, anchor, taken, all_boxes)
            if other is not None and (best is None or other[0] < best[0]):
                best = other
        if best is None:
            out.append(None)
            continue
        x, y = (float(v) for v in best[1])
        rect = (x, y, x + w, y + h)
        placed.append(rect)
        out.append(rect)
    return out
