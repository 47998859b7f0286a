"""Image frames and box coordinates for the Qwen-VL model families.

Pure Python (stdlib only): importable without torch, transformers or numpy.

A Qwen-VL model never sees the original image: the processor resizes it with
:func:`smart_resize` so that each side is a multiple of the patch factor and the area lies
between ``min_pixels`` and ``max_pixels``. Boxes the model writes are in one of two
conventions, depending on the family (:mod:`hfgcot.geometry.families`, the one table): 0..1000
relative to the image (``x * W / 1000`` in original pixels: Qwen2-VL, Qwen3-VL), or pixels of the
resized image (``x * W / model_width``: Qwen2.5-VL).

A :class:`Frame` records both sizes and converts boxes either way::

    >>> frame = Frame.for_image(640, 480, min_pixels=3136, max_pixels=12845056)
    >>> (frame.model_width, frame.model_height)
    (644, 476)
    >>> frame.box_to_pixels([0, 0, 500, 500], "qwen2_vl")
    [0.0, 0.0, 320.0, 240.0]

All boxes are ``[x1, y1, x2, y2]`` lists unless a function says otherwise; the plain box
helpers (``clip_box``, ``iou``...) live in :mod:`hfgcot.geometry.boxes` and are re-exported here.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from hfgcot.geometry.boxes import (
    as_box,
    box_area,
    clip_box,
    iou,
    is_finite_box,
    xywh_to_xyxy,
    xyxy_to_xywh,
)
from hfgcot.geometry.families import (
    FAMILIES,
    RELATIVE_SCALE,
    Family,
    family_for_model_type,
    get_family,
    patch_factor,
)

__all__ = [
    "FAMILIES",
    "Family",
    "Frame",
    "box_area",
    "clip_box",
    "family_for_model_type",
    "iou",
    "is_finite_box",
    "patch_factor",
    "smart_resize",
    "xywh_to_xyxy",
    "xyxy_to_xywh",
]

MAX_ASPECT_RATIO = 200
"""Largest ``long side / short side`` ratio :func:`smart_resize` accepts."""


def _positive_int(name: str, value: object) -> int:
    """``value`` as a python int (numpy/tensor integers accepted); ValueError unless > 0."""
    try:
        if isinstance(value, bool):
            raise TypeError
        as_int = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise ValueError(f"{name} must be a positive integer, got {value!r}") from None
    if as_int <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return as_int


def smart_resize(
    height: int,
    width: int,
    factor: int = 28,
    min_pixels: int = 3136,
    max_pixels: int = 12845056,
) -> tuple[int, int]:
    """Size ``(height, width)`` the Qwen-VL image processor resizes an image to.

    Agrees exactly with ``transformers`` 5.23 (``models.qwen2_vl.image_processing_qwen2_vl``):
    each side is rounded to the nearest multiple of ``factor``; if the area then exceeds
    ``max_pixels`` both sides are scaled down by ``beta = sqrt(h * w / max_pixels)`` and floored
    to the factor (never below ``factor``); if it falls below ``min_pixels`` both sides are scaled
    up by ``sqrt(min_pixels / (h * w))`` and ceiled to the factor. Sides below ``factor`` are
    allowed (they are scaled up), and the result can exceed ``max_pixels`` for very thin images.

    >>> smart_resize(480, 640)
    (476, 644)
    >>> smart_resize(10, 10)
    (56, 56)
    >>> smart_resize(4000, 3000, max_pixels=1003520)
    (1148, 840)

    Raises:
        ValueError: for a side that is not a positive integer, a non-positive ``factor``, a
            non-positive ``max_pixels`` that the image would have to shrink to (where transformers
            fails too; a tiny image that rounds to area 0 is grown instead, as there), or an
            aspect ratio above 200.
    """
    height, width, factor = (
        _positive_int(name, value)
        for name, value in (("height", height), ("width", width), ("factor", factor))
    )
    if max(height, width) / min(height, width) > MAX_ASPECT_RATIO:
        raise ValueError(
            f"absolute aspect ratio must be smaller than {MAX_ASPECT_RATIO}, "
            f"got {max(height, width) / min(height, width)} for {height}x{width} (height x width)"
        )

    def nearest(side: int) -> int:
        # Python's round(): ties go to the even multiple, exactly like transformers.
        return round(side / factor) * factor

    new_h, new_w = nearest(height), nearest(width)
    area = height * width
    if new_h * new_w > max_pixels:
        if not max_pixels > 0:  # transformers fails here too (division by zero / math domain)
            raise ValueError(f"max_pixels must be positive, got {max_pixels!r}")
        shrink = math.sqrt(area / max_pixels)
        new_h = max(factor, math.floor(height / shrink / factor) * factor)
        new_w = max(factor, math.floor(width / shrink / factor) * factor)
    elif new_h * new_w < min_pixels:
        grow = math.sqrt(min_pixels / area)
        new_h = math.ceil(height * grow / factor) * factor
        new_w = math.ceil(width * grow / factor) * factor
    return new_h, new_w


# --------------------------------------------------------------------------------------------
# Frame
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Frame:
    """An original image size and the size the model saw.

    ``width``/``height`` are the original image in pixels; ``model_width``/``model_height`` the
    resized image the vision encoder received. Prefer :meth:`from_grid_thw` (what the processor
    actually produced) over :meth:`for_image` (a recomputation).

    >>> frame = Frame.from_grid_thw(640, 480, [1, 34, 46])
    >>> frame
    Frame(width=640, height=480, model_width=644, model_height=476)
    >>> frame.box_to_model([0, 0, 320, 240], "qwen2_5_vl")
    [0.0, 0.0, 322.0, 238.0]
    >>> frame.box_to_pixels([0.0, 0.0, 322.0, 238.0], "qwen2_5_vl")
    [0.0, 0.0, 320.0, 240.0]
    """

    width: int
    height: int
    model_width: int
    model_height: int

    def __post_init__(self) -> None:
        for name in ("width", "height", "model_width", "model_height"):
            object.__setattr__(self, name, _positive_int(f"Frame.{name}", getattr(self, name)))

    @classmethod
    def for_image(
        cls,
        width: int,
        height: int,
        *,
        min_pixels: int,
        max_pixels: int,
        factor: int = 28,
    ) -> Frame:
        """Frame from :func:`smart_resize` of an image of ``width`` x ``height`` pixels.

        >>> Frame.for_image(10, 10, min_pixels=3136, max_pixels=1003520)
        Frame(width=10, height=10, model_width=56, model_height=56)
        """
        model_height, model_width = smart_resize(
            height, width, factor=factor, min_pixels=min_pixels, max_pixels=max_pixels
        )
        return cls(width, height, model_width, model_height)

    @classmethod
    def from_grid_thw(
        cls, width: int, height: int, grid_thw: Sequence[int], patch_size: int = 14
    ) -> Frame:
        """Frame from the processor's ``image_grid_thw`` row ``[t, h_patches, w_patches]``.

        Use ``patch_size=16`` for ``qwen3_vl``. Elements may be tensor scalars.

        >>> Frame.from_grid_thw(10, 10, [1, 4, 4])
        Frame(width=10, height=10, model_width=56, model_height=56)
        """
        values = list(grid_thw)
        if len(values) != 3:
            raise ValueError(f"grid_thw must be [t, h, w], got {grid_thw!r}")
        _, h_patches, w_patches = (int(v) for v in values)
        return cls(width, height, w_patches * int(patch_size), h_patches * int(patch_size))

    def _model_extent(self, family: Family) -> tuple[float, float]:
        if get_family(family).relative:
            return float(RELATIVE_SCALE), float(RELATIVE_SCALE)
        return float(self.model_width), float(self.model_height)

    def box_to_pixels(self, box: Sequence[float], family: Family) -> list[float]:
        """Model-convention box -> original-pixel ``[x1, y1, x2, y2]``, ordered and clipped.

        >>> Frame(200, 100, 196, 112).box_to_pixels([1100, 500, -20, 0], "qwen2_vl")
        [0.0, 0.0, 200.0, 50.0]

        Raises:
            ValueError: if ``box`` is not 4 finite numbers, or ``family`` is unknown.
        """
        x1, y1, x2, y2 = as_box(box)
        # Divide last so that the full extent maps exactly onto the image edge.
        ext_x, ext_y = self._model_extent(family)
        px = [x1 * self.width / ext_x, x2 * self.width / ext_x]
        py = [y1 * self.height / ext_y, y2 * self.height / ext_y]
        return clip_box([px[0], py[0], px[1], py[1]], self.width, self.height)

    def box_to_model(self, box: Sequence[float], family: Family) -> list[float]:
        """Original-pixel box -> the family's convention (unrounded floats), ordered and clipped.

        Clipped to ``[0, model_width] x [0, model_height]`` for ``qwen2_5_vl`` and to
        ``[0, 1000]`` for the relative families. Round the numbers yourself when writing them
        into a prompt.

        >>> Frame(200, 100, 196, 112).box_to_model([0, 0, 100, 50], "qwen3_vl")
        [0.0, 0.0, 500.0, 500.0]

        Raises:
            ValueError: if ``box`` is not 4 finite numbers, or ``family`` is unknown.
        """
        x1, y1, x2, y2 = as_box(box)
        ext_x, ext_y = self._model_extent(family)
        mx = [x1 * ext_x / self.width, x2 * ext_x / self.width]
        my = [y1 * ext_y / self.height, y2 * ext_y / self.height]
        return clip_box([mx[0], my[0], mx[1], my[1]], ext_x, ext_y)

    def to_dict(self) -> dict[str, int]:
        """Plain dict for storing with the data; inverse of :meth:`from_dict`.

        >>> Frame(10, 10, 56, 56).to_dict()
        {'width': 10, 'height': 10, 'model_width': 56, 'model_height': 56}
        """
        return {
            "width": self.width,
            "height": self.height,
            "model_width": self.model_width,
            "model_height": self.model_height,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, int]) -> Frame:
        """Rebuild a frame from :meth:`to_dict` output (extra keys are ignored).

        >>> Frame.from_dict({"width": 10, "height": 10, "model_width": 56, "model_height": 56})
        Frame(width=10, height=10, model_width=56, model_height=56)
        """
        try:
            return cls(d["width"], d["height"], d["model_width"], d["model_height"])
        except KeyError as err:
            raise ValueError(f"frame dict is missing {err.args[0]!r}: {dict(d)!r}") from None
