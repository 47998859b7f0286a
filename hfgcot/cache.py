"""Where hfgcot's ``Dataset.map`` caches go: never into the folder of the user's data.

``datasets`` writes the cache file of a ``map`` (and, while it writes, a temporary file that a
killed process leaves behind) next to the Arrow files of the dataset it maps. For a dataset
loaded with ``load_from_disk("my_data")`` that is the user's own folder. hfgcot names the cache
file of every ``map`` it runs on a dataset read from files instead: ``cache-<fingerprint>.arrow``
in :func:`cache_dir`, which is ``$HFGCOT_CACHE`` when set, else ``hfgcot/`` inside the
``datasets`` cache (``$HF_DATASETS_CACHE``, by default ``~/.cache/huggingface/datasets``).
The names are the maps' deterministic fingerprints, so a rerun finds its caches there. A dataset
held in memory gets no cache file, as with ``datasets`` itself.

    >>> from datasets import Dataset
    >>> map_cache_file(Dataset.from_dict({"a": [1]}), "0123abcd") is None   # in memory
    True
"""

from __future__ import annotations

import os
from pathlib import Path

from datasets import Dataset
from datasets import config as datasets_config

__all__ = ["CACHE_ENV", "cache_dir", "map_cache_file"]

CACHE_ENV = "HFGCOT_CACHE"
"""Environment variable naming the folder for hfgcot's map caches."""


def cache_dir() -> Path:
    """The folder of hfgcot's map caches (created on first use).

    >>> cache_dir().is_dir()
    True
    """
    folder = os.environ.get(CACHE_ENV) or os.path.join(datasets_config.HF_DATASETS_CACHE, "hfgcot")
    path = Path(folder).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def map_cache_file(dataset: Dataset, fingerprint: str) -> str | None:
    """``cache_file_name`` for a ``map`` (``flatten_indices``, ``cast``...) of ``dataset`` whose
    result has ``fingerprint``: a file in :func:`cache_dir` when ``dataset`` is read from files,
    ``None`` for a dataset in memory (no cache, as ``datasets`` does)."""
    if not dataset.cache_files:
        return None
    return str(cache_dir() / f"cache-{fingerprint}.arrow")
