"""What every model pipeline does around its stages, in one function: :func:`run_model_pipeline`.

Resolve the model, build the stages from the config, check the input columns, run the stages
with the local executor (:func:`hfgcot.run.local.run_pipeline`), log the status summary and
record the provenance. GCoT, dense captions and region captions end with one call to it.

    >>> ds = run_model_pipeline("gcot", ds, "Qwen/Qwen2.5-VL-3B-Instruct", config, gcot_stages,
    ...                         status_column="gcot_status", load_kwargs={}, run=RunOptions())  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from datasets import Dataset

from hfgcot.pipelines.base import Stage
from hfgcot.pipelines.config import resolve_model_config
from hfgcot.publishing.provenance import record_provenance
from hfgcot.run.local import (
    check_columns,
    check_overwrite,
    log_summary,
    prompt_record,
    run_pipeline,
)
from hfgcot.run.options import RunOptions

__all__ = ["run_model_pipeline"]


def run_model_pipeline(
    name: str,
    dataset: Dataset,
    model: Any,
    config: Any,
    build_stages: Callable[[Any, Any], list[Stage]],
    *,
    status_column: str,
    load_kwargs: dict[str, Any],
    run: RunOptions,
    required_columns: Sequence[str] = (),
    boxes: str | None = None,
    summarize: Callable[[Dataset], dict[str, Any]] | None = None,
) -> Dataset:
    """What every model pipeline does around its stages.

    Resolve ``model`` (name, path, ``ModelSpec`` or loaded VLM) to a spec and fill the
    family-default prompts of ``config`` for its family (a model of another family is refused
    here), build the stages from ``config``, check the input columns (present; not overwritten
    unless ``config.overwrite_columns``), run them (:func:`run_pipeline` with the config's image
    column and batch size and the ``run`` options), log the status summary and return the
    result with its provenance record (the prompts the run used included).
    """
    check_columns(dataset, required_columns)
    spec, config = resolve_model_config(model, load_kwargs, config)
    stages = build_stages(config, spec)
    check_overwrite(dataset, stages, name, config.overwrite_columns)
    ds = run_pipeline(
        dataset,
        stages,
        image_column=config.image_column,
        batch_size=config.batch_size,
        run=run,
    )
    summary = summarize(ds) if summarize is not None else log_summary(ds, status_column, name)
    return record_provenance(
        ds,
        name,
        config=config,
        spec=spec,
        stages=stages,
        status_column=status_column,
        boxes=boxes,
        extra={"summary": summary, "run": run.record(), "prompts": prompt_record(config)},
    )
