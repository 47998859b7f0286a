"""Which image bytes a release embeds: only bytes that decode as an image.

Publishing writes every image into the Parquet shards (a path on your disk would be useless to
others). Before anything is written, each value of each image column (``Image`` features, and the
string columns of image paths chosen by ``image_columns``) is read and decoded with
:func:`hfgcot.images.load_image` under a permissive policy (any size, no URL fetch). A row whose
image cannot be embedded - a missing or unreadable file, bytes that are no image, a path an input
reader refused (``path_outside_root``), a URL without bytes - makes :func:`prepare_images` raise
:class:`~hfgcot.publishing.targets.BadRowsError` (nothing is written), or, with
``drop_bad_rows=True``, leaves the row out and counts it. An empty value (``None``) is published
as an empty image, unless the row's status says its image was lost (``file_not_found``,
``path_outside_root``... :data:`LOST_IMAGE_REASONS`: e.g. a saved output whose
unreadable image files were left out): that row is refused too. So a ``.jsonl`` that points at ``../secret.txt`` or ``/etc/passwd`` never
gets those files into a release.

    >>> from datasets import Dataset
    >>> ds = Dataset.from_dict({"image": [None], "q": ["a"]})
    >>> prepare_images(ds, "train", "auto", drop_bad_rows=False)[1]
    {}
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from hfgcot import images, status, urls
from hfgcot.images import OK, ImagePolicy, load_image
from hfgcot.publishing.targets import BadRowsError
from hfgcot.splits import as_splits

logger = logging.getLogger(__name__)

__all__ = ["embed_status", "find_bad_rows", "image_columns_of", "prepare_images"]

# Any decodable image is publishable; URLs are never fetched while publishing.
PUBLISH_POLICY = ImagePolicy(min_side=0, max_aspect_ratio=float("inf"), allow_urls=False)
# Row statuses that mean the row's image bytes are unusable (a missing file, bytes that are no
# image, a value refused before reading): such a row has no image a release may embed.
LOST_IMAGE_REASONS = frozenset(
    {
        images.FILE_NOT_FOUND,
        images.UNREADABLE_FILE,
        images.EMPTY_FILE,
        images.UNDECODABLE_IMAGE,
        images.TRUNCATED_IMAGE,
        images.DECOMPRESSION_BOMB,
        images.UNSUPPORTED_VALUE,
        images.PATH_OUTSIDE_ROOT,
        urls.URL_NOT_ALLOWED,
        urls.URL_FETCH_FAILED,
        urls.IMAGE_TOO_LARGE,
    }
)
_SHOWN_ROWS = 3
_BATCH = 64
_SAMPLE = 50


def _is_url(value: Any) -> bool:
    return isinstance(value, str) and "://" in value and not value.startswith("file://")


def _string_columns(ds: Any) -> list[str]:
    from datasets import Value

    return [c for c, f in ds.features.items() if f == Value("string")]


def _looks_like_paths(ds: Any, column: str) -> bool:
    """Some of the first non-empty values are local paths (not URLs): the column holds files."""
    values = [v for v in ds.select(range(min(len(ds), _SAMPLE)))[column] if v]
    return any(not _is_url(v) for v in values)


def image_columns_of(ds: Any, image_columns: str | Sequence[str] | None) -> tuple[list, list]:
    """``(Image columns, string columns to publish as images)`` of a ``Dataset``.

    ``"auto"`` picks string columns named ``image`` or ``*_image`` holding local paths; a name
    or list of names picks those; ``None`` none. Raises ``KeyError`` for a name not in ``ds``.
    """
    from datasets import Image

    media = [c for c, f in ds.features.items() if isinstance(f, Image)]
    strings = _string_columns(ds)
    if image_columns is None:
        return media, []
    if image_columns == "auto":
        named = [c for c in strings if c == "image" or c.endswith("_image")]
        return media, [c for c in named if _looks_like_paths(ds, c)]
    chosen = [image_columns] if isinstance(image_columns, str) else list(image_columns)
    missing = [c for c in chosen if c not in ds.column_names]
    if missing:
        raise KeyError(f"image column(s) {missing} not in the dataset")
    return media, [c for c in chosen if c in strings]


def embed_status(value: Any) -> str:
    """``"ok"`` when ``value`` (a path, bytes or an ``Image`` storage dict) may be embedded,
    else the reason it may not (``None`` is ok: it is published as an empty image).

    >>> embed_status(None), embed_status(b"not an image"), embed_status("https://x/a.png")
    ('ok', 'undecodable_image', 'url_not_allowed: urls disabled')
    >>> embed_status({"bytes": None, "path": None}), embed_status({"bytes": b"", "path": None})
    ('ok', 'empty_file')
    """
    empty_cell = isinstance(value, dict) and value.get("bytes") is None and not value.get("path")
    if value is None or value == "" or empty_cell:
        return OK
    image, status = load_image(value, PUBLISH_POLICY)
    if image is not None:
        image.close()
    return status


def find_bad_rows(ds: Any, columns: Sequence[str]) -> list[tuple[int, str, str]]:
    """``(row, column, status)`` of every value of ``columns`` that cannot be embedded."""
    from datasets import Image

    if not columns or not len(ds):
        return []
    statuses = [c for c in ds.column_names if c.endswith("_status")]
    view = ds.select_columns(list(dict.fromkeys([*columns, *statuses])))
    for column in columns:
        if isinstance(view.features[column], Image):
            view = view.cast_column(column, Image(decode=False))
    bad = []
    for start in range(0, len(view), _BATCH):
        batch = view[start : start + _BATCH]
        for column in columns:
            for offset, value in enumerate(batch[column]):
                status = embed_status(value)
                if value is None:  # an empty image, unless the row says its image was lost
                    lost = [batch[s][offset] for s in statuses]
                    status = next((s for s in lost if _lost(s)), OK)
                if status != OK:
                    bad.append((start + offset, column, status))
    return bad


def _lost(row_status: Any) -> bool:
    return isinstance(row_status, str) and status.reason(row_status) in LOST_IMAGE_REASONS


def _status_column(ds: Any) -> str | None:
    return next((c for c in ds.column_names if c.endswith("_status")), None)


def _refusal(bad: dict[str, list[tuple[int, str, str]]], rows: dict[str, int], hint: Any) -> str:
    n_bad = sum(len({r for r, _, _ in found}) for found in bad.values())
    shown = [
        f"{split} row {row} {column}: {status}"
        for split, found in bad.items()
        for row, column, status in found
    ][:_SHOWN_ROWS]
    more = "; ..." if sum(map(len, bad.values())) > _SHOWN_ROWS else ""
    keep = (
        f"ds = ds.filter(lambda s: s.startswith('ok'), input_columns={hint!r})"
        if hint
        else "ds = ds.select(<the good rows>)"
    )
    return (
        f"publish refused: {n_bad} of {sum(rows.values())} rows have an image that cannot be "
        f"embedded ({'; '.join(shown)}{more}); nothing was written. Keep only the ok rows first, "
        f"e.g. {keep}, or pass drop_bad_rows=True (command line: --drop-bad-rows) to leave them "
        "out (the card records how many)"
    )


def prepare_images(
    dataset: Any,
    split: str,
    image_columns: str | Sequence[str] | None,
    *,
    drop_bad_rows: bool,
) -> tuple[Any, dict[str, dict[str, int]]]:
    """Check every image to publish, drop or refuse bad rows, cast path columns to ``Image``.

    Returns the dataset to write and ``{split: {reason: rows dropped}}`` (``{}`` when none).
    Raises :class:`~hfgcot.publishing.targets.BadRowsError` (bad rows, ``drop_bad_rows=False``).
    """
    from datasets import Dataset, DatasetDict, Image

    splits = as_splits(dataset, split)
    bad, chosen = {}, {}
    for name, ds in splits.items():
        media, paths = image_columns_of(ds, image_columns)
        chosen[name] = paths
        found = find_bad_rows(ds, media + paths)
        if found:
            bad[name] = found
    if bad and not drop_bad_rows:
        first = next(iter(bad))
        raise BadRowsError(
            _refusal(bad, {s: len(d) for s, d in splits.items()}, _status_column(splits[first]))
        )
    dropped: dict[str, dict[str, int]] = {}
    out = {}
    for name, ds in splits.items():
        rows = {row: status for row, _, status in bad.get(name, [])}
        if rows:
            ds = ds.select([i for i in range(len(ds)) if i not in rows])
            dropped[name] = status.summary(rows.values())
            logger.warning("publish: left out %d rows of %r (drop_bad_rows)", len(rows), name)
        for column in chosen[name]:
            logger.info("publishing column %r (image paths) as images, files embedded", column)
            ds = ds.cast_column(column, Image())
        out[name] = ds
    return (out[split] if isinstance(dataset, Dataset) else DatasetDict(out)), dropped
