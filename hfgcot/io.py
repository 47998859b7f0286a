"""Reading pipeline inputs: a saved dataset folder, a ``.jsonl`` file with image paths, or a Hub id.

Image paths in a ``.jsonl`` file are read relative to the file's folder and must stay inside it
(or inside ``image_root=`` when given): a path that leads elsewhere (``../secret.txt``,
``/etc/passwd``, a symlink out) is never opened and its row gets the status
``path_outside_root: <name>``. Every local image path enters the dataset fingerprint with its
size and modification time, so replacing an image file invalidates caches and checkpoints.

>>> ds = load_input("data/questions.jsonl", image_column="image")   # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import urllib.parse
import urllib.request
from pathlib import Path

from datasets import Dataset, DatasetInfo, Features, Image, Value, load_dataset, load_from_disk
from datasets.fingerprint import Hasher

from hfgcot.cache import map_cache_file
from hfgcot.images import PATH_OUTSIDE_ROOT, REFUSED_PREFIX, UNREADABLE_FILE, UNSUPPORTED_VALUE

__all__ = [
    "DEMO_DATA",
    "check_jsonl",
    "demo_dataset",
    "fingerprint_image_files",
    "load_input",
    "resolve_image_path",
]

DEMO_DATA = Path(__file__).parent / "data" / "demo" / "metadata.jsonl"


def check_jsonl(path: str | os.PathLike[str]) -> int:
    """Count the rows of a ``.jsonl`` file; raise ``ValueError`` naming the file and line of the
    first line that is not a JSON object, or when the file has no rows.

    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "rows.jsonl"
    >>> _ = f.write_text('{"question": "q"}\\n[1, 2]\\n')
    >>> check_jsonl(f)
    Traceback (most recent call last):
    ...
    ValueError: rows.jsonl line 2: expected a JSON object, got list
    """
    path = Path(path)
    rows = 0
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path.name} line {number}: not valid JSON ({exc.msg})") from None
            if not isinstance(value, dict):
                raise ValueError(
                    f"{path.name} line {number}: expected a JSON object, got {type(value).__name__}"
                )
            rows += 1
    if rows == 0:
        raise ValueError(f"{path.name} has no rows: write one JSON object per line")
    return rows


def resolve_image_path(value: str | None, root: Path) -> str | None:
    """An image path of a ``.jsonl`` row, absolute, or a refusal when it leaves ``root``.

    ``file://`` URLs are paths like any other; other URLs (``http(s)://``, fetched under the
    pipeline's URL rules) and empty values are returned unchanged. ``root`` must be absolute and
    resolved.

    >>> root = Path("/data/set")
    >>> resolve_image_path("img/a.png", root)
    '/data/set/img/a.png'
    >>> resolve_image_path("../secret.txt", root)
    'hfgcot-refused:path_outside_root: secret.txt'
    >>> resolve_image_path("file:///etc/passwd", root)
    'hfgcot-refused:path_outside_root: passwd'
    """
    if not value:
        return value
    if value[:7].lower() == "file://":
        value = urllib.request.url2pathname(urllib.parse.urlsplit(value).path)
    elif "://" in value:
        return value
    name = os.path.basename(value).replace("\0", "")
    try:
        real = Path(os.path.realpath(Path(value) if os.path.isabs(value) else root / value))
    except (OSError, ValueError):  # an embedded NUL byte, ...
        return f"{REFUSED_PREFIX}{UNREADABLE_FILE}: {name}"
    if real != root and root not in real.parents:
        return f"{REFUSED_PREFIX}{PATH_OUTSIDE_ROOT}: {name}"
    return str(real)


def _file_state(value: str | None) -> tuple[str, int, int] | None:
    """What the fingerprint knows of a local image path: the path, its size and mtime."""
    if not value or "://" in value or value.startswith(REFUSED_PREFIX):
        return None
    try:
        st = os.stat(value)
    except OSError:
        return (value, -1, -1)
    return (value, st.st_size, st.st_mtime_ns)


def fingerprint_image_files(dataset: Dataset, column: str) -> Dataset:
    """``dataset`` under a fingerprint that also covers the local image files ``column`` names
    (path, size and modification time of each; image bytes held in the dataset are already in it).

    Every model run goes through this, so replacing an image file gives new results instead of
    the ones cached or checkpointed for the old file, however the dataset was built. Nothing is
    copied: the result is a view of the same rows.

    >>> ds = Dataset.from_dict({"image": ["https://example.com/a.png"]})
    >>> fingerprint_image_files(ds, "image")._fingerprint == ds._fingerprint  # no local file
    True
    """
    if column not in dataset.column_names or len(dataset) == 0:
        return dataset
    feature = dataset.features[column]
    cells = dataset.select_columns([column]).with_format("arrow")[:][column]
    if getattr(feature, "dtype", None) == "string":
        paths = cells.to_pylist()
    elif isinstance(feature, Image):
        cells = cells.combine_chunks()
        held = cells.field("bytes").is_valid().to_pylist()
        paths = [
            None if has else p for has, p in zip(held, cells.field("path").to_pylist(), strict=True)
        ]
    else:
        return dataset
    states = [_file_state(p) for p in paths]
    if not any(states):
        return dataset
    fingerprint = Hasher.hash([dataset._fingerprint, "image files", states])
    return dataset.select(range(len(dataset)), new_fingerprint=fingerprint)


def _jsonl_image(value: object, root: Path) -> str | None:
    """A ``.jsonl`` image cell as a resolved path (or a refusal): a string, or a dict's
    ``"path"``; any other value (a number, a list...) is refused and never read."""
    if isinstance(value, dict):
        value = value.get("path")
    if value is None or isinstance(value, str):
        return resolve_image_path(value, root)
    return f"{REFUSED_PREFIX}{UNSUPPORTED_VALUE}: {type(value).__name__}"


def _with_paths(ds: Dataset, column: str, root: Path | None) -> Dataset:
    """Resolve (when ``root`` is given) and fingerprint the local image paths of ``column``.

    With a root (a ``.jsonl`` input) every cell is resolved whatever the column's type (a
    column of mixed types is read as JSON values), and the column becomes strings.
    """
    if column not in ds.column_names:
        return ds
    if root is None and getattr(ds.features[column], "dtype", None) != "string":
        return ds
    values = ds[column]
    if root is not None:
        values = [_jsonl_image(v, root) for v in values]
    fingerprint = Hasher.hash([ds._fingerprint, [_file_state(v) for v in values]])

    def resolve(batch: dict[str, list], indices: list[int]) -> dict[str, list]:
        return {column: [values[i] for i in indices]}

    return ds.map(
        resolve,
        batched=True,
        with_indices=True,
        features=Features({**ds.features, column: Value("string")}),
        new_fingerprint=fingerprint,
        cache_file_name=map_cache_file(ds, fingerprint),  # never into the input's folder
        desc="resolve image paths",
    )


def _load_saved(path: Path) -> Dataset:
    """``load_from_disk``, also for a 0-row folder (``datasets`` saves no shard for it, then
    cannot read it back)."""
    state = path / "state.json"
    if state.exists() and json.loads(state.read_text()).get("_data_files") == []:
        info = DatasetInfo.from_directory(str(path))
        return Dataset.from_dict(
            {name: [] for name in info.features}, features=info.features, info=info
        )
    return load_from_disk(str(path))


def load_input(
    source: str | os.PathLike[str],
    *,
    image_column: str = "image",
    split: str = "train",
    limit: int | None = None,
    image_root: str | os.PathLike[str] | None = None,
) -> Dataset:
    """Load a pipeline input.

    - a folder written by ``save_to_disk`` -> ``load_from_disk``;
    - a ``.jsonl``/``.json`` file -> rows, image paths relative to the file's folder, which they
      must not leave (``image_root`` names another folder to resolve them in and keep them to);
    - anything else -> ``load_dataset(source, split=split)`` (a Hub id or a local data folder).

    Raises:
        ValueError: for a ``.jsonl`` file that is empty or has a line that is not a JSON object
            (the message names the file and line), or a negative ``limit``.
    """
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    path = Path(source)
    root = Path(image_root).resolve() if image_root is not None else None
    if path.is_dir() and (path / "dataset_info.json").exists():
        ds = _with_paths(_load_saved(path), image_column, root)
    elif path.suffix in {".jsonl", ".json"}:
        if not path.is_file():
            raise ValueError(f"input file not found: {path}")
        if path.suffix == ".jsonl":
            check_jsonl(path)
        ds = load_dataset("json", data_files=str(path), split="train")
        ds = _with_paths(ds, image_column, root or path.resolve().parent)
    else:
        ds = _with_paths(load_dataset(str(source), split=split), image_column, root)
    if limit is not None:
        ds = ds.select(range(min(limit, len(ds))))
    return ds


def demo_dataset() -> Dataset:
    """The small example dataset shipped with hfgcot: shapes with questions and answers."""
    return load_input(DEMO_DATA)
