"""The local backend of :func:`hfgcot.publish`: a version folder in the Hub's layout.

``<folder>/v<version>/`` gets ``data/<split>-00000-of-0000N.parquet`` shards (media embedded) and a
``README.md`` card with the Hub's ``configs``/``dataset_info`` YAML, so
``load_dataset("<folder>/v<version>", split="train")`` reads it back. The version is written to a
temporary folder and renamed into place: it appears complete or not at all, and is never
overwritten.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from huggingface_hub import DatasetCard

from hfgcot.publishing.card import add_local_metadata
from hfgcot.publishing.versions import PublishResult, VersionExistsError, load_code_for, make_card
from hfgcot.splits import as_splits

logger = logging.getLogger(__name__)


def _write_split(ds: Any, folder: Path, split: str, max_shard_size: int | str | None) -> int:
    """Parquet shards ``<split>-0000i-of-0000N.parquet`` with media embedded; returns bytes."""
    from datasets import config as ds_config
    from datasets.features.features import require_decoding
    from datasets.table import embed_table_storage
    from datasets.utils.py_utils import convert_file_size_to_int

    limit = convert_file_size_to_int(max_shard_size or ds_config.MAX_SHARD_SIZE)
    estimate = getattr(ds, "_estimate_nbytes", None)
    nbytes = estimate() if callable(estimate) else ds.data.nbytes
    num_shards = max(1, min(len(ds), int(nbytes / limit) + 1)) if len(ds) else 1
    embed = any(require_decoding(f, ignore_decode_attribute=True) for f in ds.features.values())
    written = 0
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(num_shards):
        shard = ds.shard(num_shards=num_shards, index=index, contiguous=True)
        if embed:
            fmt = shard.format
            shard = shard.with_format("arrow").map(
                embed_table_storage, batched=True, keep_in_memory=True, desc="embed media"
            )
            shard = shard.with_format(**fmt)
        path = folder / f"{split}-{index:05d}-of-{num_shards:05d}.parquet"
        shard.to_parquet(str(path))
        written += path.stat().st_size
    return written


def publish_local(
    dataset: Any,
    root: Path,
    version: str,
    target: str,
    rows: dict[str, int],
    split: str,
    config_name: str | None,
    options: Mapping[str, Any] | None,
    fixed_card: DatasetCard | None,
    max_shard_size: int | str | None,
) -> PublishResult:
    """Write ``<root>/v<version>/`` (Parquet shards + card) atomically; called by :func:`publish`."""
    tag = f"v{version}"
    final = root / tag
    if final.exists():
        raise VersionExistsError(f"{final} exists: versions are never overwritten")
    config = config_name or "default"
    data_dir = "data" if config == "default" else config
    shown = os.path.join(target, tag)
    load_code = load_code_for(shown, None, split if len(rows) == 1 else None, config_name)
    card = make_card(dataset, version, load_code, split, config_name, options, fixed_card, target)
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{tag}.tmp-", dir=root))
    try:
        splits = as_splits(dataset, split)
        sizes = {}
        for name, ds in splits.items():
            parquet_bytes = _write_split(ds, tmp / data_dir, name, max_shard_size)
            estimate = getattr(ds, "_estimate_nbytes", None)
            sizes[name] = (estimate() if callable(estimate) else ds.data.nbytes, parquet_bytes)
        card = add_local_metadata(card, splits, config_name=config, data_dir=data_dir, sizes=sizes)
        card.save(str(tmp / "README.md"))
        if final.exists():
            raise VersionExistsError(
                f"{final} appeared while writing: versions are never overwritten"
            )
        try:
            os.rename(tmp, final)  # atomic; fails if a non-empty folder took the name meanwhile
        except OSError as exc:
            raise VersionExistsError(f"could not move the new version into {final}: {exc}") from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    logger.info("published %s rows as %s (local)", rows, final)
    return PublishResult("local", target, version, tag, str(final), None, rows, card, load_code)
