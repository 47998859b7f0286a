"""Rows as HTML: the image with its boxes as an SVG overlay, beside the texts that name them.

:func:`row_fragment` renders a :class:`~hfgcot.viz.rows.RowView`. The overlay's ``viewBox`` is the
image's size in original pixels, so boxes are drawn at their stored coordinates and scale with
the image. A box and the texts that name it share ``data-k`` and colour; hovering one highlights
both (CSS ``:has()``, no script). Every text is escaped. :func:`row_html` is one row for a
notebook; the viewer page (:mod:`hfgcot.viz.viewer`) is built of the same fragments.

>>> from PIL import Image
>>> row = {"image": Image.new("RGB", (64, 64)), "question": "<b>?</b>", "gcot": "A cat.",
...        "groundings": [{"phrase": "cat", "bbox": [4, 4, 40, 40]}]}
>>> html = row_html(row)
>>> "&lt;b&gt;?&lt;/b&gt;" in html and 'data-k="p0"' in html
True
"""

from __future__ import annotations

import base64
import html
import io
import os
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from PIL import Image

from hfgcot.status import is_ok, reason
from hfgcot.viz.colours import hex_colour, label_colour
from hfgcot.viz.layout import place_labels
from hfgcot.viz.picture import row_image
from hfgcot.viz.rows import RowView, Section, row_view, view_image

__all__ = ["HTML", "image_data_uri", "row_fragment", "row_html", "style_sheet"]

_TAG_PX = 13  # font size of the numbers on the boxes, in displayed pixels
_MAX_UPSCALE = 4  # a small image is shown up to this many times its size
_SMALL_PNG = 256 * 256  # images up to this many pixels stay PNG; larger ones become JPEG


