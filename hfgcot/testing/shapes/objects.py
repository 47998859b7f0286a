"""What shape scenes are made of: the colours, shapes and backgrounds, one shape with its box,
and the words the texts use for them.

    >>> ShapeObject("circle", "red", (0.0, 0.0, 10.0, 20.0)).label
    'red circle'
    >>> count_word(3), join_words(["a red circle", "a blue square", "a green triangle"])
    ('three', 'a red circle, a blue square and a green triangle')
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (215, 35, 35),
    "green": (35, 160, 55),
    "blue": (40, 75, 215),
    "yellow": (240, 205, 30),
    "orange": (245, 130, 20),
    "purple": (135, 50, 185),
}
"""Shape colours (names as written in the texts) and their RGB fill."""

SHAPES: tuple[str, ...] = ("circle", "square", "triangle")
BACKGROUNDS: tuple[str, ...] = ("plain", "noisy", "gradient")
NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five")


@dataclass(frozen=True)
class ShapeObject:
    """One shape: its kind, colour name and box ``[x1, y1, x2, y2]`` in original pixels."""

    shape: str
    colour: str
    bbox: tuple[float, float, float, float]

    @property
    def label(self) -> str:
        """The phrase that names it, e.g. ``"red circle"`` (unique in its scene)."""
        return f"{self.colour} {self.shape}"

    @property
    def center(self) -> tuple[float, float]:
        x1, y1, x2, y2 = self.bbox
        return (x1 + x2) / 2, (y1 + y2) / 2


def count_word(n: int) -> str:
    """``n`` as a word up to five (``"two"``), as digits above."""
    return NUMBER_WORDS[n] if n < len(NUMBER_WORDS) else str(n)


def join_words(items: Sequence[str]) -> str:
    """``items`` joined as in a sentence: ``"a, b and c"``."""
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]
