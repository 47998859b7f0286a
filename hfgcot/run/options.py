"""How a pipeline run is executed (not what it computes): on this machine (:class:`RunOptions`:
workers, checkpoints, row order) or on a Ray cluster (:class:`RayOptions`: actors, where the
parquet goes).

>>> RunOptions(num_proc=2, checkpoint_dir="ckpt").shard_size
1000
>>> RayOptions("s3://bucket/run-1", num_actors=8).for_split("test").output_dir
's3://bucket/run-1/test'
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import Any


@dataclass(frozen=True)
class RunOptions:
    """Execution options shared by every pipeline entry point (none of them changes a row).

    Example:
        >>> RunOptions(shard_size=0)
        Traceback (most recent call last):
        ...
        ValueError: shard_size must be >= 1, got 0
    """

    num_proc: int | None = field(
        default=None,
        metadata={"help": "Map worker processes, one model each (one per GPU, round robin)."},
    )
    checkpoint_dir: str | os.PathLike[str] | None = field(
        default=None,
        metadata={"help": "Folder for resumable shards; a rerun skips finished shards."},
    )
    shard_size: int = field(
        default=1000, metadata={"help": "Rows per checkpoint shard (with checkpoint_dir)."}
    )
    sort_window: int | None = field(
        default=None,
        metadata={
            "help": "Process rows sorted by image size within windows of this many rows "
            "(less padding); the output keeps the input order."
        },
    )

    def __post_init__(self) -> None:
        for name in ("num_proc", "sort_window"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be None or >= 1, got {value}")
        if self.shard_size < 1:
            raise ValueError(f"shard_size must be >= 1, got {self.shard_size}")

    def for_split(self, split: str) -> RunOptions:
        """The options for one split of a ``DatasetDict``: the same (checkpoints are kept per
        run fingerprint, so the splits' shards never mix)."""
        return self

    def record(self) -> dict[str, object]:
        """What provenance records: the options, with no local path (only whether one was set).

        >>> RunOptions(checkpoint_dir="/home/me/ckpt").record()["checkpoint_dir"]
        True
        """
        return {
            "num_proc": self.num_proc,
            "checkpoint_dir": self.checkpoint_dir is not None,
            "shard_size": self.shard_size,
            "sort_window": self.sort_window,
        }


def is_local_path(path: str) -> bool:
    """Whether ``path`` is a folder of this machine (no URL scheme, or ``file://``).

    >>> is_local_path("out/ray"), is_local_path("file:///tmp/x"), is_local_path("s3://b/x")
    (True, True, False)
    """
    return "://" not in path or path.startswith("file://")


@dataclass(frozen=True)
class RayOptions:
    """Execution options of a run on a Ray cluster (:mod:`hfgcot.run.ray`); none changes a row.

    Given as ``run=`` to a model pipeline's entry point (``add_gcot(ds, model,
    run=RayOptions(...))``), or made by its Ray entry point from its keyword arguments
    (:func:`hfgcot.ray.add_gcot_ray`). The fields are
    :func:`~hfgcot.run.ray.run_pipeline_on_ray`'s options.

    Example:
        >>> RayOptions("out/ray", num_actors=2).record()
        {'name': 'ray', 'num_actors': 2, 'num_gpus_per_actor': 0, 'output_dir': 'ray'}
    """

    output_dir: str | os.PathLike[str] = field(
        metadata={"help": "Where the actors write parquet (a folder every node reaches, s3://...)."}
    )
    num_actors: int = field(default=1, metadata={"help": "Ray actors, one model each."})
    num_gpus_per_actor: float = field(default=0, metadata={"help": "GPUs each actor reserves."})
    num_cpus_per_actor: float | None = field(
        default=None, metadata={"help": "CPUs each actor reserves (Ray's default, 1, when None)."}
    )
    num_blocks: int | None = field(
        default=None, metadata={"help": "Blocks the input is cut into (default: ~4 per actor)."}
    )
    overwrite: bool = field(
        default=False, metadata={"help": "Replace parquet files already in output_dir."}
    )
    storage_options: dict[str, Any] | None = field(
        default=None, metadata={"help": "fsspec options of a remote output_dir."}
    )

    def for_split(self, split: str) -> RayOptions:
        """The options for one split of a ``DatasetDict``: its parquet in ``output_dir/<split>``."""
        return replace(self, output_dir=f"{os.fspath(self.output_dir).rstrip('/')}/{split}")

    def record(self) -> dict[str, object]:
        """What provenance records: the executor and its actors; ``output_dir`` as its URL, or
        for a local folder its name only (no machine path)."""
        where = os.fspath(self.output_dir)
        if is_local_path(where):
            where = os.path.basename(where.removeprefix("file://").rstrip("/"))
        return {
            "name": "ray",
            "num_actors": self.num_actors,
            "num_gpus_per_actor": self.num_gpus_per_actor,
            "output_dir": where,
        }


__all__ = ["RayOptions", "RunOptions", "is_local_path"]
