"""The colours of boxes and of the phrases and numbers that go with them (pure, no PIL).

>>> hex_colour(colour(0)), label_colour(colour(0))
('#e6194b', (255, 255, 255))
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["PALETTE", "colour", "hex_colour", "label_colour", "phrase_colours"]

PALETTE: list[tuple[int, int, int]] = [
    (230, 25, 75),
    (60, 180, 75),
    (0, 130, 200),
    (245, 130, 48),
    (145, 30, 180),
    (70, 240, 240),
    (240, 50, 230),
    (210, 245, 60),
    (0, 128, 128),
    (170, 110, 40),
]
"""Distinct, saturated colours that read on light and dark images."""


def colour(i: int) -> tuple[int, int, int]:
    """The ``i``-th colour of the palette (cycles).

    >>> colour(len(PALETTE)) == colour(0)
    True
    """
    return PALETTE[i % len(PALETTE)]


def hex_colour(c: Sequence[int]) -> str:
    """``(230, 25, 75)`` -> ``'#e6194b'``.

    >>> hex_colour((0, 130, 200))
    '#0082c8'
    """
    return "#{:02x}{:02x}{:02x}".format(*(int(v) for v in c[:3]))


def label_colour(fill: Sequence[int]) -> tuple[int, int, int]:
    """Black or white, whichever reads better on ``fill`` (by perceived luminance).

    >>> label_colour((255, 255, 0)), label_colour((0, 0, 128))
    ((0, 0, 0), (255, 255, 255))
    """
    r, g, b = fill[:3]
    return (0, 0, 0) if 0.299 * r + 0.587 * g + 0.114 * b > 150 else (255, 255, 255)


def phrase_colours(groundings: Sequence[dict[str, Any]] | None) -> dict[str, tuple[int, int, int]]:
    """``{phrase: colour}`` in first-appearance order: the colours :func:`draw_groundings` uses.

    >>> phrase_colours([{"phrase": "cat"}, {"phrase": "dog"}, {"phrase": "cat"}])["dog"]
    (60, 180, 75)
    """
    out: dict[str, tuple[int, int, int]] = {}
    for g in groundings or []:
        out.setdefault(g["phrase"], colour(len(out)))
    return out
