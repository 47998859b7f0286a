"""Grounding SFT data: image + question/referring phrase + box -> Qwen chat rows.

- :class:`GroundingSFTStage` (a ``Dataset.map`` stage, no model) writes chat ``messages`` whose
  assistant turn is the box as the model family that will be trained writes it (its row of
  :mod:`hfgcot.geometry.families`): ``{"bbox_2d": [x1, y1, x2, y2]}`` in pixels of the *resized*
  image for Qwen2.5-VL (the same ``smart_resize`` the training processor applies, with the same
  ``min_pixels``/``max_pixels``), 0..1000 for Qwen3-VL, ``<|box_start|>(x1,y1),(x2,y2)<|box_end|>``
  in 0..1000 for Qwen2-VL. The original box and the frame are kept, so every number can be
  mapped back.

Where each part lives: :mod:`~hfgcot.pipelines.grounding_sft.pipeline` (the config, the stage
for a config or processor, :func:`to_grounding_sft`), :mod:`~hfgcot.pipelines.grounding_sft.stage`
(the stage: one row per image, text and box) and :mod:`~hfgcot.pipelines.grounding_sft.rows` (the
row format: statuses, features, messages, box text). Predictions on such rows:
:mod:`hfgcot.pipelines.grounding_predictions`.

    >>> from hfgcot import to_grounding_sft
    >>> sft = to_grounding_sft(ds, bbox_format="xywh", max_pixels=1003520)     # doctest: +SKIP
    >>> sft[0]["messages"][1]["content"][0]["text"]                             # doctest: +SKIP
    '{"bbox_2d": [112, 40, 188, 117]}'
    >>> train = sft.filter(lambda s: s == "ok", input_columns="sft_status")    # doctest: +SKIP
"""

from hfgcot.pipelines.grounding_sft.pipeline import (
    SFT_BOXES,
    GroundingSFTConfig,
    sft_stage,
    to_grounding_sft,
)
from hfgcot.pipelines.grounding_sft.rows import (
    FRAME_FEATURE,
    INVALID_BBOX,
    MESSAGES_FEATURE,
    MISSING_BBOX,
    SPECIAL_TOKENS_IN_TEXT,
    STATUS,
    sft_answer,
    sft_messages,
    user_text,
)
from hfgcot.pipelines.grounding_sft.stage import GroundingSFTStage

__all__ = [
    "FRAME_FEATURE",
    "INVALID_BBOX",
    "MESSAGES_FEATURE",
    "MISSING_BBOX",
    "SFT_BOXES",
    "SPECIAL_TOKENS_IN_TEXT",
    "STATUS",
    "GroundingSFTConfig",
    "GroundingSFTStage",
    "sft_answer",
    "sft_stage",
    "sft_messages",
    "to_grounding_sft",
    "user_text",
]
