"""hfgcot: grounded multimodal training data from image datasets with Qwen-VL models.

The public API is imported lazily so that the pure modules (``hfgcot.geometry``,
``hfgcot.parsing``, ``hfgcot.prompts``) stay importable without torch::

    from hfgcot import add_gcot
    ds = add_gcot(ds, model="Qwen/Qwen2.5-VL-3B-Instruct")
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "add_gcot": "hfgcot.stages.gcot",
    "GCoTConfig": "hfgcot.stages.gcot",
    "load_vlm": "hfgcot.vlm",
    "VLM": "hfgcot.vlm",
    "GenerationSettings": "hfgcot.vlm",
    "Frame": "hfgcot.geometry",
    "smart_resize": "hfgcot.geometry",
}

__all__ = [
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
    from hfgcot.geometry import Frame, smart_resize
    from hfgcot.stages.gcot import GCoTConfig, add_gcot
    from hfgcot.vlm import VLM, GenerationSettings, load_vlm


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'hfgcot' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
