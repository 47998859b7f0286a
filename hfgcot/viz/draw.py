"""Pictures of boxes: draw a row's groundings on its image (PIL only, no torch).

Also rows as pictures (:func:`render_row`) and HTML (:func:`row_html`, :func:`rows_html`) whose
phrases have the colour of their boxes, and :func:`grid` to tile pictures. In Jupyter, PIL images
and the returned :class:`HTML` strings display directly.

>>> from PIL import Image
>>> img = draw_boxes(Image.new("RGB", (64, 64)), [([4, 4, 40, 40], "cat")])
>>> img.size
(64, 64)
"""

from __future__ import annotations

import base64
import html
import io
import os
import re
from collections.abc import Sequence
from pathlib import Path
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


def label_colour(fill: tuple[int, int, int]) -> tuple[int, int, int]:
    """Black or white, whichever reads better on ``fill`` (by perceived luminance).

    >>> label_colour((255, 255, 0)), label_colour((0, 0, 128))
    ((0, 0, 0), (255, 255, 255))
    """
    r, g, b = fill
    return (0, 0, 0) if 0.299 * r + 0.587 * g + 0.114 * b > 150 else (255, 255, 255)


def draw_regions(
    image: Image.Image,
    boxes: Sequence[Sequence[float]],
    *,
    width: int | None = None,
    font_size: int | None = None,
) -> Image.Image:
    """A copy of ``image`` with numbered regions: box ``i`` outlined in ``colour(i)``, labelled ``i+1``.

    Boxes are ``[x1, y1, x2, y2]`` original pixels. As in :func:`draw_boxes`, the outline lies
    inside the box (its outer edge is the box edge: columns ``x1`` and ``x2 - 1``, rows ``y1`` and
    ``y2 - 1`` for integer boxes). The number sits on a tag of the box colour just above the
    box's top-left corner (inside the box when there is no room above), in black or white,
    whichever reads better. Line width and font grow with the image, so marks survive the
    model's resize.

    Example:
        >>> from PIL import Image
        >>> img = draw_regions(Image.new("RGB", (100, 80), "white"), [[10, 30, 60, 70]])
        >>> img.getpixel((10, 50)) == colour(0), img.getpixel((9, 50))
        (True, (255, 255, 255))
    """
    out = image.convert("RGB").copy()
    draw = ImageDraw.Draw(out)
    w = width or max(2, round(min(out.size) / 150))
    font = _font(font_size or max(12, round(min(out.size) / 20)))
    for i, box in enumerate(boxes):
        c = colour(i)
        x1, y1, x2, y2 = (float(v) for v in box)
        x1, y1 = round(x1), round(y1)
        x2, y2 = max(x1, round(x2) - 1), max(y1, round(y2) - 1)
        draw.rectangle((x1, y1, x2, y2), outline=c, width=w)
    for i, box in enumerate(boxes):  # labels last: never hidden under another box's outline
        c = colour(i)
        x1, y1 = round(float(box[0])), round(float(box[1]))
        label = str(i + 1)
        tb = draw.textbbox((0, 0), label, font=font)
        tw, th = tb[2] - tb[0] + 8, tb[3] - tb[1] + 6
        ty = y1 - th if y1 - th >= 0 else y1 + w
        tx = min(x1, max(0, out.width - tw - 1))
        draw.rectangle((tx, ty, tx + tw, ty + th - 1), fill=c)
        draw.text((tx + 4, ty + 3 - tb[1]), label, fill=label_colour(c), font=font)
    return out


# ------------------------------------------------------------------------------------------
# Rows as pictures and HTML: phrases in the text take the colour of their boxes
# ------------------------------------------------------------------------------------------

_NUM = r"-?\d+(?:\.\d+)?"
_BOX = rf"\[\s*{_NUM}(?:\s*,\s*{_NUM}){{3}}\s*\]"
_BOXES = rf"(?:\s*(?:\[\s*{_BOX}(?:\s*,\s*{_BOX})*\s*\]|{_BOX}))?"
_GRID_BG = (255, 255, 255)


