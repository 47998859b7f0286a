"""A ``Dataset`` or a ``DatasetDict``: the one place that tells them apart.

Entry points that take either (grounding SFT and predictions, the dataset card) work split by
split through :func:`map_splits` (:func:`map_named_splits` gives the split names too) or
:func:`as_splits`; anything else is a ``TypeError``.

    >>> from datasets import Dataset, DatasetDict
    >>> ds = Dataset.from_dict({"x": [1, 2]})
    >>> {name: len(part) for name, part in as_splits(ds, "test").items()}
    {'test': 2}
    >>> map_splits(DatasetDict({"a": ds, "b": ds}), lambda part: part.select([0]))["b"].num_rows
    1
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from datasets import Dataset, DatasetDict

__all__ = ["as_splits", "map_named_splits", "map_splits"]


def _check(dataset: Any) -> None:
    if not isinstance(dataset, Dataset | DatasetDict):
        raise TypeError(f"expected a datasets.Dataset or DatasetDict, got {type(dataset).__name__}")


def as_splits(dataset: Dataset | DatasetDict, split: str = "train") -> dict[str, Dataset]:
    """``{split name: Dataset}``: a ``Dataset`` is the one split named ``split``."""
    _check(dataset)
    return {split: dataset} if isinstance(dataset, Dataset) else dict(dataset.items())


def map_splits(
    dataset: Dataset | DatasetDict, fn: Callable[[Dataset], Dataset]
) -> Dataset | DatasetDict:
    """``fn`` of a ``Dataset``, or of every split of a ``DatasetDict`` (a ``DatasetDict`` back)."""
    return map_named_splits(dataset, lambda part, _: fn(part))


def map_named_splits(
    dataset: Dataset | DatasetDict, fn: Callable[[Dataset, str | None], Dataset]
) -> Dataset | DatasetDict:
    """:func:`map_splits` with each split's name as ``fn``'s second argument (``None`` for a
    ``Dataset``).

    >>> parts = DatasetDict({"a": Dataset.from_dict({"x": [1]})})
    >>> map_named_splits(parts, lambda part, name: part.add_column("split", [name]))["a"][0]
    {'x': 1, 'split': 'a'}
    """
    _check(dataset)
    if isinstance(dataset, DatasetDict):
        return DatasetDict({name: fn(part, name) for name, part in dataset.items()})
    return fn(dataset, None)
