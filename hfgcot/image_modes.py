"""Any PIL image mode to 8-bit RGB, the way :func:`hfgcot.images.load_image` converts.

- transparent images (RGBA, LA, PA, P or L/RGB with a ``tRNS`` key): alpha-composited on white;
- 16/32-bit images (``I;16*``, ``I``, ``F``): scaled to 8 bit by their bit depth;
- CMYK, YCbCr, LAB, HSV and the rest: PIL's own conversion.

    >>> from PIL import Image
    >>> to_rgb(Image.new("LA", (2, 2), (0, 0))).getpixel((0, 0))
    (255, 255, 255)
    >>> to_rgb(Image.new("I;16", (2, 2), 65535)).getpixel((0, 0))
    (255, 255, 255)
"""

from __future__ import annotations

import numpy as np
from PIL import Image

__all__ = ["high_depth_to_rgb", "to_rgb"]

_WHITE = (255, 255, 255)


def to_rgb(img: Image.Image) -> Image.Image:
    """A new RGB image: alpha on white, high bit depths scaled to 8 bit."""
    mode = img.mode
    if mode.startswith("I") or mode.startswith("F"):
        return high_depth_to_rgb(img)
    if img.has_transparency_data:
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (*_WHITE, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def high_depth_to_rgb(img: Image.Image) -> Image.Image:
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
