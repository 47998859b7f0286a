"""Where phrases are mentioned in a text (pure: the one rule the pictures and the HTML share).

A mention is the phrase as whole words (any whitespace between its words), case-insensitive,
longest phrase first, together with the box or list of boxes written right after it
(``red ball [1, 2, 3, 4]``). Chinese, Japanese and Korean characters, written without spaces,
count as word boundaries, so ``这个red triangle`` and ``这个红色圆形在左边`` mention
``red triangle`` and ``红色圆形``.

>>> phrase_spans("The red ball [1, 2, 3, 4] is big.", ["red ball"])
[('The ', None), ('red ball [1, 2, 3, 4]', 'red ball'), (' is big.', None)]
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from hfgcot.parsing.phrases import CJK, mention_pattern

__all__ = ["CJK", "mentioned_phrases", "phrase_spans", "text_segments"]

_NUM = r"-?\d+(?:\.\d+)?"
_BOX = rf"\[\s*{_NUM}(?:\s*,\s*{_NUM}){{3}}\s*\]"
_BOXES = rf"(?:\s*(?:\[\s*{_BOX}(?:\s*,\s*{_BOX})*\s*\]|{_BOX}))?"


def phrase_spans(text: str, phrases: Iterable[str]) -> list[tuple[str, str | None]]:
    """Split ``text`` into ``(piece, phrase or None)``; a mentioned phrase is named as given
    (the first of ``phrases`` with that spelling, ignoring case). The pieces join to ``text``.

    >>> phrase_spans("A Cat and a cat.", ["cat"])
    [('A ', None), ('Cat', 'cat'), (' and a ', None), ('cat', 'cat'), ('.', None)]
    >>> phrase_spans("这个红色圆形在左边", ["红色圆形"])
    [('这个', None), ('红色圆形', '红色圆形'), ('在左边', None)]
    """
    given = [p for p in phrases if p and p.strip()]
    if not text or not given:
        return [(text, None)] if text else []
    canonical: dict[str, str] = {}
    for p in given:
        canonical.setdefault(" ".join(p.split()).lower(), p)
    pattern = mention_pattern(canonical.values(), _BOXES)
    out: list[tuple[str, str | None]] = []
    pos = 0
    for m in pattern.finditer(text):
        if m.start() > pos:
            out.append((text[pos : m.start()], None))
        out.append((m.group(0), canonical[" ".join(m.group(1).split()).lower()]))
        pos = m.end()
    if pos < len(text):
        out.append((text[pos:], None))
    return out


def mentioned_phrases(text: str, phrases: Iterable[str]) -> set[str]:
    """The ``phrases`` that ``text`` mentions (by :func:`phrase_spans`' rule).

    >>> sorted(mentioned_phrases("a red circle", ["red circle", "blue square"]))
    ['red circle']
    """
    return {p for _, p in phrase_spans(text, phrases) if p is not None}


def text_segments(
    text: str, colours: Mapping[str, tuple[int, int, int]]
) -> list[tuple[str, tuple[int, int, int] | None]]:
    """Split ``text`` into ``(piece, colour or None)``: each mention of a phrase and the box(es)
    written right after it get the phrase's colour.

    >>> text_segments("The red ball [1, 2, 3, 4] is big.", {"red ball": (230, 25, 75)})
    [('The ', None), ('red ball [1, 2, 3, 4]', (230, 25, 75)), (' is big.', None)]
    """
    return [(piece, None if p is None else colours[p]) for piece, p in phrase_spans(text, colours)]
