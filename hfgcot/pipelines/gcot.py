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
import os
from dataclasses import dataclass
from typing import Any, Literal

from datasets import Dataset, Features, List, Value

from hfgcot import prompts
from hfgcot.geometry.frames import Frame, box_area
from hfgcot.images import ImagePolicy, load_image
from hfgcot.model.spec import DEFAULT_MODEL, ModelSpec, model_spec
from hfgcot.model.vlm import Request
from hfgcot.parsing import gcot_text
from hfgcot.parsing import grounding as parsing
from hfgcot.parsing.phrases import dedupe, phrase_key
from hfgcot.pipelines.base import OK, ModelStage, PipelineConfig, Stage, cell_text, validate_choices
from hfgcot.run.local import run_model_pipeline, status_summary

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


def _first_problem(*statuses: str) -> str:
    return next((s for s in statuses if s != OK), OK)


@dataclass(frozen=True)
class ReasoningStage(ModelStage):
    """Stage 1: ``raw_cot_output`` and ``gcot_status`` for every row."""

    name = "gcot_reasoning"
    status_column = STATUS
    image_column: str = "image"
    question_column: str = "question"
    answer_column: str = "answer"
    image_policy: ImagePolicy = ImagePolicy()
    max_question_chars: int = 4000

    def features(self) -> Features:
        return Features({"raw_cot_output": Value("string"), STATUS: Value("string")})

    def _text_status(self, question: str, answer: str) -> str:
        if not question:
            return "empty_question"
        if len(question) > self.max_question_chars:
            return f"question_too_long: {len(question)} chars"
        return OK if answer else "empty_answer"

    def __call__(self, batch: dict[str, list], rank: int | None = None) -> dict[str, list]:
        n = len(batch[self.image_column])
        statuses, requests, where = [OK] * n, [], []
        for i in range(n):
            question = cell_text(batch[self.question_column][i])
            answer = cell_text(batch[self.answer_column][i])
            image, status = load_image(batch[self.image_column][i], self.image_policy)
            status = _first_problem(status, self._text_status(question, answer))
            statuses[i] = status
            if status == OK:
                requests.append(Request(image, prompts.gcot_prompt(question, answer)))
                where.append(i)
        raw = [""] * n
        if requests:
            outs = self.vlm(rank).generate(requests, self.generation, batch_size=self.batch_size)
            for i, out in zip(where, outs, strict=True):
                raw[i] = out.text
                if out.error:
                    statuses[i] = f"generation_error: {out.error[:200]}"
        return {"raw_cot_output": raw, STATUS: statuses}


@dataclass(frozen=True)
class ParseStage(Stage):
    """Stage 2: ``cleaned_cot`` and ``extracted_keywords`` (adjacent keywords merged)."""

    name = "gcot_parse"
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

    def __call__(self, batch: dict[str, list], rank: int | None = None) -> dict[str, list]:
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
    status_column = STATUS
    image_column: str = "image"
    keywords_column: str = "extracted_keywords"
    max_keywords: int = 16
    image_policy: ImagePolicy = ImagePolicy()
    mode: GroundingMode = "per_keyword"

    def _requests(self, image: Any, phrases: list[str]) -> list[tuple[Request, str | None]]:
        if self.mode == "joint":
            return [(Request(image, prompts.joint_grounding_prompt(phrases)), None)]
        return [(Request(image, prompts.grounding_prompt(p)), p) for p in phrases]

    def features(self) -> Features:
        return Features({"groundings": GROUNDING_FEATURE, STATUS: Value("string")})

    def __call__(self, batch: dict[str, list], rank: int | None = None) -> dict[str, list]:
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
            for request, phrase in self._requests(image, phrases_of[i]):
                requests.append(request)
                owners.append((i, phrase))
        groundings: list[list[dict[str, Any]]] = [[] for _ in range(n)]
        if requests:
            vlm = self.vlm(rank)
            outs = vlm.generate(requests, self.generation, batch_size=self.batch_size)
            for (i, kw), out in zip(owners, outs, strict=True):
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
            if not groundings[i]:
                statuses[i] = "no_groundings"
            elif total > len(phrases_of[i]):
                statuses[i] = f"ok: grounded the first {len(phrases_of[i])} of {total} keywords"
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
    """Stage 4: ``gcot`` = ``cleaned_cot`` with each phrase's box(es) after its first mention."""

    name = "gcot_inject"
    box_space: BoxSpace = "pixels"
    image_column: str = "image"

    def features(self) -> Features:
        return Features({"gcot": Value("string")})

    def __call__(self, batch: dict[str, list], rank: int | None = None) -> dict[str, list]:
        out = []
        for i, (cot, groundings) in enumerate(
            zip(batch["cleaned_cot"], batch["groundings"], strict=True)
        ):
            size = None
            if self.box_space == "normalized" and groundings:
                image, _ = load_image(batch[self.image_column][i])
                size = image.size if image is not None else None
            boxes: dict[str, list[str]] = {}
            for g in groundings:
                key = "bbox_model" if self.box_space == "model" else "bbox"
                boxes.setdefault(g["phrase"], []).append(format_box(g[key], self.box_space, size))
            annotations = [
                (phrase, strs[0] if len(strs) == 1 else "[" + ", ".join(strs) + "]")
                for phrase, strs in boxes.items()
            ]
            out.append(gcot_text.inject_groundings(cot or "", annotations))
        return {"gcot": out}


