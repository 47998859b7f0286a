"""Many machines: run hfgcot stages over a ``ray.data.Dataset`` (``pip install 'hfgcot[ray]'``).

The same stage objects as the local path (:mod:`hfgcot.run.local`), no fork of the logic: each
Ray actor of a fixed-size pool holds the (small, picklable) stages, prepares them once (a model
stage loads its model from its :class:`~hfgcot.model.spec.ModelSpec`), and runs
``stage(batch, rank=None)`` on each Arrow batch. The GPU a Ray actor gets is its ``cuda:0``.
Like every executor, this module knows no pipeline; the pipelines run on it through
:func:`hfgcot.pipelines.runner.run_model_pipeline` with ``run=RayOptions(...)``
(:func:`hfgcot.ray.add_gcot_ray` and the other Ray entry points).

    >>> import ray                                                            # doctest: +SKIP
    >>> ray.init(address="auto")                                              # doctest: +SKIP
    >>> out = run_pipeline_on_ray(ds, stages, output_dir="s3://bucket/out",
    ...                           num_actors=8, num_gpus_per_actor=1)        # doctest: +SKIP

Functions:

- :func:`run_stages_on_ray` - any stages over a ``datasets.Dataset`` or ``ray.data.Dataset``; returns
  the (lazy) Ray dataset, or writes parquet to ``output_dir``.
- :func:`run_pipeline_on_ray` - stages over a ``datasets.Dataset``, parquet in ``output_dir``,
  and the result back as a ``datasets.Dataset`` with the input's rows in the input's order.
"""

from __future__ import annotations

import inspect
import logging
import math
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from datasets import Dataset, Features, load_dataset

from hfgcot.run.local import restore_feature, undecoded
from hfgcot.run.options import is_local_path
from hfgcot.run.stage import StageLike

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa
    import ray.data

logger = logging.getLogger(__name__)

ROW_INDEX = "__hfgcot_row__"
"""Hidden column :func:`run_pipeline_on_ray` adds to restore the input row order (Ray may reorder rows)."""

INSTALL_HINT = "hfgcot.run.ray needs Ray Data: pip install 'hfgcot[ray]'"


def _require_ray() -> Any:
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(INSTALL_HINT) from err
    return ray


def output_features(features: Features, stages: Sequence[StageLike]) -> Features:
    """The features after ``stages``: input columns first, each stage's columns merged in order.

    The same rule as ``Dataset.map`` in :func:`hfgcot.run.local.apply_stage`: a column a stage rewrites
    keeps its position, new columns are appended.
    """
    for stage in stages:
        features = Features({**features, **stage.features()})
    return features


def apply_stages_to_table(
    table: pa.Table, stages: Sequence[StageLike], schema: pa.Schema | None = None
) -> pa.Table:
    """Run ``stages`` one after another on an Arrow batch; input columns pass through untouched.

    The batch goes to the stages as the dict of lists ``Dataset.map`` would give them
    (``table.to_pydict()``: struct columns such as image storage ``{bytes, path}`` become dicts); the
    columns they write come back typed by each stage's :meth:`~hfgcot.pipelines.base.Stage.features`.
    With ``schema`` (the full output schema, with ``datasets`` metadata) the result is cast to it.
    """
    import pyarrow as pa

    n = table.num_rows
    batch = table.to_pydict()
    written: dict[str, pa.DataType] = {}
    for stage in stages:
        out = stage(batch, rank=None)
        for name, values in out.items():
            if len(values) != n:
                raise RuntimeError(
                    f"stage {stage.name} wrote {len(values)} values of {name!r} for {n} rows"
                )
        batch.update(out)
        types = stage.features().arrow_schema
        written.update({name: types.field(name).type for name in out})
    for name, type_ in written.items():
        array = pa.array(batch[name], type=type_)
        if name in table.column_names:
            table = table.set_column(table.column_names.index(name), name, array)
        else:
            table = table.append_column(name, array)
    if schema is not None:
        table = table.cast(schema)
    return table


class StageActor:
    """A Ray Data actor: stages built once, the model loaded once, then one call per batch.

    Constructed with a :class:`~hfgcot.pipelines.base.Stage` or a sequence of them (frozen dataclasses
    that hold only a :class:`~hfgcot.model.spec.ModelSpec`, so they pickle small); the model comes from
    the per-process cache (:func:`hfgcot.model.spec.get_vlm`) and is loaded in the constructor, so a
    broken model fails at actor start, not on the first batch. Use with
    ``map_batches(StageActor, batch_format="pyarrow", fn_constructor_kwargs={"stages": ...})``.
    """

    def __init__(
        self, stages: StageLike | Sequence[StageLike], schema: pa.Schema | None = None
    ) -> None:
        self.stages: tuple[StageLike, ...] = (
            (stages,) if isinstance(stages, StageLike) else tuple(stages)
        )
        self.schema = schema
        for stage in self.stages:
            stage.prepare(None)

    def __call__(self, table: pa.Table) -> pa.Table:
        return apply_stages_to_table(table, self.stages, self.schema)


