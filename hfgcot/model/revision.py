"""Which exact weights a model name means: a Hub commit, or a digest of a local folder.

>>> resolve_revision("Qwen/Qwen2.5-VL-3B-Instruct", "main")  # doctest: +SKIP
'a1b2c3...'
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
from pathlib import Path

logger = logging.getLogger(__name__)


def _local_digest(path: Path) -> str:
    """A cheap digest of a local model folder: names, sizes and mtimes of its files."""
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        st = f.stat()
        h.update(f"{f.relative_to(path)}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


def resolve_revision(model: str, revision: str | None) -> str | None:
    """The commit a Hub model resolves to (from the local cache when offline), else ``revision``.

    A local folder gets a digest of its files instead (recomputed each time: it may be retrained).

    Example:
        >>> import tempfile
        >>> resolve_revision(tempfile.mkdtemp(), None).startswith("local:")
        True
    """
    if os.path.isdir(model):
        return "local:" + _local_digest(Path(model))
    return _resolve_hub_revision(model, revision)


@functools.lru_cache(maxsize=64)
def _resolve_hub_revision(model: str, revision: str | None) -> str | None:
    """One Hub look-up per process and (model, revision): every stage fingerprint asks for it."""
    try:
        from huggingface_hub import hf_hub_download

        cfg = hf_hub_download(model, "config.json", revision=revision)
        parts = Path(cfg).parts
        if "snapshots" in parts:
            return parts[parts.index("snapshots") + 1]
    except Exception:  # noqa: BLE001 - provenance only; never fail a run for it
        logger.debug("could not resolve the revision of %s", model, exc_info=True)
    return revision


__all__ = ["resolve_revision"]
