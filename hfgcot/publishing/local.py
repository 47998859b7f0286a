"""The local backend: a release folder with one sub-folder per version, in the Hub's layout.

::

    <root>/
      v1.0.0/
        README.md                          card (YAML: configs, dataset_info, hfgcot block)
        data/train-00000-of-00001.parquet  shards, images embedded (<config>/ for a named config)
        provenance/default.json            provenance records (provenance/<config>.json)
      v1.1.0/
        ...

Each version is written to a temporary folder ``<root>/.v<version>.tmp-*`` and renamed into
place: it appears complete or not at all, and is never overwritten.
``load_dataset("<root>/v1.0.0", split="train")`` reads one version (without provenance);
:func:`hfgcot.load_release` reads it with its provenance.

    >>> from pathlib import Path
    >>> local_versions(Path("/nonexistent/releases"))
    []
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Collection
from pathlib import Path
from typing import Any

from hfgcot.publishing.card import add_local_metadata, card_for
from hfgcot.publishing.provenance import PROVENANCE_FILE, dataset_records, dump_records
from hfgcot.publishing.redact import redact
from hfgcot.publishing.targets import (
    PublishResult,
    Release,
    VersionExistsError,
    load_code,
    release_code,
    tag_version,
    version_key,
)
from hfgcot.splits import as_splits

logger = logging.getLogger(__name__)

__all__ = [
    "check_local_version",
    "local_versions",
    "publish_local",
    "read_local_provenance",
    "version_folder",
]


def local_versions(root: Path) -> list[str]:
    """The versions published in ``root`` (folders ``v<version>``), oldest first."""
    if not root.is_dir():
        return []
    found = [tag_version(p.name) for p in root.iterdir() if p.is_dir()]
    return sorted((v for v in found if v), key=version_key)


def check_local_version(root: Path, tag: str) -> None:
    """Raise :class:`VersionExistsError` when ``<root>/<tag>`` exists."""
    if (root / tag).exists():
        raise VersionExistsError(f"{root / tag} exists: versions are never overwritten")


def version_folder(root: Path, version: str) -> Path:
    """The folder of ``version`` in ``root``; ``FileNotFoundError`` (listing what exists) if
    there is none."""
    folder = root / f"v{version}"
    if not folder.is_dir():
        have = ", ".join(local_versions(root)) or "none"
        raise FileNotFoundError(f"no version {version} in {root} (versions: {have})")
    return folder


def _write_split(ds: Any, folder: Path, split: str, max_shard_size: int | str | None) -> int:
    """Parquet shards ``<split>-0000i-of-0000N.parquet`` with media embedded; returns bytes."""
    from datasets import config as ds_config
    from datasets.features.features import require_decoding
    from datasets.table import embed_table_storage
    from datasets.utils.py_utils import convert_file_size_to_int

    limit = convert_file_size_to_int(max_shard_size or ds_config.MAX_SHARD_SIZE)
    num_shards = max(1, min(len(ds), int(_arrow_bytes(ds) / limit) + 1)) if len(ds) else 1
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


def _arrow_bytes(ds: Any) -> int:
    estimate = getattr(ds, "_estimate_nbytes", None)
    return estimate() if callable(estimate) else ds.data.nbytes


def _splits_of(release: Release) -> dict[str, Any]:
    return as_splits(release.dataset, release.split)


def _write_version(
    release: Release, folder: Path, card: Any, max_shard_size: Any, secrets: Collection[str]
) -> Any:
    """Shards, card and provenance file of ``release`` in ``folder``; returns the final card."""
    data_dir = "data" if release.config == "default" else release.config
    splits = _splits_of(release)
    sizes = {}
    for name, ds in splits.items():
        parquet_bytes = _write_split(ds, folder / data_dir, name, max_shard_size)
        sizes[name] = (_arrow_bytes(ds), parquet_bytes)
    card = add_local_metadata(
        card, splits, config_name=release.config, data_dir=data_dir, sizes=sizes
    )
    card.save(str(folder / "README.md"))
    provenance = folder / PROVENANCE_FILE.format(config=release.config)
    provenance.parent.mkdir(parents=True, exist_ok=True)
    records = redact(dump_records(dataset_records(release.dataset)), secrets)
    provenance.write_text(records, encoding="utf-8")
    return card


def publish_local(
    release: Release,
    root: Path,
    target: str,
    *,
    max_shard_size: int | str | None = None,
    secrets: Collection[str] = (),
) -> PublishResult:
    """Write ``<root>/v<version>/`` atomically; called by :func:`hfgcot.publish`.

    The card names the release by its folder name (``<root name>/v<version>``), never by the
    path on this machine; the returned ``load_code`` uses ``target`` as given.
    """
    tag, final = release.tag, root / release.tag
    check_local_version(root, tag)
    split = release.split if len(release.rows) == 1 else None
    name = root.resolve().name
    card = card_for(
        release,
        load_code(f"{name}/{tag}", None, split, release.config_name),
        target=name,
        release_call=release_code(name, release.version, split, release.config_name),
        secrets=secrets,
    )
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{tag}.tmp-", dir=root))
    try:
        card = _write_version(release, tmp, card, max_shard_size, secrets)
        check_local_version(root, tag)
        try:
            os.rename(tmp, final)  # atomic; fails if a non-empty folder took the name meanwhile
        except OSError as exc:
            raise VersionExistsError(f"could not move the new version into {final}: {exc}") from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    logger.info("published %s rows as %s (local)", release.rows, final)
    return PublishResult(
        backend="local",
        target=target,
        version=release.version,
        tag=tag,
        location=str(final),
        commit=None,
        rows=release.rows,
        card=card,
        load_code=load_code(os.path.join(target, tag), None, split, release.config_name),
        dropped=release.dropped_rows,
    )


def read_local_provenance(folder: Path, config_name: str | None) -> list[dict[str, Any]]:
    """The provenance records of one local version (``[]`` for a version without the file).

    Without ``config_name``: ``default``, else the version's only config.
    """
    from hfgcot.publishing.provenance import load_records

    config = config_name
    if config is None:
        found = sorted((folder / "provenance").glob("*.json"))
        config = found[0].stem if len(found) == 1 else "default"
    path = folder / PROVENANCE_FILE.format(config=config)
    if not path.is_file():
        logger.warning("%s has no %s: no provenance records", folder.name, path.name)
        return []
    return load_records(path.read_text(encoding="utf-8"))
