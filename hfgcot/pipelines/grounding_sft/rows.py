"""The row format of grounding SFT data: its status names, its Arrow features, the chat
``messages`` and the assistant's box text.

    >>> sft_messages("Where is the cat?", sft_answer([1, 2, 30, 40]))[1]["content"][0]["text"]
    '{"bbox_2d": [1, 2, 30, 40]}'
"""

from __future__ import annotations

from typing import Any

from datasets import List, Value

from hfgcot.geometry.families import Family, ModelFamily, box_text, get_family

STATUS = "sft_status"
MISSING_BBOX = "missing_bbox"
INVALID_BBOX = "invalid_bbox"
SPECIAL_TOKENS_IN_TEXT = "special_tokens_in_text"

MESSAGES_FEATURE = List(
    {
        "role": Value("string"),
        "content": List({"type": Value("string"), "text": Value("string")}),
    }
)
"""Arrow type of ``messages``: every content item is a ``{"type", "text"}`` struct
(``text`` is null for the image item), so all rows share one schema."""

FRAME_FEATURE = {
    "width": Value("int64"),
    "height": Value("int64"),
    "model_width": Value("int64"),
    "model_height": Value("int64"),
    "min_pixels": Value("int64"),
    "max_pixels": Value("int64"),
    "factor": Value("int64"),
}
"""Arrow type of ``sft_frame``: the original size, the resized size and the resize limits.
:meth:`hfgcot.geometry.frames.Frame.from_dict` reads it back (extra keys are ignored)."""


def family_row(name: str) -> ModelFamily:
    """The row of ``model_family`` ``name``; an unknown name is a ``ValueError`` listing the
    known families.

    >>> family_row("qwen3_vl").factor
    32
    """
    try:
        return get_family(name)
    except ValueError as err:
        raise type(err)(f"model_family: {err}") from None


def sft_answer(box_model: list[int], family: Family = "qwen2_5_vl") -> str:
    """The assistant text for one box, in the family's text form (integers).

    >>> sft_answer([1, 2, 30, 40])
    '{"bbox_2d": [1, 2, 30, 40]}'
    >>> sft_answer([1, 2, 30, 40], "qwen2_vl")
    '<|box_start|>(1,2),(30,40)<|box_end|>'
    """
    return box_text(family, box_model)


def sft_messages(user_text: str, answer: str) -> list[dict[str, Any]]:
    """A user turn (image, then ``user_text``) and an assistant turn, Arrow-friendly.

    >>> sft_messages("Where?", "{}")[0]["content"][0]
    {'type': 'image', 'text': None}
    """
    return [
        {
            "role": "user",
            "content": [{"type": "image", "text": None}, {"type": "text", "text": user_text}],
        },
        {"role": "assistant", "content": [{"type": "text", "text": answer}]},
    ]


def user_text(messages: list[dict[str, Any]] | None) -> str:
    """The text of the first user turn of ``messages`` (the prompt a model is asked)."""
    for message in messages or []:
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            return "".join(
                c.get("text") or "" for c in content or [] if c.get("type", "text") == "text"
            )
    return ""
