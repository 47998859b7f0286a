"""Provenance that travels with a dataset: which pipeline, model, prompts and settings made it.

Every pipeline ends by recording one JSON-able dict (a *record*) on the dataset it returns. Records
live in ``dataset.info.description`` inside a marked block, because that field survives ``map``,
``select``, ``filter``, ``cast_column``, ``save_to_disk``/``load_from_disk`` and
``concatenate_datasets`` (checked with datasets 5.2). Any text the description already had is kept.
Records accumulate: a dataset that went through two pipelines carries two records, oldest first.
:func:`hfgcot.publish` writes them into the dataset card.

    >>> from datasets import Dataset
    >>> ds = attach_provenance(Dataset.from_dict({"x": [1]}), {"pipeline": "demo"})
    >>> [r["pipeline"] for r in get_provenance(ds)]
    ['demo']

For pipeline authors, one line at the end of the pipeline function::

    ds = record_provenance(ds, "gcot", config=config, spec=spec, stages=stages,
                           status_column="gcot_status", boxes=GCOT_BOXES)
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import os
import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from hfgcot.model.files import processor_limits, read_model_json

logger = logging.getLogger(__name__)

__all__ = [
    "FORMAT_VERSION",
    "attach_provenance",
    "get_provenance",
    "model_provenance",
    "pipeline_provenance",
    "record_provenance",
]

FORMAT_VERSION = 1
_OPEN, _CLOSE = "<hfgcot-provenance>", "</hfgcot-provenance>"
_BLOCK = re.compile(re.escape(_OPEN) + r"(.*?)" + re.escape(_CLOSE), re.DOTALL)


def _jsonable(value: Any) -> Any:
    """Dataclasses, mappings, tuples and paths as plain JSON data (unknown objects as ``str``)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _split_description(description: str) -> tuple[str, list[dict[str, Any]]]:
    records: list[dict[str, Any]] = []
    for block in _BLOCK.findall(description):
        try:
            data = json.loads(block)
        except json.JSONDecodeError:
            logger.warning("ignoring an unreadable hfgcot provenance block")
            continue
        for record in data.get("records", []) if isinstance(data, dict) else []:
            if record not in records:  # concatenate_datasets may repeat identical blocks
                records.append(record)
    return _BLOCK.sub("", description).strip(), records


def get_provenance(dataset: Any) -> list[dict[str, Any]]:
    """The provenance records of ``dataset`` (oldest first); ``[]`` when it has none.

    Example:
        >>> get_provenance(add_gcot(ds, model=MODEL))[-1]["model"]["model_id"]   # doctest: +SKIP
        'Qwen/Qwen2.5-VL-3B-Instruct'
    """
    info = getattr(dataset, "info", None)
    return _split_description(getattr(info, "description", None) or "")[1]


def attach_provenance(dataset: Any, record: Mapping[str, Any], *, replace: bool = False) -> Any:
    """A copy of ``dataset`` whose info carries ``record`` after its earlier records.

    The input dataset is not modified (its data is shared, not copied). ``replace=True`` drops the
    earlier records. ``record`` must be JSON-able (dataclasses are converted).
    """
    text, records = _split_description(getattr(dataset.info, "description", None) or "")
    records = [] if replace else records
    records.append(_jsonable(dict(record)))
    block = _OPEN + json.dumps({"format": FORMAT_VERSION, "records": records}) + _CLOSE
    info = dataset.info.copy()
    info.description = f"{text}\n\n{block}" if text else block
    out = copy.copy(dataset)  # a new Dataset object sharing the Arrow table
    out._info = info
    return out


# ------------------------------------------------------------------------------------------
# Building records
# ------------------------------------------------------------------------------------------


def _loaded_vlm(spec: Any) -> Any:
    """The VLM of ``spec`` if this process already loaded it (never loads a model)."""
    from hfgcot.model.spec import _CACHE

    for loaded in list(_CACHE.values()):
        if getattr(loaded, "spec", None) == spec:
            return loaded
    return None


