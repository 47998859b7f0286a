"""Caption text helpers (pure: no torch): sentence splitting and follow-up question lists.

Used by the dense-caption pipeline (:mod:`hfgcot.pipelines.dense_captions`); usable on their own.

Invariants:

- No function here raises on any ``str`` input (other types give empty results).
- :func:`split_sentences` loses nothing: its sentences joined together equal the input text once
  all whitespace is removed. Every sentence is non-empty and has no leading/trailing whitespace.
- :func:`parse_object_list` returns clean, de-duplicated object phrases (no leading article, no
  trailing punctuation), in the order the model wrote them, at most ``max_items``.

    >>> split_sentences("A dog, e.g. a terrier, sits on 2.5 m of grass. Is it happy? Yes!")
    ['A dog, e.g. a terrier, sits on 2.5 m of grass.', 'Is it happy?', 'Yes!']
    >>> split_sentences("天空是蓝色的。草地上有一只狗！")
    ['天空是蓝色的。', '草地上有一只狗！']
    >>> parse_object_list("1. Describe more details about the red car.\\n2. Describe more details about the tree.")
    ['red car', 'tree']
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from hfgcot.parsing.guard import guard
from hfgcot.parsing.phrases import dedupe, normalize_phrase

__all__ = [
    "join_sentences",
    "parse_object_list",
    "sentence_spans",
    "split_sentences",
]

_ASCII_END = ".!?"
_CJK_END = "。！？｡．"
_ELLIPSIS = "…"
_TERMINATORS = _ASCII_END + _CJK_END + _ELLIPSIS
_CLOSERS = "\"'”’»)]}」』）》〉】"

# Abbreviations after which a period never ends a sentence (titles, "for example" forms ...).
_NEVER_END = frozenset(
    {
        "mr",
        "mrs",
        "ms",
        "dr",
        "prof",
        "st",
        "jr",
        "sr",
        "vs",
        "e.g",
        "i.e",
        "eg",
        "ie",
        "cf",
        "approx",
        "fig",
        "figs",
        "no",  # only when a number follows (see _ends_sentence)
        "nos",
        "vol",
        "ca",
        "resp",
    }
)
_ENUMERATOR_RE = re.compile(r"\(?(?:\d{1,3}|[A-Za-z]|[ivxlcIVXLC]{1,5})\)?")


def _word_before(text: str, start: int, i: int) -> str:
    """The non-space run of characters ending at ``i`` (not before ``start``), lowercased and
    without opening quotes/brackets."""
    k = i
    while k > start and not text[k - 1].isspace():
        k -= 1
    return text[k:i].lstrip("\"'“‘([{«").lower()


def _ends_sentence(text: str, start: int, i: int, j: int, run: str) -> bool:
    """Does the terminator run ``text[i:j']`` (closers included up to ``j``) end a sentence?"""
    if any(c in _CJK_END for c in run):
        return True
    n = len(text)
    if j < n and not text[j].isspace():  # "3.5", "e.g.x", "file.txt": inside a token
        return False
    if j == n or "!" in run or "?" in run:
        return True
    # A run of periods / an ellipsis: abbreviation, list number or decimal?
    k = j
    while k < n and text[k].isspace():
        k += 1
    if k == n:
        return True
    nxt = text[k]
    so_far = text[start:i].strip()
    if run == "." and _ENUMERATOR_RE.fullmatch(so_far):  # "1. The sky ..." / "b) ..." / "iv."
        return False
    word = _word_before(text, start, i)
    if run == "." and word in _NEVER_END:
        return word == "no" and not nxt.isdigit()
    return not nxt.islower()  # "approx. two", "p.m. and": the sentence goes on


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` character spans of the sentences of ``text`` (whitespace trimmed).

    A sentence ends after ``.``, ``!``, ``?`` or an ellipsis followed by whitespace (plus any
    closing quotes or brackets), after a CJK ``。！？｡．`` (no space needed), and at a line break.
    A period does not end a sentence inside a token (``3.5``, ``e.g.x``), after an abbreviation
    (``e.g.``, ``Dr.``, ``vs.``, ``No. 5``), after a list number (``1.``), or before a lowercase
    word (``approx. two``). Never raises.

    >>> text = "1. The sky. \\n2. A cat!"
    >>> [text[s:e] for s, e in sentence_spans(text)]
    ['1. The sky.', '2. A cat!']
    """
    spans: list[tuple[int, int]] = []
    if not isinstance(text, str):
        return spans

    def add(s: int, e: int) -> None:
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if e > s:
            spans.append((s, e))

    try:
        n, start, i = len(text), 0, 0
        while i < n:
            ch = text[i]
            if ch in "\n\r\u2028\u2029":
                add(start, i)
                start = i = i + 1
                continue
            if ch in _TERMINATORS:
                j = i
                while j < n and text[j] in _TERMINATORS:
                    j += 1
                run = text[i:j]
                while j < n and text[j] in _CLOSERS:
                    j += 1
                if _ends_sentence(text, start, i, j, run):
                    add(start, j)
                    start = j
                i = j
                continue
            i += 1
        add(start, n)
    except Exception as exc:  # never take a stage down on odd model output
        guard(exc, "sentence_spans")
        return [(0, len(text))] if text.strip() else []
    return spans


def split_sentences(text: str) -> list[str]:
    """The sentences of ``text`` (see :func:`sentence_spans` for the rules). Never raises.

    Joined together they give back ``text`` modulo whitespace.

    >>> split_sentences("It costs $3.50, approx. two euros... Mr. Li paid. 好。")
    ['It costs $3.50, approx. two euros...', 'Mr. Li paid.', '好。']
    >>> split_sentences("") == split_sentences(None) == []
    True
    """
    if not isinstance(text, str):
        return []
    return [text[s:e] for s, e in sentence_spans(text)]


def join_sentences(sentences: Iterable[str]) -> str:
    """Join sentences with one space, or none after a CJK terminator.

    >>> join_sentences(["A cat.", "A dog.", "天空。", "草地。"])
    'A cat. A dog. 天空。草地。'
    """
    out = ""
    for s in sentences:
        s = str(s).strip()
        if not s:
            continue
        if out and not (out[-1] in _CJK_END or out.rstrip(_CLOSERS)[-1:] in _CJK_END):
            out += " "
        out += s
    return out


# --------------------------------------------------------------------------------------------
# Follow-up question lists
# --------------------------------------------------------------------------------------------

_BULLET_RE = re.compile(r"^\s*(?:[-*•·+>]+|\(?\d{1,3}[.):]|\(?[a-zA-Z][.)]|#+)\s*")
_QUESTION_RE = re.compile(
    r"^(?:please\s+)?(?:describe|tell\s+me|give|provide|what\s+are)\s+"
    r"(?:(?:some|more|additional|further)\s+)?(?:details?|information|a\s+description)\s+"
    r"(?:about|of|on|for|regarding)\s+(?P<obj>.+)$",
    re.I,
)
_POSITION_RE = re.compile(
    r"^(?:please\s+)?(?:describe|what\s+is|where\s+is)\s+(?:the\s+)?"
    r"(?:position|location|place)\s+(?:of|for)\s+(?P<obj>.+?)(?:\s+in\s+the\s+(?:image|picture|photo))?$",
    re.I,
)
_META = frozenset(
    {
        "",
        "image",
        "picture",
        "photo",
        "photograph",
        "scene",
        "object",
        "objects",
        "none",
        "n/a",
        "na",
        "nothing",
        "description",
        "it",
        "them",
    }
)
_MAX_WORDS = 8
_MAX_CHARS = 80


def _object_of(item: str) -> str | None:
    """The object a question-list item is about, or None for headers, chatter and sentences."""
    item = _BULLET_RE.sub("", item.replace("**", "")).strip()
    if not item:
        return None
    for pattern in (_QUESTION_RE, _POSITION_RE):
        match = pattern.match(item)
        if match:
            return normalize_phrase(match.group("obj"))
    if item.endswith(":"):  # "Here are the questions:"
        return None
    if item.endswith("?") or len(item.split()) > _MAX_WORDS:
        return None
    return normalize_phrase(item)


def parse_object_list(text: str, max_items: int | None = None) -> list[str]:
    """Objects of a follow-up question list written by a model, cleaned and de-duplicated.

    Accepts "Describe more details about the X." lines (numbered, bulleted or not), "Describe the
    position of X." lines, bare object lines, and comma/semicolon separated lists
    (``"Objects: a red car, a tree"``). Headers, long sentences, meta words ("image",
    "none") and phrases without a letter or with control characters are skipped. Returns at most ``max_items`` objects, in order. Never raises.

    >>> parse_object_list("Objects: a red car, the tree; red cars\\nDescribe the position of the dog.")
    ['red car', 'tree', 'dog']
    >>> parse_object_list("Here are the questions:\\n- Describe more details about **the bench**.", 1)
    ['bench']
    """
    if not isinstance(text, str):
        return []
    try:
        items: list[str] = []
        for line in text.splitlines():
            line = line.strip()
            if not line:
                continue
            head, sep, tail = line.partition(":")
            if sep and tail.strip() and len(head.split()) <= 4 and not _QUESTION_RE.match(line):
                line = tail  # "Objects: a, b" -> "a, b"
            for sentence in split_sentences(line):  # several questions on one line
                bare = _BULLET_RE.sub("", sentence)
                if not _QUESTION_RE.match(bare) and re.search(r"[,;，；、]", sentence):
                    items.extend(re.split(r"[,;，；、]", sentence))
                else:
                    items.append(sentence)
        objects = []
        for item in items:
            obj = _object_of(item)
            if (
                obj
                and any(c.isalpha() for c in obj)
                and obj.isprintable()
                and obj.lower() not in _META
                and len(obj) <= _MAX_CHARS
                and len(obj.split()) <= _MAX_WORDS
            ):
                objects.append(obj)
        objects = dedupe(objects)
        return objects if max_items is None else objects[: max(0, max_items)]
    except Exception as exc:  # never take a stage down on odd model output
        guard(exc, "parse_object_list")
        return []
