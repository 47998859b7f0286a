"""Short answers of a Qwen-VL model: yes/no, and one description per marked region.

Pure (standard library only); like every parser of :mod:`hfgcot.parsing`, **no function raises
on any input** (odd model output gives ``None`` or empty descriptions, see
:mod:`hfgcot.parsing.guard`).

- :func:`parse_yes_no` -- a yes/no answer as ``True``/``False``/``None``.
- :func:`parse_region_answer` -- one description per ``<regionK>`` of a marked-regions answer.
"""

from __future__ import annotations

import re

from hfgcot.parsing.answers import find_answer
from hfgcot.parsing.guard import guard

__all__ = ["parse_region_answer", "parse_yes_no"]


# --------------------------------------------------------------------------------------------
# Yes / no
# --------------------------------------------------------------------------------------------

_YES_NO_RE = re.compile(r"(?<![\w'-])(yes|yeah|yep|yup|no|nope)(?![\w'-])", re.I)


def parse_yes_no(text: str) -> bool | None:
    """``True``/``False`` for a yes/no answer, ``None`` when undecidable.

    Takes the first standalone yes/no word (``yes``/``yeah``/``yep``/``yup``,
    ``no``/``nope``), looking after the last ``Answer:`` marker first. Never raises.

    >>> [parse_yes_no(t) for t in ["Yes.", "NO", "The answer is no", "Answer: Yes", "maybe"]]
    [True, False, False, True, None]
    """
    try:
        if not isinstance(text, str):
            return None
        marker = find_answer(text)
        for start in ([marker.value_start] if marker is not None else []) + [0]:
            match = _YES_NO_RE.search(text, start)
            if match:
                return match.group(1).lower() not in ("no", "nope")
        return None
    except Exception as exc:  # never take a stage down on odd model output
        guard(exc, "parse_yes_no")
        return None


# --------------------------------------------------------------------------------------------
# Marked-region answers: "<region1>: ...\n<region2>: ..." -> one description per region
# --------------------------------------------------------------------------------------------

# A marker at the start of a line, after an optional bullet or number and markdown emphasis:
# "<region2>", "<Region 2>", or a bare "Region 2" when a ':', '-', '.' or ')' follows it.
_REGION_LINE_RE = re.compile(
    r"^[ \t]*(?:(?:[-*\u2022+]|\d+[.)])[ \t]*)?(?:\*\*|__)?[ \t]*"
    r"(?:<\s*region\s*(\d{1,6})\s*>|region[ \t]*(\d{1,6})(?=[ \t]*(?:\*\*|__)?[ \t]*[:\-\u2013\u2014.)]))",
    re.I | re.M,
)
_REGION_TAG_RE = re.compile(r"<\s*region\s*(\d{1,6})\s*>", re.I)
_REGION_LEAD_RE = re.compile(r"^[\s*_]*(?:[:,\-\u2013\u2014.)]\s*)?")


def parse_region_answer(text: str, n: int) -> list[str]:
    r"""The description of each of ``n`` marked regions in an answer to the marked-regions prompt.

    Markers are ``<regionK>`` anywhere (also ``<Region K>``), or ``Region K:`` at the start of a
    line; bullets, numbering and markdown emphasis around them are ignored. A description runs to
    the next marker and may span lines. Regions the answer does not describe (or describes only
    out of range) are ``""``; for duplicates the first non-empty description wins. A single region
    answered without any marker takes the whole text. Never raises.

    >>> parse_region_answer("<region1>: a cat\n<region2>: a dog", 2)
    ['a cat', 'a dog']
    >>> parse_region_answer("**Region 2**: a dog", 3)
    ['', 'a dog', '']
    """
    try:
        count = max(0, n) if isinstance(n, int) else 0
        out = [""] * count
        if not isinstance(text, str) or not count:
            return out
        marks = [
            (m.start(), m.end(), int(m.group(1) or m.group(2)))
            for m in _REGION_LINE_RE.finditer(text)
        ]
        covered = [(a, b) for a, b, _ in marks]
        for m in _REGION_TAG_RE.finditer(text):
            if not any(a <= m.start() < b for a, b in covered):
                marks.append((m.start(), m.end(), int(m.group(1))))
        marks.sort()
        if not marks:
            if count == 1:
                out[0] = text.strip()
            return out
        for i, (_, end, k) in enumerate(marks):
            stop = marks[i + 1][0] if i + 1 < len(marks) else len(text)
            body = _REGION_LEAD_RE.sub("", text[end:stop], count=1).rstrip()
            if 1 <= k <= count and body and not out[k - 1]:
                out[k - 1] = body
        return out
    except Exception as exc:  # never take a stage down on odd model output
        guard(exc, "parse_region_answer")
        return [""] * (max(0, n) if isinstance(n, int) else 0)
