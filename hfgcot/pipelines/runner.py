"""What every model pipeline does around its stages, in one function: :func:`run_model_pipeline`.

Resolve the model, build the stages from the config, check the input columns, run the stages
on this machine (:func:`hfgcot.run.local.run_pipeline`, with :class:`~hfgcot.run.options.RunOptions`)
or on a Ray cluster (:func:`hfgcot.run.ray.run_pipeline_on_ray`, with
:class:`~hfgcot.run.options.RayOptions`), log the status summary and record the provenance.
Every model pipeline's entry point ends with one call to it, so each runs on Ray the same way
(:mod:`hfgcot.pipelines.on_ray`).

    >>> ds = run_model_pipeline("gcot", ds, "Qwen/Qwen2.5-VL-3B-Instruct", config, gcot_stages,
    ...                         status_column="gcot_status", load_kwargs={}, run=RunOptions())  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable, Sequence
from typing import Any

from datasets import Dataset

from hfgcot.model.endpoint import EndpointSpec
from hfgcot.model.spec import ModelSpec
from hfgcot.model.vlm import VLM
from hfgcot.pipelines.base import Stage
from hfgcot.pipelines.config import config_for_model, resolve_model
from hfgcot.pipelines.url_images import read_urls_first
from hfgcot.publishing.provenance import record_provenance
from hfgcot.run.local import (
    check_columns,
    check_overwrite,
    log_summary,
    prompt_record,
    run_pipeline,
)
from hfgcot.run.options import RayOptions, RunOptions
from hfgcot.run.ray import run_pipeline_on_ray

logger = logging.getLogger(__name__)

__all__ = ["execute", "map_batch_size", "ray_model_spec", "run_model_pipeline"]


def map_batch_size(batch_size: int, spec: Any) -> int:
    """Rows per map batch for a model ``spec``: ``batch_size``, and for a served model at least
    its ``max_concurrency``.

    Each map batch waits for its slowest request before the next one starts, so a map batch of
    fewer rows than ``max_concurrency`` would cap the requests in flight at ``batch_size``.

    >>> map_batch_size(8, EndpointSpec("http://h/v1", "m", max_concurrency=32))
    32
    >>> map_batch_size(8, ModelSpec("org/m"))
    8
    """
    if isinstance(spec, EndpointSpec):
        return max(batch_size, spec.max_concurrency)
    return batch_size


def ray_model_spec(model: Any, **load_kwargs: Any) -> ModelSpec:
    """A spec every Ray actor can load: a Hub id, a folder (made absolute: actors do not share
    the driver's working directory), a ``ModelSpec``, an ``EndpointSpec`` or a loaded VLM's spec
    (each actor loads its own copy); loading options apply on top, as for a local run.

    >>> ray_model_spec("org/m", dtype="bfloat16").dtype
    'bfloat16'
    """
    if isinstance(model, VLM):
        logger.info("each Ray actor loads its own copy of %s from its spec", model.spec.model)
        model = model.spec
    elif not isinstance(model, ModelSpec | EndpointSpec | str | os.PathLike):
        raise TypeError(
            "Ray actors load their own model: pass a Hub id, a folder every node can read, a "
            f"ModelSpec or a loaded hfgcot VLM (its spec is used), got {type(model).__name__}"
        )
    spec = resolve_model(model, load_kwargs)
    if isinstance(spec, ModelSpec) and os.path.isdir(spec.model):
        spec = dataclasses.replace(spec, model=os.path.abspath(spec.model))
    return spec


def execute(
    dataset: Dataset,
    stages: Sequence[Stage],
    *,
    image_column: str,
    batch_size: int,
    run: RunOptions | RayOptions,
) -> Dataset:
    """``stages`` over ``dataset`` with the executor ``run`` names: this machine or Ray."""
    if isinstance(run, RayOptions):
        options = {f.name: getattr(run, f.name) for f in dataclasses.fields(run)}
        return run_pipeline_on_ray(
            dataset, stages, image_column=image_column, batch_size=batch_size, **options
        )
    return run_pipeline(dataset, stages, image_column=image_column, batch_size=batch_size, run=run)


def run_model_pipeline(
    name: str,
    dataset: Dataset,
    model: Any,
    config: Any,
    build_stages: Callable[[Any, Any], list[Stage]],
    *,
    load_kwargs: dict[str, Any],
    run: RunOptions | RayOptions,
    status_column: str | None = None,
    required_columns: Sequence[str] = (),
    boxes: str | None = None,
    summarize: Callable[[Dataset], dict[str, Any]] | None = None,
) -> Dataset:
    """What every model pipeline does around its stages.

    Resolve ``model`` (name, path, ``ModelSpec``, ``EndpointSpec`` or loaded VLM; on Ray
    :func:`ray_model_spec`) to a spec and fill the family-default prompts of ``config`` for its
    family (a model of another family is refused here), build the stages from ``config``, check
    the input columns (present; not overwritten unless ``config.overwrite_columns``), run them
    (:func:`execute` with the config's image column and :func:`map_batch_size`), log the status summary
    (``status_column``: default, the last stage's) and return the result with its provenance
    record (the prompts the run used and the run options or Ray executor included).
    """
    check_columns(dataset, required_columns)
    on_ray = isinstance(run, RayOptions)
    spec = ray_model_spec(model, **load_kwargs) if on_ray else resolve_model(model, load_kwargs)
    config = config_for_model(config, spec)
    stages = build_stages(config, spec)
    check_overwrite(dataset, stages, name, config.overwrite_columns)
    stages = read_urls_first(dataset, stages, config)
    ds = execute(
        dataset,
        stages,
        image_column=config.image_column,
        batch_size=map_batch_size(config.batch_size, spec),
        run=run,
    )
    status_column = status_column or stages[-1].status_column
    summary = summarize(ds) if summarize is not None else log_summary(ds, status_column, name)
    return record_provenance(
        ds,
        name,
        config=config,
        spec=spec,
        stages=stages,
        status_column=status_column,
        boxes=boxes,
        extra={
            "summary": summary,
            ("executor" if on_ray else "run"): run.record(),
            "prompts": prompt_record(config),
        },
    )
