"""Box labels on a picture: sized, placed (:mod:`hfgcot.viz.layout`), numbered when they cannot fit.

:func:`plan_labels` tries font sizes from large to small and keeps the largest at which every
label fits and none lies on a box (else the one covering least). A label that fits nowhere even
at the smallest size, or whose script no installed font draws, becomes its number (the k-th
distinct label is ``k``) and goes into a legend that :func:`draw_labels` adds under the picture
(only for texts a font can draw: the others are in the HTML views).

>>> from PIL import Image
>>> plan = plan_labels((100, 80), [[10, 30, 60, 70]], ["cat"], [(230, 25, 75)], font_size=12)
>>> [t.text for t in plan.tags], plan.legend
(['cat'], [])
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image, ImageDraw

from hfgcot.viz.colours import label_colour
from hfgcot.viz.fonts import Font, text_font
from hfgcot.viz.layout import Rect, place_labels
from hfgcot.viz.wrap import wrap

__all__ = ["LabelPlan", "Tag", "draw_labels", "plan_labels"]

RGB = tuple[int, int, int]
_PAD_X, _PAD_Y = 4, 3


@dataclass(frozen=True)
class Tag:
    """One label drawn on the picture: its text, rectangle, font and colour."""

    text: str
    rect: Rect
    font: Font
    fill: RGB


@dataclass(frozen=True)
class LabelPlan:
    """Tags to draw, and ``(number, label, colour)`` legend lines for numbered labels."""

    tags: list[Tag]
    legend: list[tuple[str, str, RGB]]
    font_size: int


def _tag_size(text: str, font: Font) -> tuple[float, float]:
    left, top, right, bottom = font.getbbox(text)
    return right - left + 2 * _PAD_X, bottom - top + 2 * _PAD_Y


def _covered(rects: Sequence[Rect | None], boxes: Sequence[Sequence[float]]) -> float:
    """Total area of the placed rectangles that lies on boxes."""
    area = 0.0
    for r in rects:
        if r is None:
            continue
        for b in boxes:
            ox = min(r[2], float(b[2])) - max(r[0], float(b[0]))
            oy = min(r[3], float(b[3])) - max(r[1], float(b[1]))
            area += max(0.0, ox) * max(0.0, oy)
    return area


def _sizes(start: int, smallest: int) -> list[int]:
    out, size = [], start
    while size > smallest:
        out.append(size)
        size = min(size - 1, round(size * 0.85))
    return [*out, smallest]


def _attempt(
    image_size: tuple[int, int],
    boxes: list[Sequence[float]],
    shown: list[str],
    size: int,
    font_path: str | os.PathLike[str] | None,
) -> tuple[list[Rect | None], list[Font]]:
    fonts = [text_font(t, size, font_path)[0] for t in shown]
    sizes = [_tag_size(t, f) for t, f in zip(shown, fonts, strict=True)]
    return place_labels(*image_size, boxes, sizes), fonts


def _best_size(
    image_size: tuple[int, int],
    boxes: Sequence[Sequence[float]],
    tagged: list[Sequence[float]],
    shown: list[str],
    sizes: list[int],
    font_path: str | os.PathLike[str] | None,
) -> tuple[int, list[Rect | None], list[Font]] | None:
    """The largest size at which every tag fits and none lies on a box, else the size where
    they cover least; ``None`` when at no size every tag fits."""
    best = None
    for size in sizes:
        rects, fonts = _attempt(image_size, tagged, shown, size, font_path)
        if any(r is None for r in rects):
            continue
        cover = _covered(rects, boxes)
        if best is None or cover < best[0]:
            best = (cover, size, rects, fonts)
        if cover == 0:
            break
    return None if best is None else best[1:]


def plan_labels(
    image_size: tuple[int, int],
    boxes: Sequence[Sequence[float]],
    labels: Sequence[str | None],
    colours: Sequence[RGB],
    *,
    font_size: int,
    min_font_size: int | None = None,
    font_path: str | os.PathLike[str] | None = None,
) -> LabelPlan:
    """Where and how large each label goes (``None`` labels get no tag); see the module doc."""
    smallest = min(font_size, min_font_size or max(8, round(font_size * 0.6)))
    distinct = list(dict.fromkeys(t for t in labels if t))
    number = {t: str(k + 1) for k, t in enumerate(distinct)}
    drawable = {t: text_font(t, smallest, font_path)[1] for t in distinct}
    numbered = {t for t in distinct if not drawable[t]}
    idx = [i for i, t in enumerate(labels) if t]
    tagged = [boxes[i] for i in idx]
    while True:
        shown = [number[labels[i]] if labels[i] in numbered else labels[i] for i in idx]
        found = _best_size(image_size, boxes, tagged, shown, _sizes(font_size, smallest), font_path)
        if found is not None:
            size, rects, fonts = found
            break
        size = smallest
        rects, fonts = _attempt(image_size, tagged, shown, size, font_path)
        misfits = {labels[i] for i, r in zip(idx, rects, strict=True) if r is None} - numbered
        if not misfits:  # only numbers left that cannot fit: they go at their boxes anyway
            break
        numbered |= misfits
    W, H = image_size
    tags = []
    for i, s, r, f in zip(idx, shown, rects, fonts, strict=True):
        if r is None:  # overlapping is the last resort: at the box, inside the image
            w, h = _tag_size(s, f)
            x = min(max(0.0, float(boxes[i][0])), max(0.0, W - w))
            y = min(max(0.0, float(boxes[i][1]) - h), max(0.0, H - h))
            r = (x, y, x + w, y + h)
        tags.append(Tag(s, r, f, tuple(colours[i])))
    legend = [
        (number[t], t, tuple(colours[labels.index(t)]))
        for t in distinct
        if drawable[t] and t in numbered
    ]
    return LabelPlan(tags, legend, size)


def _legend_band(
    width: int, legend: list[tuple[str, str, RGB]], size: int, font_path: str | None
) -> Image.Image:
    """Lines ``number  label`` under the picture (wrapped), each number on a tag of its colour."""
    line = size + 2 * _PAD_Y + 2
    entries = []
    for num, text, fill in legend:
        font = text_font(num, size, font_path)[0]
        tw, th = _tag_size(num, font)
        body = text_font(text, size, font_path)[0]
        words = wrap([(text, None)], body, tw + 6, max(tw + 6 + size, width - 2), line)
        entries.append((Tag(num, (2, 0, 2 + tw, th), font, fill), body, words))
    height = sum((words[-1][1] if words else 0) + line for _, _, words in entries) + 4
    band = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(band)
    y = 2
    for tag, body, words in entries:
        x1, _, x2, y2 = tag.rect
        _draw_tag(draw, Tag(tag.text, (x1, y, x2, y + y2), tag.font, tag.fill))
        for x, dy, token, _ in words:
            draw.text((x, y + dy + _PAD_Y), token, font=body, fill=(20, 20, 20))
        y += (words[-1][1] if words else 0) + line
    return band


def _draw_tag(draw: ImageDraw.ImageDraw, tag: Tag) -> None:
    x1, y1, x2, y2 = (round(v) for v in tag.rect)
    draw.rectangle((x1, y1, x2 - 1, y2 - 1), fill=tag.fill)
    left, top, _, _ = tag.font.getbbox(tag.text)
    pos = (x1 + _PAD_X - left, y1 + _PAD_Y - top)
    draw.text(pos, tag.text, fill=label_colour(tag.fill), font=tag.font)


def draw_labels(
    image: Image.Image, plan: LabelPlan, font_path: str | os.PathLike[str] | None = None
) -> Image.Image:
    """Draw the plan's tags on ``image`` (in place) and return it, with the legend under it
    when there is one (then the result is taller than ``image``)."""
    draw = ImageDraw.Draw(image)
    for tag in plan.tags:
        _draw_tag(draw, tag)
    if not plan.legend:
        return image
    band = _legend_band(
        image.width, plan.legend, plan.font_size, None if font_path is None else str(font_path)
    )
    out = Image.new("RGB", (image.width, image.height + band.height), (255, 255, 255))
    out.paste(image, (0, 0))
    out.paste(band, (0, image.height))
    return out
