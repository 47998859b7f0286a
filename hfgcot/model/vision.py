"""Each distinct image of a batch through the vision encoder once.

Several requests on one image (K keywords, N questions, a sentence checked with and without the
rest) would otherwise encode it once per request. :func:`encode_unique_images` encodes each
distinct image (by identity) once and hands the model one entry per image placeholder, in order,
through ``mm_encoder_outputs``; Qwen3-VL's per-layer ``deepstack_features`` are reordered the
same way as the pooled features.

    >>> unique_order(["a", "b", "a"])          # ids of the distinct images, per placeholder
    [0, 1, 0]
"""

from __future__ import annotations

from typing import Any

__all__ = ["encode_unique_images", "unique_order"]


def unique_order(images: list[Any]) -> list[int]:
    """For each image, the index of its first occurrence among the distinct images (by ``id``).

    >>> a, b = object(), object()
    >>> unique_order([a, b, b, a])
    [0, 1, 1, 0]
    """
    unique: dict[int, int] = {}
    return [unique.setdefault(id(im), len(unique)) for im in images]


def encode_unique_images(
    model: Any, image_processor: Any, images: list[Any], device: Any
) -> tuple[dict[str, Any], int] | None:
    """``({"image": encoder outputs per placeholder}, patches encoded)``, or ``None`` when every
    image of ``images`` is distinct (nothing to reuse: the model encodes them itself)."""
    from transformers.modeling_outputs import BaseModelOutputWithPooling

    order = unique_order(images)
    distinct_count = max(order, default=-1) + 1
    if distinct_count == len(images):
        return None
    firsts = {idx: im for im, idx in zip(images, order, strict=True)}
    distinct = [firsts[i] for i in range(distinct_count)]
    pixels = image_processor(images=distinct, return_tensors="pt")
    grid = pixels["image_grid_thw"].to(device)
    features = model.get_image_features(pixels["pixel_values"].to(device), grid, return_dict=True)
    out = BaseModelOutputWithPooling(pooler_output=tuple(features.pooler_output[i] for i in order))
    deepstack = getattr(features, "deepstack_features", None)
    if deepstack is not None:  # Qwen3-VL: per-layer features, one entry per image as well
        features.pooler_output = out.pooler_output
        features.deepstack_features = [tuple(layer[i] for i in order) for layer in deepstack]
        out = features
    return {"image": out}, int(grid.prod(-1).sum())
