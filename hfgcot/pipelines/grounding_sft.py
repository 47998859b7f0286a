"""Grounding SFT data: image + question/referring phrase + box -> Qwen chat rows.

- :class:`GroundingSFTStage` (a ``Dataset.map`` stage, no model) writes chat ``messages`` whose
  assistant turn is the box as the model family that will be trained writes it (its row of
  :mod:`hfgcot.geometry.families`): ``{"bbox_2d": [x1, y1, x2, y2]}`` in pixels of the *resized*
  image for Qwen2.5-VL (the same ``smart_resize`` the training processor applies, with the same
  ``min_pixels``/``max_pixels``), 0..1000 for Qwen3-VL, ``<|box_start|>(x1,y1),(x2,y2)<|box_end|>``
  in 0..1000 for Qwen2-VL. The original box and the frame are kept, so every number can be
  mapped back.

Predictions on such rows: :mod:`hfgcot.pipelines.grounding_predictions`.

    >>> from hfgcot import to_grounding_sft
    >>> sft = to_grounding_sft(ds, bbox_format="xywh", max_pixels=1003520)     # doctest: +SKIP
    >>> sft[0]["messages"][1]["content"][0]["text"]                             # doctest: +SKIP
    '{"bbox_2d": [112, 40, 188, 117]}'
    >>> train = sft.filter(lambda s: s == "ok", input_columns="sft_status")    # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Any

from datasets import Dataset, Features, List, Value

from hfgcot import prompts
from hfgcot.geometry.boxes import MISSING, BBoxFormat, check_box
from hfgcot.geometry.families import (
    Family,
    ModelFamily,
    box_text,
    family_for_processor,
    get_family,
    known_families,
)
from hfgcot.geometry.frames import Frame
from hfgcot.images import (
    ASPECT_RATIO_TOO_LARGE,
    IMAGE_TOO_SMALL,
    UNDECODABLE_IMAGE,
    ImagePolicy,
    image_size,
    load_image,
)
from hfgcot.pipelines.base import Stage, cell_text
from hfgcot.pipelines.config import PipelineConfig, option, prompt_option, split_options
from hfgcot.publishing.provenance import record_provenance
from hfgcot.run.local import check_columns, check_overwrite, prompt_record, run_pipeline
from hfgcot.splits import map_splits
from hfgcot.status import EMPTY_QUESTION, OK, make

logger = logging.getLogger(__name__)

STATUS = "sft_status"
MISSING_BBOX = "missing_bbox"
INVALID_BBOX = "invalid_bbox"

SFT_BOXES = (
    "`gt_bbox`: original-image pixels [x1, y1, x2, y2] (clipped); `gt_bbox_model` and the "
    "assistant turn of `messages`: the integers the model is trained to write, as "
    "`model_family` {family} writes them: {wording}."
)

MESSAGES_FEATURE = List(
    {
        "role": Value("string"),
        "content": List({"type": Value("string"), "text": Value("string")}),
    }
)
"""Arrow type of ``messages``: every content item is a ``{"type", "text"}`` struct
(``text`` is null for the image item), so all rows share one schema."""

FRAME_FEATURE = {
    "width": Value("int64"),
    "height": Value("int64"),
    "model_width": Value("int64"),
    "model_height": Value("int64"),
    "min_pixels": Value("int64"),
    "max_pixels": Value("int64"),
    "factor": Value("int64"),
}
"""Arrow type of ``sft_frame``: the original size, the resized size and the resize limits.
:meth:`hfgcot.geometry.frames.Frame.from_dict` reads it back (extra keys are ignored)."""


def _pixel_limits(processor: Any) -> tuple[int, int, int]:
    """``(min_pixels, max_pixels, factor)`` of a Qwen-VL processor or image processor."""
    image_processor = getattr(processor, "image_processor", processor)
    size = getattr(image_processor, "size", None)
    try:
        min_pixels = int(size["shortest_edge"])  # type: ignore[index]
        max_pixels = int(size["longest_edge"])  # type: ignore[index]
    except (TypeError, KeyError):
        min_pixels = int(image_processor.min_pixels)
        max_pixels = int(image_processor.max_pixels)
    factor = int(image_processor.patch_size) * int(getattr(image_processor, "merge_size", 2))
    return min_pixels, max_pixels, factor


def _family(name: str) -> ModelFamily:
    """The row of ``model_family`` ``name``; an unknown name is a ``ValueError`` listing the
    known families."""
    try:
        return get_family(name)
    except ValueError as err:
        raise type(err)(f"model_family: {err}") from None


def sft_answer(box_model: list[int], family: Family = "qwen2_5_vl") -> str:
    """The assistant text for one box, in the family's text form (integers).

    >>> sft_answer([1, 2, 30, 40])
    '{"bbox_2d": [1, 2, 30, 40]}'
    >>> sft_answer([1, 2, 30, 40], "qwen2_vl")
    '<|box_start|>(1,2),(30,40)<|box_end|>'
    """
    return box_text(family, box_model)


def sft_messages(user_text: str, answer: str) -> list[dict[str, Any]]:
    """A user turn (image, then ``user_text``) and an assistant turn, Arrow-friendly.

    >>> sft_messages("Where?", "{}")[0]["content"][0]
    {'type': 'image', 'text': None}
    """
    return [
        {
            "role": "user",
            "content": [{"type": "image", "text": None}, {"type": "text", "text": user_text}],
        },
        {"role": "assistant", "content": [{"type": "text", "text": answer}]},
    ]


def user_text(messages: list[dict[str, Any]] | None) -> str:
    """The text of the first user turn of ``messages`` (the prompt a model is asked)."""
    for message in messages or []:
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            return "".join(
                c.get("text") or "" for c in content or [] if c.get("type", "text") == "text"
            )
    return ""


@dataclass(frozen=True)
class GroundingSFTStage(Stage):
    """Pure stage: ``messages``, ``gt_bbox``, ``gt_bbox_model``, ``sft_frame``, ``model_family``
    and ``sft_status`` for every row.

    ``gt_bbox`` is the input box as original-pixel ``[x1, y1, x2, y2]`` floats (clipped to the
    image); ``gt_bbox_model`` the integers written in the assistant turn.

    Example:
        >>> GroundingSFTStage(model_family="qwen3_vl").factor
        32
    """

    name = "grounding_sft"
    version = "3"  # v2: invalid_bbox: <reason> (geometry.boxes); v3: family text forms
    status_column = STATUS
    image_column: str = "image"
    text_column: str = "question"
    bbox_column: str = "bbox"
    bbox_format: BBoxFormat = "xywh"
    model_family: Family = "qwen2_5_vl"
    min_pixels: int | None = None
    max_pixels: int | None = None
    factor: int | None = None
    prompt: str | None = None
    image_policy: ImagePolicy = ImagePolicy()
    verify_images: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()  # Literal choices (bbox_format)
        family = _family(self.model_family)
        defaults = {
            "min_pixels": family.min_pixels,
            "max_pixels": family.max_pixels,
            "factor": family.factor,
            "prompt": family.grounding_sft_prompt,
        }
        for name, value in defaults.items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, value)
        for name in ("min_pixels", "max_pixels", "factor"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.min_pixels > self.max_pixels:  # type: ignore[operator]
            raise ValueError(f"min_pixels {self.min_pixels} > max_pixels {self.max_pixels}")
        prompts.check_template("grounding_sft_prompt", self.prompt)  # type: ignore[arg-type]

    def features(self) -> Features:
        return Features(
            {
                "messages": MESSAGES_FEATURE,
                "gt_bbox": List(Value("float64")),
                "gt_bbox_model": List(Value("int64")),
                "sft_frame": FRAME_FEATURE,
                "model_family": Value("string"),
                STATUS: Value("string"),
            }
        )

    def _size(self, value: Any) -> tuple[tuple[int, int] | None, str]:
        if self.verify_images:
            image, status = load_image(value, self.image_policy)
            return (image.size if image is not None else None), status
        size = image_size(value)
        if size is None:
            return None, UNDECODABLE_IMAGE
        w, h = size
        if min(w, h) < self.image_policy.min_side:
            return None, make(IMAGE_TOO_SMALL, f"{w}x{h}")
        if max(w, h) / min(w, h) > self.image_policy.max_aspect_ratio:
            return None, make(ASPECT_RATIO_TOO_LARGE, f"{w}x{h}")
        return size, OK

    def frame(self, width: int, height: int) -> Frame:
        """The frame of a ``width`` x ``height`` image for this stage's family and limits."""
        return Frame.for_image(
            width,
            height,
            min_pixels=int(self.min_pixels),  # type: ignore[arg-type]
            max_pixels=int(self.max_pixels),  # type: ignore[arg-type]
            factor=int(self.factor),  # type: ignore[arg-type]
        )

    def _empty(self) -> dict[str, Any]:
        return {
            "messages": [],
            "gt_bbox": [],
            "gt_bbox_model": [],
            "sft_frame": None,
            "model_family": self.model_family,
        }

    def row(self, image: Any, text: Any, bbox: Any) -> dict[str, Any]:
        """One output row for an image value (PIL, ``{bytes, path}``, path), a text and a box."""
        size, status = self._size(image)
        if status != OK or size is None:
            return {**self._empty(), STATUS: status if status != OK else UNDECODABLE_IMAGE}
        return self.row_for_size(size[0], size[1], text, bbox)

    def row_for_size(self, width: int, height: int, text: Any, bbox: Any) -> dict[str, Any]:
        """One output row for an image of ``width`` x ``height`` pixels (no image needed).

        >>> stage = GroundingSFTStage(bbox_format="xyxy", min_pixels=3136, max_pixels=1003520)
        >>> row = stage.row_for_size(640, 480, "the cat", [64, 48, 320, 240])
        >>> row["messages"][1]["content"][0]["text"], row["sft_status"]
        ('{"bbox_2d": [64, 48, 322, 238]}', 'ok')
        """
        out = self._empty()
        try:
            frame = self.frame(width, height)
        except ValueError as err:
            return {**out, STATUS: make("unsupported_image_size", str(err)[:120])}
        frame_dict = {
            **frame.to_dict(),
            "min_pixels": int(self.min_pixels),  # type: ignore[arg-type]
            "max_pixels": int(self.max_pixels),  # type: ignore[arg-type]
            "factor": int(self.factor),  # type: ignore[arg-type]
        }
        out["sft_frame"] = frame_dict
        question = cell_text(text)
        if not question:
            return {**out, STATUS: EMPTY_QUESTION}
        box, reason = check_box(bbox, self.bbox_format, width=width, height=height)
        if box is None:
            status = MISSING_BBOX if reason == MISSING else make(INVALID_BBOX, reason)
            return {**out, STATUS: status}
        model_box = [int(round(v)) for v in frame.box_to_model(box, self.model_family)]
        if model_box[2] <= model_box[0] or model_box[3] <= model_box[1]:
            return {**out, STATUS: "bbox_too_small"}
        messages = sft_messages(
            prompts.grounding_sft_prompt(question, self.prompt),  # type: ignore[arg-type]
            sft_answer(model_box, self.model_family),
        )
        return {
            **out,
            "messages": messages,
            "gt_bbox": box,
            "gt_bbox_model": model_box,
            STATUS: OK,
        }

    def process(self, batch: dict[str, list], rank: int | None = None) -> dict[str, list]:
        n = len(batch[self.image_column])
        columns: dict[str, list] = {name: [] for name in self.features()}
        for i in range(n):
            row = self.row(
                batch[self.image_column][i],
                batch[self.text_column][i],
                batch[self.bbox_column][i],
            )
            for name in columns:
                columns[name].append(row[name])
        return columns


