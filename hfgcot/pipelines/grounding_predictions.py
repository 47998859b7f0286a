"""Predicted boxes for grounding rows, in original-image pixels, ready for evaluation.

:class:`GroundingPredictionStage` runs a VLM on the user turns written by
:func:`hfgcot.to_grounding_sft` (or on a question column) and maps the first box of each answer
back to original pixels through the frame the processor actually produced.

    >>> pred = add_grounding_predictions(sft, model="out/checkpoint")          # doctest: +SKIP
    >>> evaluate_grounding(pred, "pred_bbox", "gt_bbox")["acc@0.5"]            # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

from datasets import Dataset, Features, List, Value

from hfgcot import prompts
from hfgcot.geometry.frames import Frame
from hfgcot.images import ImagePolicy, load_image
from hfgcot.model.endpoint import error_status
from hfgcot.model.spec import DEFAULT_MODEL, model_spec
from hfgcot.model.vlm import GenerationSettings, Request
from hfgcot.pipelines.base import OK, ModelStage, cell_text
from hfgcot.pipelines.gcot import ground_boxes
from hfgcot.pipelines.grounding_sft import STATUS, _apply_per_split, _check_prompt, user_text
from hfgcot.publishing.provenance import record_provenance
from hfgcot.run.local import run_pipeline

logger = logging.getLogger(__name__)

PREDICTION_BOXES = (
    "`{prefix}_bbox`: original-image pixels [x1, y1, x2, y2], mapped from the box the model "
    "wrote (in its family's convention) through the frame its processor produced; `[]` when no "
    "box could be read."
)


def first_box(text: str, frame: Frame, family: str) -> list[float] | None:
    """The first box of a grounding answer with area left in original pixels, else ``None``.

    >>> first_box('{"bbox_2d": [0, 0, 28, 14]}', Frame(100, 50, 56, 28), "qwen2_5_vl")
    [0.0, 0.0, 50.0, 25.0]
    """
    boxes = ground_boxes(text, frame, family)
    return boxes[0][1] if boxes else None


@dataclass(frozen=True)
class GroundingPredictionStage(ModelStage):
    """Model stage: ``<prefix>_bbox`` (original pixels, ``[]`` when unparseable),
    ``<prefix>_text`` (raw answer) and ``<prefix>_status``.

    The user text is the first user turn of ``messages_column`` when the rows have one (the exact
    training prompt), else ``prompt`` filled with ``text_column``. Rows whose ``input_status_column``
    is not ``"ok"`` are not run; their status is copied.
    """

    name = "grounding_predict"
    image_column: str = "image"
    text_column: str = "question"
    messages_column: str = "messages"
    input_status_column: str = STATUS
    prompt: str = prompts.GROUNDING_SFT_PROMPT
    prefix: str = "pred"
    image_policy: ImagePolicy = ImagePolicy()

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_prompt(self.prompt)
        if not self.prefix:
            raise ValueError("prefix must not be empty")

    @property
    def status_column(self) -> str:  # type: ignore[override]
        """The status column this stage writes (``<prefix>_status``)."""
        return f"{self.prefix}_status"

    def features(self) -> Features:
        return Features(
            {
                f"{self.prefix}_bbox": List(Value("float64")),
                f"{self.prefix}_text": Value("string"),
                f"{self.prefix}_status": Value("string"),
            }
        )

    def _question(self, batch: dict[str, list], i: int) -> str:
        if self.messages_column in batch:
            text = user_text(batch[self.messages_column][i])
            if text:
                return text
        if self.text_column in batch:
            question = cell_text(batch[self.text_column][i])
            if question:
                return prompts.grounding_sft_prompt(question, self.prompt)
        return ""

    def __call__(self, batch: dict[str, list], rank: int | None = None) -> dict[str, list]:
        n = len(batch[self.image_column])
        statuses = [OK] * n
        if self.input_status_column in batch:
            statuses = [s if s is not None else OK for s in batch[self.input_status_column]]
        requests, where = [], []
        for i in range(n):
            if statuses[i] != OK:
                continue
            question = self._question(batch, i)
            image, status = load_image(batch[self.image_column][i], self.image_policy)
            if status == OK and not question:
                status = "empty_question"
            statuses[i] = status
            if status == OK:
                requests.append(Request(image, question))
                where.append(i)
        boxes: list[list[float]] = [[] for _ in range(n)]
        texts = [""] * n
        if requests:
            vlm = self.vlm(rank)
            outs = vlm.generate(requests, self.generation, batch_size=self.batch_size)
            for i, out in zip(where, outs, strict=True):
                texts[i] = out.text
                if out.error:
                    statuses[i] = error_status(out.error)
                    continue
                box = first_box(out.text, out.frame, vlm.family) if out.frame else None
                if box is not None:
                    boxes[i] = box
                else:
                    statuses[i] = "unparseable"
        return {
            f"{self.prefix}_bbox": boxes,
            f"{self.prefix}_text": texts,
            f"{self.prefix}_status": statuses,
        }


def add_grounding_predictions(
    dataset: Dataset,
    model: Any = DEFAULT_MODEL,
    *,
    image_column: str = "image",
    text_column: str = "question",
    messages_column: str = "messages",
    status_column: str = STATUS,
    prompt: str = prompts.GROUNDING_SFT_PROMPT,
    prefix: str = "pred",
    batch_size: int = 8,
    max_new_tokens: int = 64,
    num_proc: int | None = None,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    shard_size: int = 1000,
    revision: str | None = None,
    dtype: str = "auto",
    device: str | None = None,
    attn_implementation: str | None = None,
    min_pixels: int | None = None,
    max_pixels: int | None = None,
) -> Dataset:
    """Ground every row with a VLM; store the predicted box in original-image pixels.

    Works on the output of :func:`to_grounding_sft` (the user turn of ``messages`` is asked
    verbatim; rows whose ``sft_status`` is not ``"ok"`` are skipped and keep that status) or on
    plain rows with ``image_column`` and ``text_column`` (asked with ``prompt``). Greedy batched
    generation; the first box of the answer is parsed (:func:`hfgcot.parsing.grounding.parse_grounding`)
    and mapped to original pixels through the frame the processor really produced, in the
    model's own family convention.

    Adds ``pred_bbox`` (``[x1, y1, x2, y2]`` original pixels, ``[]`` when no box could be read),
    ``pred_text`` (the raw answer) and ``pred_status`` (``ok``, ``unparseable``,
    ``generation_error: ...`` or the row's input status); ``prefix`` renames them.

    ``num_proc`` starts one worker (and model) per GPU; ``checkpoint_dir`` saves the run in
    shards of ``shard_size`` rows so that a rerun after a crash only computes the missing ones.

    Example:
        >>> ds = add_grounding_predictions(sft, model="my-org/qwen-grounding")  # doctest: +SKIP
        >>> evaluate_grounding(ds)["acc@0.5"]                                   # doctest: +SKIP
        0.71
    """
    spec = model_spec(
        model,
        revision=revision,
        dtype=dtype,
        device=device,
        attn_implementation=attn_implementation,
        min_pixels=min_pixels,
        max_pixels=max_pixels,
    )
    stage = GroundingPredictionStage(
        model=spec,
        generation=GenerationSettings(max_new_tokens=max_new_tokens),
        batch_size=batch_size,
        image_column=image_column,
        text_column=text_column,
        messages_column=messages_column,
        input_status_column=status_column,
        prompt=prompt,
        prefix=prefix,
    )

    config = {
        "image_column": image_column,
        "text_column": text_column,
        "messages_column": messages_column,
        "status_column": status_column,
        "prefix": prefix,
        "batch_size": batch_size,
        "max_new_tokens": max_new_tokens,
        "num_proc": num_proc,
        "shard_size": shard_size,
    }

    def run(ds: Dataset) -> Dataset:
        out = run_pipeline(
            ds,
            [stage],
            image_column=image_column,
            batch_size=batch_size,
            num_proc=num_proc,
            checkpoint_dir=checkpoint_dir,
            shard_size=shard_size,
        )
        return record_provenance(
            out,
            "grounding_predictions",
            config=config,
            spec=spec,
            stages=[stage],
            status_column=stage.status_column,
            boxes=PREDICTION_BOXES.format(prefix=prefix),
        )

    return _apply_per_split(dataset, run)


__all__ = ["PREDICTION_BOXES", "GroundingPredictionStage", "add_grounding_predictions", "first_box"]