class HTML(str):
    """An HTML string that Jupyter displays as HTML (``_repr_html_``); ``str`` everywhere else."""

    def _repr_html_(self) -> str:
        return str(self)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the HTML to ``path`` (UTF-8)."""
        Path(path).write_text(str(self), encoding="utf-8")


def style_sheet(keys: Iterable[str] = ()) -> str:
    """The rows' CSS, with hover rules pairing boxes and texts for each key in ``keys``.

    >>> '[data-k="p0"]:hover' in style_sheet(["p0"])
    True
    """
    css = resources.files("hfgcot.viz").joinpath("assets/viewer.css").read_text("utf-8")
    rules = "".join(
        f'.hfgcot-row:has([data-k="{k}"]:hover) [data-k="{k}"]{{--hl:1}}\n' for k in sorted(keys)
    )
    return css + rules


def image_data_uri(image: Image.Image, max_side: int | None = None) -> str:
    """``image`` (shrunk to fit ``max_side``) as a ``data:`` URI: PNG when small, else JPEG.

    >>> image_data_uri(Image.new("RGB", (4, 4)))[:22]
    'data:image/png;base64,'
    """
    if max_side is not None and max(image.size) > max_side:
        scale = max_side / max(image.size)
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        image = image.resize(size, Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    if image.width * image.height <= _SMALL_PNG or image.mode in ("RGBA", "LA", "P"):
        image.save(buf, "PNG")
        kind = "png"
    else:
        image.convert("RGB").save(buf, "JPEG", quality=88)
        kind = "jpeg"
    return f"data:image/{kind};base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _coloured(tag: str, cls: str, key: str, c: tuple[int, int, int], body: str) -> str:
    style = f"background:{hex_colour(c)};color:{hex_colour(label_colour(c))}"
    return f'<{tag} class="{cls}" data-k="{key}" style="{style}">{body}</{tag}>'


def _svg(view: RowView, width: int, height: int, display_width: float) -> str:
    """Boxes in original pixels; number tags sized for the displayed image, placed off boxes."""
    unit = width / max(display_width, 1.0)  # original pixels per displayed pixel
    parts = []
    for b in view.boxes:
        x1, y1, x2, y2 = b.bbox
        dashed = " hfgcot-dashed" if b.dashed else ""
        parts.append(
            f'<rect class="hfgcot-box{dashed}" data-k="{b.key}" x="{x1:g}" y="{y1:g}" '
            f'width="{max(x2 - x1, 0):g}" height="{max(y2 - y1, 0):g}" '
            f'style="color:{hex_colour(b.colour)}" vector-effect="non-scaling-stroke">'
            f"<title>{_e(b.label)}</title></rect>"
        )
    numbered = [b for b in view.boxes if b.number]
    sizes = [((0.62 * _TAG_PX * len(b.number) + 8) * unit, (_TAG_PX + 5) * unit) for b in numbered]
    rects = place_labels(width, height, [b.bbox for b in numbered], sizes)
    for b, r, (w, h) in zip(numbered, rects, sizes, strict=True):
        x, y = (r[0], r[1]) if r is not None else (max(0.0, b.bbox[0]), max(0.0, b.bbox[1]))
        parts.append(
            f'<g class="hfgcot-tag" data-k="{b.key}"><rect x="{x:g}" y="{y:g}" width="{w:g}" '
            f'height="{h:g}" fill="{hex_colour(b.colour)}"/><text x="{x + w / 2:g}" '
            f'y="{y + h / 2:g}" font-size="{_TAG_PX * unit:g}" text-anchor="middle" '
            f'dominant-baseline="central" fill="{hex_colour(label_colour(b.colour))}">'
            f"{_e(b.number)}</text></g>"
        )
    return (
        f'<svg viewBox="0 0 {width} {height}" preserveAspectRatio="none" '
        f'xmlns="http://www.w3.org/2000/svg">{"".join(parts)}</svg>'
    )


def _figure(view: RowView, image: Image.Image | None, max_side: int) -> str:
    if image is None:
        return '<div class="hfgcot-noimage">(no image)</div>'
    w, h = image.size
    scale = min(_MAX_UPSCALE, max_side / max(w, h))  # small images are shown larger
    shown = max(1.0, w * scale)
    pixelated = ";image-rendering:pixelated" if scale >= 2 else ""
    return (
        f'<figure class="hfgcot-figure" data-width="{w}" data-height="{h}" '
        f'style="width:{shown:.0f}px;aspect-ratio:{w}/{h}">'
        f'<img src="{image_data_uri(image, max_side)}" alt="" loading="lazy" '
        f'style="{pixelated[1:]}">'
        f"{_svg(view, w, h, shown)}</figure>"
    )


def _section(s: Section, colours: Mapping[str, tuple[int, int, int]]) -> str:
    if s.kind == "spans":
        body = "".join(
            _e(p) if k is None else _coloured("span", "hfgcot-phrase", k, colours[k], _e(p))
            for p, k in s.items
        )
        body = f'<div class="hfgcot-text">{body}</div>'
    elif s.kind == "regions":
        body = "".join(
            f'<li data-k="{k}">{_coloured("span", "hfgcot-num", k, colours[k], _e(n))} '
            f"{_e(caption)}</li>"
            for n, k, caption in s.items
        )
        body = f'<ol class="hfgcot-regions">{body}</ol>'
    elif s.kind == "sentences":
        marks = {True: ("hfgcot-kept", "kept"), False: ("hfgcot-dropped", "dropped")}
        lis = []
        for sentence, kept, score in s.items:
            cls, mark = marks.get(kept, ("hfgcot-unchecked", "unchecked"))
            score_html = "" if score is None else f'<span class="hfgcot-score">{score:.2f}</span>'
            lis.append(
                f'<li class="{cls}"><span class="hfgcot-mark">{mark}</span>'
                f'<span class="hfgcot-sentence">{_e(sentence)}</span>{score_html}</li>'
            )
        body = f'<ul class="hfgcot-sentences">{"".join(lis)}</ul>'
    elif s.kind == "pairs":
        body = "".join(f"<dt>{_e(n)}</dt><dd>{_e(v)}</dd>" for n, v in s.items)
        body = f'<dl class="hfgcot-pairs">{body}</dl>'
    else:
        body = f'<div class="hfgcot-text">{_e(s.text)}</div>'
    return f'<section class="hfgcot-sec"><h4>{_e(s.title)}</h4>{body}</section>'


def row_fragment(
    row: Mapping[str, Any], *, image_column: str = "image", max_side: int = 480, title: str = ""
) -> tuple[str, RowView]:
    """The HTML of one row (a ``div.hfgcot-row``) and the :class:`RowView` it shows."""
    image = row_image(view_image(row, image_column))
    size = None if image is None else image.size
    view = row_view(row, image_column=image_column, image_size=size)
    statuses = "".join(
        f'<span class="hfgcot-status" data-ok="{int(is_ok(v))}">'
        f"<small>{_e(n)}</small> {_e(v)}</span>"
        for n, v in view.statuses
    )
    sections = "".join(_section(s, view.colours) for s in view.sections)
    kind = "" if view.status is None else reason(view.status)
    return (
        f'<div class="hfgcot-row" data-status="{_e(kind)}">'
        f'<div class="hfgcot-media">{_figure(view, image, max_side)}</div>'
        f'<div class="hfgcot-body"><div class="hfgcot-head"><span class="hfgcot-title">'
        f"{_e(title)}</span>{statuses}</div>{sections}</div></div>"
    ), view


def row_html(
    row: Mapping[str, Any], *, image_column: str = "image", max_side: int = 480, title: str = ""
) -> HTML:
    """One row as HTML for a notebook: its image with boxes, the question and reference answer,
    its texts with each phrase or region number in the colour of its box (hover highlights
    the pair), and its statuses. Works for every pipeline's columns; text in any script.

    Example:
        >>> row = {"image": Image.new("RGB", (64, 64)), "gcot": "A cat [4, 4, 40, 40].",
        ...        "groundings": [{"phrase": "cat", "bbox": [4, 4, 40, 40]}]}
        >>> "#e6194b" in row_html(row)
        True
    """
    fragment, view = row_fragment(row, image_column=image_column, max_side=max_side, title=title)
    return HTML(f"<style>{style_sheet(view.colours)}</style>{fragment}")
