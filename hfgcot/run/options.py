"""How a pipeline run is executed (not what it computes): workers, checkpoints, row order.

>>> RunOptions(num_proc=2, checkpoint_dir="ckpt").shard_size
1000
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field


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


__all__ = ["RunOptions"]
