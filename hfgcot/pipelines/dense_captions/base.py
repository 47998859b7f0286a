"""What the dense-caption stages share: the status column, reading the image of a row still in
play, noting cut answers, and the self-check stage that stages 3 and 6 are made of.

    >>> statuses = ["ok", "ok: 1 answers failed", "empty_caption"]
    >>> note_cut_rows(statuses, [True, True, True], "dense_answers")
    >>> statuses
    ['ok: truncated dense_answers', 'ok: 1 answers failed; truncated dense_answers', 'empty_caption']
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from datasets import List, Value

from hfgcot import prompts
from hfgcot.images import ImagePolicy, load_image
from hfgcot.model.endpoint_client import require_prompt_logprobs
from hfgcot.pipelines.base import ModelStage
from hfgcot.pipelines.self_check import Checker, CheckJob, CheckResult, check_sentences
from hfgcot.status import OK, is_ok, note_truncated

STATUS = "dense_caption_status"
NO_GOLDEN = "no_golden_sentences"

STRINGS = List(Value("string"))
"""Arrow type of the list-of-texts columns (``sentences``, ``q_list``, ``final_details``...)."""


def note_cut_rows(statuses: list[str], cut: Sequence[bool], stage: str) -> None:
    """Note on each usable row ``i`` with ``cut[i]`` that an answer of ``stage`` was cut (in place;
    a problem status is kept, see :func:`hfgcot.status.note_truncated`)."""
    for i, was_cut in enumerate(cut):
        if was_cut:
            statuses[i] = note_truncated(statuses[i], stage)


@dataclass(frozen=True)
class ImageStage(ModelStage):
    """A dense-caption model stage that reads the image of each row."""

    image_column: str = "image"
    image_policy: ImagePolicy = ImagePolicy()

    def images_of(
        self, batch: dict[str, list], statuses: list[str], needs: str
    ) -> Iterator[tuple[int, Any]]:
        """``(row, image)`` for each row that is still ok and has something in column ``needs``.

        A row whose image cannot be read gets the reader's status in ``statuses`` instead (stage
        1 already read every image, so this only happens if the image changed in between).
        """
        for i in range(len(statuses)):
            if not is_ok(statuses[i]) or not batch[needs][i]:
                continue
            image, status = load_image(batch[self.image_column][i], self.image_policy)
            if status != OK:  # pragma: no cover - stage 1 already checked the image
                statuses[i] = status
                continue
            yield i, image


@dataclass(frozen=True)
class CheckingStage(ImageStage):
    """Shared by the two self-check stages: the checker, its threshold and the batched check."""

    checker: Checker = "yesno"
    threshold: float = 0.0
    check_prompt: str = prompts.SENTENCE_CHECK_PROMPT

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.checker == "contrastive":  # a served model must score text: asked before any row
            require_prompt_logprobs(self.model)

    def check(self, jobs: list[CheckJob], rank: int | None) -> list[CheckResult]:
        """Every job of the batch in one call of :func:`hfgcot.pipelines.self_check.check_sentences`."""
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
    def cut_rows(n: int, rows: list[int], results: list[CheckResult]) -> list[bool]:
        """Rows (``rows[j]`` owns job ``j``) with a yes/no answer cut before its verdict."""
        cut = [False] * n
        for i, result in zip(rows, results, strict=True):
            cut[i] = cut[i] or result.truncated
        return cut
