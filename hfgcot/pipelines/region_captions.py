"""Region captions: describe given boxes of an image, as two chained ``Dataset.map`` stages.

1. :class:`RegionPrepareStage` (no model) - validates each row's boxes (inside the image after
   clipping, positive area, at most ``max_boxes``; every skipped box is named in the status),
   draws the valid ones numbered in distinct colours on a copy of the image (``image_with_bbox``,
   an ``Image()`` column), and writes ``normalized_bbox``, ``valid_bboxes_num`` and ``prompt``.
2. :class:`RegionCaptionStage` - ``mode="marked"``: one request per row on the marked image,
   "Describe the content of each marked region ... <region1> to <regionN>" (``answer``: text,
   split per region into ``region_captions`` by :func:`hfgcot.parsing.replies.parse_region_answer`);
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
from dataclasses import dataclass
from typing import Any, Literal

from datasets import Dataset, Features, Image, List, Value

from hfgcot import prompts
from hfgcot.geometry.regions import (
    BBoxFormat,
    box_count,
    crop_box,
    describe_skipped,
    normalize_box,
    validate_boxes,
)
from hfgcot.images import ImagePolicy, encode_image, load_image
from hfgcot.model.batching import is_out_of_memory
from hfgcot.model.spec import DEFAULT_MODEL, ModelSpec
from hfgcot.model.vlm import Request
from hfgcot.parsing.replies import parse_region_answer
from hfgcot.pipelines.base import ModelStage, Stage
from hfgcot.pipelines.config import ModelPipelineConfig, option, prompt_option, split_options
from hfgcot.pipelines.runner import run_model_pipeline
from hfgcot.status import OK, truncated_output
from hfgcot.viz.draw import draw_regions

logger = logging.getLogger(__name__)

RegionMode = Literal["marked", "crop"]
ImageFormat = Literal["PNG", "JPEG"]
STATUS = "region_caption_status"


@dataclass(frozen=True)
class RegionPrepareStage(Stage):
    """Stage 1 (no model): validated boxes, the marked image and the prompt of every row."""

    name = "region_prepare"
    version = "2"  # statuses capped (hfgcot.status.cap): long skipped-box lists
    status_column = STATUS
    image_column: str = "image"
    bbox_column: str = "bbox"
    bbox_format: BBoxFormat = "xywh"
    max_boxes: int = 10
    mode: RegionMode = "marked"
    image_format: ImageFormat = "PNG"
    image_policy: ImagePolicy = ImagePolicy()
    marked_prompt: str = prompts.REGION_MARKED_PROMPT
    crop_prompt: str = prompts.REGION_CROP_PROMPT

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

    def process(self, batch: dict[str, list], rank: int | None = None) -> dict[str, list]:
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
                total = box_count(boxes_value)
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
                        prompts.region_marked_prompt(len(valid), self.marked_prompt)
                        if self.mode == "marked"
                        else prompts.region_crop_prompt(self.crop_prompt)
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
    version = "3"  # v2: statuses capped; v3: a cut caption is truncated_output, out of memory its own status
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
            # the marked copy is the accepted image redrawn (same size, embedded bytes)
            marked, _ = load_image(batch["image_with_bbox"][i], self.image_policy)
            return [self.request(marked, prompt)] if marked is not None else []
        image, _ = load_image(batch[self.image_column][i], self.image_policy)
        if image is None:  # pragma: no cover - stage 1 already checked the image
            return []
        return [
            self.request(image.crop(crop_box(box, image.width, image.height)), prompt)
            for box in batch["normalized_bbox"][i]
        ]

    def process(self, batch: dict[str, list], rank: int | None = None) -> dict[str, list]:
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
        reasons: list[str | None] = [None] * n  # out of memory, or a cut caption
        if requests:
            for i, out in zip(owners, self.generate(requests, rank), strict=True):
                texts[i].append(out.text.strip())
                if out.error and is_out_of_memory(out.error):
                    reasons[i] = reasons[i] or out.error
                elif out.error:
                    errors[i].append(f"region {len(texts[i])}: {out.error[:150]}")
                elif out.truncated:  # the captions are the product: a cut one is unusable
                    reasons[i] = reasons[i] or truncated_output(self.name)
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
            if reasons[i]:
                statuses[i] = reasons[i] + before
            elif errors[i]:
                statuses[i] = "generation_error: " + "; ".join(errors[i])[:300] + before
            elif missing:
                statuses[i] = (
                    f"regions_missing: {', '.join(missing)} of {len(captions[i])}" + before
                )
        return {"answer": answers, "region_captions": captions, STATUS: statuses}


@dataclass(frozen=True)
class RegionCaptionConfig(ModelPipelineConfig):
    """Every setting of the region-caption pipeline (typed, validated; each stage hashes its part).

    Example:
        >>> RegionCaptionConfig(mode="crop", max_boxes=5).mode
        'crop'
    """

    bbox_column: str = option("bbox", "Input column with each row's boxes (a list, or one box).")
    bbox_format: BBoxFormat = option(
        "xywh", "Input boxes as [x, y, w, h] or [x1, y1, x2, y2] pixels."
    )
    max_boxes: int = option(
        10, "Most boxes captioned per row (the rest named in the status).", min=1
    )
    mode: RegionMode = option(
        "marked",
        "One request on the image with numbered boxes drawn, or one request per cropped region.",
    )
    image_format: ImageFormat = option("PNG", "Encoding of the `image_with_bbox` column.")
    marked_prompt: str = prompt_option(
        prompts.REGION_MARKED_PROMPT, "Prompt of mode 'marked'; placeholder {n} (box count)."
    )
    crop_prompt: str = prompt_option(
        prompts.REGION_CROP_PROMPT, "Prompt of mode 'crop' (no placeholders)."
    )


def region_caption_stages(config: RegionCaptionConfig, spec: ModelSpec) -> list[Stage]:
    """The two stages for ``config`` (used by :func:`add_region_captions`, Ray and resume).

    Only the prompt of ``config.mode`` enters the stage (the other one is never sent).
    """
    marked = config.mode == "marked"
    return [
        RegionPrepareStage(
            image_column=config.image_column,
            bbox_column=config.bbox_column,
            bbox_format=config.bbox_format,
            max_boxes=config.max_boxes,
            mode=config.mode,
            image_format=config.image_format,
            image_policy=config.image_policy,
            marked_prompt=config.marked_prompt if marked else "",
            crop_prompt="" if marked else config.crop_prompt,
        ),
        RegionCaptionStage(
            **config.model_stage_fields(spec),
            generation=config.generation(),
            image_column=config.image_column,
            mode=config.mode,
            image_policy=config.image_policy,
        ),
    ]


def add_region_captions(
    dataset: Dataset,
    model: Any = DEFAULT_MODEL,
    config: RegionCaptionConfig | None = None,
    **options: Any,
) -> Dataset:
    """Caption given regions of each image.

    Each row's boxes (``bbox_column``: a list of ``[x, y, w, h]`` pixel boxes by default, or
    ``[x1, y1, x2, y2]`` with ``bbox_format="xyxy"``; a single flat box is accepted) are
    validated: clipped to the image, kept if they still have an area, at most ``max_boxes``.
    Skipped boxes are named in ``region_caption_status`` (``boxes_skipped: ...``,
    ``no_valid_boxes: ...``, ``no_boxes``), never dropped silently. The valid boxes are drawn,
    numbered, on a copy of the image kept in the dataset (``image_with_bbox``, PNG by default).

    ``mode="marked"``: one request on the marked image asking for ``<region1>`` to
    ``<regionN>`` (``answer`` is a string); ``"crop"``: one request per region on its crop,
    batched (``answer`` is a list, one text per valid box). Either way ``region_captions`` holds
    one description per valid box; a region the answer does not describe is ``""`` and named in
    the status (``regions_missing: 2 of 3``). An input that already has an ``answer`` (or any
    other output) column is refused unless ``overwrite_columns=True``.

    Args:
        dataset: rows with an image and ``bbox_column``.
        model: Hub id, local folder, :class:`~hfgcot.model.spec.ModelSpec` or a loaded VLM.
        config: a :class:`RegionCaptionConfig`; ``options`` naming its fields are applied on top.
        **options: any :class:`RegionCaptionConfig` field, any
            :class:`~hfgcot.run.options.RunOptions` field or ``run=``, and the loading options of
            a model given by name. Any other name is a ``TypeError``.

    Returns:
        The dataset with ``image_with_bbox``, ``normalized_bbox`` (valid boxes as
        ``[x1/W, y1/H, x2/W, y2/H]``), ``valid_bboxes_num``, ``prompt``, ``answer``,
        ``region_captions`` and ``region_caption_status``. Rows in == rows out, in order.

    Example:
        >>> ds = add_region_captions(ds, model="Qwen/Qwen2.5-VL-3B-Instruct", max_boxes=5)  # doctest: +SKIP
    """
    config, run, load = split_options(RegionCaptionConfig, config, options)
    return run_model_pipeline(
        "region_captions",
        dataset,
        model,
        config,
        region_caption_stages,
        status_column=STATUS,
        load_kwargs=load,
        run=run,
        required_columns=[config.bbox_column],
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
