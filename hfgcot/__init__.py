"""hfgcot: grounded multimodal training data from image datasets with Qwen-VL models.

The public API is imported lazily so that the pure modules (``hfgcot.geometry``,
``hfgcot.parsing``, ``hfgcot.gcot_text``, ``hfgcot.prompts``) stay importable without torch::

    from hfgcot import add_gcot
    ds = add_gcot(ds, model="Qwen/Qwen2.5-VL-3B-Instruct")
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "publish": "hfgcot.hub",
    "PublishResult": "hfgcot.hub",
    "attach_provenance": "hfgcot.provenance",
    "get_provenance": "hfgcot.provenance",
    "to_grounding_sft": "hfgcot.stages.grounding_sft",
    "add_grounding_predictions": "hfgcot.stages.grounding_predictions",
    "GroundingCollator": "hfgcot.collator",
    "evaluate_grounding": "hfgcot.evaluation",
    "evaluate_gcot": "hfgcot.evaluation",
    "add_dense_captions": "hfgcot.stages.dense_captions",
    "DenseCaptionConfig": "hfgcot.stages.dense_captions",
    "add_region_captions": "hfgcot.stages.region_captions",
    "RegionCaptionConfig": "hfgcot.stages.region_captions",
    "add_gcot": "hfgcot.stages.gcot",
    "GCoTConfig": "hfgcot.stages.gcot",
    "load_vlm": "hfgcot.models",
    "VLM": "hfgcot.vlm",
    "GenerationSettings": "hfgcot.vlm",
    "Frame": "hfgcot.geometry",
    "smart_resize": "hfgcot.geometry",
}

__all__ = [
    "DenseCaptionConfig",
    "RegionCaptionConfig",
    "add_dense_captions",
    "add_region_captions",
    "PublishResult",
    "attach_provenance",
    "get_provenance",
    "publish",
    "GroundingCollator",
    "add_grounding_predictions",
    "evaluate_gcot",
    "evaluate_grounding",
    "to_grounding_sft",
    "Frame",
    "GCoTConfig",
    "GenerationSettings",
    "VLM",
    "__version__",
    "add_gcot",
    "load_vlm",
    "smart_resize",
]

if TYPE_CHECKING:  # pragma: no cover
    from hfgcot.collator import GroundingCollator
    from hfgcot.evaluation import evaluate_gcot, evaluate_grounding
    from hfgcot.geometry import Frame, smart_resize
    from hfgcot.hub import PublishResult, publish
    from hfgcot.models import load_vlm
    from hfgcot.provenance import attach_provenance, get_provenance
    from hfgcot.stages.dense_captions import DenseCaptionConfig, add_dense_captions
    from hfgcot.stages.gcot import GCoTConfig, add_gcot
    from hfgcot.stages.grounding_predictions import add_grounding_predictions
    from hfgcot.stages.grounding_sft import to_grounding_sft
    from hfgcot.stages.region_captions import RegionCaptionConfig, add_region_captions
    from hfgcot.vlm import VLM, GenerationSettings


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'hfgcot' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