def model_provenance(model: Any) -> dict[str, Any]:
    """Identity of a model for a card: id, resolved revision, family, dtype and resize limits.

    ``model`` is a loaded VLM, or a :class:`~hfgcot.model.spec.ModelSpec`. A spec whose model this process
    already loaded reports the loaded model's :meth:`~hfgcot.model.vlm.VLM.identity`; otherwise the facts
    are read from the model's config files (local folder or Hub cache) without loading weights, so
    this is safe after a ``num_proc`` run whose models lived in worker processes.
    """
    from hfgcot.model.endpoint import EndpointSpec, endpoint_identity
    from hfgcot.model.spec import ModelSpec, spec_fingerprint_data

    served = model if isinstance(model, EndpointSpec) else getattr(model, "spec", None)
    if isinstance(served, EndpointSpec):  # no URL, no key: see docs/serving.md
        return _jsonable(endpoint_identity(served))
    spec = model if isinstance(model, ModelSpec) else getattr(model, "spec", None)
    loaded = model if hasattr(model, "identity") else _loaded_vlm(spec)
    if loaded is not None:
        ident = dict(loaded.identity())
    elif spec is not None:
        from hfgcot.geometry.frames import family_for_model_type

        ident = {
            "model_id": spec.model,
            "revision": spec_fingerprint_data(spec)["resolved_revision"],
        }
        config = read_model_json(spec.model, "config.json", spec.revision, download=True) or {}
        try:
            ident["family"] = family_for_model_type(config.get("model_type", ""))
        except Exception:  # noqa: BLE001 - unknown family: recorded as such
            ident["family"] = config.get("model_type")
        ident["dtype"] = str(spec.dtype)
        lo, hi = processor_limits(spec.model, spec.revision, download=True)
        ident["min_pixels"] = spec.min_pixels if spec.min_pixels is not None else lo
        ident["max_pixels"] = spec.max_pixels if spec.max_pixels is not None else hi
    else:
        raise TypeError(f"expected a VLM or a ModelSpec, got {type(model).__name__}")
    if spec is not None:
        ident["requested_revision"] = spec.revision
        ident["attn_implementation"] = spec.attn_implementation
    return _jsonable(ident)


def now_utc() -> str:
    """The current time as an ISO 8601 UTC string, e.g. ``2026-11-21T10:00:00+00:00``."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")  # noqa: UP017 - py3.10


def pipeline_provenance(
    name: str,
    dataset: Any,
    *,
    config: Any = None,
    spec: Any = None,
    stages: Sequence[Any] = (),
    status_column: str | None = None,
    boxes: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The record of one pipeline run on ``dataset`` (its output).

    Args:
        name: the pipeline (``"gcot"``, ``"captions"``, ``"sft"``...).
        config: the pipeline's config dataclass (recorded as it is, and flat as ``run_config``:
            :func:`hfgcot.config_files.run_config`).
        spec: the :class:`~hfgcot.model.spec.ModelSpec` (or loaded VLM) the pipeline used, if any.
        stages: the stages run (their names and full configs are recorded).
        status_column: the pipeline's status column, summarised by reason.
        boxes: the box convention of the pipeline's output columns, in one or two sentences.
        extra: anything else to record (JSON-able).
    """
    import hfgcot
    from hfgcot import prompts

    record: dict[str, Any] = {
        "pipeline": name,
        "created_at": now_utc(),
        "hfgcot_version": hfgcot.__version__,
        "rows": len(dataset),
        "config": _jsonable(config) if config is not None else None,
        "stages": [{"name": s.name, "config": _jsonable(s)} for s in stages],
        "prompts": prompts.prompt_fingerprint_data(),
    }
    if spec is not None:
        record["model"] = model_provenance(spec)
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        from hfgcot.config_files import run_config

        record["run_config"] = run_config(name, config, spec)  # for `hfgcot config` and --config
    if status_column is not None and status_column in dataset.column_names:
        from hfgcot.run.local import status_summary

        record["status_column"] = status_column
        record["status"] = status_summary(dataset, status_column)
    if boxes:
        record["boxes"] = boxes
    if extra:
        record.update(_jsonable(dict(extra)))
    return record


def record_provenance(dataset: Any, name: str, **kwargs: Any) -> Any:
    """``attach_provenance(dataset, pipeline_provenance(name, dataset, **kwargs))``: the one call a
    pipeline makes on its result."""
    return attach_provenance(dataset, pipeline_provenance(name, dataset, **kwargs))
