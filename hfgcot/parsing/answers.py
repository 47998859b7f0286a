"""Answers of VQA-style evaluation (pure: the standard library only).

:func:`find_answer` is the one final-answer rule (the last ``Answer:`` marker, markdown allowed;
used by parsing, box injection, extraction and evaluation), :func:`final_answer` /
:func:`extract_answer` take the answer out of a model output; :func:`normalize_answer` applies the normalisation of the official VQA evaluation
script, so ``"The Two dogs!"`` and ``"2 dogs"`` compare equal.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from hfgcot.parsing.phrases import ARTICLES

__all__ = ["AnswerMarker", "extract_answer", "final_answer", "find_answer", "normalize_answer"]


_NUMBER_WORDS = {
    "none": "0",
    "zero": "0",
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
    "ten": "10",
}
# Apostrophe-less spellings -> the standard contraction (a subset of the VQA evaluation's list).
_CONTRACTIONS = {
    "arent": "aren't",
    "cant": "can't",
    "couldnt": "couldn't",
    "didnt": "didn't",
    "doesnt": "doesn't",
    "dont": "don't",
    "hadnt": "hadn't",
    "hasnt": "hasn't",
    "havent": "haven't",
    "hes": "he's",
    "im": "i'm",
    "isnt": "isn't",
    "itd": "it'd",
    "itll": "it'll",
    "ive": "i've",
    "lets": "let's",
    "shes": "she's",
    "shouldnt": "shouldn't",
    "thats": "that's",
    "theres": "there's",
    "theyre": "they're",
    "theyve": "they've",
    "wasnt": "wasn't",
    "werent": "weren't",
    "whats": "what's",
    "wheres": "where's",
    "whos": "who's",
    "wont": "won't",
    "wouldnt": "wouldn't",
    "youre": "you're",
    "youve": "you've",
}
_PUNCTUATION = ';/[]"{}()=+\\_-><@`,?!'
_COMMA_IN_NUMBER = re.compile(r"(\d)(,)(\d)")
_PERIOD_NOT_DECIMAL = re.compile(r"\.(?!\d)")
# A final-answer marker: the word "answer" (not the end of a longer word), optional closing
# emphasis, then ":" (or "："). The line that holds the last one is the final-answer line.
_ANSWER_RE = re.compile(r"(?<![^\W_])answer[ \t]*(?:\*\*|__)?[ \t]*[:：]", re.I)
_MAX_BARE_WORDS = 8


def normalize_answer(text: Any) -> str:
    """VQA-evaluation normalisation: lower case, punctuation, number words, articles, contractions.

    Follows the rules of the official VQA evaluation script: a punctuation mark next to a space
    (or any mark in a text with a ``1,000``-style number) is removed, otherwise replaced by a
    space; periods are removed unless they are a decimal point; ``two`` -> ``2``; ``a``/``an``/
    ``the`` are dropped; ``dont`` -> ``don't``.

    >>> normalize_answer("  The Two dogs! ")
    '2 dogs'
    >>> normalize_answer("3.5 kg."), normalize_answer("1,000"), normalize_answer("dont")
    ('3.5 kg', '1000', "don't")
    """
    if text is None:
        return ""
    text = str(text).replace("\n", " ").replace("\t", " ").strip()
    out = text
    has_number_comma = _COMMA_IN_NUMBER.search(text) is not None
    for mark in _PUNCTUATION:
        if (mark + " " in text or " " + mark in text) or has_number_comma:
            out = out.replace(mark, "")
        else:
            out = out.replace(mark, " ")
    out = _PERIOD_NOT_DECIMAL.sub("", out)
    words = []
    for word in out.lower().split():
        word = _NUMBER_WORDS.get(word, word)
        if word not in ARTICLES:
            words.append(_CONTRACTIONS.get(word, word))
    return " ".join(words)


@dataclass(frozen=True)
class AnswerMarker:
    """Where the final answer of a model output is: see :func:`find_answer`.

    ``line_start`` is the start of the line that holds the last answer marker (nothing may be
    injected from there on), ``value_start`` the first character after the marker, ``value`` the
    answer with its markdown emphasis removed (``""`` when the marker is followed by nothing).
    """

    line_start: int
    value_start: int
    value: str


_MD_EDGE = "*_`~ \t"


def _clean_value(line: str) -> str:
    return line.strip().strip(_MD_EDGE).strip()


def find_answer(text: str) -> AnswerMarker | None:
    """The last final-answer marker of ``text``, or ``None``: ``Answer:``, ``**Answer:**``,
    ``**Final Answer**:``, ``✅ Correct answer:``, ``The answer: ...`` (``：`` too). The one rule
    used by parsing (yes/no), box injection (never on the final-answer line), answer extraction
    and evaluation.

    The answer is the rest of the marker's line, markdown emphasis stripped; when that is empty,
    the next non-empty line. Never raises.

    >>> find_answer("Step 1: look.\\n**Answer:** red").value
    'red'
    >>> find_answer("✅ Correct answer: **B. Blue.**").value
    'B. Blue.'
    >>> find_answer("no marker here") is None
    True
    """
    if not isinstance(text, str):
        return None
    matches = list(_ANSWER_RE.finditer(text))
    if not matches:
        return None
    last = matches[-1]
    line_start = text.rfind("\n", 0, last.start()) + 1
    lines = text[last.end() :].split("\n")
    value = _clean_value(lines[0])
    if not value:
        value = next((_clean_value(line) for line in lines[1:] if _clean_value(line)), "")
    return AnswerMarker(line_start=line_start, value_start=last.end(), value=value)


def final_answer(text: Any) -> str | None:
    """The final answer of a model output, or ``None`` when it states none.

    With an answer marker, its value (:func:`find_answer`). Without one, the whole text when it is
    a single short line (at most ``8`` words: a bare answer such as ``"C. window"``); a longer
    text without a marker has no final answer.

    >>> final_answer("Reasoning...\\n**Answer: D. D.**")
    'D. D.'
    >>> final_answer("C. window"), final_answer("It goes left, then it turns right at the door.")
    ('C. window', None)
    """
    if text is None:
        return None
    text = str(text)
    marker = find_answer(text)
    if marker is not None:
        return marker.value or None
    bare = _clean_value(text)
    if bare and "\n" not in bare and len(bare.split()) <= _MAX_BARE_WORDS:
        return bare
    return None


def extract_answer(text: Any) -> str:
    """:func:`final_answer` as text for scoring: ``""`` when the output states no final answer.

    >>> extract_answer("Step 1: the sign is red.\\n**Answer:** red")
    'red'
    >>> extract_answer("blue")
    'blue'
    """
    return final_answer(text) or ""