@dataclass(frozen=True)
class GroundingSFTConfig(PipelineConfig):
    """Every setting of :func:`to_grounding_sft` (typed, validated; part of the fingerprint).

    Example:
        >>> GroundingSFTConfig(model_family="qwen3_vl", bbox_format="xyxy").batch_size
        64
    """

    batch_size: int = option(64, "Rows per map batch.", min=1)
    text_column: str = option("question", "Input column with the question or referring phrase.")
    bbox_column: str = option("bbox", "Input column with the box (original pixels).")
    bbox_format: BBoxFormat = option(
        "xywh", "Input boxes as [x, y, w, h] (TextVQA/COCO) or [x1, y1, x2, y2] pixels."
    )
    model_family: Family = option(
        "qwen2_5_vl",
        "Family that will be trained: decides the box convention and text form of the answers.",
        choices=known_families,
    )
    min_pixels: int | None = option(
        None,
        "Resize lower limit of the training processor (default: the family's Hub value).",
        min=1,
    )
    max_pixels: int | None = option(
        None,
        "Resize upper limit of the training processor (default: the family's Hub value).",
        min=1,
    )
    prompt: str | None = prompt_option(
        None,
        "User text of every row; placeholder {question} (default: the family's).",
        kind="grounding_sft_prompt",
    )
    verify_images: bool = option(
        True, "Decode every image fully (False: read only the header; for trusted data)."
    )

    def validate(self) -> None:
        _family(self.model_family)