def _default_num_blocks(num_rows: int, batch_size: int, num_actors: int) -> int:
    """Enough blocks to keep every actor busy (4 each), at most one per batch, <= ~1000 rows each."""
    per_batch = math.ceil(num_rows / batch_size)
    return max(1, min(per_batch, max(4 * num_actors, math.ceil(num_rows / 1000))))


def to_ray(dataset: Dataset, num_blocks: int | None = None) -> ray.data.Dataset:
    """A ``datasets.Dataset`` as a ``ray.data.Dataset`` of Arrow blocks (same table, same types).

    This is what ``ray.data.from_huggingface`` does for an in-memory ``datasets.Dataset``, without
    its first step: it reloads ``load_dataset(dataset.info.dataset_name, ...)`` to compare
    fingerprints, which for a dataset built by a local builder (``imagefolder``, ``parquet``) would
    scan the working directory, and never matches once hfgcot has added a column.
    """
    ray = _require_ray()
    table = dataset.with_format("arrow")[:]  # applies any indices mapping (select, shuffle)
    return ray.data.from_arrow(table, override_num_blocks=num_blocks)


def _fs(path: str, storage_options: dict[str, Any] | None = None) -> tuple[Any, str]:
    import fsspec

    return fsspec.core.url_to_fs(path, **(storage_options or {}))


def normalize_dir(output_dir: str | os.PathLike[str]) -> str:
    """Local folders absolute (Ray workers do not share the driver's working directory)."""
    output_dir = os.fspath(output_dir)
    if is_local_path(output_dir):
        return os.path.abspath(output_dir.removeprefix("file://"))
    return output_dir


def parquet_files(output_dir: str, storage_options: dict[str, Any] | None = None) -> list[str]:
    """The parquet files under ``output_dir`` (local folder or fsspec URL such as ``s3://``)."""
    fs, root = _fs(output_dir, storage_options)
    files = sorted(fs.glob(root.rstrip("/") + "/*.parquet"))
    return files if is_local_path(output_dir) else [fs.unstrip_protocol(f) for f in files]


def _prepare_output_dir(
    output_dir: str, overwrite: bool, storage_options: dict[str, Any] | None
) -> None:
    existing = parquet_files(output_dir, storage_options)
    if existing and not overwrite:
        raise FileExistsError(
            f"{output_dir} already holds {len(existing)} parquet file(s); pass overwrite=True to "
            "replace them or choose another output_dir"
        )
    if existing:
        fs, _ = _fs(output_dir, storage_options)
        logger.info("removing %d old parquet file(s) from %s", len(existing), output_dir)
        fs.rm(existing)


