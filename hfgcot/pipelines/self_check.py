"""The visual self-check of the dense-caption pipeline: is a sentence supported by its image?

Two checkers, one batched model call each (:func:`check_sentences`):

- ``"yesno"`` asks the VLM (:func:`hfgcot.prompts.sentence_check_prompt`) and reads the verdict
  with :func:`hfgcot.parsing.replies.parse_yes_no`;
- ``"contrastive"`` compares the sentence's token log-probs with and without the image, the
  sentence teacher-forced after the text it was written after (:func:`locate_sentences`).

:func:`is_supported` turns a score into keep / drop.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

from hfgcot import prompts
from hfgcot.model.vlm import VLM, GenerationSettings, Request
from hfgcot.parsing.replies import parse_yes_no

Checker = Literal["yesno", "contrastive"]


def locate_sentences(text: str, sentences: Sequence[str]) -> list[tuple[str, str]]:
    """``(prefix, sentence)`` for each sentence: the text before it in ``text`` (teacher forcing).

    Sentences come from :func:`hfgcot.parsing.captions.split_sentences` of ``text``, so each is found in
    order; should one not be, the text up to the previous sentence is its prefix.
    """
    out, pos = [], 0
    for s in sentences:
        at = text.find(s, pos)
        if at < 0:  # pragma: no cover - sentences always come from ``text``
            out.append((text[:pos], s))
            continue
        out.append((text[:at], s))
        pos = at + len(s)
    return out


@dataclass(frozen=True)
class CheckJob:
    """One sentence to check: its image, the prompt and assistant text it was written after."""

    image: Any
    prompt: str
    prefix: str
    sentence: str


class CheckResult(NamedTuple):
    """The check of one sentence: ``score`` (``None``: undecided), ``error`` of the model call,
    ``truncated``: the yes/no answer was cut at its token budget before a verdict could be read."""

    score: float | None
    error: str | None = None
    truncated: bool = False


def check_sentences(
    vlm: VLM,
    jobs: Sequence[CheckJob],
    *,
    checker: Checker,
    generation: GenerationSettings,
    batch_size: int,
    max_batch_tokens: int | None = None,
    stage: str = "self_check",
    prompt: str = prompts.SENTENCE_CHECK_PROMPT,
    system_prompt: str | None = None,
) -> list[CheckResult]:
    """Score each sentence against its image: one :class:`CheckResult` per job, in order.

    - ``"yesno"``: the VLM answers whether the sentence is directly supported by the image
      (one batched generate); score ``1.0`` (yes), ``0.0`` (no) or ``None`` (undecidable).
    - ``"contrastive"``: mean over the sentence's tokens of ``log p(token | image, text so far)
      - log p(token | no image, text so far)``, from forward passes only (one batched call for
      both contexts); ``None`` when scoring failed.

    ``prompt`` is the yes/no template (``{sentence}``); ``system_prompt`` the system turn of
    every request (``None``: the chat template's own). ``batch_size``, ``max_batch_tokens`` and
    ``stage`` are the engine's batch limits and the name its out-of-memory backoff keeps.
    """
    limits = {"batch_size": batch_size, "max_batch_tokens": max_batch_tokens, "stage": stage}
    if not jobs:
        return []
    if checker == "yesno":
        requests = [
            Request(j.image, prompts.sentence_check_prompt(j.sentence, prompt), system_prompt)
            for j in jobs
        ]
        results: list[CheckResult] = []
        for out in vlm.generate(requests, generation, **limits):
            verdict = parse_yes_no(out.text) if not out.error else None
            if verdict is None:
                results.append(CheckResult(None, out.error, out.truncated and not out.error))
            else:  # read from the answer's first words: a cut after them does not matter
                results.append(CheckResult(float(verdict), out.error))
        return results
    requests, continuations, prefixes = [], [], []
    for j in jobs:
        for image in (j.image, None):
            requests.append(Request(image, j.prompt, system_prompt))
            continuations.append(j.sentence)
            prefixes.append(j.prefix)
    scores = vlm.continuation_logprobs(requests, continuations, prefixes, **limits)
    results = []
    for with_image, without in zip(scores[0::2], scores[1::2], strict=True):
        error = with_image.error or without.error
        if error or not with_image.logprobs or len(with_image.logprobs) != len(without.logprobs):
            results.append(CheckResult(None, error or "no tokens to score"))
            continue
        diffs = [a - b for a, b in zip(with_image.logprobs, without.logprobs, strict=True)]
        results.append(CheckResult(sum(diffs) / len(diffs)))
    return results


def is_supported(score: float | None, checker: Checker, threshold: float) -> bool:
    """Whether a sentence with ``score`` is kept: ``yes`` for yes/no, ``> threshold`` otherwise."""
    if score is None or math.isnan(score):
        return False
    return score == 1.0 if checker == "yesno" else score > threshold
