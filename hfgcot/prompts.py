"""Prompts of every pipeline (pure: no torch).

Prompts are data: each has a version in :data:`PROMPT_VERSION`, and the version plus the text are
part of every stage's fingerprint, so changing a prompt never reuses stale cached results.

    >>> gcot_prompt("What colour is the ball?", "red").startswith("Question:")
    True
    >>> grounding_prompt("red ball")
    'Locate every "red ball" in the image. Output the bounding boxes in JSON format: [{"bbox_2d": [x1, y1, x2, y2], "label": "red ball"}].'
"""

from __future__ import annotations

PROMPT_VERSION = "2026-11-21.1"

GCOT_PROMPT = (
    "Question: {question}\n"
    "Answer: {answer}\n\n"
    "Look at the image and explain, in short numbered steps (Step 1:, Step 2:, ...), the reasoning "
    "that leads from the question to the given answer, mentioning the objects in the image you rely "
    "on. End the reasoning with a line 'Answer: <the answer>'. Then add one final line "
    "'Keywords: <k1>, <k2>, ...' listing the objects from your reasoning that are visible in the "
    "image, as short noun phrases exactly as they appear in your reasoning."
)

GROUNDING_PROMPT = (
    'Locate every "{phrase}" in the image. Output the bounding boxes in JSON format: '
    '[{{"bbox_2d": [x1, y1, x2, y2], "label": "{phrase}"}}].'
)


def gcot_prompt(question: str, answer: str) -> str:
    """The reasoning prompt of GCoT stage 1 for one question and its given answer."""
    return GCOT_PROMPT.format(question=question.strip(), answer=str(answer).strip())


def grounding_prompt(phrase: str) -> str:
    """The grounding (``Detect``-style) prompt for one keyword or phrase."""
    return GROUNDING_PROMPT.format(phrase=phrase.replace('"', "'").strip())


def prompt_fingerprint_data() -> dict[str, str]:
    """Everything about the prompts that must enter a stage fingerprint."""
    return {"version": PROMPT_VERSION, "gcot": GCOT_PROMPT, "grounding": GROUNDING_PROMPT}
