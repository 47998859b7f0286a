"""Which images hfgcot accepts and how it may fetch them: :class:`ImagePolicy`.

Read by :func:`hfgcot.images.load_image` (and re-exported there); one policy is a field of every
pipeline config, and each of its fields is also a pipeline option of its own.

    >>> ImagePolicy().max_image_bytes == 64 * 2**20
    True
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["ImagePolicy"]


@dataclass(frozen=True)
class ImagePolicy:
    """Which images :func:`load_image` accepts, and how it may fetch them.

    Every field is also an option of every pipeline (``add_gcot(ds, allow_urls=False)``, the
    CLI's ``--allow-urls/--no-allow-urls``), applied to this policy of the pipeline's config.

    Attributes:
        min_side: an image whose smaller side is below this gets ``"image_too_small: WxH"``
            (too small to ground anything; a policy decision, not a decoding error).
        max_aspect_ratio: ``max(w, h) / min(w, h)`` above this gets
            ``"aspect_ratio_too_large: WxH"`` (Qwen-VL's resize rejects ratios above 200).
        allow_urls: fetch ``http(s)://`` values (:mod:`hfgcot.urls`); when False they get
            ``"url_not_allowed: urls disabled"``.
        allow_private_urls: also fetch from loopback, link-local and private addresses
            (refused by default: ``"url_not_allowed: <kind> address"``).
        url_timeout: seconds one URL fetch may take in all (connect, redirects, whole body).
        max_image_bytes: most bytes read from one URL (``"image_too_large: ..."`` above).
        max_image_pixels: an image of more pixels (width x height, read from the header before
            any decoding) gets ``"decompression_bomb"``; PIL's own default limit.

    Example::

        >>> ImagePolicy(min_side=1, allow_urls=False).min_side
        1
    """

    min_side: int = field(
        default=28, metadata={"help": "Images with a smaller side get image_too_small."}
    )
    max_aspect_ratio: float = field(
        default=200.0, metadata={"help": "Longer/shorter side above this: aspect_ratio_too_large."}
    )
    allow_urls: bool = field(
        default=True, metadata={"help": "Fetch http(s) image values (else url_not_allowed)."}
    )
    allow_private_urls: bool = field(
        default=False,
        metadata={"help": "Also fetch URLs on loopback, link-local and private addresses."},
    )
    url_timeout: float = field(
        default=10.0, metadata={"help": "Seconds one URL fetch may take in all (whole body)."}
    )
    max_image_bytes: int = field(
        default=64 * 2**20, metadata={"help": "Most bytes read from one image URL."}
    )
    max_image_pixels: int = field(
        default=89_478_485,
        metadata={"help": "Images of more pixels (from the header) get decompression_bomb."},
    )

    def __post_init__(self) -> None:
        for name in ("max_image_pixels", "max_image_bytes"):
            if not getattr(self, name) >= 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.min_side < 0:
            raise ValueError(f"min_side must be >= 0, got {self.min_side}")
        if not self.max_aspect_ratio >= 1.0:
            raise ValueError(f"max_aspect_ratio must be >= 1, got {self.max_aspect_ratio}")
        if not 0 < self.url_timeout < float("inf"):
            raise ValueError(f"url_timeout must be a finite number > 0, got {self.url_timeout}")
