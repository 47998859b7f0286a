"""Word wrapping for text drawn on pictures (any font with ``getlength``).

Words wrap at spaces; Chinese, Japanese and Korean characters, written without spaces, may wrap
between any two. Spaces between two pieces of the same colour are kept as coloured pieces, so a
highlighted phrase is one block.

>>> from PIL import ImageFont
>>> font = ImageFont.load_default(size=10)
>>> [(round(x), y, w) for x, y, w, _ in wrap([("aa bb cc", None)], font, 0, 30, 12)]
[(0, 0, 'aa'), (12, 0, 'bb'), (0, 12, 'cc')]
"""

from __future__ import annotations

import re
from typing import Any

from hfgcot.viz.text import CJK

__all__ = ["wrap"]

RGB = tuple[int, int, int]
_TOKENS = re.compile(rf"\n|[^\S\n]+|[{CJK}]|[^\s{CJK}]+")


def wrap(
    segments: list[tuple[str, Any]],
    font: Any,
    left: float,
    right: float,
    line_height: int,
) -> list[tuple[float, int, str, Any]]:
    """``(x, y, token, tag)`` placements of ``segments`` (``(text, tag)``, e.g. a colour) in
    lines from ``x = left`` to ``right``, ``line_height`` apart, starting at ``y = 0``."""
    placed: list[tuple[float, int, str, Any]] = []
    x, y = float(left), 0
    space = font.getlength(" ")
    pending: Any = False  # the tag of the space before the next token; False: no space
    for piece, tag in segments:
        for token in _TOKENS.findall(piece):
            if token == "\n":
                x, y, pending = float(left), y + line_height, False
            elif token.isspace():
                pending = tag if x > left else False
            else:
                w = font.getlength(token)
                gap = space if pending is not False else 0.0
                if x + gap + w > right and x > left:
                    x, y, gap = float(left), y + line_height, 0.0
                elif gap and tag is not None and pending == tag:
                    placed.append((x, y, " ", tag))
                x += gap
                placed.append((x, y, token, tag))
                x += w
                pending = False
    return placed
