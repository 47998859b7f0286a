"""The GCoT pipeline as a whole: its config, its four stages, :func:`add_gcot` and its summary."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from datasets import Dataset

from hfgcot import prompts
from hfgcot.model.spec import DEFAULT_MODEL, ModelSpec
from hfgcot.parsing.phrases import phrase_key
from hfgcot.pipelines.base import Stage
from hfgcot.pipelines.config import ModelPipelineConfig, option, prompt_option, split_options
from hfgcot.pipelines.gcot.grounding import BoxSpace, GroundingMode, GroundingStage, InjectStage
from hfgcot.pipelines.gcot.reasoning import STATUS, ParseStage, ReasoningStage
from hfgcot.pipelines.runner import run_model_pipeline
from hfgcot.run.local import status_summary

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class GCoTConfig(ModelPipelineConfig):
    """Every setting of the GCoT pipeline (typed, validated; each stage hashes its own part).

    Example:
        >>> GCoTConfig(batch_size=4, box_space="normalized").box_space
        'normalized'
        >>> GCoTConfig(grounding_prompt="Find {object}.")
        Traceback (most recent call last):
        ...
        ValueError: grounding_prompt: unknown placeholder {object} (allowed: {phrase}); missing {phrase}
    """

    question_column: str = option("question", "Input column with the questions.")
    answer_column: str = option("answer", "Input column with the given answers.")
    grounding_max_new_tokens: int = option(
        128, "Most new tokens per grounding answer (stage 3).", min=1
    )
    box_space: BoxSpace = option(
        "pixels",
        "How boxes are written into `gcot`: original pixels, as the model wrote them, or 0..1.",
    )
    grounding: GroundingMode = option(
        "per_keyword",
        "One grounding request per keyword, or one per image for all keywords (joint).",
    )
    max_keywords: int = option(16, "Most distinct keywords grounded per row.", min=1)
    merge_max: int = option(3, "Most adjacent keywords merged into one phrase.", min=1)
    max_question_chars: int = option(4000, "Longer questions get status question_too_long.", min=1)
    reasoning_prompt: str = prompt_option(
        prompts.GCOT_PROMPT, "Stage-1 prompt; placeholders {question} and {answer}."
    )
    grounding_prompt: str | None = prompt_option(
        None, "Per-keyword grounding prompt; placeholder {phrase} (default: the model family's)."
    )
    joint_grounding_prompt: str | None = prompt_option(
        None, "Joint grounding prompt; placeholder {phrases} (default: the model family's)."
    )


GCOT_COLUMNS = ("question_column", "answer_column")


def boxes_note(config: GCoTConfig) -> str:
    """What the boxes of a GCoT run mean, for its provenance record and dataset card.

    >>> boxes_note(GCoTConfig(box_space="normalized")).split("; ")[-1]
    'boxes in the `gcot` text: normalized.'
    """
    return (
        "`groundings[].bbox`: original-image pixels [x1, y1, x2, y2]; `bbox_model`: the "
        f"numbers the model wrote; boxes in the `gcot` text: {config.box_space}."
    )


def gcot_stages(config: GCoTConfig, spec: ModelSpec) -> list[Stage]:
    """The four stages of the pipeline for ``config`` (used by :func:`add_gcot`, Ray and resume)."""
    common = config.model_stage_fields(spec)
    return [
        ReasoningStage(
            **common,
            generation=config.generation(),
            image_column=config.image_column,
            question_column=config.question_column,
            answer_column=config.answer_column,
            image_policy=config.image_policy,
            max_question_chars=config.max_question_chars,
            prompt=config.reasoning_prompt,
        ),
        ParseStage(merge_max=config.merge_max),
        GroundingStage(
            **common,
            generation=config.generation(config.grounding_max_new_tokens),
            image_column=config.image_column,
            max_keywords=config.max_keywords,
            image_policy=config.image_policy,
            mode=config.grounding,
            prompt=config.grounding_prompt,
            joint_prompt=config.joint_grounding_prompt,
        ),
        InjectStage(box_space=config.box_space),
    ]


def gcot_summary(dataset: Dataset) -> dict[str, Any]:
    """Rows by status and the share of keywords that got at least one box.

    >>> gcot_summary(ds)   # doctest: +SKIP
    {'rows': 3, 'status': {'ok': 2, 'undecodable_image': 1}, 'keywords': 4, ...}
    """
    keywords = grounded = 0
    for kws, groundings in zip(dataset["extracted_keywords"], dataset["groundings"], strict=True):
        keywords += len(kws)
        grounded += len({phrase_key(g["phrase"]) for g in groundings})
    return {
        "rows": len(dataset),
        "status": status_summary(dataset, STATUS),
        "keywords": keywords,
        "keywords_grounded": grounded,
        "keywords_grounded_pct": 100.0 * grounded / keywords if keywords else 0.0,
    }


def add_gcot(
    dataset: Dataset,
    model: Any = DEFAULT_MODEL,
    config: GCoTConfig | None = None,
    **options: Any,
) -> Dataset:
    """Add Grounded Chain-of-Thought columns to an image/question/answer dataset.

    Four chained ``Dataset.map`` stages (reasoning, parsing, grounding, injection), each with a
    deterministic fingerprint, so rerunning on a saved dataset reuses the cache. Every input row is
    kept, in order; ``gcot_status`` says ``"ok"`` or why a row has no grounded reasoning.

    Args:
        dataset: rows with an image (``Image()`` feature or paths), a question and an answer.
        model: Hub id, local folder, :class:`~hfgcot.model.spec.ModelSpec` or a VLM from
            :func:`hfgcot.load_vlm`.
        config: a :class:`GCoTConfig`; ``options`` naming its fields are applied on top.
        **options: any :class:`GCoTConfig` field (``batch_size``, ``box_space``,
            ``reasoning_prompt``...), any :class:`~hfgcot.run.options.RunOptions` field
            (``num_proc``, ``checkpoint_dir``, ``shard_size``, ``sort_window``) or ``run=``, and
            the loading options of a model given by name (``revision``, ``dtype``, ``device``,
            ``attn_implementation``, ``min_pixels``, ``max_pixels``, ``trust_remote_code``).
            Any other name is a ``TypeError``.

    Returns:
        The dataset with ``raw_cot_output``, ``image_size``, ``cleaned_cot``,
        ``extracted_keywords``, ``groundings`` (``[{"phrase", "bbox", "bbox_model"}]``, ``bbox``
        in original pixels ``[x1, y1, x2, y2]``), ``gcot`` and ``gcot_status``.

    Example:
        >>> ds = add_gcot(ds, model="Qwen/Qwen2.5-VL-3B-Instruct", batch_size=16)  # doctest: +SKIP
        >>> ds[0]["gcot"]                                                            # doctest: +SKIP
        'Step 1: The red ball [12, 40, 88, 117] is on the left ...'
    """
    config, run, load = split_options(GCoTConfig, config, options)
    return run_model_pipeline(
        "gcot",
        dataset,
        model,
        config,
        gcot_stages,
        status_column=STATUS,
        load_kwargs=load,
        run=run,
        required_columns=[getattr(config, c) for c in GCOT_COLUMNS],
        boxes=boxes_note(config),
        summarize=_log_gcot_summary,
    )


def _log_gcot_summary(ds: Dataset) -> dict[str, Any]:
    summary = gcot_summary(ds)
    logger.info(
        "gcot: %d rows, %s; %d/%d keywords grounded (%.1f%%)",
        summary["rows"],
        summary["status"],
        summary["keywords_grounded"],
        summary["keywords"],
        summary["keywords_grounded_pct"],
    )
    return summary
