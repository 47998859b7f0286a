"""Pictures of boxes: outlines on a copy of the image, with labels that stay readable (PIL only).

Outlines lie inside their box (the outer edge of the outline is the box edge), so a box on the
image border stays visible. Labels are placed by :mod:`hfgcot.viz.labels`: inside the image, never
on each other, off the boxes when there is room, smaller or numbered (with a legend under the
picture) when there is not. Text in any script is drawn with an installed font that covers it
(``font_path=`` chooses one; see :mod:`hfgcot.viz.fonts`).

>>> from PIL import Image
>>> img = draw_boxes(Image.new("RGB", (64, 64)), [([4, 24, 40, 60], "cat")])
>>> img.size
(64, 64)
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from PIL import Image, ImageDraw

from hfgcot.viz.colours import PALETTE, colour, label_colour, phrase_colours
from hfgcot.viz.labels import draw_labels, plan_labels
from hfgcot.viz.text import mentioned_phrases

__all__ = [
    "NOT_IN_TEXT",
    "PALETTE",
    "colour",
    "draw_boxes",
    "draw_groundings",
    "draw_regions",
    "label_colour",
]

NOT_IN_TEXT = "not in text"
"""Suffix of the label of a box whose phrase the text never mentions (drawn dashed)."""

RGB = tuple[int, int, int]


def _pixel_box(box: Sequence[float]) -> tuple[int, int, int, int]:
    """Integer corners of the outline: columns ``x1`` and ``x2 - 1``, rows ``y1`` and ``y2 - 1``."""
    x1, y1, x2, y2 = (float(v) for v in box)
    x1, y1 = round(x1), round(y1)
    return x1, y1, max(x1, round(x2) - 1), max(y1, round(y2) - 1)


def _dashed_rectangle(
    draw: ImageDraw.ImageDraw, box: tuple[int, int, int, int], fill: RGB, width: int
) -> None:
    x1, y1, x2, y2 = box
    dash = max(3, 3 * width)
    for x in range(x1, x2 + 1, 2 * dash):
        end = min(x + dash - 1, x2)
        draw.rectangle((x, y1, end, min(y1 + width - 1, y2)), fill=fill)
        draw.rectangle((x, max(y2 - width + 1, y1), end, y2), fill=fill)
    for y in range(y1, y2 + 1, 2 * dash):
        end = min(y + dash - 1, y2)
        draw.rectangle((x1, y, min(x1 + width - 1, x2), end), fill=fill)
        draw.rectangle((max(x2 - width + 1, x1), y, x2, end), fill=fill)


def _outlines(
    image: Image.Image,
    boxes: Sequence[Sequence[float]],
    colours: Sequence[RGB],
    width: int,
    dashed: Sequence[bool] | None = None,
) -> None:
    draw = ImageDraw.Draw(image)
    for i, box in enumerate(boxes):
        if dashed is not None and dashed[i]:
            _dashed_rectangle(draw, _pixel_box(box), colours[i], width)
        else:
            draw.rectangle(_pixel_box(box), outline=colours[i], width=width)


def draw_boxes(
    image: Image.Image,
    boxes: Sequence[tuple[Sequence[float], str | None]],
    *,
    width: int | None = None,
    colours: Sequence[RGB] | None = None,
    dashed: Sequence[bool] | None = None,
    font_size: int | None = None,
    font_path: str | os.PathLike[str] | None = None,
) -> Image.Image:
    """A copy of ``image`` with each ``(xyxy box, label)`` outlined in its own colour (``dashed[i]``:
    a dashed outline) and labelled (``None``: no label).

    Labels stay inside the image and off each other; when one cannot fit, it is numbered and
    a legend is added under the picture (the result is then taller than ``image``).

    Example:
        >>> from PIL import Image
        >>> out = draw_boxes(Image.new("RGB", (100, 80), "white"), [([10, 30, 60, 70], "cat")])
        >>> out.getpixel((10, 50)) == colour(0), out.size
        (True, (100, 80))
    """
    out = image.convert("RGB").copy()
    cs = [tuple(colours[i]) if colours is not None else colour(i) for i in range(len(boxes))]
    w = width or max(2, round(min(out.size) / 150))
    _outlines(out, [b for b, _ in boxes], cs, w, dashed)
    plan = plan_labels(
        out.size,
        [b for b, _ in boxes],
        [label for _, label in boxes],
        cs,
        font_size=font_size or max(10, round(min(out.size) / 25)),
        font_path=font_path,
    )
    return draw_labels(out, plan, font_path)


def draw_groundings(
    image: Image.Image,
    groundings: Sequence[dict[str, Any]],
    *,
    text: str | None = None,
    font_path: str | os.PathLike[str] | None = None,
) -> Image.Image:
    """Draw a GCoT row's ``groundings`` (``[{"phrase", "bbox"}]``, original pixels), one colour
    per phrase (:func:`~hfgcot.viz.colours.phrase_colours`).

    With the row's ``text`` (its ``gcot``), a box whose phrase the text never mentions is dashed
    and its label ends with ``"(not in text)"``.

    Example:
        >>> from PIL import Image
        >>> g = [{"phrase": "cat", "bbox": [4, 24, 40, 60]}]
        >>> draw_groundings(Image.new("RGB", (64, 64)), g, text="A dog.").size
        (64, 64)
    """
    colours = phrase_colours(groundings)
    absent = set() if text is None else set(colours) - mentioned_phrases(text, colours)
    return draw_boxes(
        image,
        [
            (g["bbox"], f"{g['phrase']} ({NOT_IN_TEXT})" if g["phrase"] in absent else g["phrase"])
            for g in groundings
        ],
        colours=[colours[g["phrase"]] for g in groundings],
        dashed=[g["phrase"] in absent for g in groundings],
        font_path=font_path,
    )


def draw_regions(
    image: Image.Image,
    boxes: Sequence[Sequence[float]],
    *,
    width: int | None = None,
    font_size: int | None = None,
) -> Image.Image:
    """A copy of ``image`` with numbered regions: box ``i`` outlined in ``colour(i)``, labelled
    ``i+1`` (the marks ``add_region_captions`` shows the model).

    Boxes are ``[x1, y1, x2, y2]`` original pixels; outlines lie inside the box. The number sits
    on a tag of the box colour, in black or white, whichever reads better: above the box's
    top-left corner when there is room, else at the nearest spot that covers no box (numbers do
    not hide the shapes), smaller on small images. Tags never cover each other. Line width and
    font grow with the image, so marks survive the model's resize.

    Example:
        >>> from PIL import Image
        >>> img = draw_regions(Image.new("RGB", (100, 80), "white"), [[10, 30, 60, 70]])
        >>> img.getpixel((10, 50)) == colour(0), img.getpixel((9, 50))
        (True, (255, 255, 255))
    """
    out = image.convert("RGB").copy()
    side = min(out.size)
    cs = [colour(i) for i in range(len(boxes))]
    _outlines(out, boxes, cs, width or max(2, round(side / 150)))
    size = font_size or max(8, round(side / 20))
    plan = plan_labels(
        out.size,
        boxes,
        [str(i + 1) for i in range(len(boxes))],
        cs,
        font_size=size,
        min_font_size=min(size, max(7, round(side / 24))),
    )
    return draw_labels(out, plan)
