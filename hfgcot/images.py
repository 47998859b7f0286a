"""Robust image loading: any image-like value in, an RGB PIL image (or a status) out.

Every stage of hfgcot reads images through :func:`load_image`, so a dataset with a few bad
images never crashes a pipeline: a bad image becomes a short, machine-groupable status string
(``"<reason>"`` or ``"<reason>: <short detail>"``) that the stage writes to its status column.

Invariants:

- :func:`load_image` never raises for a bad image (only for a bad :class:`ImagePolicy`).
- The returned image is a fresh ``"RGB"`` image, fully decoded, in the orientation a viewer
  shows (EXIF orientation applied, like ``datasets``' ``Image`` feature).
- :func:`image_size` reports the size that :func:`load_image` would return.
- Statuses and log messages never carry a full file path (basename only) nor a URL query string.

Example::

    >>> from PIL import Image
    >>> img, status = load_image(Image.new("RGBA", (64, 32)))
    >>> status, img.mode, img.size
    ('ok', 'RGB', (64, 32))
    >>> load_image(None)
    (None, 'missing_image')
"""

from __future__ import annotations

import io
import logging
import os
import urllib.error
import urllib.parse
import urllib.request
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from hfgcot.status import OK

logger = logging.getLogger(__name__)

__all__ = [
    "OK",
    "ImagePolicy",
    "encode_image",
    "image_size",
    "load_image",
]


# Status reasons (the part before ": "). Stable: stages group rows by them.
MISSING_IMAGE = "missing_image"
FILE_NOT_FOUND = "file_not_found"
UNREADABLE_FILE = "unreadable_file"
EMPTY_FILE = "empty_file"
UNDECODABLE_IMAGE = "undecodable_image"
TRUNCATED_IMAGE = "truncated_image"
DECOMPRESSION_BOMB = "decompression_bomb"
IMAGE_TOO_SMALL = "image_too_small"
ASPECT_RATIO_TOO_LARGE = "aspect_ratio_too_large"
URL_FETCH_FAILED = "url_fetch_failed"
UNSUPPORTED_VALUE = "unsupported_value"
PATH_OUTSIDE_ROOT = "path_outside_root"

# An image value that an input reader refused (e.g. a path outside the input's root): reading it
# gives the status that follows the prefix, and nothing is ever opened.
REFUSED_PREFIX = "hfgcot-refused:"

_ORIENTATION_TAG = 0x0112
_SWAPPING_ORIENTATIONS = frozenset({5, 6, 7, 8})
_WHITE = (255, 255, 255)
_USER_AGENT = "hfgcot-images/1"


@dataclass(frozen=True)
class ImagePolicy:
    """Which images :func:`load_image` accepts, and how it may fetch them.

    Attributes:
        min_side: an image whose smaller side is below this gets ``"image_too_small: WxH"``
            (too small to ground anything; a policy decision, not a decoding error).
        max_aspect_ratio: ``max(w, h) / min(w, h)`` above this gets
            ``"aspect_ratio_too_large: WxH"`` (Qwen-VL's resize rejects ratios above 200).
        allow_urls: fetch ``http(s)://`` values with :mod:`urllib`; when False they get
            ``"url_fetch_failed: urls disabled"``.
        url_timeout: socket timeout in seconds for URL fetches.
        max_image_pixels: an image of more pixels (width x height, read from the header before
            any decoding) gets ``"decompression_bomb"``; PIL's own default limit.

    Example::

        >>> ImagePolicy(min_side=1, allow_urls=False).min_side
        1
    """

    min_side: int = 28
    max_aspect_ratio: float = 200.0
    allow_urls: bool = True
    url_timeout: float = 10.0
    max_image_pixels: int = 89_478_485

    def __post_init__(self) -> None:
        if not self.max_image_pixels >= 1:
            raise ValueError(f"max_image_pixels must be >= 1, got {self.max_image_pixels}")
        if self.min_side < 0:
            raise ValueError(f"min_side must be >= 0, got {self.min_side}")
        if not self.max_aspect_ratio >= 1.0:
            raise ValueError(f"max_aspect_ratio must be >= 1, got {self.max_aspect_ratio}")
        if not self.url_timeout > 0:
            raise ValueError(f"url_timeout must be > 0, got {self.url_timeout}")


