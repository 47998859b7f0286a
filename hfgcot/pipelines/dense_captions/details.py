"""Stages 6-7 of the dense captions: the answers checked like the caption, then one fused caption."""

from __future__ import annotations

from dataclasses import dataclass

from datasets import Features, Value

from hfgcot import prompts
from hfgcot.model.endpoint import failure_note
from hfgcot.parsing import captions as textproc
from hfgcot.pipelines.base import ModelStage
from hfgcot.pipelines.dense_captions.base import (
    NO_GOLDEN,
    STATUS,
    STRINGS,
    CheckingStage,
    note_cut_rows,
)
from hfgcot.pipelines.self_check import CheckJob, is_supported, locate_sentences
from hfgcot.status import is_ok, note_truncated, with_note


@dataclass(frozen=True)
class DetailCheckStage(CheckingStage):
    """Stage 6: ``final_details``: each answer's supported sentences (answers left empty dropped).

    Same checker as stage 3; for ``"contrastive"`` the context of a sentence is the question's
    prompt and the answer before it.
    """

    name = "dense_check_details"
    version = "4"  # v2: a cut verdict noted; v3: model text neutralised; v4: failed checks noted
    status_column = STATUS
    answer_prompt: str = prompts.DETAIL_ANSWER_PROMPT

    def features(self) -> Features:
        return Features({"final_details": STRINGS, STATUS: Value("string")})

    def process(self, batch: dict[str, list], rank: int | None = None) -> dict[str, list]:
        n = len(batch[STATUS])
        statuses = list(batch[STATUS])
        jobs: list[CheckJob] = []
        owners: list[tuple[int, int]] = []
        for i, image in self.images_of(batch, statuses, "raw_answers"):
            pairs = zip(batch["q_list"][i], batch["raw_answers"][i], strict=True)
            for k, (question, answer) in enumerate(pairs):
                prompt = prompts.detail_answer_prompt(question, self.answer_prompt)
                for prefix, sentence in locate_sentences(answer, textproc.split_sentences(answer)):
                    jobs.append(CheckJob(image, prompt, prefix, sentence))
                    owners.append((i, k))
        results = self.check(jobs, rank)
        kept: dict[tuple[int, int], list[str]] = {}
        checked = [0] * n
        errors: list[list[str]] = [[] for _ in range(n)]
        for (i, k), job, result in zip(owners, jobs, results, strict=True):
            checked[i] += 1
            if result.error:
                errors[i].append(result.error)
            if is_supported(result.score, self.checker, self.threshold):
                kept.setdefault((i, k), []).append(job.sentence)
        details: list[list[str]] = [[] for _ in range(n)]
        for (i, _k), sentences in sorted(kept.items()):
            details[i].append(textproc.join_sentences(sentences))
        for i in range(n):
            if errors[i]:
                note = failure_note(f"{len(errors[i])} detail checks failed", errors[i])
                statuses[i] = with_note(statuses[i], note)
            if checked[i] and not details[i]:
                statuses[i] = with_note(statuses[i], "no detail survived the check")
        note_cut_rows(statuses, self.cut_rows(n, [i for i, _ in owners], results), self.name)
        return {"final_details": details, STATUS: statuses}


@dataclass(frozen=True)
class FuseStage(ModelStage):
    """Stage 7: ``final_caption`` fused from ``golden_sentences`` and ``final_details``.

    A text-only request. Rows with no golden sentence keep their initial caption as the final
    caption (status ``no_golden_sentences: ...`` or ``check_error: ...``: it is unchecked). When
    fusion fails or returns nothing, the checked texts joined are the final caption (status note).
    """

    name = "dense_fuse"
    version = "3"  # v2: a truncated fusion falls back to the checked texts; v3: neutralised
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
                    note = failure_note(f"fusion {why}, checked texts joined", [out.error])
                    statuses[i] = (
                        with_note(statuses[i], note)
                        if why
                        else note_truncated(statuses[i], self.name)
                    )
                finals[i] = text
        return {"final_caption": finals, STATUS: statuses}
