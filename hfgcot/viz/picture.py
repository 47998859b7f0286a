"""Rows as pictures: the image with its boxes above the word-wrapped text, and grids of pictures.

In the text each phrase has the background colour of its box. Text in any script is drawn with
an installed font that covers it (``font_path=`` chooses one); when there is none the log says so
once and the HTML views (:func:`hfgcot.viz.row_html`, ``hfgcot view``) show it.

>>> from PIL import Image
>>> grid([Image.new("RGB", (10, 10))] * 3, cols=2, cell_width=10, pad=2).size
(26, 26)
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from PIL import Image, ImageDraw

from hfgcot.viz.colours import label_colour, phrase_colours
from hfgcot.viz.draw import draw_groundings
from hfgcot.viz.fonts import text_font
from hfgcot.viz.text import text_segments
from hfgcot.viz.wrap import wrap

__all__ = ["grid", "render_row", "row_image", "row_text"]

RGB = tuple[int, int, int]
_BACKGROUND = (255, 255, 255)
_TEXT, _GREY = (20, 20, 20), (110, 110, 110)


def row_image(value: Any) -> Image.Image | None:
    """A row's image (PIL image, path, bytes or ``{"bytes", "path"}``), ``None`` if unreadable.

    >>> row_image(None) is None
    True
    """
    from hfgcot.images import ImagePolicy, load_image

    image, _ = load_image(value, ImagePolicy(min_side=1, allow_urls=False))
    return image


def row_text(row: dict[str, Any], text_column: str = "gcot") -> str:
    """The row's text: ``text_column``, else its GCoT reasoning (cleaned, then raw).

    >>> row_text({"gcot": "", "cleaned_cot": "A cat."})
    'A cat.'
    """
    for column in (text_column, "cleaned_cot", "raw_cot_output"):
        value = row.get(column)
        if value:
            return str(value)
    return ""


def _drawn_image(
    row: dict[str, Any],
    image_column: str,
    groundings: list[dict[str, Any]],
    text: str,
    width: int,
    font_path: str | os.PathLike[str] | None,
) -> Image.Image | None:
    """The row's image resized to ``width``, then its boxes drawn at that scale (crisp)."""
    image = row_image(row.get(image_column))
    if image is None:
        return None
    w0 = image.width
    if width != image.width:
        height = max(1, round(image.height * width / image.width))
        image = image.resize((width, height), Image.Resampling.LANCZOS)
    if groundings:
        s = image.width / w0
        scaled = [{**g, "bbox": [float(v) * s for v in g["bbox"]]} for g in groundings]
        image = draw_groundings(image, scaled, text=text, font_path=font_path)
    return image


def render_row(
    row: dict[str, Any],
    *,
    text_column: str = "gcot",
    image_column: str = "image",
    groundings_column: str | None = "groundings",
    width: int = 640,
    font_size: int | None = None,
    font_path: str | os.PathLike[str] | None = None,
) -> Image.Image:
    """One row as a picture: the image with its boxes, and below it the question and reference
    answer (grey, when the row has them) and the word-wrapped text whose phrases have the
    background colour of their boxes. Save it with ``.save("row.png")``.

    Example:
        >>> row = {"image": Image.new("RGB", (64, 64)), "gcot": "A cat [4, 4, 40, 40].",
        ...        "groundings": [{"phrase": "cat", "bbox": [4, 4, 40, 40]}]}
        >>> render_row(row, width=320).width
        320
    """
    groundings = (row.get(groundings_column) if groundings_column else None) or []
    text = row_text(row, text_column)
    image = _drawn_image(row, image_column, groundings, text, width, font_path)
    head = [
        f"{name}: {row[column]}\n"
        for name, column in (("Q", "question"), ("A", "answer"))
        if isinstance(row.get(column), str) and row[column]
    ]
    segments = [(h, _GREY) for h in head] + text_segments(text, phrase_colours(groundings))
    size = font_size or max(12, width // 40)
    font = text_font("".join(p for p, _ in segments), size, font_path)[0]
    margin = max(6, width // 60)
    asc, desc = font.getmetrics() if hasattr(font, "getmetrics") else (size, 0)
    line_height = asc + desc + 6
    placed = [
        (x, y + margin, t, c)
        for x, y, t, c in wrap(segments, font, margin, width - margin, line_height)
    ]
    text_height = (max(y for _, y, _, _ in placed) + line_height + margin) if placed else 0
    top = image.height if image is not None else 0
    out = Image.new("RGB", (width, top + text_height), _BACKGROUND)
    if image is not None:
        out.paste(image, (0, 0))
    draw = ImageDraw.Draw(out)
    for x, y, token, c in placed:
        if c == _GREY:
            draw.text((x, top + y), token, font=font, fill=_GREY)
            continue
        if c is not None:
            w = font.getlength(token)
            draw.rectangle((x - 1, top + y - 2, x + w + 1, top + y + line_height - 5), fill=c)
        draw.text((x, top + y), token, font=font, fill=label_colour(c) if c else _TEXT)
    return out


def grid(
    images: Sequence[Image.Image],
    cols: int = 3,
    *,
    cell_width: int | None = None,
    pad: int = 8,
    background: RGB = _BACKGROUND,
) -> Image.Image:
    """Tile ``images`` in ``cols`` columns, each scaled to ``cell_width`` (default: the widest,
    at most 640), rows as high as their tallest image.

    Example:
        >>> grid([Image.new("RGB", (10, 10))] * 3, cols=2, cell_width=10, pad=2).size
        (26, 26)
    """
    if cols < 1:
        raise ValueError(f"cols must be >= 1, got {cols}")
    images = [im.convert("RGB") for im in images]
    if not images:
        return Image.new("RGB", (1, 1), background)
    cw = cell_width or min(640, max(im.width for im in images))
    scaled = [im.resize((cw, max(1, round(im.height * cw / im.width)))) for im in images]
    rows = [scaled[i : i + cols] for i in range(0, len(scaled), cols)]
    heights = [max(im.height for im in r) for r in rows]
    ncols = min(cols, len(scaled))
    out = Image.new(
        "RGB", (pad + ncols * (cw + pad), pad + sum(h + pad for h in heights)), background
    )
    y = pad
    for r, h in zip(rows, heights, strict=True):
        for j, im in enumerate(r):
            out.paste(im, (pad + j * (cw + pad), y))
        y += h + pad
    return out
