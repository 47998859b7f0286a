"""Every model pipeline on a Ray cluster (``pip install 'hfgcot[ray]'``): :func:`add_gcot_ray`,
:func:`add_dense_captions_ray`, :func:`add_region_captions_ray` and
:func:`add_grounding_predictions_ray`.

Each is its pipeline's entry point (:func:`hfgcot.add_gcot`...) with
``run=``:class:`~hfgcot.run.options.RayOptions` made from its Ray keyword arguments: the same
stages, checks and provenance (:func:`hfgcot.pipelines.runner.run_model_pipeline`), run by the
Ray executor (:func:`hfgcot.run.ray.run_pipeline_on_ray`), so the output is the local run's.
Documented as :mod:`hfgcot.ray`, which re-exports them with the executor's functions.

    >>> from hfgcot.ray import add_dense_captions_ray
    >>> ds = add_dense_captions_ray(ds, "Qwen/Qwen2.5-VL-3B-Instruct", output_dir="s3://b/dense",
    ...                             num_actors=8, num_gpus_per_actor=1)  # doctest: +SKIP
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Callable
from typing import Any

from datasets import Dataset

from hfgcot.model.spec import DEFAULT_MODEL
from hfgcot.pipelines.config import PipelineConfig
from hfgcot.pipelines.dense_captions import add_dense_captions
from hfgcot.pipelines.gcot import add_gcot
from hfgcot.pipelines.grounding_predictions import add_grounding_predictions
from hfgcot.pipelines.region_captions import add_region_captions
from hfgcot.run.options import RayOptions

__all__ = [
    "add_dense_captions_ray",
    "add_gcot_ray",
    "add_grounding_predictions_ray",
    "add_region_captions_ray",
    "on_ray",
]

RAY_DOC = """:func:`{local}` on a Ray cluster: the same stages, the same output, parquet in
``output_dir``.

The dataset goes to a pool of ``num_actors`` Ray actors (each loads the model once and reserves
``num_gpus_per_actor`` GPUs); the results are written as parquet to ``output_dir`` and loaded
back as a ``datasets.Dataset`` with the local run's columns and features and the input's row
order (the input's image feature restored).
{notes}
Args:
    dataset: as for :func:`{local}`.
    model: Hub id or a folder every Ray node can read, a ``ModelSpec``, an ``EndpointSpec``
        (the actors are then clients and need no GPU) or a loaded VLM (each actor loads its
        own copy from its spec).
    output_dir: where the parquet files go; on a cluster a path every node can reach
        (``s3://...``, ``gs://...`` or a shared filesystem). Rows there carry
        ``__hfgcot_row__`` (the input position) and are in no particular order.
    num_actors: actors in the pool; on a GPU cluster the number of GPUs to use.
    num_gpus_per_actor: 1 on GPUs (0.5 puts two actors on a GPU); 0 for CPU.
    num_cpus_per_actor: CPUs each actor reserves (Ray's default, 1, when None).
    num_blocks: blocks the input is cut into (default: about 4 per actor).
    overwrite: replace parquet files already in ``output_dir``.
    storage_options: fsspec options for a remote ``output_dir`` (listing and loading back).
    config: the config of :func:`{local}`; ``options`` naming its fields are applied on top.
    options: as for :func:`{local}`: config fields and model loading options (``revision``,
        ``dtype``, ``max_pixels``...). ``batch_size`` is both the Ray batch and the generate
        batch. The local run options (``num_proc``, ``checkpoint_dir``, ``shard_size``,
        ``sort_window``) are refused: Ray schedules the work.

Example:
    >>> import ray                                                         # doctest: +SKIP
    >>> ray.init(address="auto")                                           # doctest: +SKIP
    >>> ds = {name}(ds, "Qwen/Qwen2.5-VL-3B-Instruct", output_dir="s3://b/run-1",
    ...     num_actors=8, num_gpus_per_actor=1)                             # doctest: +SKIP
"""


def on_ray(entry: Callable[..., Any], notes: str = "") -> Callable[..., Any]:
    """The Ray entry point ``<entry>_ray`` of a model pipeline's entry point ``entry`` (one that
    takes ``config`` and ``run=``): ``entry`` with ``run=RayOptions(...)`` made from the Ray
    arguments. ``notes``: what its docstring says of this pipeline on Ray."""

    def run_on_ray(
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
        config: PipelineConfig | None = None,
        **options: Any,
    ) -> Dataset:
        ray = RayOptions(
            output_dir,
            num_actors=num_actors,
            num_gpus_per_actor=num_gpus_per_actor,
            num_cpus_per_actor=num_cpus_per_actor,
            num_blocks=num_blocks,
            overwrite=overwrite,
            storage_options=storage_options,
        )
        return entry(dataset, model, config, run=ray, **options)

    name = f"{entry.__name__}_ray"
    run_on_ray.__name__ = run_on_ray.__qualname__ = name
    text = RAY_DOC.format(local=f"hfgcot.{entry.__name__}", notes=notes, name=name)
    run_on_ray.__doc__ = textwrap.indent(text, "    ").lstrip()
    return run_on_ray


add_gcot_ray = on_ray(add_gcot)
add_dense_captions_ray = on_ray(
    add_dense_captions,
    notes="""
A served model with ``checker="contrastive"`` must give prompt log-probs: that is asked of the
server before any row is sent, as on one machine.
""",
)
add_region_captions_ray = on_ray(
    add_region_captions,
    notes="""
The marked images (``image_with_bbox``) travel in the parquet files as their PNG or JPEG bytes.
""",
)
add_grounding_predictions_ray = on_ray(
    add_grounding_predictions,
    notes="""
A ``DatasetDict`` runs split by split, each split's parquet in ``output_dir/<split>``; a
``DatasetDict`` comes back.
""",
)