@dataclass(frozen=True)
class GCoTConfig(PipelineConfig):
    """Every setting of the GCoT pipeline (typed, validated; part of each stage's fingerprint).

    Example:
        >>> GCoTConfig(batch_size=4, box_space="normalized").box_space
        'normalized'
    """

    image_column: str = "image"
    question_column: str = "question"
    answer_column: str = "answer"
    batch_size: int = 8
    max_new_tokens: int = 512
    grounding_max_new_tokens: int = 128
    do_sample: bool = False
    temperature: float = 0.7
    top_p: float = 0.9
    seed: int = 0
    cache_implementation: str | None = None
    box_space: BoxSpace = "pixels"
    grounding: GroundingMode = "per_keyword"
    max_keywords: int = 16
    merge_max: int = 3
    max_question_chars: int = 4000
    min_image_side: int = 28
    max_aspect_ratio: float = 200.0
    num_proc: int | None = None

    def __post_init__(self) -> None:
        validate_choices(self)
        for name in ("batch_size", "max_new_tokens", "grounding_max_new_tokens", "max_keywords"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.num_proc is not None and self.num_proc < 1:
            raise ValueError(f"num_proc must be None or >= 1, got {self.num_proc}")


def gcot_stages(config: GCoTConfig, spec: ModelSpec) -> list[Stage]:
    """The four stages of the pipeline for ``config`` (used by :func:`add_gcot`, Ray and resume)."""
    common = {"model": spec, "batch_size": config.batch_size}
    return [
        ReasoningStage(
            **common,
            generation=config.generation(),
            image_column=config.image_column,
            question_column=config.question_column,
            answer_column=config.answer_column,
            image_policy=config.image_policy,
            max_question_chars=config.max_question_chars,
        ),
        ParseStage(merge_max=config.merge_max),
        GroundingStage(
            **common,
            generation=config.generation(config.grounding_max_new_tokens),
            image_column=config.image_column,
            max_keywords=config.max_keywords,
            image_policy=config.image_policy,
            mode=config.grounding,
        ),
        InjectStage(box_space=config.box_space, image_column=config.image_column),
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
    *,
    image_column: str = "image",
    question_column: str = "question",
    answer_column: str = "answer",
    batch_size: int = 8,
    max_new_tokens: int = 512,
    grounding_max_new_tokens: int = 128,
    do_sample: bool = False,
    temperature: float = 0.7,
    top_p: float = 0.9,
    seed: int = 0,
    box_space: BoxSpace = "pixels",
    grounding: GroundingMode = "per_keyword",
    max_keywords: int = 16,
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
    config: GCoTConfig | None = None,
) -> Dataset:
    """Add Grounded Chain-of-Thought columns to an image/question/answer dataset.

    Four chained ``Dataset.map`` stages (reasoning, parsing, grounding, injection), each with a
    deterministic fingerprint, so rerunning on a saved dataset reuses the cache. Every input row is
    kept, in order; ``gcot_status`` says ``"ok"`` or why a row has no grounded reasoning.

    Args:
        dataset: rows with an image (``Image()`` feature or paths), a question and an answer.
        model: Hub id, local folder, or a VLM from :func:`hfgcot.load_vlm`.
        box_space: how boxes are written into ``gcot``: ``"pixels"`` (original image),
            ``"model"`` (as the model wrote them) or ``"normalized"`` (0..1).
        grounding: ``"per_keyword"`` (one request per keyword) or ``"joint"`` (one request per
            image for all keywords, labels mapped back to keywords).
        num_proc: map worker processes, one model each (one per GPU: ``cuda:{rank % n}``).
        checkpoint_dir: resume after a crash: the run is saved in shards of ``shard_size`` rows
            with completion markers; a rerun with the same arguments skips finished shards.
        sort_window: process rows sorted by image size within windows of this many rows (less
            padding in each batch); the output keeps the input order.
        config: a :class:`GCoTConfig`; when given, it replaces the keyword settings above.

    Returns:
        The dataset with ``raw_cot_output``, ``cleaned_cot``, ``extracted_keywords``,
        ``groundings`` (``[{"phrase", "bbox", "bbox_model"}]``, ``bbox`` in original pixels
        ``[x1, y1, x2, y2]``), ``gcot`` and ``gcot_status``.

    Example:
        >>> ds = add_gcot(ds, model="Qwen/Qwen2.5-VL-3B-Instruct", batch_size=16)  # doctest: +SKIP
        >>> ds[0]["gcot"]                                                            # doctest: +SKIP
        'Step 1: The red ball [12, 40, 88, 117] is on the left ...'
    """
    if config is None:
        config = GCoTConfig(
            image_column=image_column,
            question_column=question_column,
            answer_column=answer_column,
            batch_size=batch_size,
            max_new_tokens=max_new_tokens,
            grounding_max_new_tokens=grounding_max_new_tokens,
            do_sample=do_sample,
            temperature=temperature,
            top_p=top_p,
            seed=seed,
            box_space=box_space,
            grounding=grounding,
            max_keywords=max_keywords,
            num_proc=num_proc,
        )
    for column in (config.question_column, config.answer_column):
        if column not in dataset.column_names:
            raise KeyError(f"column {column!r} not in dataset (columns: {dataset.column_names})")
    load = {
        "revision": revision,
        "dtype": dtype,
        "device": device,
        "attn_implementation": attn_implementation,
        "min_pixels": min_pixels,
        "max_pixels": max_pixels,
    }
    return run_model_pipeline(
        "gcot",
        dataset,
        model,
        config,
        gcot_stages,
        status_column=STATUS,
        load_kwargs=load,
        run_kwargs={
            "checkpoint_dir": checkpoint_dir,
            "shard_size": shard_size,
            "sort_window": sort_window,
        },
        boxes="`groundings[].bbox`: original-image pixels [x1, y1, x2, y2]; `bbox_model`: the "
        f"numbers the model wrote; boxes in the `gcot` text: {config.box_space}.",
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
    "gcot_stages",
    "gcot_summary",
    "ground_boxes",
    "model_spec",
]
