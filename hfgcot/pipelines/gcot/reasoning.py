"""Stages 1-2 of GCoT: the reasoning towards the given answer, and its keywords."""

from __future__ import annotations

from dataclasses import dataclass

from datasets import Features, List, Value

from hfgcot import prompts
from hfgcot.images import ImagePolicy, load_image
from hfgcot.model.endpoint import error_status
from hfgcot.parsing import gcot_text
from hfgcot.pipelines.base import ModelStage, Stage
from hfgcot.status import EMPTY_QUESTION, OK, first_problem, truncated_output
from hfgcot.untrusted import cell_text

STATUS = "gcot_status"
"""The status column: stage 1 starts it, every later stage passes it on."""


@dataclass(frozen=True)
class ReasoningStage(ModelStage):
    """Stage 1: ``raw_cot_output``, ``image_size`` (``[w, h]``, ``[]`` if unread), ``gcot_status``."""

    name = "gcot_reasoning"
    version = "4"  # v2: image_size; v3: truncated_output; v4: text neutralised, blank questions
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
    version = "3"  # v2: phrase key, Chinese separators; v3: CJK characters bound words
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
