"""Stages 4-5 of the dense captions: follow-up questions about the objects, and their answers."""

from __future__ import annotations

from dataclasses import dataclass

from datasets import Features, Value

from hfgcot import prompts
from hfgcot.model.endpoint import failure_note
from hfgcot.parsing import captions as textproc
from hfgcot.pipelines.base import ModelStage
from hfgcot.pipelines.dense_captions.base import STATUS, STRINGS, ImageStage, note_cut_rows
from hfgcot.status import is_ok, with_note


@dataclass(frozen=True)
class QuestionStage(ModelStage):
    """Stage 4: follow-up questions about the objects of the golden sentences (``q_list``).

    A text-only request; the answer is parsed by :func:`hfgcot.parsing.captions.parse_object_list` into
    at most ``max_questions`` distinct objects, each giving a "more details" question and its
    "position of" variant, in that order.
    """

    name = "dense_questions"
    version = "3"  # v2: a truncated object list is noted; v3: model text neutralised
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
        cut = [False] * n  # the objects listed before a cut are asked about
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
                    note = failure_note("question generation failed", [out.error])
                    statuses[i] = with_note(statuses[i], note)
                elif not objects:
                    statuses[i] = with_note(statuses[i], "no follow-up questions")
                cut[i] = out.truncated
        note_cut_rows(statuses, cut, self.name)
        return {"raw_questions": raw, "q_list": q_lists, STATUS: statuses}


@dataclass(frozen=True)
class AnswerStage(ImageStage):
    """Stage 5: ``raw_answers`` (aligned with ``q_list``) from one batched generate per map batch.

    ``answer_batch_size`` caps the requests per forward pass; ``None`` sends all questions of all
    images of the map batch together.
    """

    name = "dense_answers"
    version = "3"  # v2: truncated answers are noted; v3: model text neutralised in prompts
    status_column = STATUS
    answer_batch_size: int | None = None
    prompt: str = prompts.DETAIL_ANSWER_PROMPT

    def features(self) -> Features:
        return Features({"raw_answers": STRINGS, STATUS: Value("string")})

    def process(self, batch: dict[str, list], rank: int | None = None) -> dict[str, list]:
        n = len(batch[STATUS])
        statuses = list(batch[STATUS])
        requests, owners = [], []
        for i, image in self.images_of(batch, statuses, "q_list"):
            for question in batch["q_list"][i]:
                requests.append(
                    self.request(image, prompts.detail_answer_prompt(question, self.prompt))
                )
                owners.append(i)
        answers: list[list[str]] = [[] for _ in range(n)]
        errors: list[list[str]] = [[] for _ in range(n)]
        cut = [False] * n
        if requests:
            outs = self.generate(requests, rank, batch_size=self.answer_batch_size or len(requests))
            for i, out in zip(owners, outs, strict=True):
                answers[i].append(out.text.strip())
                if out.error:
                    errors[i].append(out.error)
                cut[i] = cut[i] or out.truncated
        for i in range(n):
            if errors[i]:
                note = failure_note(f"{len(errors[i])} answers failed", errors[i])
                statuses[i] = with_note(statuses[i], note)
        note_cut_rows(statuses, cut, self.name)  # their sentences are still checked one by one
        return {"raw_answers": answers, STATUS: statuses}
