"""Stages 1-3 of the dense captions: the caption, its sentences, the sentences the image supports."""

from __future__ import annotations

from dataclasses import dataclass

from datasets import Features, List, Value

from hfgcot import prompts
from hfgcot.images import load_image
from hfgcot.model.endpoint import error_status, failure_note, retry_error
from hfgcot.parsing import captions as textproc
from hfgcot.pipelines.base import Stage
from hfgcot.pipelines.dense_captions.base import (
    NO_GOLDEN,
    STATUS,
    STRINGS,
    CheckingStage,
    ImageStage,
    note_cut_rows,
)
from hfgcot.pipelines.self_check import CheckJob, is_supported, locate_sentences
from hfgcot.status import (
    OK,
    is_ok,
    note_truncated,
    truncated_output,
    truncated_stage,
    with_note,
)


@dataclass(frozen=True)
class InitCaptionStage(ImageStage):
    """Stage 1: ``init_caption`` and ``dense_caption_status`` for every row."""

    name = "dense_init_caption"
    version = "2"  # a truncated caption is noted
    status_column = STATUS
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
class SentenceCheckStage(CheckingStage):
    """Stage 3: ``golden_sentences`` (supported by the image) and ``sentence_scores``.

    ``sentence_scores`` is aligned with ``sentences``: ``1.0``/``0.0`` (yes/no) or the
    contrastive score; ``None`` where the check could not decide.
    """

    name = "dense_check_sentences"
    # v2: a verdict lost to a cut is noted; v3: model text neutralised in prompts; v4: no golden
    # sentence from a cut caption is truncated_output, not no_golden_sentences
    version = "4"
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
        for i, image in self.images_of(batch, statuses, "sentences"):
            caption = batch["init_caption"][i]
            for prefix, sentence in locate_sentences(caption, batch["sentences"][i]):
                caption_prompt = prompts.dense_caption_prompt(self.caption_prompt)
                jobs.append(CheckJob(image, caption_prompt, prefix, sentence))
                owners.append(i)
        results = self.check(jobs, rank)
        scores: list[list[float | None]] = [[] for _ in range(n)]
        golden: list[list[str]] = [[] for _ in range(n)]
        errors: list[list[str | None]] = [[] for _ in range(n)]
        for i, job, result in zip(owners, jobs, results, strict=True):
            scores[i].append(result.score)
            errors[i].append(result.error)
            if is_supported(result.score, self.checker, self.threshold):
                golden[i].append(job.sentence)
        cut = self.cut_rows(n, owners, results)
        for i in range(n):
            if is_ok(statuses[i]) and errors[i]:  # a row with sentences checked
                statuses[i] = self.row_status(statuses[i], golden[i], errors[i], cut[i])
        note_cut_rows(statuses, cut, self.name)
        return {"golden_sentences": golden, "sentence_scores": scores, STATUS: statuses}

    def row_status(
        self, status: str, golden: list[str], errors: list[str | None], cut: bool
    ) -> str:
        """The status of a row whose sentences were checked: kept, noted or why none is golden."""
        error = retry_error(errors) or next((e for e in errors if e), None)
        if not golden and error and all(errors):
            return f"check_error: {error[:200]}"
        if not golden and cut:  # a verdict lost to a cut might have kept a sentence
            return truncated_output(self.name)
        if not golden:  # a caption cut mid-sentence may be why none was kept: say so
            earlier = truncated_stage(status)
            return truncated_output(earlier) if earlier else NO_GOLDEN
        if error:
            note = f"{sum(map(bool, errors))} sentence checks failed"
            return with_note(status, failure_note(note, errors))
        return status
