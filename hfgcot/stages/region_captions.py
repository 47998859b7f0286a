"""Region captions: describe given boxes of an image, as two chained ``Dataset.map`` stages.

1. :class:`RegionPrepareStage` (no model) - validates each row's boxes (inside the image after
   clipping, positive area, at most ``max_boxes``; every skipped box is named in the status),
   draws the valid ones numbered in distinct colours on a copy of the image (``image_with_bbox``,
   an ``Image()`` column), and writes ``normalized_bbox``, ``valid_bboxes_num`` and ``prompt``.
2. :class:`RegionCaptionStage` - ``mode="marked"``: one request per row on the marked image,
   "Describe the content of each marked region ... <region1> to <regionN>" (``answer``: text,
   split per region into ``region_captions`` by :func:`hfgcot.parsing.parse_region_answer`);
   ``mode="crop"``: one request per region on its crop, all batched (``answer``: list of texts).

    >>> from hfgcot import add_region_captions
    >>> ds = add_region_captions(ds, model="Qwen/Qwen2.5-VL-3B-Instruct", bbox_format="xywh")  # doctest: +SKIP
    >>> ds[0]["answer"]                                                                       # doctest: +SKIP
    '<region1>: a red ball on the grass\\n<region2>: a wooden fence'
    >>> ds[0]["region_captions"]                                                              # doctest: +SKIP
    ['a red ball on the grass', 'a wooden fence']
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Real
from typing import Any, Literal

from datasets import Dataset, Features, Image, List, Value

from hfgcot import prompts
from hfgcot.geometry import box_area, clip_box
from hfgcot.images import ImagePolicy, encode_image, load_image
from hfgcot.parsing import parse_region_answer
from hfgcot.runner import run_model_pipeline
from hfgcot.stages.base import OK, ModelStage, PipelineConfig, Stage, validate_choices
from hfgcot.viz import draw_regions
from hfgcot.vlm import DEFAULT_MODEL, ModelSpec, Request

logger = logging.getLogger(__name__)

BBoxFormat = Literal["xywh", "xyxy"]
RegionMode = Literal["marked", "crop"]
ImageFormat = Literal["PNG", "JPEG"]
STATUS = "region_caption_status"

# Reasons a box is skipped (stable: the status names them).
MALFORMED = "malformed"
NOT_FINITE = "not_finite"
NON_POSITIVE_SIZE = "non_positive_size"
OUTSIDE_IMAGE = "outside_image"


def _over_max(max_boxes: int) -> str:
    return f"over max_boxes={max_boxes}"


def _is_number(value: Any) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def _as_box_list(value: Any) -> list[Any] | None:
    """The row's boxes as a list (a single flat box ``[x, y, w, h]`` is one box); None if not a list."""
    if value is None:
        return []
    if not isinstance(value, list | tuple):
        return None
    if len(value) == 4 and all(_is_number(v) for v in value):
        return [list(value)]
    return list(value)


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
    every other box, reason one of ``malformed`` (not 4 numbers), ``not_finite``,
    ``non_positive_size`` (``w``/``h`` <= 0, or ``x2 <= x1``/``y2 <= y1`` in ``xyxy``),
    ``outside_image`` (no area left after clipping) or ``over max_boxes=N``. A single flat box
    ``[x, y, w, h]`` counts as a list of one box. Never raises for bad box data.

    >>> validate_boxes([[10, 10, 20, 20], [500, 500, 5, 5], [0, 0, 0, 5]], 100, 100)
    ([[10.0, 10.0, 30.0, 30.0]], [(2, 'outside_image'), (3, 'non_positive_size')])
    >>> validate_boxes([-10, 90, 30, 30], 100, 100)   # one box, clipped to the image
    ([[0.0, 90.0, 20.0, 100.0]], [])
    """
    boxes = _as_box_list(value)
    if boxes is None:
        return [], [(1, MALFORMED)]
    valid: list[list[float]] = []
    skipped: list[tuple[int, str]] = []
    for k, box in enumerate(boxes, start=1):
        if not isinstance(box, list | tuple) or len(box) != 4 or not all(map(_is_number, box)):
            skipped.append((k, MALFORMED))
            continue
        a, b, c, d = (float(v) for v in box)
        if not all(math.isfinite(v) for v in (a, b, c, d)):
            skipped.append((k, NOT_FINITE))
            continue
        xyxy = [a, b, a + c, b + d] if bbox_format == "xywh" else [a, b, c, d]
        if xyxy[2] <= xyxy[0] or xyxy[3] <= xyxy[1]:
            skipped.append((k, NON_POSITIVE_SIZE))
            continue
        clipped = clip_box(xyxy, width, height)
        if box_area(clipped) <= 0:
            skipped.append((k, OUTSIDE_IMAGE))
        elif len(valid) >= max_boxes:
            skipped.append((k, _over_max(max_boxes)))
        else:
            valid.append(clipped)
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


def _box_count(value: Any) -> int:
    boxes = _as_box_list(value)
    return 1 if boxes is None else len(boxes)


@dataclass(frozen=True)
class RegionPrepareStage(Stage):
    """Stage 1 (no model): validated boxes, the marked image and the prompt of every row."""

    name = "region_prepare"
    status_column = STATUS
    image_column: str = "image"
    bbox_column: str = "bbox"
    bbox_format: BBoxFormat = "xywh"
    max_boxes: int = 10
    mode: RegionMode = "marked"
    image_format: ImageFormat = "PNG"
    image_policy: ImagePolicy = ImagePolicy()

    def features(self) -> Features:
        return Features(
            {
                "image_with_bbox": Image(),
                "normalized_bbox": List(List(Value("float64"))),
                "valid_bboxes_num": Value("int32"),
                "prompt": Value("string"),
                STATUS: Value("string"),
            }
        )

    def __call__(self, batch: dict[str, list], rank: int | None = None) -> dict[str, list]:
        out: dict[str, list] = {name: [] for name in self.features()}
        for value, boxes_value in zip(
            batch[self.image_column], batch[self.bbox_column], strict=True
        ):
            image, status = load_image(value, self.image_policy)
            marked, normalized, prompt = None, [], ""
            if status == OK:
                valid, skipped = validate_boxes(
                    boxes_value,
                    image.width,
                    image.height,
                    bbox_format=self.bbox_format,
                    max_boxes=self.max_boxes,
                )
                total = _box_count(boxes_value)
                if total == 0:
                    status = "no_boxes"
                elif not valid:
                    status = "no_valid_boxes: " + describe_skipped(skipped, total)
                elif skipped:
                    status = "boxes_skipped: " + describe_skipped(skipped, total)
                if valid:
                    normalized = [normalize_box(b, image.width, image.height) for b in valid]
                    marked = encode_image(draw_regions(image, valid), self.image_format)
                    prompt = (
                        prompts.region_marked_prompt(len(valid))
                        if self.mode == "marked"
                        else prompts.region_crop_prompt()
                    )
            out["image_with_bbox"].append(marked)
            out["normalized_bbox"].append(normalized)
            out["valid_bboxes_num"].append(len(normalized))
            out["prompt"].append(prompt)
            out[STATUS].append(status)
        return out


def _captionable(status: str) -> bool:
    return status == OK or status.startswith("boxes_skipped")


@dataclass(frozen=True)
class RegionCaptionStage(ModelStage):
    """Stage 2: ``answer`` - text for ``mode="marked"``, one text per region for ``"crop"``."""

    name = "region_caption"
    status_column = STATUS
    image_column: str = "image"
    mode: RegionMode = "marked"
    image_policy: ImagePolicy = ImagePolicy()

    def features(self) -> Features:
        answer = Value("string") if self.mode == "marked" else List(Value("string"))
        return Features(
            {"answer": answer, "region_captions": List(Value("string")), STATUS: Value("string")}
        )

    def _requests(self, batch: dict[str, list], i: int) -> list[Request]:
        prompt = batch["prompt"][i]
        if self.mode == "marked":
            marked, _ = load_image(batch["image_with_bbox"][i], ImagePolicy(min_side=1))
            return [Request(marked, prompt)] if marked is not None else []
        image, _ = load_image(batch[self.image_column][i], self.image_policy)
        if image is None:  # pragma: no cover - stage 1 already checked the image
            return []
        return [
            Request(image.crop(crop_box(box, image.width, image.height)), prompt)
            for box in batch["normalized_bbox"][i]
        ]

    def __call__(self, batch: dict[str, list], rank: int | None = None) -> dict[str, list]:
        n = len(batch[STATUS])
        statuses = list(batch[STATUS])
        requests: list[Request] = []
        owners: list[int] = []
        for i in range(n):
            if _captionable(statuses[i]) and batch["valid_bboxes_num"][i]:
                row_requests = self._requests(batch, i)
                requests += row_requests
                owners += [i] * len(row_requests)
        texts: list[list[str]] = [[] for _ in range(n)]
        errors: list[list[str]] = [[] for _ in range(n)]
        if requests:
            outs = self.vlm(rank).generate(requests, self.generation, batch_size=self.batch_size)
            for i, out in zip(owners, outs, strict=True):
                texts[i].append(out.text.strip())
                if out.error:
                    errors[i].append(f"region {len(texts[i])}: {out.error[:150]}")
        if self.mode == "marked":
            answers: list[Any] = [t[0] if t else "" for t in texts]
            captions = [
                parse_region_answer(t[0], batch["valid_bboxes_num"][i]) if t else []
                for i, t in enumerate(texts)
            ]
        else:
            answers = captions = texts
        for i in range(n):
            before = "" if statuses[i] == OK else f" (after {statuses[i]})"
            missing = [str(k) for k, text in enumerate(captions[i], 1) if not text]
            if errors[i]:
                statuses[i] = "generation_error: " + "; ".join(errors[i])[:300] + before
            elif missing:
                statuses[i] = (
                    f"regions_missing: {', '.join(missing)} of {len(captions[i])}" + before
                )
        return {"answer": answers, "region_captions": captions, STATUS: statuses}


@dataclass(frozen=True)
class RegionCaptionConfig(PipelineConfig):
    """Every setting of the region-caption pipeline (typed, validated; part of the fingerprints).

    Example:
        >>> RegionCaptionConfig(mode="crop", max_boxes=5).mode
        'crop'
    """

    image_column: str = "image"
    bbox_column: str = "bbox"
    bbox_format: BBoxFormat = "xywh"
    max_boxes: int = 10
    mode: RegionMode = "marked"
    image_format: ImageFormat = "PNG"
    batch_size: int = 8
    max_new_tokens: int = 512
    do_sample: bool = False
    temperature: float = 0.7
    top_p: float = 0.9
    seed: int = 0
    min_image_side: int = 28
    max_aspect_ratio: float = 200.0
    num_proc: int | None = None

    def __post_init__(self) -> None:
        validate_choices(self)
        for name in ("batch_size", "max_new_tokens", "max_boxes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.num_proc is not None and self.num_proc < 1:
            raise ValueError(f"num_proc must be None or >= 1, got {self.num_proc}")


def region_caption_stages(config: RegionCaptionConfig, spec: ModelSpec) -> list[Stage]:
    """The two stages for ``config`` (used by :func:`add_region_captions`, Ray and resume)."""
    return [
        RegionPrepareStage(
            image_column=config.image_column,
            bbox_column=config.bbox_column,
            bbox_format=config.bbox_format,
            max_boxes=config.max_boxes,
            mode=config.mode,
            image_format=config.image_format,
            image_policy=config.image_policy,
        ),
        RegionCaptionStage(
            model=spec,
            generation=config.generation(),
            batch_size=config.batch_size,
            image_column=config.image_column,
            mode=config.mode,
            image_policy=config.image_policy,
        ),
    ]


def add_region_captions(
    dataset: Dataset,
    model: Any = DEFAULT_MODEL,
    *,
    image_column: str = "image",
    bbox_column: str = "bbox",
    bbox_format: BBoxFormat = "xywh",
    max_boxes: int = 10,
    mode: RegionMode = "marked",
    image_format: ImageFormat = "PNG",
    batch_size: int = 8,
    max_new_tokens: int = 512,
    do_sample: bool = False,
    temperature: float = 0.7,
    top_p: float = 0.9,
    seed: int = 0,
    num_proc: int | None = None,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    shard_size: int = 1000,
    sort_window: int | None = None,
    revision: str | None = None,
    dtype: str = "auto",
    device: str | None = None,
    attn_implementation: str | None = None,
    min_pixels: int | None = None,
    max_pixels: int | None = None,
    config: RegionCaptionConfig | None = None,
) -> Dataset:
    """Caption given regions of each image.

    Each row's boxes (``bbox_column``: a list of ``[x, y, w, h]`` pixel boxes by default, or
    ``[x1, y1, x2, y2]`` with ``bbox_format="xyxy"``; a single flat box is accepted) are
    validated: clipped to the image, kept if they still have an area, at most ``max_boxes``.
    Skipped boxes are named in ``region_caption_status`` (``boxes_skipped: ...``,
    ``no_valid_boxes: ...``, ``no_boxes``), never dropped silently. The valid boxes are drawn,
    numbered, on a copy of the image kept in the dataset (``image_with_bbox``, PNG by default).

    Args:
        mode: ``"marked"`` - one request on the marked image asking for ``<region1>`` to
            ``<regionN>`` (``answer`` is a string); ``"crop"`` - one request per region on its
            crop, batched (``answer`` is a list, one text per valid box). Either way
            ``region_captions`` holds one description per valid box; a region the answer does
            not describe is ``""`` and named in the status (``regions_missing: 2 of 3``).
        image_format: ``"PNG"`` or ``"JPEG"`` (smaller) for ``image_with_bbox``.
        num_proc: map worker processes, one model each (one per GPU: ``cuda:{rank % n}``).
        checkpoint_dir: resume after a crash (shards of ``shard_size`` rows with markers).
        sort_window: process rows sorted by image size within windows of this many rows (less
            padding); the result keeps the input order.
        config: a :class:`RegionCaptionConfig`; when given, it replaces the keyword settings.

    Returns:
        The dataset with ``image_with_bbox``, ``normalized_bbox`` (valid boxes as
        ``[x1/W, y1/H, x2/W, y2/H]``), ``valid_bboxes_num``, ``prompt``, ``answer``,
        ``region_captions`` and ``region_caption_status``. Rows in == rows out, in order.

    Example:
        >>> ds = add_region_captions(ds, model="Qwen/Qwen2.5-VL-3B-Instruct", max_boxes=5)  # doctest: +SKIP
    """
    if config is None:
        config = RegionCaptionConfig(
            image_column=image_column,
            bbox_column=bbox_column,
            bbox_format=bbox_format,
            max_boxes=max_boxes,
            mode=mode,
            image_format=image_format,
            batch_size=batch_size,
            max_new_tokens=max_new_tokens,
            do_sample=do_sample,
            temperature=temperature,
            top_p=top_p,
            seed=seed,
            num_proc=num_proc,
        )
    if config.bbox_column not in dataset.column_names:
        raise KeyError(
            f"column {config.bbox_column!r} not in dataset (columns: {dataset.column_names})"
        )
    load = {
        "revision": revision,
        "dtype": dtype,
        "device": device,
        "attn_implementation": attn_implementation,
        "min_pixels": min_pixels,
        "max_pixels": max_pixels,
    }
    return run_model_pipeline(
        "region_captions",
        dataset,
        model,
        config,
        region_caption_stages,
        status_column=STATUS,
        load_kwargs=load,
        run_kwargs={
            "checkpoint_dir": checkpoint_dir,
            "shard_size": shard_size,
            "sort_window": sort_window,
        },
        boxes=(
            "`normalized_bbox`: the valid input boxes as fractions of width and height "
            "[x1, y1, x2, y2]; `image_with_bbox`: the image with numbered boxes drawn."
        ),
    )


__all__ = [
    "RegionCaptionConfig",
    "RegionCaptionStage",
    "RegionPrepareStage",
    "add_region_captions",
    "crop_box",
    "describe_skipped",
    "normalize_box",
    "region_caption_stages",
    "validate_boxes",
]
