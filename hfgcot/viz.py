"""Pictures of boxes: draw a row's groundings on its image (PIL only, no torch).

>>> from PIL import Image
>>> img = draw_boxes(Image.new("RGB", (64, 64)), [([4, 4, 40, 40], "cat")])
>>> img.size
(64, 64)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PIL import Image, ImageDraw, ImageFont

# Distinct, saturated colours that read on light and dark images.
PALETTE = [
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


def colour(i: int) -> tuple[int, int, int]:
    """The ``i``-th colour of the palette (cycles)."""
    return PALETTE[i % len(PALETTE)]


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # pragma: no cover - Pillow < 10.1
        return ImageFont.load_default()


def draw_boxes(
    image: Image.Image,
    boxes: Sequence[tuple[Sequence[float], str | None]],
    *,
    width: int | None = None,
    colours: Sequence[tuple[int, int, int]] | None = None,
) -> Image.Image:
    """A copy of ``image`` with each ``(xyxy box, label)`` outlined in its own colour.

    Outlines are drawn inside the box (the outer edge of the outline is the box edge), so a box on
    the image border stays visible. Labels sit above the box, or inside when there is no room.
    """
    out = image.convert("RGB").copy()
    draw = ImageDraw.Draw(out)
    w = width or max(2, round(min(out.size) / 150))
    font = _font(max(10, round(min(out.size) / 25)))
    for i, (box, label) in enumerate(boxes):
        c = colours[i] if colours is not None else colour(i)
        x1, y1, x2, y2 = (float(v) for v in box)
        x1, y1 = round(x1), round(y1)
        x2, y2 = max(x1, round(x2) - 1), max(y1, round(y2) - 1)
        draw.rectangle((x1, y1, x2, y2), outline=c, width=w)
        if label:
            tb = draw.textbbox((0, 0), label, font=font)
            th, tw = tb[3] - tb[1] + 4, tb[2] - tb[0] + 6
            ty = y1 - th if y1 - th >= 0 else y1 + w
            draw.rectangle((x1, ty, x1 + tw, ty + th), fill=c)
            draw.text((x1 + 3, ty + 1 - tb[1]), label, fill=(255, 255, 255), font=font)
    return out


def draw_groundings(image: Image.Image, groundings: Sequence[dict[str, Any]]) -> Image.Image:
    """Draw a GCoT row's ``groundings`` (``[{"phrase", "bbox"}]``, original pixels); one colour per phrase."""
    phrases: dict[str, int] = {}
    for g in groundings:
        phrases.setdefault(g["phrase"], len(phrases))
    return draw_boxes(
        image,
        [(g["bbox"], g["phrase"]) for g in groundings],
        colours=[colour(phrases[g["phrase"]]) for g in groundings],
    )