class HTML(str):
    """An HTML string that Jupyter displays as HTML (``_repr_html_``); ``str`` everywhere else."""

    def _repr_html_(self) -> str:
        return str(self)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the HTML to ``path`` (UTF-8)."""
        Path(path).write_text(str(self), encoding="utf-8")


def hex_colour(c: Sequence[int]) -> str:
    """``(230, 25, 75)`` -> ``'#e6194b'``."""
    return "#{:02x}{:02x}{:02x}".format(*(int(v) for v in c[:3]))


def phrase_colours(groundings: Sequence[dict[str, Any]] | None) -> dict[str, tuple[int, int, int]]:
    """``{phrase: colour}`` in first-appearance order: the colours :func:`draw_groundings` uses."""
    out: dict[str, tuple[int, int, int]] = {}
    for g in groundings or []:
        out.setdefault(g["phrase"], colour(len(out)))
    return out


def text_segments(
    text: str, colours: dict[str, tuple[int, int, int]]
) -> list[tuple[str, tuple[int, int, int] | None]]:
    """Split ``text`` into ``(piece, colour or None)``: each mention of a phrase (whole words,
    case-insensitive, longest phrase first) and the box(es) written right after it get the
    phrase's colour.

    >>> text_segments("The red ball [1, 2, 3, 4] is big.", {"red ball": (230, 25, 75)})
    [('The ', None), ('red ball [1, 2, 3, 4]', (230, 25, 75)), (' is big.', None)]
    """
    phrases = sorted((p for p in colours if p.strip()), key=len, reverse=True)
    if not text or not phrases:
        return [(text, None)] if text else []
    lookup = {p.lower(): c for p, c in reversed(list(colours.items()))}
    pattern = re.compile(
        r"(?<!\w)(" + "|".join(re.escape(p) for p in phrases) + r")(?!\w)" + _BOXES,
        re.IGNORECASE,
    )
    out: list[tuple[str, tuple[int, int, int] | None]] = []
    pos = 0
    for m in pattern.finditer(text):
        if m.start() > pos:
            out.append((text[pos : m.start()], None))
        out.append((m.group(0), lookup.get(m.group(1).lower())))
        pos = m.end()
    if pos < len(text):
        out.append((text[pos:], None))
    return out


def _row_image(value: Any) -> Image.Image | None:
    from hfgcot.images import ImagePolicy, load_image

    image, _ = load_image(value, ImagePolicy(min_side=1, allow_urls=False))
    return image


def _row_text(row: dict[str, Any], text_column: str) -> str:
    for column in (text_column, "cleaned_cot", "raw_cot_output"):
        value = row.get(column)
        if value:
            return str(value)
    return ""


def _fit(image: Image.Image, max_side: int) -> Image.Image:
    scale = max_side / max(image.size)
    if scale >= 1:
        return image
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.LANCZOS)


def _png_data_uri(image: Image.Image) -> str:
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _drawn(
    row: dict[str, Any],
    image_column: str,
    groundings_column: str | None,
    *,
    width: int | None = None,
    max_side: int | None = None,
) -> Any:
    """The row's image resized (to ``width``, or to fit ``max_side``), then its boxes drawn at
    that scale so outlines and labels stay crisp."""
    image = _row_image(row.get(image_column))
    groundings = (row.get(groundings_column) if groundings_column else None) or []
    if image is None:
        return None, groundings
    w0 = image.width
    if width is not None and width != image.width:
        height = max(1, round(image.height * width / image.width))
        image = image.resize((width, height), Image.Resampling.LANCZOS)
    elif max_side is not None:
        image = _fit(image, max_side)
    if groundings:
        s = image.width / w0
        scaled = [{**g, "bbox": [float(v) * s for v in g["bbox"]]} for g in groundings]
        image = draw_groundings(image, scaled)
    return image, groundings


def row_html(
    row: dict[str, Any],
    *,
    text_column: str = "gcot",
    image_column: str = "image",
    groundings_column: str | None = "groundings",
    status_column: str | None = "gcot_status",
    max_side: int = 480,
    title: str | None = None,
) -> HTML:
    """One row as HTML: its image with boxes (inline base64 PNG) beside its text, where every
    phrase (and the box written after it) has the background colour of its box.

    Works for GCoT rows by default; e.g. region-caption rows:
    ``row_html(row, image_column="image_with_bbox", text_column="answer", groundings_column=None)``.
    Returns an :class:`HTML` string (Jupyter displays it).

    Example:
        >>> row = {"image": Image.new("RGB", (64, 64)), "gcot": "A cat [4, 4, 40, 40].",
        ...        "groundings": [{"phrase": "cat", "bbox": [4, 4, 40, 40]}]}
        >>> "#e6194b" in row_html(row)
        True
    """
    image, groundings = _drawn(row, image_column, groundings_column, max_side=max_side)
    colours = phrase_colours(groundings)
    parts = []
    for piece, c in text_segments(_row_text(row, text_column), colours):
        if c is None:
            parts.append(html.escape(piece))
        else:
            parts.append(
                f'<span class="hfgcot-phrase" style="background:{hex_colour(c)};'
                f'color:{hex_colour(label_colour(c))};border-radius:3px;padding:0 2px">'
                f"{html.escape(piece)}</span>"
            )
    if image is not None:
        img = f'<img src="{_png_data_uri(image)}" style="max-width:{max_side}px">'
    else:
        img = '<div style="color:#888">(no image)</div>'
    head = f"<h3 style='margin:0 0 6px 0'>{html.escape(title)}</h3>" if title else ""
    status = row.get(status_column) if status_column else None
    meta = (
        f"<div style='color:#666;font-size:90%;margin-top:6px'>status: {html.escape(str(status))}"
        "</div>"
        if status is not None
        else ""
    )
    return HTML(
        '<div class="hfgcot-row" style="display:flex;gap:16px;align-items:flex-start;'
        'margin:12px 0;font-family:sans-serif">'
        f"<div>{img}</div>"
        f'<div style="flex:1;min-width:240px">{head}'
        f'<div style="white-space:pre-wrap;line-height:1.6">{"".join(parts)}</div>{meta}</div>'
        "</div>"
    )


def rows_html(rows: Any, *, title: str = "hfgcot", **kwargs: Any) -> HTML:
    """A standalone HTML page of several rows (``row_html`` keyword arguments apply to each)."""
    body = "\n".join(
        row_html(row, title=f"row {i}", **kwargs) + "<hr>" for i, row in enumerate(rows)
    )
    return HTML(
        f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"</head><body style='max-width:1100px;margin:auto'><h1 style='font-family:sans-serif'>"
        f"{html.escape(title)}</h1>\n{body}\n</body></html>\n"
    )


def _layout(
    segments: list[tuple[str, tuple[int, int, int] | None]],
    font: Any,
    width: int,
    margin: int,
    line_height: int,
) -> list[tuple[float, int, str, tuple[int, int, int] | None]]:
    """Word-wrapped ``(x, y, word, colour)`` placements; spaces between same-coloured words are
    kept as coloured pieces so a phrase is highlighted in one piece."""
    placed: list[tuple[float, int, str, tuple[int, int, int] | None]] = []
    x, y = float(margin), margin
    space = font.getlength(" ")
    pending_space: tuple[int, int, int] | None | bool = False
    for piece, c in segments:
        for token in re.findall(r"\n|[^\S\n]+|\S+", piece):
            if token == "\n":
                x, y, pending_space = float(margin), y + line_height, False
            elif token.isspace():
                pending_space = c if x > margin else False
            else:
                w = font.getlength(token)
                gap = space if pending_space is not False else 0.0
                if x + gap + w > width - margin and x > margin:
                    x, y, gap = float(margin), y + line_height, 0.0
                elif gap and c is not None and pending_space == c:
                    placed.append((x, y, " ", c))
                x += gap
                placed.append((x, y, token, c))
                x += w
                pending_space = False
    return placed


def render_row(
    row: dict[str, Any],
    *,
    text_column: str = "gcot",
    image_column: str = "image",
    groundings_column: str | None = "groundings",
    width: int = 640,
    font_size: int | None = None,
) -> Image.Image:
    """One row as a picture: the image with its boxes, and below it the word-wrapped text whose
    phrases have the background colour of their boxes. Save it with ``.save("row.png")``.

    Example:
        >>> row = {"image": Image.new("RGB", (64, 64)), "gcot": "A cat [4, 4, 40, 40].",
        ...        "groundings": [{"phrase": "cat", "bbox": [4, 4, 40, 40]}]}
        >>> render_row(row, width=320).width
        320
    """
    image, groundings = _drawn(row, image_column, groundings_column, width=width)
    font = _font(font_size or max(12, width // 40))
    margin = max(6, width // 60)
    asc, desc = font.getmetrics() if hasattr(font, "getmetrics") else (font.size, 0)
    line_height = asc + desc + 6
    segments = text_segments(_row_text(row, text_column), phrase_colours(groundings))
    placed = _layout(segments, font, width, margin, line_height)
    text_height = (max(y for _, y, _, _ in placed) + line_height + margin) if placed else 0
    top = image.height if image is not None else 0
    out = Image.new("RGB", (width, top + text_height), _GRID_BG)
    if image is not None:
        out.paste(image, (0, 0))
    draw = ImageDraw.Draw(out)
    for x, y, token, c in placed:
        if c is not None:
            w = font.getlength(token)
            draw.rectangle((x - 1, top + y - 2, x + w + 1, top + y + line_height - 5), fill=c)
        draw.text((x, top + y), token, font=font, fill=label_colour(c) if c else (20, 20, 20))
    return out


def grid(
    images: Sequence[Image.Image],
    cols: int = 3,
    *,
    cell_width: int | None = None,
    pad: int = 8,
    background: tuple[int, int, int] = _GRID_BG,
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
