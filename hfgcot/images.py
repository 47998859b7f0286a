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
import urllib.parse
import urllib.request
import warnings
from typing import Any

from PIL import Image, ImageOps, UnidentifiedImageError

from hfgcot.image_modes import to_rgb
from hfgcot.image_policy import ImagePolicy
from hfgcot.status import OK
from hfgcot.urls import URL_NOT_ALLOWED, UrlError, fetch, is_url, safe_url

logger = logging.getLogger(__name__)

__all__ = ["ImagePolicy", "encode_image", "image_size", "kept_image", "load_image", "stored_image"]

DEFAULT_POLICY = ImagePolicy()

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
UNSUPPORTED_VALUE = "unsupported_value"
PATH_OUTSIDE_ROOT = "path_outside_root"

# An image value that an input reader refused (e.g. a path outside the input's root): reading it
# gives the status that follows the prefix, and nothing is ever opened.
REFUSED_PREFIX = "hfgcot-refused:"

_ORIENTATION_TAG = 0x0112
_SWAPPING_ORIENTATIONS = frozenset({5, 6, 7, 8})


class _Failure(Exception):
    """Internal: carries a status string out of nested helpers."""

    def __init__(self, status: str) -> None:
        super().__init__(status)
        self.status = status


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def load_image(value: Any, policy: ImagePolicy = DEFAULT_POLICY) -> tuple[Image.Image | None, str]:
    """Load ``value`` as a fully decoded RGB image, or explain why not.

    ``value`` may be a PIL image, a ``datasets`` ``Image`` storage dict ``{"bytes", "path"}``
    (bytes win, else path), raw bytes, a path (``str`` / :class:`os.PathLike`) or an
    ``http(s)://`` URL. ``None`` and ``""`` are ``"missing_image"``.

    Returns ``(image, "ok")`` or ``(None, status)`` where status is one of ``missing_image``,
    ``file_not_found: <basename>``, ``unreadable_file: <basename>``, ``empty_file``,
    ``undecodable_image``, ``truncated_image``, ``decompression_bomb``,
    ``image_too_small: WxH``, ``aspect_ratio_too_large: WxH``, ``url_not_allowed: <why>``,
    ``url_fetch_failed[: detail]``, ``image_too_large: <detail>`` (a URL body over
    ``max_image_bytes``), ``unsupported_value: <type>``. ``WxH`` is the size after EXIF
    transpose. URLs are fetched by :func:`hfgcot.urls.fetch` under the policy's URL rules.

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


def image_size(value: Any, policy: ImagePolicy = DEFAULT_POLICY) -> tuple[int, int] | None:
    """``(width, height)`` of ``value`` after EXIF transpose, or ``None`` if unreadable.

    Reads only the header where the format allows (no pixel decoding), so a truncated file can
    still report a size. Accepts the same values as :func:`load_image` (URLs are fetched under
    ``policy``'s URL rules; ``ImagePolicy(allow_urls=False)`` reads no URL). ``None`` for
    missing or unidentifiable images and above ``policy.max_image_pixels``. A PNG whose EXIF
    chunk comes after the pixel data is reported untransposed (that needs a full decode).

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
        with _open(_resolve(value, policy)) as img:
            if img.width * img.height > policy.max_image_pixels:
                raise _Failure(DECOMPRESSION_BOMB)
            return _oriented_size(img)
    except _Failure as failure:
        logger.debug("image size unknown: %s", failure.status)
        return None
    except Exception as exc:
        logger.debug("image size unknown: unexpected %s", type(exc).__name__)
        return None


def stored_image(value: Any, policy: ImagePolicy = DEFAULT_POLICY) -> dict[str, Any] | None:
    """``value`` as a ``datasets`` ``Image`` storage dict, a URL fetched once and kept.

    A URL (or a storage dict with a URL path and no bytes) is fetched under ``policy``:
    ``{"bytes": <body as sent>, "path": <the URL without credentials or query>}``, or when it
    cannot be, ``{"bytes": None, "path": "hfgcot-refused:<status>"}`` (reading that gives the
    status; nothing is fetched again). Other paths and bytes become storage dicts as they are.

    Example::

        >>> stored_image("img/a.png"), stored_image(None)
        ({'bytes': None, 'path': 'img/a.png'}, None)
        >>> stored_image("https://x.org/a.png?sig=1", ImagePolicy(allow_urls=False))
        {'bytes': None, 'path': 'hfgcot-refused:url_not_allowed: urls disabled'}
    """
    if value is None:
        return None
    if isinstance(value, dict):
        data, path = value.get("bytes"), value.get("path")
    elif isinstance(value, bytes | bytearray | memoryview):
        data, path = bytes(value), None
    else:
        data, path = None, os.fsdecode(value) if isinstance(value, str | os.PathLike) else None
    if data or not is_url(path):
        return {"bytes": data, "path": path}
    try:
        return {"bytes": _fetch(path, policy), "path": safe_url(path)}
    except _Failure as failure:
        logger.debug("image URL not read: %s", failure.status)
        return {"bytes": None, "path": f"{REFUSED_PREFIX}{failure.status}"}


def kept_image(cell: dict[str, Any] | None) -> dict[str, Any] | None:
    """What a result keeps of a :func:`stored_image` cell: its bytes, or the path of a file
    that exists; a refusal or a missing file becomes ``None`` (no image: the row's status says
    why), so the ``Image()`` column can be saved and shown.

    >>> kept_image({"bytes": None, "path": "hfgcot-refused:url_fetch_failed"}) is None
    True
    """
    if not isinstance(cell, dict) or cell.get("bytes"):
        return cell if isinstance(cell, dict) else None
    path = cell.get("path")
    return cell if path and not path.startswith(REFUSED_PREFIX) and os.path.isfile(path) else None


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
            img = to_rgb(img)
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
        if is_url(path):
            return _from_bytes(_fetch(path, policy))
        scheme = urllib.parse.urlsplit(path).scheme.lower() if "://" in path else ""
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


def _fetch(url: str, policy: ImagePolicy) -> bytes:
    if not policy.allow_urls:
        raise _Failure(f"{URL_NOT_ALLOWED}: urls disabled")
    try:
        data = fetch(
            url,
            timeout=policy.url_timeout,
            max_bytes=policy.max_image_bytes,
            allow_private=policy.allow_private_urls,
        )
    except UrlError as err:
        raise _Failure(err.status) from None
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
            rgb = to_rgb(oriented)
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