class _Failure(Exception):
    """Internal: carries a status string out of nested helpers."""

    def __init__(self, status: str) -> None:
        super().__init__(status)
        self.status = status


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def load_image(value: Any, policy: ImagePolicy = ImagePolicy()) -> tuple[Image.Image | None, str]:
    """Load ``value`` as a fully decoded RGB image, or explain why not.

    ``value`` may be a PIL image, a ``datasets`` ``Image`` storage dict ``{"bytes", "path"}``
    (bytes win, else path), raw bytes, a path (``str`` / :class:`os.PathLike`) or an
    ``http(s)://`` URL. ``None`` and ``""`` are ``"missing_image"``.

    Returns ``(image, "ok")`` or ``(None, status)`` where status is one of ``missing_image``,
    ``file_not_found: <basename>``, ``unreadable_file: <basename>``, ``empty_file``,
    ``undecodable_image``, ``truncated_image``, ``decompression_bomb``,
    ``image_too_small: WxH``, ``aspect_ratio_too_large: WxH``, ``url_fetch_failed[: detail]``,
    ``unsupported_value: <type>``. ``WxH`` is the size after EXIF transpose.

    Conversion to RGB: transparent images (RGBA, LA, PA, P or L/RGB with a ``tRNS`` key) are
    alpha-composited on white; 16/32-bit images (``I;16*``, ``I``, ``F``) are scaled to 8 bit by
    their bit depth (65535 -> 255); CMYK, YCbCr, LAB, HSV and the rest use PIL's conversion.

    Example::

        >>> from PIL import Image
        >>> img, status = load_image(Image.new("LA", (40, 30), (0, 0)))
        >>> status, img.mode, img.getpixel((0, 0))   # fully transparent -> white
        ('ok', 'RGB', (255, 255, 255))
        >>> load_image(Image.new("RGB", (20, 20)))[1]
        'image_too_small: 20x20'
        >>> load_image(12)[1]
        'unsupported_value: int'
    """
    try:
        image = _load_rgb(value, policy)
    except _Failure as failure:
        logger.debug("image not loaded: %s", failure.status)
        return None, failure.status
    except Exception as exc:  # last resort: never raise for a bad image
        logger.debug("image not loaded: unexpected %s", type(exc).__name__)
        return None, f"{UNDECODABLE_IMAGE}: {type(exc).__name__}"
    return image, OK


def image_size(value: Any) -> tuple[int, int] | None:
    """``(width, height)`` of ``value`` after EXIF transpose, or ``None`` if unreadable.

    Reads only the header where the format allows (no pixel decoding), so a truncated file can
    still report a size. Accepts the same values as :func:`load_image` (URLs are fetched with the
    default :class:`ImagePolicy`). Returns ``None`` for missing or unidentifiable images and for
    decompression bombs. A PNG whose EXIF chunk comes after the pixel data is reported untransposed
    (reading it would need a full decode).

    Example::

        >>> from PIL import Image
        >>> image_size(Image.new("RGB", (640, 480)))
        (640, 480)
        >>> image_size(b"not an image") is None
        True
    """
    try:
        if isinstance(value, Image.Image):
            return _oriented_size(value)
        source = _resolve(value, ImagePolicy())
        with _open(source) as img:
            return _oriented_size(img)
    except _Failure as failure:
        logger.debug("image size unknown: %s", failure.status)
        return None
    except Exception as exc:
        logger.debug("image size unknown: unexpected %s", type(exc).__name__)
        return None


def encode_image(img: Image.Image, format: str = "PNG") -> dict[str, Any]:
    """Encode ``img`` for a ``datasets`` ``Image`` column: ``{"bytes": ..., "path": None}``.

    No EXIF is written, so the stored pixels are shown as they are (apply orientation before,
    e.g. via :func:`load_image`). For JPEG, images without a JPEG mode are converted to RGB like
    :func:`load_image` does (alpha on white) and saved at quality 95.

    Example::

        >>> from PIL import Image
        >>> cell = encode_image(Image.new("RGB", (8, 8)))
        >>> cell["path"] is None, cell["bytes"][:4]
        (True, b'\\x89PNG')
    """
    fmt = format.upper()
    if fmt == "JPG":
        fmt = "JPEG"
    params: dict[str, Any] = {}
    if fmt == "JPEG":
        params["quality"] = 95
        if img.mode not in ("RGB", "L", "CMYK"):
            img = _to_rgb(img)
    buffer = io.BytesIO()
    img.save(buffer, format=fmt, **params)
    return {"bytes": buffer.getvalue(), "path": None}


# --------------------------------------------------------------------------------------------
# Resolving a value to something PIL can open
# --------------------------------------------------------------------------------------------


