"""The dense-caption pipeline as a whole: its config, its seven stages and
:func:`add_dense_captions`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from datasets import Dataset

from hfgcot import prompts
from hfgcot.model.spec import DEFAULT_MODEL, ModelSpec
from hfgcot.model.vlm import GenerationSettings
from hfgcot.pipelines.base import Stage
from hfgcot.pipelines.config import ModelPipelineConfig, option, prompt_option, split_options
from hfgcot.pipelines.dense_captions.base import STATUS
from hfgcot.pipelines.dense_captions.caption import (
    InitCaptionStage,
    SentenceCheckStage,
    SplitStage,
)
from hfgcot.pipelines.dense_captions.details import DetailCheckStage, FuseStage
from hfgcot.pipelines.dense_captions.questions import AnswerStage, QuestionStage
from hfgcot.pipelines.runner import run_model_pipeline
from hfgcot.pipelines.self_check import Checker


@dataclass(frozen=True)
class DenseCaptionConfig(ModelPipelineConfig):
    """Every setting of the dense-caption pipeline (typed, validated; each stage hashes its part).

    Example:
        >>> DenseCaptionConfig(checker="contrastive", threshold=0.5).checker
        'contrastive'
    """

    checker: Checker = option(
        "yesno",
        "Self-check: ask the VLM yes/no, or compare log-probs with and without the image.",
    )
    threshold: float = option(
        0.0, "Contrastive checker: keep sentences whose mean per-token gain is above this."
    )
    max_questions: int = option(5, "Most objects that get follow-up questions (two each).", min=1)
    answer_batch_size: int | None = option(
        None, "Requests per generate call in stage 5 (default: the whole map batch).", min=1
    )
    check_max_new_tokens: int = option(16, "Most new tokens per yes/no answer (greedy).", min=1)
    caption_prompt: str = prompt_option(
        prompts.DENSE_CAPTION_PROMPT, "Initial-caption prompt (no placeholders)."
    )
    check_prompt: str = prompt_option(
        prompts.SENTENCE_CHECK_PROMPT, "Yes/no self-check prompt; placeholder {sentence}."
    )
    questions_prompt: str = prompt_option(
        prompts.OBJECT_QUESTIONS_PROMPT,
        "Prompt listing objects to ask about; placeholders {sentences}, {max_questions}.",
    )
    detail_question: str = prompt_option(
        prompts.DETAIL_QUESTION, "Follow-up 'details' question; placeholder {object}."
    )
    position_question: str = prompt_option(
        prompts.POSITION_QUESTION, "Follow-up 'position' question; placeholder {object}."
    )
    answer_prompt: str = prompt_option(
        prompts.DETAIL_ANSWER_PROMPT,
        "Prompt around each follow-up question; placeholder {question}.",
    )
    fuse_prompt: str = prompt_option(
        prompts.FUSE_CAPTION_PROMPT, "Fusion prompt; placeholders {sentences} and {details}."
    )

    def check_generation(self) -> GenerationSettings:
        """Greedy settings of the yes/no self-check answers."""
        return GenerationSettings(max_new_tokens=self.check_max_new_tokens, seed=self.seed)


def dense_caption_stages(config: DenseCaptionConfig, spec: ModelSpec) -> list[Stage]:
    """The seven stages for ``config`` (used by :func:`add_dense_captions`, Ray and resume)."""
    common = config.model_stage_fields(spec)
    image = {"image_column": config.image_column, "image_policy": config.image_policy}
    check = {
        "checker": config.checker,
        "threshold": config.threshold,
        "check_prompt": config.check_prompt,
    }
    gen, check_gen = config.generation(), config.check_generation()
    questions = {
        "max_questions": config.max_questions,
        "prompt": config.questions_prompt,
        "detail_question": config.detail_question,
        "position_question": config.position_question,
    }
    return [
        InitCaptionStage(**common, generation=gen, **image, prompt=config.caption_prompt),
        SplitStage(),
        SentenceCheckStage(
            **common, generation=check_gen, **image, **check, caption_prompt=config.caption_prompt
        ),
        QuestionStage(**common, generation=gen, **questions),
        AnswerStage(
            **common,
            generation=gen,
            **image,
            answer_batch_size=config.answer_batch_size,
            prompt=config.answer_prompt,
        ),
        DetailCheckStage(
            **common, generation=check_gen, **image, **check, answer_prompt=config.answer_prompt
        ),
        FuseStage(**common, generation=gen, prompt=config.fuse_prompt),
    ]


def add_dense_captions(
    dataset: Dataset,
    model: Any = DEFAULT_MODEL,
    config: DenseCaptionConfig | None = None,
    **options: Any,
) -> Dataset:
    """Add ScaleCap-style dense captions to an image dataset.

    Seven chained ``Dataset.map`` stages (caption, split, sentence check, questions, answers,
    detail check, fusion), each with a deterministic fingerprint (input, the stage's own settings
    and prompts, its version, model and revision, hfgcot version). Every input row is kept, in
    order; ``dense_caption_status`` is ``"ok"``, ``"ok: <note>"`` or a reason
    (``undecodable_image``, ``empty_caption``, ``no_golden_sentences: ...``, ...).

    Args:
        dataset: rows with an image (``Image()`` feature, paths or bytes).
        model: Hub id, local folder, :class:`~hfgcot.model.spec.ModelSpec` or a loaded VLM.
        config: a :class:`DenseCaptionConfig`; ``options`` naming its fields are applied on top.
        **options: any :class:`DenseCaptionConfig` field (``checker``, ``threshold``,
            ``max_questions``, ``caption_prompt``...), any
            :class:`~hfgcot.run.options.RunOptions` field or ``run=``, and the loading options
            of a model given by name (``revision``, ``dtype``, ``max_pixels``,
            ``trust_remote_code``...). Any other name is a ``TypeError``.

    Returns:
        The dataset with ``init_caption``, ``sentences``, ``golden_sentences``,
        ``sentence_scores``, ``raw_questions``, ``q_list``, ``raw_answers``, ``final_details``,
        ``final_caption`` and ``dense_caption_status``.

    Example:
        >>> ds = add_dense_captions(ds, model="Qwen/Qwen2.5-VL-3B-Instruct",
        ...                         checker="contrastive", threshold=0.2)   # doctest: +SKIP
        >>> ds[0]["golden_sentences"], ds[0]["final_caption"]             # doctest: +SKIP
    """
    config, run, load = split_options(DenseCaptionConfig, config, options)
    return run_model_pipeline(
        "dense_captions",
        dataset,
        model,
        config,
        dense_caption_stages,
        status_column=STATUS,
        load_kwargs=load,
        run=run,
    )
