"""Answers of VQA-style evaluation (pure: the standard library only).

:func:`extract_answer` takes the final answer out of a model output (the line after the last
``Answer:``); :func:`normalize_answer` applies the normalisation of the official VQA evaluation
script, so ``"The Two dogs!"`` and ``"2 dogs"`` compare equal.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["extract_answer", "normalize_answer"]


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
_ARTICLES = frozenset({"a", "an", "the"})
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
_ANSWER_RE = re.compile(r"answer\s*[:：]", re.I)


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
        if word not in _ARTICLES:
            words.append(_CONTRACTIONS.get(word, word))
    return " ".join(words)


def extract_answer(text: Any) -> str:
    """The final answer of a model output: the line after the last ``Answer:``, else the text.

    >>> extract_answer("Step 1: the sign is red.\\nAnswer: red")
    'red'
    >>> extract_answer("blue")
    'blue'
    """
    if text is None:
        return ""
    text = str(text)
    matches = list(_ANSWER_RE.finditer(text))
    if not matches:
        return text.strip()
    rest = text[matches[-1].end() :].strip()
    return rest.splitlines()[0].strip() if rest else ""