def _load_rgb(value: Any, policy: ImagePolicy) -> Image.Image:
    if isinstance(value, Image.Image):
        return _finish(value, policy)
    source = _resolve(value, policy)
    with _open(source) as img:
        return _finish(img, policy)


def _resolve(value: Any, policy: ImagePolicy) -> str | io.BytesIO:
    """Turn ``value`` into a local path or an in-memory buffer; raise ``_Failure`` otherwise."""
    if value is None:
        raise _Failure(MISSING_IMAGE)
    if isinstance(value, dict):
        data, path = value.get("bytes"), value.get("path")
        if data:
            return _from_bytes(data)
        if path:
            return _resolve(path, policy)
        if data is not None:  # b"" and no path
            raise _Failure(EMPTY_FILE)
        raise _Failure(MISSING_IMAGE)
    if isinstance(value, bytes | bytearray | memoryview):
        return _from_bytes(value)
    if isinstance(value, str | os.PathLike):
        path = os.fsdecode(value)
        if not path:
            raise _Failure(MISSING_IMAGE)
        if path.startswith(REFUSED_PREFIX):  # a reader refused it: never opened
            raise _Failure(path[len(REFUSED_PREFIX) :])
        scheme = urllib.parse.urlsplit(path).scheme.lower() if "://" in path else ""
        if scheme in ("http", "https"):
            return _from_bytes(_fetch(path, policy))
        if scheme == "file":
            path = urllib.request.url2pathname(urllib.parse.urlsplit(path).path)
        elif scheme:
            raise _Failure(f"{UNSUPPORTED_VALUE}: {scheme} url")
        return _check_file(path)
    raise _Failure(f"{UNSUPPORTED_VALUE}: {type(value).__name__}")


def _from_bytes(data: bytes | bytearray | memoryview) -> io.BytesIO:
    if len(data) == 0:
        raise _Failure(EMPTY_FILE)
    return io.BytesIO(bytes(data))


def _check_file(path: str) -> str:
    name = os.path.basename(path.rstrip("/\\")) or "?"
    try:
        size = os.stat(path).st_size
    except FileNotFoundError:
        raise _Failure(f"{FILE_NOT_FOUND}: {name}") from None
    except (OSError, ValueError):  # permission, bad name, embedded NUL ...
        raise _Failure(f"{UNREADABLE_FILE}: {name}") from None
    if os.path.isdir(path):
        raise _Failure(f"{UNREADABLE_FILE}: {name}")
    if size == 0:
        raise _Failure(EMPTY_FILE)
    return path


