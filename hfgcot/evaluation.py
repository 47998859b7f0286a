"""Grounding and GCoT metrics (pure: no torch; ``datasets`` and PIL only when really needed).

Inputs may be a ``datasets.Dataset``, a dict of columns or a list of row dicts. Boxes are
original-image pixels ``[x1, y1, x2, y2]`` (``gt_format="xywh"`` reads ``[x, y, w, h]``
ground truth). A ground-truth cell may hold one box or a list of boxes (a prediction is scored
against the best-matching one); a prediction cell holds one box, or a list whose first box counts.

Definitions (MM-GCoT, Wu et al. 2025):

- a box is **correct** when its IoU with the ground truth is **greater than** ``iou_threshold``
  (0.5; RefCOCO-style code often writes ``>=``, which only differs at exactly 0.5);
- ``acc@0.5``: share of evaluated rows with a correct box; ``mean_iou``: mean IoU, an empty or
  unreadable prediction counting as IoU 0 (and in ``unparseable``);
- ``answer_acc``: share of rows whose predicted answer equals one of the reference answers after
  VQA normalisation (:func:`normalize_answer`);
- ``consistency``: rows with a correct answer **and** a correct box, divided by the rows with a
  correct answer **or** a correct box (``None`` when no row has either).

Rows without a usable ground-truth box (empty, invalid, zero area) are not evaluated: they are
counted in ``skipped``. Metrics of an empty selection are ``None``.

Image-size buckets, by the longer side of the original image, ``max(width, height)``:

==========  =======================
``small``   below 512 pixels
``medium``  512 to 1023 pixels
``large``   1024 pixels and above
==========  =======================

The size comes from ``sft_frame`` (written by :func:`hfgcot.to_grounding_sft`) when present,
else from the image column (header only); rows whose size is unknown go to ``unknown``.

    >>> rows = [{"pred_bbox": [0, 0, 10, 10], "gt_bbox": [0, 0, 10, 10]},
    ...         {"pred_bbox": [], "gt_bbox": [0, 0, 10, 10]}]
    >>> r = evaluate_grounding(rows)
    >>> r["acc@0.5"], r["mean_iou"], r["n"], r["unparseable"]
    (0.5, 0.5, 2, 1)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from hfgcot.errors import MissingColumnError, OptionError
from hfgcot.geometry.boxes import BBoxFormat, cell_boxes, check_box, check_format, iou
from hfgcot.parsing.answers import extract_answer, normalize_answer

__all__ = [
    "SIZE_BUCKETS",
    "evaluate_gcot",
    "evaluate_grounding",
    "extract_answer",
    "normalize_answer",
    "size_bucket",
]

SIZE_BUCKETS: tuple[tuple[str, int, float], ...] = (
    ("small", 0, 512),
    ("medium", 512, 1024),
    ("large", 1024, math.inf),
)
"""``(name, lower bound inclusive, upper bound exclusive)`` of ``max(width, height)``."""


def size_bucket(width: int | None, height: int | None) -> str:
    """The :data:`SIZE_BUCKETS` name of an image size, ``"unknown"`` without one.

    >>> size_bucket(640, 480), size_bucket(300, 200), size_bucket(4000, 10), size_bucket(None, 5)
    ('medium', 'small', 'large', 'unknown')
    """
    if not width or not height:
        return "unknown"
    side = max(width, height)
    return next(name for name, lo, hi in SIZE_BUCKETS if lo <= side < hi)


# --------------------------------------------------------------------------------------------
# Column access for Dataset / dict of columns / list of rows
# --------------------------------------------------------------------------------------------


def _columns(data: Any) -> list[str]:
    if isinstance(data, Mapping):
        return list(data)
    if isinstance(data, Sequence) and not isinstance(data, str | bytes):
        return list(data[0]) if len(data) else []
    return list(data.column_names)


def _check_threshold(iou_threshold: float) -> None:
    if not 0 < iou_threshold <= 1:  # also refuses nan
        raise OptionError(f"iou_threshold must be in (0, 1], got {iou_threshold!r}")


def _column(data: Any, name: str) -> list[Any]:
    if isinstance(data, Sequence) and not isinstance(data, str | bytes) and not len(data):
        return []  # no rows: no columns to check, and nothing to score
    if name not in _columns(data):
        raise MissingColumnError(f"column {name!r} not found (columns: {_columns(data)})")
    if isinstance(data, Mapping):
        return list(data[name])
    if isinstance(data, Sequence) and not isinstance(data, str | bytes):
        return [row.get(name) for row in data]
    return list(data[name])


def _image_sizes(data: Any, column: str) -> list[tuple[int, int] | None]:
    """Sizes from an image column without decoding pixels (``datasets`` Image decoding off)."""
    from hfgcot.images import image_size

    if not isinstance(data, Mapping | Sequence) and hasattr(data, "cast_column"):
        from datasets import Image

        feature = data.features.get(column)
        if isinstance(feature, Image) and feature.decode:
            data = data.cast_column(column, Image(decode=False))
    return [image_size(value) if value is not None else None for value in _column(data, column)]


def _sizes(
    data: Any, n: int, frame_column: str | None, image_column: str | None
) -> list[tuple[int, int] | None]:
    names = _columns(data)
    if frame_column and frame_column in names:
        out: list[tuple[int, int] | None] = []
        for frame in _column(data, frame_column):
            ok = isinstance(frame, Mapping) and frame.get("width") and frame.get("height")
            out.append((int(frame["width"]), int(frame["height"])) if ok else None)
        if any(size is not None for size in out) or not (image_column and image_column in names):
            return out
    if image_column and image_column in names:
        return _image_sizes(data, image_column)
    return [None] * n


# --------------------------------------------------------------------------------------------
# Boxes
# --------------------------------------------------------------------------------------------


def _pred_box(value: Any) -> list[float] | None:
    """The predicted box of a cell (a list of boxes: its first one), ``None`` if unusable."""
    boxes = cell_boxes(value)
    return check_box(boxes[0], "xyxy")[0] if boxes else None


def _gt_boxes(value: Any, gt_format: BBoxFormat) -> list[list[float]]:
    """The usable reference boxes of a cell (one box or a list), as xyxy."""
    checked = (check_box(box, gt_format)[0] for box in cell_boxes(value) or [])
    return [box for box in checked if box is not None]


def _best_iou(pred: list[float] | None, gts: list[list[float]]) -> float:
    if pred is None:
        return 0.0
    return max(iou(pred, gt) for gt in gts)


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _acc_key(threshold: float) -> str:
    return f"acc@{threshold:g}"


def _grounding_summary(
    ious: list[float], parsed: list[bool], threshold: float
) -> dict[str, float | int | None]:
    return {
        _acc_key(threshold): _mean([1.0 if v > threshold else 0.0 for v in ious]),
        "mean_iou": _mean(ious),
        "n": len(ious),
        "unparseable": sum(1 for p in parsed if not p),
    }


def evaluate_grounding(
    dataset: Any,
    pred_column: str = "pred_bbox",
    gt_column: str = "gt_bbox",
    *,
    gt_format: BBoxFormat = "xyxy",
    iou_threshold: float = 0.5,
    frame_column: str | None = "sft_frame",
    image_column: str | None = "image",
) -> dict[str, Any]:
    """Acc@0.5, mean IoU and unparseable count, overall and by image-size bucket.

    Returns ``{"acc@0.5", "mean_iou", "n", "unparseable", "skipped", "by_size"}`` where
    ``by_size`` maps ``small``/``medium``/``large`` (and ``unknown`` if any row's size is
    unknown) to the same four metrics. See the module docstring for definitions and buckets.
    With another ``iou_threshold`` the key is ``acc@<threshold>``.

    Args:
        pred_column: the predicted boxes (original pixels, xyxy; a list: its first box).
        gt_column: the reference boxes (one box or a list of boxes per row).
        gt_format: how the reference boxes are written, xyxy or xywh pixels.
        iou_threshold: a box is correct when its IoU with the reference is above this.
        frame_column: the column of each row's image size (``sft_frame``), if any.
        image_column: the images, read (header only) for the size when there is no frame.

    Example:
        >>> evaluate_grounding({"pred_bbox": [[0, 0, 10, 10]], "gt_bbox": [[5, 0, 15, 10]]})["mean_iou"]
        0.3333333333333333
    """
    check_format(gt_format, "gt_format")
    _check_threshold(iou_threshold)
    preds = _column(dataset, pred_column)
    gts = _column(dataset, gt_column)
    sizes = _sizes(dataset, len(preds), frame_column, image_column)
    ious: list[float] = []
    parsed: list[bool] = []
    buckets: list[str] = []
    skipped = 0
    for pred_value, gt_value, size in zip(preds, gts, sizes, strict=True):
        gt_boxes = _gt_boxes(gt_value, gt_format)
        if not gt_boxes:
            skipped += 1
            continue
        pred = _pred_box(pred_value)
        ious.append(_best_iou(pred, gt_boxes))
        parsed.append(pred is not None)
        buckets.append(size_bucket(*size) if size else "unknown")
    result: dict[str, Any] = _grounding_summary(ious, parsed, iou_threshold)
    result["skipped"] = skipped
    names = [name for name, _, _ in SIZE_BUCKETS] + (["unknown"] if "unknown" in buckets else [])
    result["by_size"] = {
        name: _grounding_summary(
            [v for v, b in zip(ious, buckets, strict=True) if b == name],
            [p for p, b in zip(parsed, buckets, strict=True) if b == name],
            iou_threshold,
        )
        for name in names
    }
    return result


def _answers(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        values = [value]
    elif isinstance(value, Sequence):
        values = [v for v in value if v is not None]
    else:
        values = [value]
    return [a for a in (normalize_answer(v) for v in values) if a]


def evaluate_gcot(
    dataset: Any,
    *,
    pred_answer_column: str = "pred_answer",
    answer_column: str = "answer",
    pred_column: str = "pred_bbox",
    gt_column: str = "gt_bbox",
    gt_format: BBoxFormat = "xyxy",
    iou_threshold: float = 0.5,
) -> dict[str, Any]:
    """Answer accuracy, grounding accuracy and answer-grounding consistency (MM-GCoT).

    Input schema, one row per question:

    - ``pred_answer`` (str): the model's answer; when it contains ``Answer:`` (a GCoT
      reasoning), the line after the last ``Answer:`` is used (:func:`extract_answer`);
    - ``answer`` (str or list of str): the reference answer(s), e.g. TextVQA's ten answers;
      the prediction is right when it equals any of them after :func:`normalize_answer`;
    - ``pred_bbox``: the predicted box, original pixels ``[x1, y1, x2, y2]`` (``[]`` if none);
    - ``gt_bbox``: the reference box (or list of boxes), ``gt_format`` pixels.

    Rows without a usable reference box or without a reference answer are ``skipped``.

    Returns ``{"answer_acc", "acc@0.5", "mean_iou", "consistency", "n", "unparseable",
    "skipped"}``.

    Args:
        pred_answer_column: the predicted answers (or GCoT reasoning ending in ``Answer:``).
        answer_column: the reference answer(s).
        pred_column: the predicted boxes (original pixels, xyxy).
        gt_column: the reference boxes (one box or a list of boxes per row).
        gt_format: how the reference boxes are written, xyxy or xywh pixels.
        iou_threshold: a box is correct when its IoU with the reference is above this.

    Example:
        >>> rows = [
        ...     {"pred_answer": "Answer: Two", "answer": ["2"], "pred_bbox": [0, 0, 10, 10], "gt_bbox": [0, 0, 10, 10]},
        ...     {"pred_answer": "red", "answer": ["red"], "pred_bbox": [50, 50, 60, 60], "gt_bbox": [0, 0, 10, 10]},
        ...     {"pred_answer": "cat", "answer": ["dog"], "pred_bbox": [], "gt_bbox": [0, 0, 10, 10]},
        ... ]
        >>> r = evaluate_gcot(rows)
        >>> r["answer_acc"], r["acc@0.5"], r["consistency"]
        (0.6666666666666666, 0.3333333333333333, 0.5)
    """
    check_format(gt_format, "gt_format")
    _check_threshold(iou_threshold)
    pred_answers = _column(dataset, pred_answer_column)
    answers = _column(dataset, answer_column)
    preds = _column(dataset, pred_column)
    gts = _column(dataset, gt_column)
    answer_ok: list[bool] = []
    ious: list[float] = []
    parsed: list[bool] = []
    skipped = 0
    for pred_answer, refs, pred_value, gt_value in zip(
        pred_answers, answers, preds, gts, strict=True
    ):
        gt_boxes = _gt_boxes(gt_value, gt_format)
        references = _answers(refs)
        if not gt_boxes or not references:
            skipped += 1
            continue
        pred = _pred_box(pred_value)
        ious.append(_best_iou(pred, gt_boxes))
        parsed.append(pred is not None)
        answer_ok.append(normalize_answer(extract_answer(pred_answer)) in references)
    grounded = [v > iou_threshold for v in ious]
    both = sum(1 for a, g in zip(answer_ok, grounded, strict=True) if a and g)
    either = sum(1 for a, g in zip(answer_ok, grounded, strict=True) if a or g)
    result: dict[str, Any] = {"answer_acc": _mean([1.0 if a else 0.0 for a in answer_ok])}
    result.update(_grounding_summary(ious, parsed, iou_threshold))
    result["consistency"] = both / either if either else None
    result["skipped"] = skipped
    return {
        key: result[key]
        for key in (
            "answer_acc",
            _acc_key(iou_threshold),
            "mean_iou",
            "consistency",
            "n",
            "unparseable",
            "skipped",
        )
    }
