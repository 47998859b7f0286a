"""Object phrases: one cleaner for display, one key for comparing (pure, never raises).

- :func:`normalize_phrase` cleans a phrase for display and keeps its case: markdown, quotes, a
  leading article or determiner, trailing punctuation and a trailing "in the image" go.
- :func:`phrase_key` is what two phrases are compared by everywhere (keyword de-duplication,
  label matching, scoring): case-folded words, leading determiners and counts dropped, each word
  made singular by :func:`singular`.
- :data:`ARTICLES` is the one article list (the VQA answer normalisation uses it too).
- :func:`mention_pattern` is the one rule of where a phrase is mentioned in a text (box
  injection, keyword merging, the pictures and the viewer): whole words, any whitespace between
  them, case-insensitive; characters of scripts written without spaces (:data:`CJK`) count as
  word boundaries, so ``这个red triangle`` and ``这个红色圆形在左边`` mention ``red triangle``
  and ``红色圆形``.

    >>> normalize_phrase("**The Red Balls**."), phrase_key("The Red Balls")
    ('Red Balls', 'red ball')
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from hfgcot.parsing.guard import guard

__all__ = [
    "ARTICLES",
    "CJK",
    "DETERMINERS",
    "dedupe",
    "mention_pattern",
    "normalize_phrase",
    "phrase_key",
    "singular",
]

CJK = "\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef"
"""Character ranges (for a regex class) of scripts written without spaces between words."""
_BOUNDED = rf"[^\W{CJK}]"  # a letter or digit that needs a word boundary (not a CJK character)

ARTICLES = frozenset({"a", "an", "the"})
# Words that open a noun phrase without changing what it names.
DETERMINERS = ARTICLES | {
    "some",
    "each",
    "every",
    "this",
    "that",
    "these",
    "those",
    "two",
    "three",
    "several",
}
_LEADING_RE = re.compile(r"^(?:" + "|".join(sorted(DETERMINERS)) + r")\s+", re.I)
_TRAILING_RE = re.compile(r"\s+in\s+the\s+(?:image|picture|photo)$", re.I)
_EDGE = " \t\"'“”‘’«»()[]{}<>.,;:!?。！？，、；：-*"
_WORD_RE = re.compile(r"[^\W_]+", re.UNICODE)


def singular(word: str) -> str:
    """The singular of a lower-case English plural (other words unchanged).

    >>> [singular(w) for w in ["boxes", "glasses", "buses", "bus", "glass", "berries", "horses"]]
    ['box', 'glass', 'bus', 'bus', 'glass', 'berry', 'horse']
    """
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith(("sses", "xes", "zes", "ches", "shes")):
        return word[:-2]
    if len(word) > 4 and word.endswith("uses") and not word.endswith("ouses"):
        return word[:-2]  # buses, viruses, campuses (but houses, blouses: below)
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def normalize_phrase(phrase: str) -> str:
    """A clean object phrase for display: no markdown, quotes, leading article or punctuation.

    >>> normalize_phrase('  **The red car**. ')
    'red car'
    >>> normalize_phrase('"a  tall   tree in the image"?')
    'tall tree'
    """
    try:
        if not isinstance(phrase, str):
            return ""
        p = " ".join(phrase.replace("**", "").replace("__", "").replace("`", "").split())
        previous = None
        while previous != p:
            previous = p
            p = _TRAILING_RE.sub("", _LEADING_RE.sub("", p.strip(_EDGE)))
        return p
    except Exception as exc:  # never take a stage down on odd model output
        guard(exc, "normalize_phrase")
        return ""


def phrase_key(phrase: str) -> str:
    """The comparison key of a phrase: case-folded words, determiners out, words singular.

    >>> phrase_key("The Red  cars!") == phrase_key("red car")
    True
    >>> phrase_key("the boxes"), phrase_key("two buses"), phrase_key("Glasses"), phrase_key("a")
    ('box', 'bus', 'glass', 'a')
    """
    try:
        words = _WORD_RE.findall(normalize_phrase(phrase).casefold())
        start = 0
        while start < len(words) - 1 and words[start] in DETERMINERS:
            start += 1  # a phrase of determiners only keeps its last word ("a" -> "a")
        return " ".join(singular(w) for w in words[start:])
    except Exception as exc:  # never take a stage down on odd model output
        guard(exc, "phrase_key")
        return ""


def dedupe(items: Iterable[str], key: Callable[[str], str] = phrase_key) -> list[str]:
    """Items in order, the first of each ``key`` kept; empty keys dropped.

    >>> dedupe(["red car", "Red cars", "tree"])
    ['red car', 'tree']
    """
    seen: set[str] = set()
    out = []
    for item in items:
        k = key(item)
        if k and k not in seen:
            seen.add(k)
            out.append(item)
    return out


def mention_pattern(phrases: Iterable[str], suffix: str = "") -> re.Pattern[str]:
    """A case-insensitive pattern of any of ``phrases`` (longest first) as whole words, any
    whitespace between their words, followed by the regex ``suffix``; group 1 is the phrase.

    >>> mention_pattern(["red ball"]).search("The  Red ball rolls").group(1)
    'Red ball'
    >>> mention_pattern(["ball"]).search("a football") is None
    True
    >>> mention_pattern(["红色圆形"]).search("这个红色圆形在左边").group(1)
    '红色圆形'
    """
    words = sorted({" ".join(p.split()) for p in phrases if p and p.strip()}, key=len, reverse=True)
    body = "|".join(r"\s+".join(re.escape(w) for w in p.split()) for p in words) or "(?!)"
    return re.compile(rf"(?<!{_BOUNDED})({body})(?!{_BOUNDED}){suffix}", re.IGNORECASE)
