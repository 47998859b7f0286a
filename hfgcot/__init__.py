"""hfgcot: grounded multimodal training data from image datasets with Qwen-VL models.

The public API is imported lazily so that the pure modules (``hfgcot.geometry.frames``,
``hfgcot.parsing.grounding``, ``hfgcot.parsing.gcot_text``, ``hfgcot.prompts``) stay importable without torch::

    from hfgcot import add_gcot
    ds = add_gcot(ds, model="Qwen/Qwen2.5-VL-3B-Instruct")
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "publish": "hfgcot.publishing.release",
    "load_release": "hfgcot.publishing.release",
    "PublishResult": "hfgcot.publishing.targets",
    "attach_provenance": "hfgcot.publishing.provenance",
    "get_provenance": "hfgcot.publishing.provenance",
    "to_grounding_sft": "hfgcot.pipelines.grounding_sft",
    "GroundingSFTConfig": "hfgcot.pipelines.grounding_sft",
    "add_grounding_predictions": "hfgcot.pipelines.grounding_predictions",
    "GroundingPredictionConfig": "hfgcot.pipelines.grounding_predictions",
    "RunOptions": "hfgcot.run.options",
    "GroundingCollator": "hfgcot.collator",
    "evaluate_grounding": "hfgcot.evaluation",
    "evaluate_gcot": "hfgcot.evaluation",
    "add_dense_captions": "hfgcot.pipelines.dense_captions",
    "DenseCaptionConfig": "hfgcot.pipelines.dense_captions",
    "add_region_captions": "hfgcot.pipelines.region_captions",
    "RegionCaptionConfig": "hfgcot.pipelines.region_captions",
    "add_gcot": "hfgcot.pipelines.gcot",
    "GCoTConfig": "hfgcot.pipelines.gcot",
    "load_vlm": "hfgcot.model.spec",
    "EndpointSpec": "hfgcot.model.endpoint",
    "VLM": "hfgcot.model.vlm",
    "GenerationSettings": "hfgcot.model.vlm",
    "Frame": "hfgcot.geometry.frames",
    "smart_resize": "hfgcot.geometry.frames",
}

__all__ = [
    "DenseCaptionConfig",
    "RegionCaptionConfig",
    "add_dense_captions",
    "add_region_captions",
    "PublishResult",
    "attach_provenance",
    "get_provenance",
    "load_release",
    "publish",
    "GroundingCollator",
    "GroundingPredictionConfig",
    "GroundingSFTConfig",
    "RunOptions",
    "add_grounding_predictions",
    "evaluate_gcot",
    "evaluate_grounding",
    "to_grounding_sft",
    "EndpointSpec",
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
    from hfgcot.geometry.frames import Frame, smart_resize
    from hfgcot.model.endpoint import EndpointSpec
    from hfgcot.model.spec import load_vlm
    from hfgcot.model.vlm import VLM, GenerationSettings
    from hfgcot.pipelines.dense_captions import DenseCaptionConfig, add_dense_captions
    from hfgcot.pipelines.gcot import GCoTConfig, add_gcot
    from hfgcot.pipelines.grounding_predictions import (
        GroundingPredictionConfig,
        add_grounding_predictions,
    )
    from hfgcot.pipelines.grounding_sft import GroundingSFTConfig, to_grounding_sft
    from hfgcot.pipelines.region_captions import RegionCaptionConfig, add_region_captions
    from hfgcot.publishing.provenance import attach_provenance, get_provenance
    from hfgcot.publishing.release import load_release, publish
    from hfgcot.publishing.targets import PublishResult
    from hfgcot.run.options import RunOptions


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'hfgcot' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