def _safe_url(url: str) -> str:
    """``scheme://host/path`` of ``url``: no credentials, query string or fragment."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}"


def _fetch(url: str, policy: ImagePolicy) -> bytes:
    if not policy.allow_urls:
        raise _Failure(f"{URL_FETCH_FAILED}: urls disabled")
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    try:
        with urllib.request.urlopen(request, timeout=policy.url_timeout) as response:
            data = response.read()
    except urllib.error.HTTPError as exc:
        logger.debug("fetching %s failed: HTTP %s", _safe_url(url), exc.code)
        raise _Failure(f"{URL_FETCH_FAILED}: http {exc.code}") from None
    except Exception as exc:  # URLError, timeouts, resets, bad URLs ...
        logger.debug("fetching %s failed: %s", _safe_url(url), type(exc).__name__)
        raise _Failure(URL_FETCH_FAILED) from None
    if not data:
        raise _Failure(EMPTY_FILE)
    return data


# --------------------------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------------------------


def _open(source: str | io.BytesIO) -> Image.Image:
    """``Image.open`` with its errors mapped to statuses (header only, no pixel decoding)."""
    try:
        with warnings.catch_warnings():
            # Between PIL's limit and twice it, PIL only warns; the policy decides instead.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(source)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _Failure(DECOMPRESSION_BOMB) from None
    except FileNotFoundError:
        raise _Failure(f"{FILE_NOT_FOUND}: {_basename(source)}") from None
    except UnidentifiedImageError:
        raise _Failure(UNDECODABLE_IMAGE) from None
    except Exception as exc:
        raise _Failure(_decode_status(exc)) from None


def _basename(source: str | io.BytesIO) -> str:
    return os.path.basename(source) if isinstance(source, str) else "?"


def _decode_status(exc: BaseException) -> str:
    """Map an exception raised while decoding to a status (never with the message: it can
    contain the full path)."""
    if isinstance(exc, Image.DecompressionBombError | Image.DecompressionBombWarning):
        return DECOMPRESSION_BOMB
    message = str(exc).lower()
    if isinstance(exc, EOFError) or "truncat" in message:
        return TRUNCATED_IMAGE
    if "too large" in message:  # e.g. PNG text chunks above MAX_TEXT_CHUNK
        return DECOMPRESSION_BOMB
    return UNDECODABLE_IMAGE


def _finish(img: Image.Image, policy: ImagePolicy) -> Image.Image:
    """Decode fully, transpose, apply the policy, convert to RGB. Never mutates ``img``."""
    width, height = img.size
    if width * height > policy.max_image_pixels:  # header only: nothing decoded yet
        raise _Failure(DECOMPRESSION_BOMB)
    try:
        img.load()
    except Exception as exc:
        raise _Failure(_decode_status(exc)) from None
    try:
        oriented = ImageOps.exif_transpose(img)
    except Exception as exc:  # corrupt EXIF: keep the stored orientation
        logger.debug("ignoring unreadable EXIF orientation (%s)", type(exc).__name__)
        oriented = img.copy()
    width, height = oriented.size
    short, long = min(width, height), max(width, height)
    if short < max(policy.min_side, 1):
        raise _Failure(f"{IMAGE_TOO_SMALL}: {width}x{height}")
    if long / short > policy.max_aspect_ratio:
        raise _Failure(f"{ASPECT_RATIO_TOO_LARGE}: {width}x{height}")
    try:
        if oriented.mode == "RGB" and not oriented.has_transparency_data:
            rgb = oriented  # already a fresh copy
        else:
            rgb = _to_rgb(oriented)
    except Exception as exc:
        logger.debug("cannot convert mode %s to RGB (%s)", oriented.mode, type(exc).__name__)
        raise _Failure(f"{UNDECODABLE_IMAGE}: mode {oriented.mode}") from None
    rgb.info.pop("exif", None)  # orientation is applied; drop stale metadata
    return rgb


def _oriented_size(img: Image.Image) -> tuple[int, int]:
    """Size after EXIF transpose, without decoding pixels where the format allows."""
    width, height = img.size
    if img.format == "PNG" and "exif" not in img.info:
        # PIL's PNG getexif() decodes the whole image when the eXIf chunk is not in the header
        # (once decoded, a trailing eXIf chunk is in ``info``).
        orientation = 1
    else:
        try:
            orientation = img.getexif().get(_ORIENTATION_TAG, 1)
        except Exception:
            orientation = 1
    if orientation in _SWAPPING_ORIENTATIONS:
        return height, width
    return width, height


def _to_rgb(img: Image.Image) -> Image.Image:
    """A new RGB image: alpha on white, high bit depths scaled to 8 bit."""
    mode = img.mode
    if mode.startswith("I") or mode.startswith("F"):
        return _high_depth_to_rgb(img)
    if img.has_transparency_data:
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (*_WHITE, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def _high_depth_to_rgb(img: Image.Image) -> Image.Image:
    """Scale ``I;16*`` / ``I`` / ``F`` pixels to 8 bit by the data's bit depth, then to RGB.

    ``I;16*``: 0..65535 -> 0..255 (divide by 257, rounded). ``I``: values above 255 are taken as
    16-bit data (above 65535 as 32-bit), otherwise as 8-bit. ``F``: data within 0..1 is scaled by
    255, within 0..255 kept, within 0..65535 divided by 257, larger ranges divided by their max.
    Negative values and NaN become 0. A ``tRNS`` grey value becomes white.
    """
    raw = np.asarray(img)
    data = np.nan_to_num(raw.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    data = np.clip(data, 0.0, None)
    peak = float(data.max()) if data.size else 0.0
    if img.mode.startswith("I;16"):
        scale = 65535.0
    elif img.mode.startswith("F") and peak <= 1.0:
        scale = 1.0
    elif peak <= 255.0:
        scale = 255.0
    elif peak <= 65535.0:
        scale = 65535.0
    elif img.mode.startswith("I"):
        scale = 4294967295.0 if peak > 2147483647.0 else 2147483647.0
    else:
        scale = peak
    gray = np.clip(np.rint(data * (255.0 / scale)), 0, 255).astype(np.uint8)
    transparency = img.info.get("transparency")
    if isinstance(transparency, int | float) and not isinstance(transparency, bool):
        gray[raw == transparency] = 255
    return Image.fromarray(gray).convert("RGB")
