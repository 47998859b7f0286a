"""The Qwen-VL model families: one row each, holding every fact that depends on the family.

Pure (stdlib only). Everything else in hfgcot that needs a family fact reads it here: the frame
conversions (:class:`hfgcot.geometry.frames.Frame`), grounding SFT (box text, default pixel
limits), the collator (which processor class is which family), the model loader and the endpoint
client (``model_type`` -> family, refusal of other models), the CLI choices, the dataset card and
the family-default prompts (see ``docs/families.md``). Adding a family is adding one row to
:data:`FAMILY_TABLE`.

    >>> get_family("qwen3_vl").factor
    32
    >>> family_for_model_type("qwen3_vl_moe")
    'qwen3_vl'
    >>> box_text("qwen2_vl", [10, 20, 300, 400], "the cat")
    '<|object_ref_start|>the cat<|object_ref_end|><|box_start|>(10,20),(300,400)<|box_end|>'
    >>> box_text("qwen2_5_vl", [10, 20, 300, 400])
    '{"bbox_2d": [10, 20, 300, 400]}'
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from hfgcot import prompts

__all__ = [
    "FAMILIES",
    "FAMILY_TABLE",
    "RELATIVE_SCALE",
    "BoxConvention",
    "Family",
    "ModelFamily",
    "TextForm",
    "UnknownFamilyError",
    "box_text",
    "family_for_model_type",
    "family_for_processor",
    "processor_family_or_raise",
    "get_family",
    "known_families",
    "patch_factor",
]

Family = str
"""A family name: the ``name`` of a row of :data:`FAMILY_TABLE` (``"qwen2_5_vl"``...)."""

BoxConvention = Literal["relative", "resized_pixels"]
"""What the box numbers a model writes mean: ``"relative"``: 0..:data:`RELATIVE_SCALE` of the
image's width and height; ``"resized_pixels"``: pixels of the resized image the model saw."""

TextForm = Literal["box_tokens", "bbox_json"]
"""How a model writes a box: ``"box_tokens"``:
``<|object_ref_start|>label<|object_ref_end|><|box_start|>(x1,y1),(x2,y2)<|box_end|>``;
``"bbox_json"``: ``{"bbox_2d": [x1, y1, x2, y2], "label": ...}``."""

RELATIVE_SCALE = 1000
"""The full width/height of the image in the ``"relative"`` convention."""

_CONVENTION_WORDS = {
    "relative": f"0..{RELATIVE_SCALE} relative to the image",
    "resized_pixels": "absolute pixels of the resized image the model saw (W' x H', from the "
    "processor's `image_grid_thw`)",
}
_TEXT_FORM_WORDS = {
    "box_tokens": "text form `<|box_start|>(x1,y1),(x2,y2)<|box_end|>`",
    "bbox_json": "JSON `bbox_2d`",
}


class UnknownFamilyError(ValueError):
    """A model (``model_type``) or family name that is not a row of :data:`FAMILY_TABLE`."""


@dataclass(frozen=True)
class ModelFamily:
    """One Qwen-VL family: how its images are resized and how its boxes are written and read.

    ``patch_size * merge_size`` (:attr:`factor`) is the side multiple of the resized image;
    ``min_pixels``/``max_pixels`` the resize limits of the family's Hub preprocessor (used where
    no processor is given); the three prompts are the defaults of the config fields of the same
    names when the user leaves them ``None``; ``prompt_source`` says where their phrasing comes
    from.

    >>> row = get_family("qwen2_5_vl")
    >>> row.title, row.factor, row.boxes, row.text_form
    ('Qwen2.5-VL', 28, 'resized_pixels', 'bbox_json')
    """

    name: str
    title: str
    model_types: tuple[str, ...]
    processor_classes: tuple[str, ...]
    patch_size: int
    merge_size: int
    boxes: BoxConvention
    text_form: TextForm
    min_pixels: int
    max_pixels: int
    grounding_prompt: str
    joint_grounding_prompt: str
    grounding_sft_prompt: str
    prompt_source: str

    @property
    def factor(self) -> int:
        """Side multiple of the resized image (``patch_size * merge_size``)."""
        return self.patch_size * self.merge_size

    @property
    def relative(self) -> bool:
        """Whether box numbers are 0..1000 of the image (else pixels of the resized image)."""
        return self.boxes == "relative"

    @property
    def box_wording(self) -> str:
        """What the numbers of this family's boxes mean, in words (for dataset cards).

        >>> get_family("qwen3_vl").box_wording
        '0..1000 relative to the image, JSON `bbox_2d`'
        """
        return f"{_CONVENTION_WORDS[self.boxes]}, {_TEXT_FORM_WORDS[self.text_form]}"


