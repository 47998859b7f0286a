"""Grounded Chain-of-Thought (GCoT) as four chained ``Dataset.map`` stages.

1. :class:`ReasoningStage` - the VLM writes numbered reasoning towards the given answer, then a
   ``Keywords:`` line (``raw_cot_output``).
2. :class:`ParseStage` - reasoning without the keyword line (``cleaned_cot``) and the keywords,
   adjacent ones merged into phrases (``extracted_keywords``).
3. :class:`GroundingStage` - each distinct keyword of a row grounded by the same VLM; boxes converted
   from the model's frame to original pixels (``groundings``).
4. :class:`InjectStage` - boxes written after the first mention of each phrase (``gcot``).

    >>> from hfgcot import add_gcot
    >>> ds = add_gcot(ds, model="Qwen/Qwen2.5-VL-3B-Instruct")   # doctest: +SKIP
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal

from datasets import Dataset, Features, List, Value

from hfgcot import prompts
from hfgcot.geometry.frames import Frame, box_area
from hfgcot.images import ImagePolicy, load_image
from hfgcot.model.batching import is_out_of_memory
from hfgcot.model.endpoint import error_status, is_endpoint_error
from hfgcot.model.spec import DEFAULT_MODEL, ModelSpec, model_spec
from hfgcot.model.vlm import Request
from hfgcot.parsing import gcot_text
from hfgcot.parsing import grounding as parsing
from hfgcot.parsing.phrases import dedupe, phrase_key
from hfgcot.pipelines.base import ModelStage, Stage, cell_text
from hfgcot.pipelines.config import ModelPipelineConfig, option, prompt_option, split_options
from hfgcot.pipelines.runner import run_model_pipeline
from hfgcot.run.local import status_summary
from hfgcot.status import (
    EMPTY_QUESTION,
    OK,
    first_problem,
    note_truncated,
    truncated_output,
    with_note,
)

logger = logging.getLogger(__name__)

BoxSpace = Literal["pixels", "model", "normalized"]
GroundingMode = Literal["per_keyword", "joint"]
STATUS = "gcot_status"

GROUNDING_FEATURE = List(
    {
        "phrase": Value("string"),
        "bbox": List(Value("float64")),
        "bbox_model": List(Value("float64")),
    }
)


@dataclass(frozen=True)
class ReasoningStage(ModelStage):
    """Stage 1: ``raw_cot_output``, ``image_size`` (``[w, h]``, ``[]`` if unread), ``gcot_status``."""

    name = "gcot_reasoning"
    version = "3"  # v2: writes image_size; v3: truncated reasoning is truncated_output
    status_column = STATUS
    image_column: str = "image"
    question_column: str = "question"
    answer_column: str = "answer"
    image_policy: ImagePolicy = ImagePolicy()
    max_question_chars: int = 4000
    prompt: str = prompts.GCOT_PROMPT

    def features(self) -> Features:
        return Features(
            {
                "raw_cot_output": Value("string"),
                "image_size": List(Value("int64")),
                STATUS: Value("string"),
            }
        )

    def _text_status(self, question: str, answer: str) -> str:
        if not question:
            return EMPTY_QUESTION
        if len(question) > self.max_question_chars:
            return f"question_too_long: {len(question)} chars"
        return OK if answer else "empty_answer"

    def process(self, batch: dict[str, list], rank: int | None = None) -> dict[str, list]:
        n = len(batch[self.image_column])
        statuses, requests, where = [OK] * n, [], []
        sizes: list[list[int]] = [[] for _ in range(n)]
        for i in range(n):
            question = cell_text(batch[self.question_column][i])
            answer = cell_text(batch[self.answer_column][i])
            image, status = load_image(batch[self.image_column][i], self.image_policy)
            if image is not None:
                sizes[i] = list(image.size)
            status = first_problem(status, self._text_status(question, answer))
            statuses[i] = status
            if status == OK:
                requests.append(
                    self.request(image, prompts.gcot_prompt(question, answer, self.prompt))
                )
                where.append(i)
        raw = [""] * n
        if requests:
            for i, out in zip(where, self.generate(requests, rank), strict=True):
                raw[i] = out.text
                if out.error:
                    statuses[i] = error_status(out.error)
                elif out.truncated:  # the keyword line and the conclusion are cut
                    statuses[i] = truncated_output(self.name)
        return {"raw_cot_output": raw, "image_size": sizes, STATUS: statuses}


@dataclass(frozen=True)
class ParseStage(Stage):
    """Stage 2: ``cleaned_cot`` and ``extracted_keywords`` (adjacent keywords merged)."""

    name = "gcot_parse"
    version = "2"  # one phrase key for keyword de-duplication; Chinese keyword separators
    status_column = STATUS
    merge_max: int = 3

    def features(self) -> Features:
        return Features(
            {
                "cleaned_cot": Value("string"),
                "extracted_keywords": List(Value("string")),
                STATUS: Value("string"),
            }
        )

    def process(self, batch: dict[str, list], rank: int | None = None) -> dict[str, list]:
        cleaned, keywords, statuses = [], [], []
        for raw, status in zip(batch["raw_cot_output"], batch[STATUS], strict=True):
            cot, kws = gcot_text.parse_gcot(raw or "")
            kws = gcot_text.merge_keywords(kws, cot, max_join=self.merge_max) if kws else []
            cleaned.append(cot)
            keywords.append(kws)
            statuses.append(status if status != OK or kws else "no_keywords")
        return {"cleaned_cot": cleaned, "extracted_keywords": keywords, STATUS: statuses}


def ground_boxes(
    text: str, frame: Frame, family: str
) -> list[tuple[str | None, list[float], list[float]]]:
    """Parse a grounding answer into ``(label, bbox in original pixels, bbox as written)``.

    Boxes are clipped to the image and ordered; boxes with no area left after clipping are dropped.
    """
    out = []
    for parsed in parsing.parse_grounding(text):
        model_box = [float(v) for v in parsed.box]
        pixels = frame.box_to_pixels(model_box, family)
        if box_area(pixels) > 0:
            out.append((parsed.label, pixels, model_box))
    return out


@dataclass(frozen=True)
class GroundingStage(ModelStage):
    """Stage 3: every distinct keyword of a row grounded once; ``groundings`` in original pixels.

    ``mode="per_keyword"`` asks one request per keyword (every box of the answer belongs to it);
    ``mode="joint"`` asks one request per image for all keywords as a labelled JSON list and maps
    each label back to a keyword (:func:`hfgcot.parsing.grounding.match_label`; unmatched boxes are dropped).
    """

    name = "gcot_grounding"
    version = "3"  # v2: keywords de-duplicated by the phrase key; v3: truncation in the status
    status_column = STATUS
    image_column: str = "image"
    keywords_column: str = "extracted_keywords"
    max_keywords: int = 16
    image_policy: ImagePolicy = ImagePolicy()
    mode: GroundingMode = "per_keyword"
    prompt: str | None = None  # None: the model family's default
    joint_prompt: str | None = None

    def _requests(
        self, image: Any, phrases: list[str], rank: int | None
    ) -> list[tuple[Request, str | None]]:
        if self.mode == "joint":
            template = self.family_prompt("joint_grounding_prompt", self.joint_prompt, rank)
            text = prompts.joint_grounding_prompt(phrases, template)
            return [(self.request(image, text), None)]
        template = self.family_prompt("grounding_prompt", self.prompt, rank)
        return [(self.request(image, prompts.grounding_prompt(p, template)), p) for p in phrases]

    def features(self) -> Features:
        return Features({"groundings": GROUNDING_FEATURE, STATUS: Value("string")})

    def process(self, batch: dict[str, list], rank: int | None = None) -> dict[str, list]:
        n = len(batch[self.image_column])
        statuses = list(batch[STATUS])
        requests, owners = [], []
        phrases_of: list[list[str]] = [[] for _ in range(n)]
        for i in range(n):
            if statuses[i] != OK:
                continue
            image, status = load_image(batch[self.image_column][i], self.image_policy)
            if status != OK:  # pragma: no cover - stage 1 already checked the image
                statuses[i] = status
                continue
            phrases_of[i] = dedupe(batch[self.keywords_column][i])[: self.max_keywords]
            for request, phrase in self._requests(image, phrases_of[i], rank):
                requests.append(request)
                owners.append((i, phrase))
        groundings: list[list[dict[str, Any]]] = [[] for _ in range(n)]
        cut = [False] * n
        if requests:
            vlm = self.vlm(rank)
            for (i, kw), out in zip(owners, self.generate(requests, rank), strict=True):
                if out.error and (is_endpoint_error(out.error) or is_out_of_memory(out.error)):
                    statuses[i] = error_status(out.error)
                cut[i] = cut[i] or out.truncated
                if out.frame is None:
                    continue
                for label, pixels, model_box in ground_boxes(out.text, out.frame, vlm.family):
                    phrase = kw if kw is not None else parsing.match_label(label, phrases_of[i])
                    if phrase is not None:
                        groundings[i].append(
                            {"phrase": phrase, "bbox": pixels, "bbox_model": model_box}
                        )
        for i in range(n):
            if statuses[i] != OK:
                continue
            total = len(batch[self.keywords_column][i])
            if not groundings[i]:  # boxes written before a cut are complete: kept
                statuses[i] = truncated_output(self.name) if cut[i] else "no_groundings"
                continue
            if total > len(phrases_of[i]):
                note = f"grounded the first {len(phrases_of[i])} of {total} keywords"
                statuses[i] = with_note(statuses[i], note)
            if cut[i]:
                statuses[i] = note_truncated(statuses[i], self.name)
        return {"groundings": groundings, STATUS: statuses}


def format_box(box: list[float], space: BoxSpace, frame_size: tuple[int, int] | None = None) -> str:
    """``[x1, y1, x2, y2]`` as written into the reasoning: integers, or 3 decimals when normalized."""
    if space == "normalized":
        if frame_size is None:
            raise ValueError("normalized boxes need the image size")
        w, h = frame_size
        vals = [box[0] / w, box[1] / h, box[2] / w, box[3] / h]
        return "[" + ", ".join(f"{v:.3f}" for v in vals) + "]"
    return "[" + ", ".join(str(round(v)) for v in box) + "]"


@dataclass(frozen=True)
class InjectStage(Stage):
    """Stage 4: ``gcot`` = ``cleaned_cot`` with each phrase's box(es) after its first mention.

    ``box_space="normalized"`` divides by the ``image_size`` stage 1 recorded (the image is not
    read again); a row with boxes but no recorded size gets ``missing_image_size`` and no boxes.
    """

    name = "gcot_inject"
    version = "3"  # v2: normalized boxes from the recorded size; v3: the one final-answer rule
    status_column = STATUS
    box_space: BoxSpace = "pixels"

    def features(self) -> Features:
        return Features({"gcot": Value("string"), STATUS: Value("string")})

    def process(self, batch: dict[str, list], rank: int | None = None) -> dict[str, list]:
        out, statuses = [], list(batch[STATUS])
        sizes = batch.get("image_size") or [None] * len(statuses)
        for i, (cot, groundings) in enumerate(
            zip(batch["cleaned_cot"], batch["groundings"], strict=True)
        ):
            size = (
                tuple(sizes[i]) if sizes[i] and len(sizes[i]) == 2 and min(sizes[i]) > 0 else None
            )
            if self.box_space == "normalized" and groundings and size is None:
                statuses[i] = "missing_image_size" if statuses[i] == OK else statuses[i]
                groundings = []
            boxes: dict[str, list[str]] = {}
            for g in groundings:
                key = "bbox_model" if self.box_space == "model" else "bbox"
                boxes.setdefault(g["phrase"], []).append(format_box(g[key], self.box_space, size))
            annotations = [
                (phrase, strs[0] if len(strs) == 1 else "[" + ", ".join(strs) + "]")
                for phrase, strs in boxes.items()
            ]
            out.append(gcot_text.inject_groundings(cot or "", annotations))
        return {"gcot": out, STATUS: statuses}


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


__all__ = [
    "GCoTConfig",
    "GroundingStage",
    "InjectStage",
    "ParseStage",
    "ReasoningStage",
    "add_gcot",
    "boxes_note",
    "gcot_stages",
    "gcot_summary",
    "ground_boxes",
    "model_spec",
]
