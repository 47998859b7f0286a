"""Reading pipeline inputs: a saved dataset folder, a ``.jsonl`` file with image paths, or a Hub id.

>>> ds = load_input("data/questions.jsonl", image_column="image")   # doctest: +SKIP
"""

from __future__ import annotations

import os
from pathlib import Path

from datasets import Dataset, load_dataset, load_from_disk

DEMO_DATA = Path(__file__).parent / "data" / "demo" / "metadata.jsonl"


def _resolve_paths(ds: Dataset, column: str, root: Path) -> Dataset:
    """Make relative image paths in ``column`` absolute against ``root`` (the jsonl's folder)."""
    if column not in ds.column_names or ds.features[column].dtype != "string":
        return ds

    def resolve(batch: dict[str, list]) -> dict[str, list]:
        return {
            column: [
                p if p is None or "://" in p or os.path.isabs(p) else str(root / p)
                for p in batch[column]
            ]
        }

    return ds.map(resolve, batched=True, desc="resolve image paths")


def load_input(
    source: str | os.PathLike[str],
    *,
    image_column: str = "image",
    split: str = "train",
    limit: int | None = None,
) -> Dataset:
    """Load a pipeline input.

    - a folder written by ``save_to_disk`` -> ``load_from_disk``;
    - a ``.jsonl``/``.json`` file -> rows, image paths relative to the file's folder;
    - anything else -> ``load_dataset(source, split=split)`` (a Hub id or a local data folder).
    """
    path = Path(source)
    if path.is_dir() and (path / "dataset_info.json").exists():
        ds = load_from_disk(str(path))
    elif path.suffix in {".jsonl", ".json"}:
        ds = load_dataset("json", data_files=str(path), split="train")
        ds = _resolve_paths(ds, image_column, path.resolve().parent)
    else:
        ds = load_dataset(str(source), split=split)
    if limit is not None:
        ds = ds.select(range(min(limit, len(ds))))
    return ds


def demo_dataset() -> Dataset:
    """The small example dataset shipped with hfgcot: shapes with questions and answers."""
    return load_input(DEMO_DATA)