FAMILY_TABLE: tuple[ModelFamily, ...] = (
    ModelFamily(
        name="qwen2_vl",
        title="Qwen2-VL",
        model_types=("qwen2_vl",),
        processor_classes=("Qwen2VLProcessor",),
        patch_size=14,
        merge_size=2,
        boxes="relative",
        text_form="box_tokens",
        min_pixels=3136,
        max_pixels=12845056,
        grounding_prompt=prompts.QWEN2_GROUNDING_PROMPT,
        joint_grounding_prompt=prompts.QWEN2_JOINT_GROUNDING_PROMPT,
        grounding_sft_prompt=prompts.QWEN2_GROUNDING_SFT_PROMPT,
        prompt_source="Qwen2-VL technical report (object-reference and box tokens, 0..1000)",
    ),
    ModelFamily(
        name="qwen2_5_vl",
        title="Qwen2.5-VL",
        model_types=("qwen2_5_vl",),
        processor_classes=("Qwen2_5_VLProcessor",),
        patch_size=14,
        merge_size=2,
        boxes="resized_pixels",
        text_form="bbox_json",
        min_pixels=3136,
        max_pixels=12845056,
        grounding_prompt=prompts.GROUNDING_PROMPT,
        joint_grounding_prompt=prompts.JOINT_GROUNDING_PROMPT,
        grounding_sft_prompt=prompts.GROUNDING_SFT_PROMPT,
        prompt_source="Qwen2.5-VL spatial-understanding cookbook (JSON bbox_2d)",
    ),
    ModelFamily(
        name="qwen3_vl",
        title="Qwen3-VL",
        model_types=("qwen3_vl", "qwen3_vl_moe"),
        processor_classes=("Qwen3VLProcessor",),
        patch_size=16,
        merge_size=2,
        boxes="relative",
        text_form="bbox_json",
        min_pixels=65536,
        max_pixels=16777216,
        grounding_prompt=prompts.QWEN3_GROUNDING_PROMPT,
        joint_grounding_prompt=prompts.QWEN3_JOINT_GROUNDING_PROMPT,
        grounding_sft_prompt=prompts.QWEN3_GROUNDING_SFT_PROMPT,
        prompt_source="Qwen3-VL grounding examples (ODinW evaluation, fine-tuning README)",
    ),
)
"""Every family hfgcot knows, in release order. Lookups read it at call time."""

FAMILIES: tuple[str, ...] = tuple(row.name for row in FAMILY_TABLE)
"""The names of the built-in families, in release order (:func:`known_families` reads the
table as it is now)."""


def known_families() -> tuple[str, ...]:
    """The names of the families in :data:`FAMILY_TABLE`, in its order.

    >>> known_families()
    ('qwen2_vl', 'qwen2_5_vl', 'qwen3_vl')
    """
    return tuple(row.name for row in FAMILY_TABLE)


def _known_text() -> str:
    return "; ".join(
        f"{row.name} (model_type {', '.join(row.model_types)})" for row in FAMILY_TABLE
    )


def get_family(name: Family | ModelFamily) -> ModelFamily:
    """The row of family ``name`` (a row is returned as it is).

    >>> get_family("qwen2_vl").boxes
    'relative'
    >>> get_family("llava")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    hfgcot.geometry.families.UnknownFamilyError: unknown model family 'llava'; hfgcot knows: ...
    """
    if isinstance(name, ModelFamily):
        return name
    for row in FAMILY_TABLE:
        if row.name == name:
            return row
    raise UnknownFamilyError(f"unknown model family {name!r}; hfgcot knows: {_known_text()}")


def family_for_model_type(model_type: str) -> Family:
    """The family of a model config's ``model_type``.

    >>> family_for_model_type("qwen2_5_vl")
    'qwen2_5_vl'

    Raises:
        UnknownFamilyError: (a ``ValueError``) for any other model type, listing the known ones.
    """
    for row in FAMILY_TABLE:
        if model_type in row.model_types:
            return row.name
    raise UnknownFamilyError(
        f"model_type {model_type!r} is not a Qwen-VL family hfgcot supports; "
        f"supported: {_known_text()}"
    )


def family_for_processor(processor: Any) -> Family | None:
    """The family of a processor, from the names of its classes; ``None`` when none matches.

    >>> family_for_processor(object()) is None
    True
    """
    names: Iterable[str] = (cls.__name__ for cls in type(processor).__mro__)
    for class_name in names:
        for row in FAMILY_TABLE:
            if class_name in row.processor_classes:
                return row.name
    return None


def processor_family_or_raise(processor: Any) -> Family:
    """:func:`family_for_processor`, or :class:`UnknownFamilyError` naming the known families.

    >>> processor_family_or_raise(object())
    Traceback (most recent call last):
    ...
    hfgcot.geometry.families.UnknownFamilyError: object is not the processor of a Qwen-VL family hfgcot supports; supported: ...
    """
    family = family_for_processor(processor)
    if family is None:
        raise UnknownFamilyError(
            f"{type(processor).__name__} is not the processor of a Qwen-VL family hfgcot "
            f"supports; supported: {_known_text()}"
        )
    return family


def patch_factor(family: Family) -> int:
    """Side multiple of the resized image: ``patch_size * merge_size`` of the vision encoder.

    >>> patch_factor("qwen2_5_vl"), patch_factor("qwen3_vl")
    (28, 32)
    """
    return get_family(family).factor


def box_text(family: Family, box: Sequence[float], label: str | None = None) -> str:
    """One box (numbers already in the family's convention) as the family writes it.

    Numbers are rounded to integers. ``label`` is the referred object (optional).

    >>> box_text("qwen3_vl", [1, 2, 3.4, 4], "cat")
    '{"bbox_2d": [1, 2, 3, 4], "label": "cat"}'
    """
    x1, y1, x2, y2 = (int(round(float(v))) for v in box)
    if get_family(family).text_form == "box_tokens":
        ref = f"<|object_ref_start|>{label}<|object_ref_end|>" if label else ""
        return f"{ref}<|box_start|>({x1},{y1}),({x2},{y2})<|box_end|>"
    item: dict[str, Any] = {"bbox_2d": [x1, y1, x2, y2]}
    if label:
        item["label"] = label
    return json.dumps(item, ensure_ascii=False)
