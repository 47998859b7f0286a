"""Apply stages to a ``datasets.Dataset``: fingerprints, explicit features, ranks, image decoding.

>>> ds = run_stages(ds, [stage_a, stage_b], batch_size=8)   # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Sequence
from typing import Any

from datasets import Dataset, Features, Image
from datasets.utils.logging import (
    disable_progress_bar,
    enable_progress_bar,
    is_progress_bar_enabled,
)

from hfgcot.cache import map_cache_file
from hfgcot.errors import InputError, MissingColumnError
from hfgcot.fingerprint import stable_hash
from hfgcot.images import ImagePolicy, image_size, kept_image
from hfgcot.io import fingerprint_image_files
from hfgcot.model.endpoint import is_endpoint_error
from hfgcot.run.options import RunOptions
from hfgcot.run.resume import run_resumable
from hfgcot.run.stage import StageLike
from hfgcot.status import OK, summary

logger = logging.getLogger(__name__)


def undecoded(dataset: Dataset, column: str) -> tuple[Dataset, Any]:
    """Turn off decoding of an ``Image`` column so that stages see raw ``{bytes, path}`` storage.

    ``datasets`` would raise inside ``map`` on the first undecodable image and lose the whole batch;
    stages decode each image themselves and write a status instead. Returns the dataset and the
    column's original feature, to restore with :func:`restore_feature`.
    """
    check_columns(dataset, [column])
    feature = dataset.features[column]
    if isinstance(feature, Image) and feature.decode:
        dataset = dataset.cast_column(column, Image(decode=False))
    return dataset, feature


def restore_feature(dataset: Dataset, column: str, feature: Any) -> Dataset:
    """Give ``column`` its input feature back. A column a stage filled with the images
    themselves (fetched URLs, :mod:`hfgcot.pipelines.url_images`) becomes ``Image()``, and
    keeps of each row what can be shown (:func:`hfgcot.images.kept_image`)."""
    if isinstance(dataset.features[column], Image) and not isinstance(feature, Image):
        fingerprint = stable_hash([dataset._fingerprint, "kept images", column])
        dataset = dataset.map(
            lambda batch: {column: [kept_image(cell) for cell in batch[column]]},
            batched=True,
            features=dataset.features,
            new_fingerprint=fingerprint,
            cache_file_name=map_cache_file(dataset, fingerprint),
            desc="hfgcot images kept",
        )
        feature = Image()
    if dataset.features[column] != feature:
        dataset = dataset.cast_column(column, feature)
    return dataset


@contextlib.contextmanager
def _spawn_workers(num_proc: int | None) -> Iterator[None]:
    """Use the ``spawn`` start method for ``map`` workers while the block runs.

    ``fork`` after torch started its threads can hang in the child's first torch op, and fork +
    CUDA fails; ``spawn`` starts clean interpreters (about 10 s each) that load their own model.
    """
    if not num_proc or num_proc < 2:
        yield
        return
    import multiprocess

    previous = multiprocess.get_start_method(allow_none=True)
    multiprocess.set_start_method("spawn", force=True)
    try:
        yield
    finally:
        multiprocess.set_start_method(previous, force=True)


@contextlib.contextmanager
def _progress() -> Iterator[None]:
    """Progress bars (``tqdm.auto`` via datasets) unless ``HFGCOT_QUIET`` is set."""
    quiet = os.environ.get("HFGCOT_QUIET", "").lower() not in ("", "0", "false")
    was_enabled = is_progress_bar_enabled()
    if quiet and was_enabled:
        disable_progress_bar()
    try:
        yield
    finally:
        if quiet and was_enabled:
            enable_progress_bar()


def apply_stage(
    dataset: Dataset,
    stage: StageLike,
    *,
    batch_size: int = 8,
    num_proc: int | None = None,
    desc: str | None = None,
) -> Dataset:
    """Run one stage as a batched ``Dataset.map`` with a deterministic ``new_fingerprint``.

    Output columns get the stage's explicit features, so an all-empty first batch cannot fix a
    wrong Arrow type for the rest of the run. Rows in == rows out, in order.
    """
    features = Features({**dataset.features, **stage.features()})
    n_in = len(dataset)
    if n_in == 0:  # ``map`` never calls the stage on 0 rows: add its columns, empty and typed
        return empty_with(dataset, features)
    num_proc = num_proc if num_proc and num_proc > 1 and n_in > 1 else None
    fingerprint = stage.new_fingerprint(dataset._fingerprint)
    with _spawn_workers(num_proc), _progress():
        out = dataset.map(
            stage,
            batched=True,
            batch_size=batch_size,
            with_rank=True,
            num_proc=num_proc,
            features=features,
            new_fingerprint=fingerprint,
            cache_file_name=map_cache_file(dataset, fingerprint),  # not next to the input
            desc=desc or f"hfgcot {stage.name}",
        )
    if len(out) != n_in:  # pragma: no cover - a stage bug, never expected
        raise RuntimeError(f"stage {stage.name} changed the number of rows: {n_in} -> {len(out)}")
    status = stage.status_column
    if status and status in out.column_names:
        log_summary(out, status, stage.name)
    return out


def empty_with(dataset: Dataset, features: Features) -> Dataset:
    """A 0-row ``dataset`` with every column of ``features`` (missing ones added, all typed).

    >>> from datasets import Value
    >>> features = Features({"a": Value("string"), "b": Value("int64")})
    >>> empty_with(Dataset.from_dict({"a": []}), features).column_names
    ['a', 'b']
    """
    out = dataset
    for name, feature in features.items():
        if name not in out.column_names:
            out = out.add_column(name, [], feature=feature)
    if out.features == features:
        return out
    fingerprint = stable_hash([out._fingerprint, "cast", str(features)])
    return out.cast(features, cache_file_name=map_cache_file(out, fingerprint))


def run_stages(
    dataset: Dataset,
    stages: Sequence[StageLike],
    *,
    batch_size: int = 8,
    num_proc: int | None = None,
) -> Dataset:
    for stage in stages:
        dataset = apply_stage(dataset, stage, batch_size=batch_size, num_proc=num_proc)
        if retry_pending(dataset, stages):
            _forget_cached(dataset)
    return dataset


def retry_pending(dataset: Dataset, stages: Sequence[StageLike]) -> bool:
    """Whether a row's status (any status column of ``stages``) records a failed request to a
    served model, which a rerun should retry (:func:`hfgcot.model.endpoint.is_endpoint_error`)."""
    columns = {s.status_column for s in stages if s.status_column} & set(dataset.column_names)
    return any(is_endpoint_error(v) for c in sorted(columns) for v in dataset[c])


def _forget_cached(dataset: Dataset) -> None:
    """Delete the ``map`` cache files that hold ``dataset`` (rows to retry): a rerun with the same
    fingerprints then computes them again instead of loading the failures. The open memory map
    stays valid (POSIX)."""
    for entry in dataset.cache_files:
        name = entry.get("filename", "")
        if dataset._fingerprint in os.path.basename(name):
            with contextlib.suppress(OSError):
                os.remove(name)
                logger.info("not caching %s: it has rows to retry", name)


def size_order(dataset: Dataset, image_column: str, window: int) -> list[int]:
    """A permutation that sorts rows by image area within consecutive windows of ``window`` rows.

    Rows of similar size then share map batches, so batches carry less padding. Image sizes are
    read from the headers (no full decode); unreadable images and URLs (not fetched here) sort
    first.
    """
    no_urls = ImagePolicy(allow_urls=False)
    keys: list[int] = []
    for batch in dataset.select_columns([image_column]).iter(batch_size=1000):
        for value in batch[image_column]:
            size = image_size(value, no_urls)
            keys.append(size[0] * size[1] if size else 0)
    order: list[int] = []
    for start in range(0, len(keys), window):
        order.extend(sorted(range(start, min(start + window, len(keys))), key=keys.__getitem__))
    return order


def run_pipeline(
    dataset: Dataset,
    stages: Sequence[StageLike],
    *,
    image_column: str = "image",
    batch_size: int = 8,
    run: RunOptions | None = None,
) -> Dataset:
    """Run ``stages`` in order over ``dataset``: the common driver of every pipeline.

    ``run`` (:class:`~hfgcot.run.options.RunOptions`, default: its defaults) supplies
    ``num_proc``, ``checkpoint_dir``, ``shard_size`` and ``sort_window``:

    - the image column is read undecoded (stages decode and write a status for bad images) and
      its feature is restored at the end;
    - ``num_proc`` > 1: ``map`` workers started with ``spawn``, one model per rank
      (``cuda:{rank % n_gpus}`` on GPUs);
    - ``checkpoint_dir``: the run is cut into shards of ``shard_size`` rows, each saved with a
      completion marker, so a rerun after a crash only computes unfinished shards;
    - ``sort_window``: rows are processed sorted by image size within windows of that many rows
      (less padding across map batches); the result comes back in the input order.
    """
    run = run or RunOptions()
    num_proc, checkpoint_dir, shard_size = run.num_proc, run.checkpoint_dir, run.shard_size
    sort_window = run.sort_window
    ds, feature = undecoded(dataset, image_column)
    ds = fingerprint_image_files(ds, image_column)  # a replaced image file is a new input
    order = None
    if sort_window and sort_window > 1 and len(ds) > 1:
        order = size_order(ds, image_column, sort_window)
        ds = ds.select(order)

    def run_shard(part: Dataset) -> Dataset:
        return run_stages(part, stages, batch_size=batch_size, num_proc=num_proc)

    if checkpoint_dir is None or len(ds) == 0:
        out = run_shard(ds)
    else:
        fingerprint = stable_hash([ds._fingerprint, [s.fingerprint for s in stages], shard_size])
        out = run_resumable(
            ds,
            run_shard,
            checkpoint_dir=checkpoint_dir,
            shard_size=shard_size,
            fingerprint=fingerprint,
            keep=lambda part: not retry_pending(part, stages),
        )
    if order is not None:
        inverse = [0] * len(order)
        for position, row in enumerate(order):
            inverse[row] = position
        out = out.select(inverse)
        fingerprint = stable_hash([out._fingerprint, "flatten"])
        out = out.flatten_indices(
            new_fingerprint=fingerprint, cache_file_name=map_cache_file(out, fingerprint)
        )
    return restore_feature(out, image_column, feature)


def check_overwrite(
    dataset: Dataset, stages: Sequence[StageLike], what: str, allowed: bool
) -> None:
    """Raise ``InputError`` (a ``ValueError``) if ``stages`` would replace columns of the input (e.g. ``answer``).

    A rerun of the same pipeline on its own output (the input already has its status column) is
    allowed, and so is everything when ``allowed`` (``overwrite_columns=True``).
    """
    if allowed:
        return
    own = {s.status_column for s in stages if s.status_column}
    if own & set(dataset.column_names):
        return
    written = {name for stage in stages for name in stage.features()}
    replaced = sorted(written.intersection(dataset.column_names))
    if replaced:
        raise InputError(
            f"{what}: the input already has the output column(s) {replaced}; rename or remove "
            "them, or pass overwrite_columns=True to replace them"
        )


def check_columns(dataset: Dataset, columns: Sequence[str]) -> None:
    """Raise ``MissingColumnError`` (a ``KeyError``) naming the first of ``columns`` the dataset lacks."""
    for column in columns:
        if column not in dataset.column_names:
            raise MissingColumnError(
                f"column {column!r} not in dataset (columns: {dataset.column_names})"
            )


def prompt_record(config: Any) -> dict[str, Any]:
    """The prompts a run used (``config.prompts()``) and ``version``: a short hash of them."""
    used = config.prompts()
    return {**used, "version": stable_hash(used)[:12]}


def status_summary(dataset: Dataset, status_column: str) -> dict[str, int]:
    """Rows per status reason (:func:`hfgcot.status.summary` of the column), e.g.
    ``{"ok": 7, "truncated_image": 1}``."""
    return summary(dataset[status_column])


def log_summary(dataset: Dataset, status_column: str, what: str) -> dict[str, int]:
    summary = status_summary(dataset, status_column)
    ok = summary.get(OK, 0)
    logger.info("%s: %d/%d rows ok; %s", what, ok, len(dataset), summary)
    return summary