def run_stages_on_ray(
    dataset: Dataset | ray.data.Dataset,
    stages: StageLike | Sequence[StageLike],
    *,
    num_actors: int = 1,
    num_gpus_per_actor: float = 0,
    num_cpus_per_actor: float | None = None,
    batch_size: int = 8,
    num_blocks: int | None = None,
    output_dir: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
    storage_options: dict[str, Any] | None = None,
) -> ray.data.Dataset | None:
    """Run ``stages`` over a dataset with a fixed pool of Ray actors, one model per actor.

    All stages run one after another on each batch inside the same actor (the model loads once per
    actor, intermediate columns never leave it). Rows are not dropped, but Ray may return them in
    another order: keep an index column if order matters (:func:`run_pipeline_on_ray` does).

    Args:
        dataset: a ``datasets.Dataset`` (turned into Arrow blocks, see :func:`to_ray`) or a
            ``ray.data.Dataset`` (e.g. from ``ray.data.read_parquet``) with Arrow-typed columns.
            Image columns must be raw storage (``{bytes, path}`` structs or paths):
            use :func:`hfgcot.run.local.undecoded` on a ``datasets.Dataset`` first.
        stages: stages as built for the local path (e.g. :func:`hfgcot.pipelines.gcot.gcot_stages`).
        num_actors: size of the actor pool (on a GPU cluster: the number of GPUs to use).
        num_gpus_per_actor: GPUs reserved by each actor (1 on a GPU cluster; 0 on CPU).
        num_cpus_per_actor: CPUs reserved by each actor (Ray's default, 1, when None).
        batch_size: rows per Ray batch (one ``stage(batch)`` call per stage).
        num_blocks: blocks a ``datasets.Dataset`` is cut into (default: ~4 per actor).
        output_dir: when given, write parquet there (a folder every Ray node can reach: shared
            filesystem or ``s3://``/``gs://``) and return None.
        overwrite: replace parquet files already in ``output_dir`` (else it is an error).

    Returns:
        The lazy ``ray.data.Dataset`` with the stages' columns, or None when ``output_dir`` is given.

    Example:
        >>> from hfgcot.pipelines.gcot import GCoTConfig, gcot_stages, model_spec
        >>> stages = gcot_stages(GCoTConfig(), model_spec("Qwen/Qwen2.5-VL-3B-Instruct"))
        >>> run_stages_on_ray(undecoded(ds, "image")[0], stages, num_actors=4,
        ...                   num_gpus_per_actor=1, output_dir="s3://bucket/out")  # doctest: +SKIP
    """
    ray = _require_ray()
    stages = (stages,) if isinstance(stages, StageLike) else tuple(stages)
    if num_actors < 1:
        raise ValueError(f"num_actors must be >= 1, got {num_actors}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if output_dir is not None:  # fail before any work if old results are in the way
        output_dir = normalize_dir(output_dir)
        _prepare_output_dir(output_dir, overwrite, storage_options)
    schema = None
    if isinstance(dataset, Dataset):
        schema = output_features(dataset.features, stages).arrow_schema
        blocks = num_blocks or _default_num_blocks(len(dataset), batch_size, num_actors)
        dataset = to_ray(dataset, blocks)
    kwargs: dict[str, Any] = {
        "batch_format": "pyarrow",
        "batch_size": batch_size,
        "compute": ray.data.ActorPoolStrategy(size=num_actors),
        "fn_constructor_kwargs": {"stages": stages, "schema": schema},
    }
    if num_gpus_per_actor:
        kwargs["num_gpus"] = num_gpus_per_actor
    if num_cpus_per_actor is not None:
        kwargs["num_cpus"] = num_cpus_per_actor
    if "udf_modifying_row_count" in inspect.signature(dataset.map_batches).parameters:
        kwargs["udf_modifying_row_count"] = False  # Ray >= 2.5x: rows in == rows out
    out = dataset.map_batches(StageActor, **kwargs)
    if output_dir is None:
        return out
    logger.info("running %d stage(s) on %d Ray actor(s) -> %s", len(stages), num_actors, output_dir)
    out.write_parquet(output_dir)
    return None


def restore_order(dataset: Dataset, num_rows: int) -> Dataset:
    """Rows sorted back by :data:`ROW_INDEX` (then dropped); every input row exactly once."""
    import numpy as np

    index = np.asarray(dataset.with_format("numpy")[ROW_INDEX], dtype=np.int64)
    if len(index) != num_rows or not np.array_equal(np.sort(index), np.arange(num_rows)):
        raise RuntimeError(
            f"Ray output does not hold every input row exactly once: {num_rows} rows in, "
            f"{len(index)} out ({len(np.unique(index))} distinct)"
        )
    if not np.all(index[:-1] < index[1:]):
        dataset = dataset.select(np.argsort(index, kind="stable"))
    return dataset.remove_columns(ROW_INDEX)


def run_pipeline_on_ray(
    dataset: Dataset,
    stages: Sequence[StageLike],
    *,
    output_dir: str | os.PathLike[str],
    image_column: str = "image",
    batch_size: int = 8,
    storage_options: dict[str, Any] | None = None,
    **ray_options: Any,
) -> Dataset:
    """The Ray counterpart of :func:`hfgcot.run.local.run_pipeline`: rows in, the same rows out.

    The image column is sent undecoded, every row carries its input position
    (:data:`ROW_INDEX`), :func:`run_stages_on_ray` writes parquet to ``output_dir``, and the
    result is loaded back as a ``datasets.Dataset`` with the stages' features, in the input
    order, the image feature and the input's description (its provenance records) restored.
    ``ray_options`` are :func:`run_stages_on_ray`'s (``num_actors``, ``num_gpus_per_actor``,
    ``num_cpus_per_actor``, ``num_blocks``, ``overwrite``).
    """
    if ROW_INDEX in dataset.column_names:
        raise ValueError(f"the input already has a column named {ROW_INDEX!r}")
    ds, image_feature = undecoded(dataset, image_column)
    num_rows = len(ds)
    ds = ds.add_column(ROW_INDEX, list(range(num_rows)))
    features = output_features(ds.features, stages)
    if num_rows == 0:
        out = Dataset.from_dict({name: [] for name in features}, features=features)
    else:
        run_stages_on_ray(
            ds,
            stages,
            batch_size=batch_size,
            output_dir=output_dir,
            storage_options=storage_options,
            **ray_options,
        )
        out = load_dataset(
            "parquet",
            data_files=parquet_files(normalize_dir(output_dir), storage_options),
            split="train",
            features=features,
            storage_options=storage_options,
        )
    out = restore_order(out, num_rows)
    out = restore_feature(out, image_column, image_feature)
    out.info.description = dataset.info.description  # earlier provenance records, as map keeps
    return out


__all__ = [
    "ROW_INDEX",
    "StageActor",
    "apply_stages_to_table",
    "normalize_dir",
    "output_features",
    "parquet_files",
    "restore_order",
    "run_pipeline_on_ray",
    "run_stages_on_ray",
    "to_ray",
]
