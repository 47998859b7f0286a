"""Where a pipeline subcommand reads and writes: input checks, portable images, the saved folder.

A dataset read from a ``.jsonl`` file holds its images as absolute paths of this machine; saved
as is, the folder breaks when it is moved and tells where the data lived. :func:`embed_images`
stores the image files in the Arrow data instead (``datasets``' own
``embed_table_storage``, as ``push_to_hub`` does), keeping only file names.

    >>> is_jsonl("rows.jsonl"), is_jsonl("out/gcot")
    (True, False)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = [
    "check_input",
    "check_output",
    "embed_images",
    "is_jsonl",
    "save_dataset",
]

# The files Dataset.save_to_disk writes: what --overwrite removes (nothing else in the folder).
_DATASET_FILES = ("data-*.arrow", "dataset_info.json", "state.json")


def is_jsonl(source: str | os.PathLike[str]) -> bool:
    """Whether an input is a ``.jsonl``/``.json`` file (its images are paths)."""
    return Path(source).suffix.lower() in (".jsonl", ".json")


def check_input(source: str) -> None:
    """Cheap checks of an input before anything is loaded: a file or folder named as a path
    exists; every line of a ``.jsonl`` file is a JSON object (the error names file and line)."""
    from hfgcot.io import check_jsonl
    from hfgcot.model.spec import looks_like_path

    path = Path(source).expanduser()
    if is_jsonl(source) and not path.is_file():
        raise FileNotFoundError(f"input file not found: {source}")
    if looks_like_path(source) and not path.exists():
        raise FileNotFoundError(f"input not found: {source}")
    if path.suffix.lower() == ".jsonl":
        check_jsonl(path)


def check_output(source: str, output: str, overwrite: bool) -> None:
    """Refuse an output that is the input (or holds it), or a folder that exists and is not
    empty without ``overwrite``; both are one-line user errors raised before any work."""
    out = Path(output).expanduser().resolve()
    src = Path(source).expanduser().resolve()
    if src == out or out in src.parents:
        raise ValueError(
            f"--output {output} is (or holds) the input: write the result to another folder"
        )
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"output {output} is a file: give a folder")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(
            f"output {output} exists and is not empty: choose another folder or pass --overwrite"
        )


def _local_file(value: Any) -> bool:
    return isinstance(value, str) and "://" not in value and os.path.isfile(value)


def _storage_without_missing(batch: dict[str, list], column: str) -> dict[str, list]:
    """Image values whose file cannot be read become empty (the row's status says why)."""
    values = []
    for value in batch[column]:
        path = value.get("path") if isinstance(value, dict) else value
        has_bytes = isinstance(value, dict) and value.get("bytes") is not None
        if has_bytes or _local_file(path) or (isinstance(path, str) and "://" in path):
            values.append(value if isinstance(value, dict) else {"bytes": None, "path": path})
        else:
            values.append(None)
    return {column: values}


def embed_images(dataset: Any, columns: list[str]) -> Any:
    """``dataset`` with the image files of ``columns`` (paths or ``Image`` features) stored in it.

    Path columns become ``Image`` features; an unreadable path (a missing file, a path an input
    reader refused) becomes an empty image; URLs are kept as they are (never fetched here).
    Local paths kept in ``Image`` storage are cut to their file names.
    """
    from datasets import Image, Value
    from datasets.table import embed_table_storage

    chosen = [
        c
        for c in columns
        if c in dataset.column_names
        and (dataset.features[c] == Value("string") or isinstance(dataset.features[c], Image))
    ]
    if not chosen:
        return dataset
    if len(dataset) == 0:  # nothing to embed (and an empty table may hold no chunk to cast)
        return _empty_with_images(dataset, chosen)
    for column in chosen:
        feature = dataset.features[column]
        decode = feature.decode if isinstance(feature, Image) else True
        dataset = dataset.cast_column(column, Image(decode=False))
        dataset = dataset.map(
            _storage_without_missing,
            batched=True,
            fn_kwargs={"column": column},
            desc=f"check {column} files",
        )
        dataset = dataset.cast_column(column, Image(decode=decode))
    fmt = dataset.format
    embedded = dataset.with_format("arrow").map(
        embed_table_storage,
        batched=True,
        fn_kwargs={"remote_files": False},
        desc="embed images",
    )
    return embedded.with_format(**{k: fmt[k] for k in ("type", "columns", "output_all_columns")})


def _empty_with_images(dataset: Any, columns: list[str]) -> Any:
    from datasets import Dataset, Features, Image

    def decodes(feature: Any) -> bool:
        return feature.decode if isinstance(feature, Image) else True

    features = Features(
        {
            name: Image(decode=decodes(f)) if name in columns else f
            for name, f in dataset.features.items()
        }
    )
    info = dataset.info.copy()
    info.features = features
    return Dataset.from_dict({name: [] for name in features}, features=features, info=info)


def save_dataset(dataset: Any, output: str, overwrite: bool) -> None:
    """``save_to_disk`` into ``output``; with ``overwrite`` the files of a dataset saved there
    before are removed first (any other file in the folder is left alone)."""
    out = Path(output).expanduser()
    if overwrite and out.is_dir():
        for pattern in _DATASET_FILES:
            for old in out.glob(pattern):
                old.unlink()
    dataset.save_to_disk(str(out))
