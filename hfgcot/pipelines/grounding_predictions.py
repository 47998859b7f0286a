"""Predicted boxes for grounding rows, in original-image pixels, ready for evaluation.

:class:`GroundingPredictionStage` runs a VLM on the user turns written by
:func:`hfgcot.to_grounding_sft` (or on a question column) and maps the first box of each answer
back to original pixels through the frame the processor actually produced.

    >>> pred = add_grounding_predictions(sft, model="out/checkpoint")          # doctest: +SKIP
    >>> evaluate_grounding(pred, "pred_bbox", "gt_bbox")["acc@0.5"]            # doctest: +SKIP
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from datasets import Dataset, Features, List, Value

from hfgcot import prompts
from hfgcot.geometry.frames import Frame
from hfgcot.images import ImagePolicy, load_image
from hfgcot.model.endpoint import error_status
from hfgcot.model.spec import DEFAULT_MODEL
from hfgcot.pipelines.base import ModelStage
from hfgcot.pipelines.config import ModelPipelineConfig, option, prompt_option, split_options
from hfgcot.pipelines.gcot import ground_boxes
from hfgcot.pipelines.grounding_sft import STATUS, user_text
from hfgcot.pipelines.runner import run_model_pipeline
from hfgcot.splits import map_named_splits
from hfgcot.status import EMPTY_QUESTION, OK, note_truncated, truncated_output
from hfgcot.untrusted import cell_text, neutralize_special_tokens

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
    version = "3"  # v2: truncation in the status; v3: asked text neutralised, blank questions
    image_column: str = "image"
    text_column: str = "question"
    messages_column: str = "messages"
    input_status_column: str = STATUS
    prompt: str | None = None  # None: the model family's default
    prefix: str = "pred"
    image_policy: ImagePolicy = ImagePolicy()

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.prompt is not None:
            prompts.check_template("grounding_sft_prompt", self.prompt)
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

    def _question(self, batch: dict[str, list], i: int, rank: int | None) -> str:
        if self.messages_column in batch:
            text = user_text(batch[self.messages_column][i])
            if text:
                return neutralize_special_tokens(text)
        if self.text_column in batch:
            question = cell_text(batch[self.text_column][i])
            if question:
                template = self.family_prompt("grounding_sft_prompt", self.prompt, rank)
                return prompts.grounding_sft_prompt(question, template)
        return ""

    def process(self, batch: dict[str, list], rank: int | None = None) -> dict[str, list]:
        n = len(batch[self.image_column])
        statuses = [OK] * n
        if self.input_status_column in batch:
            statuses = [s if s is not None else OK for s in batch[self.input_status_column]]
        requests, where = [], []
        for i in range(n):
            if statuses[i] != OK:
                continue
            question = self._question(batch, i, rank)
            image, status = load_image(batch[self.image_column][i], self.image_policy)
            if status == OK and not question:
                status = EMPTY_QUESTION
            statuses[i] = status
            if status == OK:
                requests.append(self.request(image, question))
                where.append(i)
        boxes: list[list[float]] = [[] for _ in range(n)]
        texts = [""] * n
        if requests:
            vlm = self.vlm(rank)
            for i, out in zip(where, self.generate(requests, rank), strict=True):
                texts[i] = out.text
                if out.error:
                    statuses[i] = error_status(out.error)
                    continue
                box = first_box(out.text, out.frame, vlm.family) if out.frame else None
                if box is not None:  # a box read before a cut is complete: usable
                    boxes[i] = box
                    if out.truncated:
                        statuses[i] = note_truncated(statuses[i], self.name)
                else:
                    statuses[i] = truncated_output(self.name) if out.truncated else "unparseable"
        return {
            f"{self.prefix}_bbox": boxes,
            f"{self.prefix}_text": texts,
            f"{self.prefix}_status": statuses,
        }


@dataclass(frozen=True)
class GroundingPredictionConfig(ModelPipelineConfig):
    """Every setting of :func:`add_grounding_predictions` (typed, validated).

    Example:
        >>> GroundingPredictionConfig(prefix="base").max_new_tokens
        64
    """

    max_new_tokens: int = option(64, "Most new tokens per answer.", min=1)
    text_column: str = option(
        "question", "Column asked with `prompt` on rows without a `messages` user turn."
    )
    messages_column: str = option(
        "messages", "Column of chat rows (to_grounding_sft): its user turn is asked verbatim."
    )
    status_column: str = option(
        STATUS, "Input status column: rows whose status is not 'ok' are skipped, status kept."
    )
    prefix: str = option(
        "pred", "Output columns are <prefix>_bbox, <prefix>_text, <prefix>_status."
    )
    prompt: str | None = prompt_option(
        None,
        "Prompt for `text_column` rows; placeholder {question} (default: the model family's).",
        kind="grounding_sft_prompt",
    )

    def validate(self) -> None:
        if not self.prefix:
            raise ValueError("prefix must not be empty")


def add_grounding_predictions(
    dataset: Dataset,
    model: Any = DEFAULT_MODEL,
    config: GroundingPredictionConfig | None = None,
    **options: Any,
) -> Dataset:
    """Ground every row with a VLM; store the predicted box in original-image pixels.

    Works on the output of :func:`to_grounding_sft` (the user turn of ``messages`` is asked
    verbatim; rows whose ``sft_status`` is not ``"ok"`` are skipped and keep that status) or on
    plain rows with ``image_column`` and ``text_column`` (asked with ``prompt``). Batched
    generation (greedy by default); the first box of the answer is parsed
    (:func:`hfgcot.parsing.grounding.parse_grounding`) and mapped to original pixels through the
    frame the processor really produced, in the model's own family convention.

    Adds ``pred_bbox`` (``[x1, y1, x2, y2]`` original pixels, ``[]`` when no box could be read),
    ``pred_text`` (the raw answer) and ``pred_status`` (``ok``, ``unparseable``,
    ``generation_error: ...`` or the row's input status); ``prefix`` renames them.

    Args:
        dataset: a ``Dataset`` (or ``DatasetDict``, split by split).
        model: Hub id, local folder, :class:`~hfgcot.model.spec.ModelSpec` or a loaded VLM.
        config: a :class:`GroundingPredictionConfig`; ``options`` naming its fields win.
        **options: any :class:`GroundingPredictionConfig` field, any
            :class:`~hfgcot.run.options.RunOptions` field (``num_proc``, ``checkpoint_dir``...)
            or ``run=``, and the loading options of a model given by name.

    Example:
        >>> ds = add_grounding_predictions(sft, model="my-org/qwen-grounding")  # doctest: +SKIP
        >>> evaluate_grounding(ds)["acc@0.5"]                                   # doctest: +SKIP
        0.71
    """
    config, run, load = split_options(GroundingPredictionConfig, config, options)

    def run_split(ds: Dataset, split: str | None) -> Dataset:
        return run_model_pipeline(
            "grounding_predictions",
            ds,
            model,
            config,
            lambda config, spec: [prediction_stage(config, spec)],
            load_kwargs=load,
            run=run.for_split(split) if split is not None else run,  # Ray: a folder per split
            boxes=PREDICTION_BOXES.format(prefix=config.prefix),
        )

    return map_named_splits(dataset, run_split)


def prediction_stage(config: GroundingPredictionConfig, spec: Any) -> GroundingPredictionStage:
    """The stage of :func:`add_grounding_predictions` for ``config`` and a model spec."""
    return GroundingPredictionStage(
        **config.model_stage_fields(spec),
        generation=config.generation(),
        image_column=config.image_column,
        text_column=config.text_column,
        messages_column=config.messages_column,
        input_status_column=config.status_column,
        prompt=config.prompt,
        prefix=config.prefix,
        image_policy=config.image_policy,
    )


__all__ = [
    "PREDICTION_BOXES",
    "GroundingPredictionConfig",
    "GroundingPredictionStage",
    "add_grounding_predictions",
    "first_box",
    "prediction_stage",
]
