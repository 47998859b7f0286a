"""GCoT on a Ray cluster: :func:`add_gcot_ray` (``pip install 'hfgcot[ray]'``).

The GCoT stages of :mod:`hfgcot.pipelines.gcot`, run by the Ray executor
(:func:`hfgcot.run.ray.run_pipeline_on_ray`): the same output as :func:`hfgcot.add_gcot`.
Documented as :mod:`hfgcot.ray`, which re-exports it with the executor's functions.

    >>> from hfgcot.ray import add_gcot_ray
    >>> ds = add_gcot_ray(ds, "Qwen/Qwen2.5-VL-3B-Instruct", output_dir="s3://bucket/gcot",
    ...                   num_actors=8, num_gpus_per_actor=1, batch_size=16)  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
from typing import Any

from datasets import Dataset

from hfgcot.model.endpoint import EndpointSpec
from hfgcot.model.spec import DEFAULT_MODEL, ModelSpec
from hfgcot.model.vlm import VLM
from hfgcot.pipelines.config import config_for_model, resolve_model, split_options
from hfgcot.pipelines.gcot import STATUS, GCoTConfig, boxes_note, gcot_stages
from hfgcot.pipelines.url_images import read_urls_first
from hfgcot.publishing.provenance import record_provenance
from hfgcot.run.local import log_summary, prompt_record
from hfgcot.run.options import RunOptions
from hfgcot.run.ray import normalize_dir, run_pipeline_on_ray

logger = logging.getLogger(__name__)

__all__ = ["add_gcot_ray", "ray_model_spec"]


def ray_model_spec(model: Any, **load_kwargs: Any) -> ModelSpec:
    """A spec every Ray actor can load: a Hub id, a path (made absolute), a spec or a VLM's spec."""
    if isinstance(model, EndpointSpec):  # a client: actors need no GPU
        return model.with_load_options(**load_kwargs)
    if isinstance(model, ModelSpec):
        return resolve_model(model, load_kwargs)
    if isinstance(model, VLM):
        logger.info("each Ray actor loads its own copy of %s from its spec", model.spec.model)
        return model.spec
    if isinstance(model, str | os.PathLike):
        path = os.fspath(model)
        if os.path.isdir(path):
            path = os.path.abspath(path)
        return ModelSpec(model=path, **load_kwargs)
    raise TypeError(
        "Ray actors load their own model: pass a Hub id, a folder every node can read, a ModelSpec "
        f"or a loaded hfgcot VLM (its spec is used), got {type(model).__name__}"
    )


def add_gcot_ray(
    dataset: Dataset,
    model: Any = DEFAULT_MODEL,
    *,
    output_dir: str | os.PathLike[str],
    num_actors: int = 1,
    num_gpus_per_actor: float = 0,
    num_cpus_per_actor: float | None = None,
    num_blocks: int | None = None,
    overwrite: bool = False,
    storage_options: dict[str, Any] | None = None,
    config: GCoTConfig | None = None,
    **options: Any,
) -> Dataset:
    """:func:`hfgcot.add_gcot` on a Ray cluster: same stages, same output, parquet in ``output_dir``.

    The dataset goes to a pool of ``num_actors`` Ray actors (each loads the model once and reserves
    ``num_gpus_per_actor`` GPUs), the results are written as parquet to ``output_dir`` and loaded
    back as a ``datasets.Dataset`` with the same features and the same row order as the input
    (``add_gcot``'s output columns; images as the input's ``Image`` feature).

    Args:
        dataset: rows with an image (``Image()`` feature or paths), a question and an answer.
        model: Hub id or a folder every Ray node can read (or a ``ModelSpec``/loaded VLM, whose
            spec each actor loads).
        output_dir: where the parquet files go; on a cluster a path every node can reach
            (``s3://...``, ``gs://...`` or a shared filesystem). Rows there carry ``__hfgcot_row__``
            (the input position) and are in no particular order.
        num_actors: actors in the pool; on a GPU cluster the number of GPUs to use.
        num_gpus_per_actor: 1 on GPUs (0.5 puts two actors on a GPU); 0 for CPU.
        overwrite: replace parquet files already in ``output_dir``.
        storage_options: fsspec options for a remote ``output_dir`` (listing and loading back).
        config: a :class:`~hfgcot.pipelines.gcot.GCoTConfig`.
        options: as for :func:`hfgcot.add_gcot`: GCoT config fields (``batch_size``,
            ``max_new_tokens``, ``box_space``, prompts, column names...; applied on top of
            ``config``) and model loading options (``revision``, ``dtype``, ``device``,
            ``attn_implementation``, ``min_pixels``, ``max_pixels``, ``trust_remote_code``).
            ``batch_size`` is both the Ray batch and the generate batch. The local run options
            (``num_proc``, ``checkpoint_dir``, ...) do not apply: Ray schedules the work.

    Example:
        >>> import ray                                                    # doctest: +SKIP
        >>> ray.init(address="auto")                                      # doctest: +SKIP
        >>> ds = add_gcot_ray(ds, "Qwen/Qwen2.5-VL-3B-Instruct", output_dir="s3://b/gcot",
        ...                   num_actors=8, num_gpus_per_actor=1)          # doctest: +SKIP
    """
    config, run, load = split_options(GCoTConfig, config, options)
    if run != RunOptions():
        raise TypeError(
            "num_proc, checkpoint_dir, shard_size and sort_window are options of local runs; "
            "on Ray, num_actors and num_gpus_per_actor decide the work"
        )
    for column in (config.question_column, config.answer_column):
        if column not in dataset.column_names:
            raise KeyError(f"column {column!r} not in dataset (columns: {dataset.column_names})")
    spec = ray_model_spec(model, **load)
    config = config_for_model(config, spec)  # refuses other models; fills the family prompts
    stages = read_urls_first(dataset, gcot_stages(config, spec), config)
    out = run_pipeline_on_ray(
        dataset,
        stages,
        output_dir=output_dir,
        image_column=config.image_column,
        batch_size=config.batch_size,
        num_actors=num_actors,
        num_gpus_per_actor=num_gpus_per_actor,
        num_cpus_per_actor=num_cpus_per_actor,
        num_blocks=num_blocks,
        overwrite=overwrite,
        storage_options=storage_options,
    )
    log_summary(out, STATUS, "gcot (ray)")
    return record_provenance(
        out,
        "gcot",
        config=config,
        spec=spec,
        stages=stages,
        status_column=STATUS,
        boxes=boxes_note(config),
        extra={
            "prompts": prompt_record(config),
            "executor": {
                "name": "ray",
                "num_actors": num_actors,
                "num_gpus_per_actor": num_gpus_per_actor,
                "output_dir": normalize_dir(output_dir),
            },
        },
    )
