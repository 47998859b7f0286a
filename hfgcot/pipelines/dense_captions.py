"""Dense captions the ScaleCap way, as seven chained ``Dataset.map`` stages.

1. :class:`InitCaptionStage` - the VLM describes the image (``init_caption``).
2. :class:`SplitStage` - the caption cut into sentences (``sentences``, :mod:`hfgcot.parsing.captions`).
3. :class:`SentenceCheckStage` - a visual self-check keeps the sentences the image supports
   (``golden_sentences``, ``sentence_scores``): ``checker="yesno"`` asks the VLM,
   ``checker="contrastive"`` compares token log-probs with and without the image.
4. :class:`QuestionStage` - follow-up questions about the objects of the golden sentences, each
   paired with its "position of" variant (``raw_questions``, ``q_list``).
5. :class:`AnswerStage` - every question of every image of the batch in one batched generate
   (``raw_answers``).
6. :class:`DetailCheckStage` - the answers' sentences checked again (``final_details``).
7. :class:`FuseStage` - one fluent caption from the golden sentences and the details
   (``final_caption``; a text-only request).

Every row is kept; ``dense_caption_status`` says ``"ok"`` (or ``"ok: <note>"``) or why not.

    >>> from hfgcot import add_dense_captions
    >>> ds = add_dense_captions(ds, model="Qwen/Qwen2.5-VL-3B-Instruct")   # doctest: +SKIP
    >>> ds[0]["final_caption"]                                              # doctest: +SKIP
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from datasets import Dataset, Features, List, Value

from hfgcot import prompts
from hfgcot.images import ImagePolicy, load_image
from hfgcot.model.endpoint import error_status
from hfgcot.model.endpoint_client import require_prompt_logprobs
from hfgcot.model.spec import DEFAULT_MODEL, ModelSpec
from hfgcot.model.vlm import GenerationSettings
from hfgcot.parsing import captions as textproc
from hfgcot.pipelines.base import ModelStage, Stage
from hfgcot.pipelines.config import ModelPipelineConfig, option, prompt_option, split_options
from hfgcot.pipelines.runner import run_model_pipeline
from hfgcot.pipelines.self_check import (
    Checker,
    CheckJob,
    CheckResult,
    check_sentences,
    is_supported,
    locate_sentences,
)
from hfgcot.status import OK, is_ok, note_truncated, truncated_output, with_note

logger = logging.getLogger(__name__)

STATUS = "dense_caption_status"
NO_GOLDEN = "no_golden_sentences"

STRINGS = List(Value("string"))


def _first_error(errors: Sequence[str | None]) -> str | None:
    return next((e for e in errors if e), None)


@dataclass(frozen=True)
class InitCaptionStage(ModelStage):
    """Stage 1: ``init_caption`` and ``dense_caption_status`` for every row."""

    name = "dense_init_caption"
    version = "2"  # a truncated caption is noted
    status_column = STATUS
    image_column: str = "image"
    image_policy: ImagePolicy = ImagePolicy()
    prompt: str = prompts.DENSE_CAPTION_PROMPT

    def features(self) -> Features:
        return Features({"init_caption": Value("string"), STATUS: Value("string")})

    def process(self, batch: dict[str, list], rank: int | None = None) -> dict[str, list]:
        n = len(batch[self.image_column])
        statuses, requests, where = [OK] * n, [], []
        for i in range(n):
            image, status = load_image(batch[self.image_column][i], self.image_policy)
            statuses[i] = status
            if status == OK:
                requests.append(self.request(image, prompts.dense_caption_prompt(self.prompt)))
                where.append(i)
        captions = [""] * n
        if requests:
            for i, out in zip(where, self.generate(requests, rank), strict=True):
                captions[i] = out.text.strip()
                if out.error:
                    statuses[i] = error_status(out.error)
                elif not captions[i]:
                    statuses[i] = "empty_caption"
                elif out.truncated:  # its sentences are still checked one by one
                    statuses[i] = note_truncated(statuses[i], self.name)
        return {"init_caption": captions, STATUS: statuses}


@dataclass(frozen=True)
class SplitStage(Stage):
    """Stage 2: ``sentences`` of the initial caption."""

    name = "dense_split"
    status_column = STATUS

    def features(self) -> Features:
        return Features({"sentences": STRINGS, STATUS: Value("string")})

    def process(self, batch: dict[str, list], rank: int | None = None) -> dict[str, list]:
        sentences, statuses = [], []
        for caption, status in zip(batch["init_caption"], batch[STATUS], strict=True):
            parts = textproc.split_sentences(caption or "") if is_ok(status) else []
            sentences.append(parts)
            statuses.append("no_sentences" if is_ok(status) and not parts else status)
        return {"sentences": sentences, STATUS: statuses}


@dataclass(frozen=True)
class _CheckingStage(ModelStage):
    """Shared by the two self-check stages: the checker, its threshold and the batched check."""

    image_column: str = "image"
    image_policy: ImagePolicy = ImagePolicy()
    checker: Checker = "yesno"
    threshold: float = 0.0
    check_prompt: str = prompts.SENTENCE_CHECK_PROMPT

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.checker == "contrastive":  # a served model must score text: asked before any row
            require_prompt_logprobs(self.model)

    def _check(self, jobs: list[CheckJob], rank: int | None) -> list[CheckResult]:
        if not jobs:
            return []
        return check_sentences(
            self.vlm(rank),
            jobs,
            checker=self.checker,
            generation=self.generation,
            batch_size=self.batch_size,
            max_batch_tokens=self.max_batch_tokens,
            stage=self.name,
            prompt=self.check_prompt,
            system_prompt=self.system_prompt,
        )

    @staticmethod
    def _cut_rows(n: int, rows: list[int], results: list[CheckResult]) -> list[bool]:
        """Rows (``rows[j]`` owns job ``j``) with a yes/no answer cut before its verdict."""
        cut = [False] * n
        for i, result in zip(rows, results, strict=True):
            cut[i] = cut[i] or result.truncated
        return cut


@dataclass(frozen=True)
class SentenceCheckStage(_CheckingStage):
    """Stage 3: ``golden_sentences`` (supported by the image) and ``sentence_scores``.

    ``sentence_scores`` is aligned with ``sentences``: ``1.0``/``0.0`` (yes/no) or the
    contrastive score; ``None`` where the check could not decide.
    """

    name = "dense_check_sentences"
    version = "2"  # a verdict lost to a cut is noted, or truncated_output when nothing is kept
    status_column = STATUS
    caption_prompt: str = prompts.DENSE_CAPTION_PROMPT

    def features(self) -> Features:
        return Features(
            {
                "golden_sentences": STRINGS,
                "sentence_scores": List(Value("float64")),
                STATUS: Value("string"),
            }
        )

    def process(self, batch: dict[str, list], rank: int | None = None) -> dict[str, list]:
        n = len(batch[self.image_column])
        statuses = list(batch[STATUS])
        jobs: list[CheckJob] = []
        owners: list[int] = []
        for i in range(n):
            if not is_ok(statuses[i]) or not batch["sentences"][i]:
                continue
            image, status = load_image(batch[self.image_column][i], self.image_policy)
            if status != OK:  # pragma: no cover - stage 1 already checked the image
                statuses[i] = status
                continue
            caption = batch["init_caption"][i]
            for prefix, sentence in locate_sentences(caption, batch["sentences"][i]):
                caption_prompt = prompts.dense_caption_prompt(self.caption_prompt)
                jobs.append(CheckJob(image, caption_prompt, prefix, sentence))
                owners.append(i)
        results = self._check(jobs, rank)
        scores: list[list[float | None]] = [[] for _ in range(n)]
        golden: list[list[str]] = [[] for _ in range(n)]
        errors: list[list[str | None]] = [[] for _ in range(n)]
        for i, job, result in zip(owners, jobs, results, strict=True):
            scores[i].append(result.score)
            errors[i].append(result.error)
            if is_supported(result.score, self.checker, self.threshold):
                golden[i].append(job.sentence)
        cut = self._cut_rows(n, owners, results)
        for i in range(n):
            if not is_ok(statuses[i]) or not errors[i]:
                continue
            error = _first_error(errors[i])
            if not golden[i] and error and all(errors[i]):
                statuses[i] = f"check_error: {error[:200]}"
            elif not golden[i]:  # a verdict lost to a cut might have kept a sentence
                statuses[i] = truncated_output(self.name) if cut[i] else NO_GOLDEN
                continue
            elif error:
                statuses[i] = with_note(
                    statuses[i], f"{sum(map(bool, errors[i]))} sentence checks failed"
                )
            if cut[i]:
                statuses[i] = note_truncated(statuses[i], self.name)
        return {"golden_sentences": golden, "sentence_scores": scores, STATUS: statuses}


@dataclass(frozen=True)
class QuestionStage(ModelStage):
    """Stage 4: follow-up questions about the objects of the golden sentences (``q_list``).

    A text-only request; the answer is parsed by :func:`hfgcot.parsing.captions.parse_object_list` into
    at most ``max_questions`` distinct objects, each giving a "more details" question and its
    "position of" variant, in that order.
    """

    name = "dense_questions"
    version = "2"  # a truncated object list is noted
    status_column = STATUS
    max_questions: int = 5
    prompt: str = prompts.OBJECT_QUESTIONS_PROMPT
    detail_question: str = prompts.DETAIL_QUESTION
    position_question: str = prompts.POSITION_QUESTION

    def features(self) -> Features:
        return Features(
            {"raw_questions": Value("string"), "q_list": STRINGS, STATUS: Value("string")}
        )

    def process(self, batch: dict[str, list], rank: int | None = None) -> dict[str, list]:
        n = len(batch[STATUS])
        statuses = list(batch[STATUS])
        requests, where = [], []
        for i in range(n):
            golden = batch["golden_sentences"][i]
            if is_ok(statuses[i]) and golden:
                prompt = prompts.object_questions_prompt(golden, self.max_questions, self.prompt)
                requests.append(self.request(None, prompt))
                where.append(i)
        raw, q_lists = [""] * n, [[] for _ in range(n)]
        if requests:
            for i, out in zip(where, self.generate(requests, rank), strict=True):
                raw[i] = out.text
                objects = textproc.parse_object_list(out.text, self.max_questions)
                for obj in objects:
                    q_lists[i] += [
                        prompts.detail_question(obj, self.detail_question),
                        prompts.position_question(obj, self.position_question),
                    ]
                if out.error:
                    statuses[i] = with_note(statuses[i], "question generation failed")
                elif not objects:
                    statuses[i] = with_note(statuses[i], "no follow-up questions")
                if out.truncated:  # the objects listed before the cut are asked about
                    statuses[i] = note_truncated(statuses[i], self.name)
        return {"raw_questions": raw, "q_list": q_lists, STATUS: statuses}


@dataclass(frozen=True)
class AnswerStage(ModelStage):
    """Stage 5: ``raw_answers`` (aligned with ``q_list``) from one batched generate per map batch.

    ``answer_batch_size`` caps the requests per forward pass; ``None`` sends all questions of all
    images of the map batch together.
    """

    name = "dense_answers"
    version = "2"  # truncated answers are noted
    status_column = STATUS
    image_column: str = "image"
    image_policy: ImagePolicy = ImagePolicy()
    answer_batch_size: int | None = None
    prompt: str = prompts.DETAIL_ANSWER_PROMPT

    def features(self) -> Features:
        return Features({"raw_answers": STRINGS, STATUS: Value("string")})

    def process(self, batch: dict[str, list], rank: int | None = None) -> dict[str, list]:
        n = len(batch[STATUS])
        statuses = list(batch[STATUS])
        requests, owners = [], []
        for i in range(n):
            if not is_ok(statuses[i]) or not batch["q_list"][i]:
                continue
            image, status = load_image(batch[self.image_column][i], self.image_policy)
            if status != OK:  # pragma: no cover - stage 1 already checked the image
                statuses[i] = status
                continue
            for question in batch["q_list"][i]:
                requests.append(
                    self.request(image, prompts.detail_answer_prompt(question, self.prompt))
                )
                owners.append(i)
        answers: list[list[str]] = [[] for _ in range(n)]
        failed, cut = [0] * n, [False] * n
        if requests:
            outs = self.generate(requests, rank, batch_size=self.answer_batch_size or len(requests))
            for i, out in zip(owners, outs, strict=True):
                answers[i].append(out.text.strip())
                failed[i] += bool(out.error)
                cut[i] = cut[i] or out.truncated
        for i in range(n):
            if failed[i]:
                statuses[i] = with_note(statuses[i], f"{failed[i]} answers failed")
            if cut[i]:  # their sentences are still checked one by one
                statuses[i] = note_truncated(statuses[i], self.name)
        return {"raw_answers": answers, STATUS: statuses}


@dataclass(frozen=True)
class DetailCheckStage(_CheckingStage):
    """Stage 6: ``final_details``: each answer's supported sentences (answers left empty dropped).

    Same checker as stage 3; for ``"contrastive"`` the context of a sentence is the question's
    prompt and the answer before it.
    """

    name = "dense_check_details"
    version = "2"  # an unreadable cut verdict is noted
    status_column = STATUS
    answer_prompt: str = prompts.DETAIL_ANSWER_PROMPT

    def features(self) -> Features:
        return Features({"final_details": STRINGS, STATUS: Value("string")})

    def process(self, batch: dict[str, list], rank: int | None = None) -> dict[str, list]:
        n = len(batch[STATUS])
        statuses = list(batch[STATUS])
        jobs: list[CheckJob] = []
        owners: list[tuple[int, int]] = []
        for i in range(n):
            if not is_ok(statuses[i]) or not batch["raw_answers"][i]:
                continue
            image, status = load_image(batch[self.image_column][i], self.image_policy)
            if status != OK:  # pragma: no cover - stage 1 already checked the image
                statuses[i] = status
                continue
            pairs = zip(batch["q_list"][i], batch["raw_answers"][i], strict=True)
            for k, (question, answer) in enumerate(pairs):
                prompt = prompts.detail_answer_prompt(question, self.answer_prompt)
                for prefix, sentence in locate_sentences(answer, textproc.split_sentences(answer)):
                    jobs.append(CheckJob(image, prompt, prefix, sentence))
                    owners.append((i, k))
        results = self._check(jobs, rank)
        kept: dict[tuple[int, int], list[str]] = {}
        checked = [0] * n
        for (i, k), job, result in zip(owners, jobs, results, strict=True):
            checked[i] += 1
            if is_supported(result.score, self.checker, self.threshold):
                kept.setdefault((i, k), []).append(job.sentence)
        details: list[list[str]] = [[] for _ in range(n)]
        for (i, _k), sentences in sorted(kept.items()):
            details[i].append(textproc.join_sentences(sentences))
        cut = self._cut_rows(n, [i for i, _ in owners], results)
        for i in range(n):
            if checked[i] and not details[i]:
                statuses[i] = with_note(statuses[i], "no detail survived the check")
            if cut[i]:
                statuses[i] = note_truncated(statuses[i], self.name)
        return {"final_details": details, STATUS: statuses}


@dataclass(frozen=True)
class FuseStage(ModelStage):
    """Stage 7: ``final_caption`` fused from ``golden_sentences`` and ``final_details``.

    A text-only request. Rows with no golden sentence keep their initial caption as the final
    caption (status ``no_golden_sentences: ...`` or ``check_error: ...``: it is unchecked). When fusion fails or returns
    nothing, the checked texts joined are the final caption (status note).
    """

    name = "dense_fuse"
    version = "2"  # a truncated fusion falls back to the checked texts joined
    status_column = STATUS
    prompt: str = prompts.FUSE_CAPTION_PROMPT

    def features(self) -> Features:
        return Features({"final_caption": Value("string"), STATUS: Value("string")})

    def process(self, batch: dict[str, list], rank: int | None = None) -> dict[str, list]:
        n = len(batch[STATUS])
        statuses = list(batch[STATUS])
        finals = [""] * n
        requests, where = [], []
        for i in range(n):
            golden, details = batch["golden_sentences"][i], batch["final_details"][i]
            if is_ok(statuses[i]) and (golden or details):
                text = prompts.fuse_caption_prompt(golden, details, self.prompt)
                requests.append(self.request(None, text))
                where.append(i)
            else:  # nothing survived the check (or the row failed before): keep what there is
                finals[i] = (batch["init_caption"][i] or "").strip()
                if statuses[i] == NO_GOLDEN:
                    statuses[i] = f"{NO_GOLDEN}: final caption is the unchecked initial caption"
        if requests:
            for i, out in zip(where, self.generate(requests, rank), strict=True):
                text = out.text.strip()
                # failed, empty or cut (incomplete): the checked texts joined instead
                if out.error or not text or out.truncated:
                    why = "failed" if out.error else "was empty" if not text else None
                    joined = batch["golden_sentences"][i] + batch["final_details"][i]
                    text = textproc.join_sentences(joined)
                    statuses[i] = (
                        with_note(statuses[i], f"fusion {why}, checked texts joined")
                        if why
                        else note_truncated(statuses[i], self.name)
                    )
                finals[i] = text
        return {"final_caption": finals, STATUS: statuses}


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


__all__ = [
    "AnswerStage",
    "CheckJob",
    "DenseCaptionConfig",
    "DetailCheckStage",
    "FuseStage",
    "InitCaptionStage",
    "QuestionStage",
    "SentenceCheckStage",
    "SplitStage",
    "add_dense_captions",
    "check_sentences",
    "dense_caption_stages",
    "is_supported",
]