def to_grounding_sft(
    dataset: Dataset,
    config: GroundingSFTConfig | None = None,
    *,
    processor: Any = None,
    **options: Any,
) -> Dataset:
    """Turn image + question/referring phrase + box rows into grounding SFT chat rows.

    Every input row is kept, in order, with these columns added:

    - ``messages``: ``[user, assistant]`` in Qwen chat format; the user turn holds the image
      and ``prompt`` (default: the family's) filled with the question, the assistant turn the
      box (integers) as ``model_family`` writes it: ``{"bbox_2d": [x1, y1, x2, y2]}`` in pixels
      of the image resized by ``smart_resize`` with ``min_pixels``/``max_pixels`` for
      ``qwen2_5_vl``, in 0..1000 of the image for ``qwen3_vl``;
      ``<|box_start|>(x1,y1),(x2,y2)<|box_end|>`` in 0..1000 for ``qwen2_vl``. ``[]`` on rows
      whose status is not ``"ok"``.
    - ``gt_bbox``: the box in original pixels ``[x1, y1, x2, y2]`` (clipped to the image);
      ``gt_bbox_model``: the integers of the assistant turn. Both ``[]`` unless the row is ok.
    - ``sft_frame``: ``{width, height, model_width, model_height, min_pixels, max_pixels,
      factor}``; ``Frame.from_dict(row["sft_frame"]).box_to_pixels(box, family)`` maps a box
      written by the model back to original pixels.
    - ``model_family`` and ``sft_status``: ``"ok"`` or why the row cannot be trained on
      (``missing_bbox``; ``invalid_bbox: <reason>``, reason ``malformed``, ``not_finite``,
      ``non_positive_size`` or ``outside_image``, as :func:`hfgcot.geometry.boxes.check_box`
      names them; ``bbox_too_small``; ``empty_question``; or an image status such as
      ``undecodable_image``).

    Filter before training: ``ds.filter(lambda s: s == "ok", input_columns="sft_status")``;
    :class:`hfgcot.GroundingCollator` refuses rows with another status.

    The Qwen2.5-VL boxes are only right if training resizes images exactly like this function:
    pass the ``min_pixels``/``max_pixels`` of your training processor, or the processor itself
    (``processor=``, which wins). The defaults are the Hub preprocessor limits of the family
    (Qwen2.5-VL: 3,136 .. 12,845,056 pixels), not transformers' library default (1,003,520).
    :class:`hfgcot.GroundingCollator` checks each row's frame against the processor it is given.

    Args:
        dataset: a ``Dataset`` (or ``DatasetDict``, converted split by split).
        config: a :class:`GroundingSFTConfig`; ``options`` naming its fields are applied on top.
        processor: a Qwen-VL processor whose resize limits and patch factor to use (its family
            must be ``model_family``).
        **options: any :class:`GroundingSFTConfig` field (``bbox_format``, ``model_family``,
            ``prompt``, ``image_policy``...) or :class:`~hfgcot.run.options.RunOptions` field.

    Example:
        >>> sft = to_grounding_sft(ds, bbox_format="xywh", processor=processor)  # doctest: +SKIP
        >>> sft[0]["messages"][1]["content"][0]["text"]                          # doctest: +SKIP
        '{"bbox_2d": [112, 40, 188, 117]}'
    """
    config, run, _ = split_options(GroundingSFTConfig, config, options, extra=())
    config = config.for_family(config.model_family)
    stage = sft_stage(config, processor)
    # the resize limits in effect (a processor's win), so the recorded config gives the same rows
    record = dataclasses.replace(config, min_pixels=stage.min_pixels, max_pixels=stage.max_pixels)
    frame = {
        "factor": stage.factor,
        "processor": type(processor).__name__ if processor is not None else None,
    }

    def run_split(ds: Dataset) -> Dataset:
        check_columns(ds, [config.text_column, config.bbox_column])
        check_overwrite(ds, [stage], "grounding_sft", config.overwrite_columns)
        out = run_pipeline(
            ds,
            [stage],
            image_column=config.image_column,
            batch_size=config.batch_size,
            run=run,
        )
        return record_provenance(
            out,
            "grounding_sft",
            config=record,
            spec=None,  # no model runs; the frame settings are in the config and the stage
            stages=[stage],
            status_column=STATUS,
            boxes=SFT_BOXES.format(
                family=config.model_family, wording=get_family(config.model_family).box_wording
            ),
            extra={"run": run.record(), "prompts": prompt_record(config), "frame": frame},
        )

    return map_splits(dataset, run_split)


