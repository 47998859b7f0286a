"""Grounding SFT as a whole: its config, its stage and :func:`to_grounding_sft`."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from datasets import Dataset

from hfgcot.geometry.boxes import BBoxFormat
from hfgcot.geometry.families import Family, get_family, known_families, processor_family_or_raise
from hfgcot.pipelines.config import PipelineConfig, option, prompt_option, split_options
from hfgcot.pipelines.grounding_sft.rows import STATUS, family_row
from hfgcot.pipelines.grounding_sft.stage import GroundingSFTStage
from hfgcot.pipelines.url_images import read_urls_first
from hfgcot.publishing.provenance import record_provenance
from hfgcot.run.local import check_columns, check_overwrite, prompt_record, run_pipeline
from hfgcot.splits import map_splits

SFT_BOXES = (
    "`gt_bbox`: original-image pixels [x1, y1, x2, y2] (clipped); `gt_bbox_model` and the "
    "assistant turn of `messages`: the integers the model is trained to write, as "
    "`model_family` {family} writes them: {wording}."
)


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
        family_row(self.model_family)


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
      names them; ``bbox_too_small``; ``empty_question``; ``special_tokens_in_text`` (the
      question holds a ``<|...|>`` special token, which would put a chat of its own into the
      training row); or an image status such as ``undecodable_image``).

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
    config, run, _ = split_options(GroundingSFTConfig, config, options, extra=(), allow_ray=False)
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
            read_urls_first(ds, [stage], config),
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
        family = processor_family_or_raise(processor)
        if family != config.model_family:
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
