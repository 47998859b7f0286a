"""Reading a model's small JSON files (config, processor config) without loading the model.

>>> import tempfile, pathlib, json
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> _ = (folder / "preprocessor_config.json").write_text(json.dumps({"min_pixels": 3136}))
>>> processor_limits(str(folder), None)
(3136, None)
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

__all__ = ["processor_limits", "read_model_json"]

logger = logging.getLogger(__name__)


def read_model_json(
    model: str, filename: str, revision: str | None, *, download: bool = False
) -> dict[str, Any] | None:
    """A JSON object of a local model folder or of the Hub cache; ``None`` when unavailable.

    With ``download=False`` the network is never used (only the local Hub cache); with
    ``download=True`` a file missing from the cache is fetched (``hf_hub_download``). Never raises.
    """
    try:
        if os.path.isdir(model):
            path: Path | None = Path(model) / filename
        elif download:
            from huggingface_hub import hf_hub_download

            path = Path(hf_hub_download(model, filename, revision=revision))
        else:
            from huggingface_hub import try_to_load_from_cache

            found = try_to_load_from_cache(model, filename, revision=revision)
            path = Path(found) if isinstance(found, str) else None
        if path is None or not path.exists():
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else None
    except Exception:  # noqa: BLE001 - a missing or odd file only means "not readable"
        logger.debug("no readable %s for %s", filename, model, exc_info=True)
        return None


def processor_limits(
    model: str, revision: str | None, *, download: bool = False
) -> tuple[int | None, int | None]:
    """``(min_pixels, max_pixels)`` of a model's image processor (``None`` where not stated).

    Reads ``preprocessor_config.json``, then ``processor_config.json`` (its ``image_processor``
    part); ``size.shortest_edge`` / ``longest_edge`` stand in for the pixel limits.
    """
    for filename in ("preprocessor_config.json", "processor_config.json"):
        data = read_model_json(model, filename, revision, download=download) or {}
        data = data.get("image_processor", data)
        size = data.get("size") or {}
        lo = data.get("min_pixels", size.get("shortest_edge"))
        hi = data.get("max_pixels", size.get("longest_edge"))
        if lo is not None or hi is not None:
            return lo, hi
    return None, None