def sft_stage(config: GroundingSFTConfig, processor: Any = None) -> GroundingSFTStage:
    """The stage of :func:`to_grounding_sft` for ``config`` (a processor's limits win)."""
    min_pixels, max_pixels, factor = config.min_pixels, config.max_pixels, None
    if processor is not None:
        family = family_for_processor(processor)
        if family is not None and family != config.model_family:
            raise ValueError(
                f"processor is a {type(processor).__name__} ({family!r}) but "
                f"model_family={config.model_family!r}; pass model_family={family!r}"
            )
        min_pixels, max_pixels, factor = _pixel_limits(processor)
    return GroundingSFTStage(
        image_column=config.image_column,
        text_column=config.text_column,
        bbox_column=config.bbox_column,
        bbox_format=config.bbox_format,
        model_family=config.model_family,
        min_pixels=min_pixels,
        max_pixels=max_pixels,
        factor=factor,
        prompt=config.prompt,
        image_policy=config.image_policy,
        verify_images=config.verify_images,
    )


__all__ = [
    "FRAME_FEATURE",
    "MESSAGES_FEATURE",
    "GroundingSFTConfig",
    "GroundingSFTStage",
    "sft_answer",
    "sft_stage",
    "sft_messages",
    "to_grounding_sft",
    "user_text",
]
