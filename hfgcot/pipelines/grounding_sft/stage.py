"""The grounding SFT stage: one chat row per image, text and box (no model runs)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from datasets import Features, List, Value

from hfgcot import prompts
from hfgcot.geometry.boxes import MISSING, BBoxFormat, check_box
from hfgcot.geometry.families import Family
from hfgcot.geometry.frames import Frame
from hfgcot.images import (
    ASPECT_RATIO_TOO_LARGE,
    IMAGE_TOO_SMALL,
    UNDECODABLE_IMAGE,
    ImagePolicy,
    image_size,
    load_image,
)
from hfgcot.pipelines.base import Stage
from hfgcot.pipelines.grounding_sft.rows import (
    FRAME_FEATURE,
    INVALID_BBOX,
    MESSAGES_FEATURE,
    MISSING_BBOX,
    SPECIAL_TOKENS_IN_TEXT,
    STATUS,
    family_row,
    sft_answer,
    sft_messages,
)
from hfgcot.status import EMPTY_QUESTION, OK, make
from hfgcot.untrusted import cell_text, has_special_tokens


@dataclass(frozen=True)
class GroundingSFTStage(Stage):
    """Pure stage: ``messages``, ``gt_bbox``, ``gt_bbox_model``, ``sft_frame``, ``model_family``
    and ``sft_status`` for every row.

    ``gt_bbox`` is the input box as original-pixel ``[x1, y1, x2, y2]`` floats (clipped to the
    image); ``gt_bbox_model`` the integers written in the assistant turn.

    Example:
        >>> GroundingSFTStage(model_family="qwen3_vl").factor
        32
    """

    name = "grounding_sft"
    version = "4"  # v2: invalid_bbox: <reason>; v3: family text forms; v4: special tokens
    status_column = STATUS
    image_column: str = "image"
    text_column: str = "question"
    bbox_column: str = "bbox"
    bbox_format: BBoxFormat = "xywh"
    model_family: Family = "qwen2_5_vl"
    min_pixels: int | None = None
    max_pixels: int | None = None
    factor: int | None = None
    prompt: str | None = None
    image_policy: ImagePolicy = ImagePolicy()
    verify_images: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()  # Literal choices (bbox_format)
        family = family_row(self.model_family)
        defaults = {
            "min_pixels": family.min_pixels,
            "max_pixels": family.max_pixels,
            "factor": family.factor,
            "prompt": family.grounding_sft_prompt,
        }
        for name, value in defaults.items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, value)
        for name in ("min_pixels", "max_pixels", "factor"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.min_pixels > self.max_pixels:  # type: ignore[operator]
            raise ValueError(f"min_pixels {self.min_pixels} > max_pixels {self.max_pixels}")
        prompts.check_template("grounding_sft_prompt", self.prompt)  # type: ignore[arg-type]

    def features(self) -> Features:
        return Features(
            {
                "messages": MESSAGES_FEATURE,
                "gt_bbox": List(Value("float64")),
                "gt_bbox_model": List(Value("int64")),
                "sft_frame": FRAME_FEATURE,
                "model_family": Value("string"),
                STATUS: Value("string"),
            }
        )

    def _size(self, value: Any) -> tuple[tuple[int, int] | None, str]:
        if self.verify_images:
            image, status = load_image(value, self.image_policy)
            return (image.size if image is not None else None), status
        size = image_size(value, self.image_policy)
        if size is None:
            return None, UNDECODABLE_IMAGE
        w, h = size
        if min(w, h) < self.image_policy.min_side:
            return None, make(IMAGE_TOO_SMALL, f"{w}x{h}")
        if max(w, h) / min(w, h) > self.image_policy.max_aspect_ratio:
            return None, make(ASPECT_RATIO_TOO_LARGE, f"{w}x{h}")
        return size, OK

    def frame(self, width: int, height: int) -> Frame:
        """The frame of a ``width`` x ``height`` image for this stage's family and limits."""
        return Frame.for_image(
            width,
            height,
            min_pixels=int(self.min_pixels),  # type: ignore[arg-type]
            max_pixels=int(self.max_pixels),  # type: ignore[arg-type]
            factor=int(self.factor),  # type: ignore[arg-type]
        )

    def _empty(self) -> dict[str, Any]:
        return {
            "messages": [],
            "gt_bbox": [],
            "gt_bbox_model": [],
            "sft_frame": None,
            "model_family": self.model_family,
        }

    def row(self, image: Any, text: Any, bbox: Any) -> dict[str, Any]:
        """One output row for an image value (PIL, ``{bytes, path}``, path), a text and a box."""
        size, status = self._size(image)
        if status != OK or size is None:
            return {**self._empty(), STATUS: status if status != OK else UNDECODABLE_IMAGE}
        return self.row_for_size(size[0], size[1], text, bbox)

    def row_for_size(self, width: int, height: int, text: Any, bbox: Any) -> dict[str, Any]:
        """One output row for an image of ``width`` x ``height`` pixels (no image needed).

        >>> stage = GroundingSFTStage(bbox_format="xyxy", min_pixels=3136, max_pixels=1003520)
        >>> row = stage.row_for_size(640, 480, "the cat", [64, 48, 320, 240])
        >>> row["messages"][1]["content"][0]["text"], row["sft_status"]
        ('{"bbox_2d": [64, 48, 322, 238]}', 'ok')
        """
        out = self._empty()
        try:
            frame = self.frame(width, height)
        except ValueError as err:
            return {**out, STATUS: make("unsupported_image_size", str(err)[:120])}
        frame_dict = {
            **frame.to_dict(),
            "min_pixels": int(self.min_pixels),  # type: ignore[arg-type]
            "max_pixels": int(self.max_pixels),  # type: ignore[arg-type]
            "factor": int(self.factor),  # type: ignore[arg-type]
        }
        out["sft_frame"] = frame_dict
        question = cell_text(text)
        if not question:
            return {**out, STATUS: EMPTY_QUESTION}
        if has_special_tokens(question):  # it would train the model on a chat of its own
            return {**out, STATUS: SPECIAL_TOKENS_IN_TEXT}
        box, reason = check_box(bbox, self.bbox_format, width=width, height=height)
        if box is None:
            status = MISSING_BBOX if reason == MISSING else make(INVALID_BBOX, reason)
            return {**out, STATUS: status}
        model_box = [int(round(v)) for v in frame.box_to_model(box, self.model_family)]
        if model_box[2] <= model_box[0] or model_box[3] <= model_box[1]:
            return {**out, STATUS: "bbox_too_small"}
        messages = sft_messages(
            prompts.grounding_sft_prompt(question, self.prompt),  # type: ignore[arg-type]
            sft_answer(model_box, self.model_family),
        )
        return {
            **out,
            "messages": messages,
            "gt_bbox": box,
            "gt_bbox_model": model_box,
            STATUS: OK,
        }

    def process(self, batch: dict[str, list], rank: int | None = None) -> dict[str, list]:
        n = len(batch[self.image_column])
        columns: dict[str, list] = {name: [] for name in self.features()}
        for i in range(n):
            row = self.row(
                batch[self.image_column][i],
                batch[self.text_column][i],
                batch[self.bbox_column][i],
            )
            for name in columns:
                columns[name].append(row[name])
        return columns
