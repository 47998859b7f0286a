"""Fonts that can draw a text: Pillow's built-in font, else one installed on the system.

Pillow's built-in font draws ASCII only. For other scripts :func:`find_font` asks fontconfig
(``fc-list``) for installed fonts covering every character, or scans the usual font folders when
fontconfig is missing, and checks each candidate glyph by glyph. ``font_path=`` (in every drawing
function) chooses a font instead. When no font covers a text, :func:`text_font` says so once in
the log and returns the built-in font with ``covered=False``: the pictures then number such
labels, and the HTML views (:func:`hfgcot.viz.row_html`, ``hfgcot view``), which the browser
renders in any script, show the text.

>>> font, covered = text_font("red circle", 12)
>>> covered
True
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import subprocess
import unicodedata
from pathlib import Path

from PIL import ImageFont

__all__ = ["FONT_DIRS", "find_font", "font_covers", "text_font"]

logger = logging.getLogger(__name__)

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont

FONT_DIRS: tuple[str, ...] = (
    "/usr/share/fonts",
    "/usr/local/share/fonts",
    "~/.local/share/fonts",
    "~/.fonts",
    "/Library/Fonts",
    "/System/Library/Fonts",
    "~/Library/Fonts",
    "C:/Windows/Fonts",
)
"""Folders scanned for fonts when fontconfig is not installed."""

_FONT_SUFFIXES = (".ttf", ".otf", ".ttc")
_MAX_SCANNED = 400
_warned = False


def _default_font(size: int) -> Font:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # pragma: no cover - Pillow < 10.1
        return ImageFont.load_default()


def _glyph(font: Font, char: str) -> tuple[tuple[int, int], bytes]:
    mask = font.getmask(char)
    return mask.size, bytes(mask)


def _drawable(char: str) -> bool:
    """Characters that need a glyph (not spaces, controls or invisible format characters)."""
    return not char.isspace() and unicodedata.category(char) not in {"Cc", "Cf", "Zs"}


def font_covers(font: Font, text: str) -> bool:
    """Whether ``font`` has a glyph for every visible character of ``text`` (a missing glyph is
    drawn as the font's "notdef" box: compared pixel for pixel).

    >>> font_covers(ImageFont.load_default(size=12), "abc"), font_covers(
    ...     ImageFont.load_default(size=12), "\\u4e2d")
    (True, False)
    """
    notdef = _glyph(font, "\U0010ffff")  # a noncharacter: no font draws it
    return all(_glyph(font, c) != notdef for c in set(text) if _drawable(c))


@functools.lru_cache(maxsize=256)
def _file_covers(path: str, chars: str) -> bool:
    try:
        font = ImageFont.truetype(path, 16)
    except OSError:
        return False
    return font_covers(font, chars)


def _rank(name: str) -> tuple[int, ...]:
    """Plain sans-serif regular fonts first (the labels' look), then the rest."""
    low = name.lower()
    return (
        "sans" not in low,
        any(w in low for w in ("mono", "code", "serif") if not (w == "serif" and "sans" in low)),
        any(w in low for w in ("bold", "italic", "oblique", "light", "thin", "black")),
        "condensed" in low or "narrow" in low,
        len(low),
    )


def _fontconfig_files(chars: str) -> list[str] | None:
    """Installed fonts covering ``chars`` by fontconfig, best first; ``None`` without it."""
    fc_list = shutil.which("fc-list")
    if fc_list is None:
        return None
    query = ":charset=" + " ".join(f"{ord(c):x}" for c in sorted(chars))
    try:
        done = subprocess.run(
            [fc_list, "--format", "%{file}\t%{family[0]} %{style[0]}\n", query],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    found: dict[str, str] = {}
    for line in done.stdout.splitlines():
        path, _, name = line.partition("\t")
        if path.lower().endswith(_FONT_SUFFIXES):
            found.setdefault(path, f"{Path(path).name} {name}")
    return sorted(found, key=lambda p: _rank(found[p]))


def _folder_files(dirs: tuple[str, ...]) -> list[str]:
    """Font files in ``dirs`` (recursively), best first, at most a few hundred."""
    files: list[str] = []
    for d in dirs:
        root = Path(os.path.expanduser(d))
        if root.is_dir():
            files += [str(p) for p in root.rglob("*") if p.suffix.lower() in _FONT_SUFFIXES]
    return sorted(files, key=lambda p: _rank(Path(p).name))[:_MAX_SCANNED]


@functools.lru_cache(maxsize=128)
def find_font(text: str, dirs: tuple[str, ...] = FONT_DIRS) -> str | None:
    """The path of an installed font with a glyph for every visible character of ``text``:
    one fontconfig lists (plain sans-serif regular first), else one found in ``dirs``;
    ``None`` when there is none.

    >>> path = find_font("abc")
    >>> path is None or path.lower().endswith((".ttf", ".otf", ".ttc"))
    True
    """
    chars = "".join(sorted({c for c in text if _drawable(c)}))
    if not chars:
        return None
    candidates = _fontconfig_files(chars)
    if candidates is None:
        candidates = _folder_files(dirs)
    return next((p for p in candidates if _file_covers(p, chars)), None)


def _warn_once(text: str) -> None:
    global _warned
    if not _warned:
        _warned = True
        logger.warning(
            "no installed font draws %r: pictures number such labels instead; the HTML views "
            "(hfgcot.viz.row_html, `hfgcot view`) show the text in any script. Install a font "
            "that covers it (e.g. Debian's fonts-noto-cjk) or pass font_path=",
            text[:40],
        )


def text_font(
    text: str, size: int, font_path: str | os.PathLike[str] | None = None
) -> tuple[Font, bool]:
    """The font to draw ``text`` at ``size`` pixels, and whether it covers the text.

    ``font_path`` when given (``ValueError`` if it cannot be read); else Pillow's built-in font
    when it covers the text; else :func:`find_font`'s; else the built-in font and ``False``
    (logged once per process).

    >>> text_font("", 10)[1]
    True
    """
    if font_path is not None:
        try:
            font = ImageFont.truetype(str(font_path), size)
        except OSError as exc:
            raise ValueError(f"cannot read the font {font_path}: {exc}") from exc
        return font, font_covers(font, text)
    default = _default_font(size)
    if font_covers(default, text):
        return default, True
    path = find_font(text)
    if path is not None:
        return ImageFont.truetype(path, size), True
    _warn_once(text)
    return default, False
