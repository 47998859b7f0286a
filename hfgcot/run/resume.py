"""Resume after a crash: a pipeline run in shards, each finished shard saved with a marker.

``Dataset.map`` loses a whole stage when the process dies (datasets issue 5089). With a checkpoint
directory, the input is cut into contiguous shards of ``shard_size`` rows; each shard runs the whole
pipeline, is saved (Arrow, ``save_to_disk``) to a temporary folder that is renamed into place, and
only then gets its ``_SUCCESS`` marker. A rerun with the same arguments finds the markers, loads the
finished shards and computes only the rest; the result is the same dataset, in the same order,
with no row lost or doubled.

Layout::

    <checkpoint_dir>/<run fingerprint>/manifest.json
    <checkpoint_dir>/<run fingerprint>/shard-00000/{dataset files, _SUCCESS}

The run fingerprint covers the input dataset, every stage (config, prompts, model, version) and the
shard size, so a changed run never picks up another run's shards.

Every file is written under a temporary name and renamed into place, so a process killed at any
moment leaves either the old file or the new one, never half of one; temporary leftovers are
removed by the next run. One process at a time works on a run folder: a second one waits up to
``lock_timeout`` seconds for the lock (``<run>/.lock``), then fails naming the holder.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

from datasets import Dataset, concatenate_datasets, load_from_disk
from filelock import FileLock, Timeout

import hfgcot

logger = logging.getLogger(__name__)

MARKER = "_SUCCESS"
_TMP_PREFIX = ".tmp-"


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder and a rename.

    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "manifest.json"
    >>> write_atomic(target, "{}")
    >>> target.read_text(), sorted(p.name for p in target.parent.iterdir())
    ('{}', ['manifest.json'])
    """
    tmp = path.with_name(f"{_TMP_PREFIX}{path.name}-{uuid.uuid4().hex[:8]}")
    try:
        with tmp.open("w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _remove_stale(root: Path) -> None:
    """Temporary files and folders left by a killed run (only called under the run lock)."""
    for leftover in root.glob(f"{_TMP_PREFIX}*"):
        if leftover.is_dir():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            leftover.unlink(missing_ok=True)


def _read_manifest(path: Path) -> dict | None:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        logger.warning("checkpoint manifest %s is unreadable: writing it anew", path)
        return None
    return value if isinstance(value, dict) else None


def _lock(root: Path, timeout: float) -> FileLock:
    lock = FileLock(str(root / ".lock"))
    owner = root / ".lock-owner"
    try:
        lock.acquire(timeout=timeout)
    except Timeout:
        holder = owner.read_text(encoding="utf-8").strip() if owner.exists() else "unknown"
        raise RuntimeError(
            f"checkpoint {root} is in use by another process ({holder}); wait for it to finish "
            "or use another checkpoint_dir"
        ) from None
    write_atomic(owner, f"pid {os.getpid()} on {os.uname().nodename}")
    return lock


def shard_ranges(num_rows: int, shard_size: int) -> list[tuple[int, int]]:
    """Contiguous ``[start, end)`` ranges covering ``num_rows`` rows.

    >>> shard_ranges(5, 2)
    [(0, 2), (2, 4), (4, 5)]
    """
    if shard_size < 1:
        raise ValueError(f"shard_size must be >= 1, got {shard_size}")
    return [(s, min(s + shard_size, num_rows)) for s in range(0, num_rows, shard_size)]


def run_resumable(
    dataset: Dataset,
    run_shard: Callable[[Dataset], Dataset],
    *,
    checkpoint_dir: str | os.PathLike[str],
    shard_size: int,
    fingerprint: str,
    lock_timeout: float = 0.0,
    keep: Callable[[Dataset], bool] | None = None,
) -> Dataset:
    """Run ``run_shard`` over contiguous shards of ``dataset``, skipping shards already finished.

    Args:
        run_shard: the pipeline for one shard (rows in == rows out, in order).
        checkpoint_dir: where shards and markers live (created if missing).
        fingerprint: identifies the run (input + stages + shard size); shards of another
            fingerprint are never reused.
        lock_timeout: seconds to wait when another process holds the run folder (0: fail at once).
        keep: whether a computed shard may be reused by later runs (default: always). A shard
            it refuses (rows a served model failed to answer) is part of this run's result but
            gets no marker, so the next run computes it again.

    Raises:
        RuntimeError: when another process holds the run folder past ``lock_timeout``, or the
            folder belongs to a run of another size.
    """
    root = Path(checkpoint_dir) / fingerprint[:32]
    root.mkdir(parents=True, exist_ok=True)
    lock = _lock(root, lock_timeout)
    try:
        _remove_stale(root)
        return _run_shards(dataset, run_shard, root, shard_size, fingerprint, keep)
    finally:
        (root / ".lock-owner").unlink(missing_ok=True)
        lock.release()


def _run_shards(
    dataset: Dataset,
    run_shard: Callable[[Dataset], Dataset],
    root: Path,
    shard_size: int,
    fingerprint: str,
    keep: Callable[[Dataset], bool] | None = None,
) -> Dataset:
    ranges = shard_ranges(len(dataset), shard_size)
    manifest = {
        "fingerprint": fingerprint,
        "num_rows": len(dataset),
        "shard_size": shard_size,
        "num_shards": len(ranges),
        "hfgcot_version": hfgcot.__version__,
    }
    manifest_path = root / "manifest.json"
    old = _read_manifest(manifest_path) if manifest_path.exists() else None
    if old is None:
        write_atomic(manifest_path, json.dumps(manifest, indent=2))
    elif {k: old.get(k) for k in ("num_rows", "shard_size")} != {
        k: manifest[k] for k in ("num_rows", "shard_size")
    }:
        raise RuntimeError(f"checkpoint {root} belongs to a different run: {old}")

    parts: list[Dataset] = []
    reused = 0
    for i, (start, end) in enumerate(ranges):
        shard_dir = root / f"shard-{i:05d}"
        if (shard_dir / MARKER).exists():
            part = load_from_disk(str(shard_dir))
            if len(part) == end - start:
                parts.append(part)
                reused += 1
                continue
            logger.warning(
                "shard %d has %d rows, expected %d: recomputing", i, len(part), end - start
            )
        part = run_shard(dataset.select(range(start, end)))
        if keep is not None and not keep(part):
            logger.warning(
                "checkpoint: shard %d/%d not saved: rerun to retry it", i + 1, len(ranges)
            )
            parts.append(part)
            continue
        if len(part) != end - start:  # pragma: no cover - a pipeline bug
            raise RuntimeError(f"shard {i}: {end - start} rows in, {len(part)} out")
        tmp = root / f"{_TMP_PREFIX}{i:05d}-{uuid.uuid4().hex[:8]}"
        part.save_to_disk(str(tmp))
        if shard_dir.exists():
            shutil.rmtree(shard_dir)
        os.replace(tmp, shard_dir)
        write_atomic(
            shard_dir / MARKER, json.dumps({"rows": len(part), "start": start, "end": end})
        )
        parts.append(load_from_disk(str(shard_dir)))
        logger.info("checkpoint: shard %d/%d done (rows %d-%d)", i + 1, len(ranges), start, end)
    logger.info(
        "checkpoint: reused %d of %d shards (finished by an earlier run) from %s",
        reused,
        len(ranges),
        root,
        extra={"shards_reused": reused, "shards_total": len(ranges)},
    )
    if not parts:
        return run_shard(dataset)
    return concatenate_datasets(parts)
