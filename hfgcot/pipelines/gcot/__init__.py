"""Grounded Chain-of-Thought (GCoT) as four chained ``Dataset.map`` stages.

1. :class:`ReasoningStage` - the VLM writes numbered reasoning towards the given answer, then a
   ``Keywords:`` line (``raw_cot_output``).
2. :class:`ParseStage` - reasoning without the keyword line (``cleaned_cot``) and the keywords,
   adjacent ones merged into phrases (``extracted_keywords``).
3. :class:`GroundingStage` - each distinct keyword of a row grounded by the same VLM; boxes converted
   from the model's frame to original pixels (``groundings``).
4. :class:`InjectStage` - boxes written after the first mention of each phrase (``gcot``).

Where each part lives: :mod:`~hfgcot.pipelines.gcot.pipeline` (the config, the stage list,
:func:`add_gcot` and :func:`gcot_summary`), :mod:`~hfgcot.pipelines.gcot.reasoning` (stages 1-2)
and :mod:`~hfgcot.pipelines.gcot.grounding` (stages 3-4); the Ray entry point,
:func:`hfgcot.ray.add_gcot_ray`, is in :mod:`hfgcot.pipelines.on_ray`.

    >>> from hfgcot import add_gcot
    >>> ds = add_gcot(ds, model="Qwen/Qwen2.5-VL-3B-Instruct")   # doctest: +SKIP
"""

from hfgcot.model.spec import model_spec
from hfgcot.pipelines.gcot.grounding import (
    GROUNDING_FEATURE,
    BoxSpace,
    GroundingMode,
    GroundingStage,
    InjectStage,
    format_box,
    ground_boxes,
)
from hfgcot.pipelines.gcot.pipeline import (
    GCOT_COLUMNS,
    GCoTConfig,
    add_gcot,
    boxes_note,
    gcot_stages,
    gcot_summary,
)
from hfgcot.pipelines.gcot.reasoning import STATUS, ParseStage, ReasoningStage

__all__ = [
    "GCOT_COLUMNS",
    "GROUNDING_FEATURE",
    "STATUS",
    "BoxSpace",
    "GCoTConfig",
    "GroundingMode",
    "GroundingStage",
    "InjectStage",
    "ParseStage",
    "ReasoningStage",
    "add_gcot",
    "boxes_note",
    "format_box",
    "gcot_stages",
    "gcot_summary",
    "ground_boxes",
    "model_spec",
]
