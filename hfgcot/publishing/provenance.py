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

import hfgcot
from hfgcot import prompts, status
from hfgcot.config_files import run_config
from hfgcot.fingerprint import jsonable
from hfgcot.geometry.frames import family_for_model_type
from hfgcot.model.endpoint import EndpointSpec, endpoint_identity
from hfgcot.model.files import processor_limits, read_model_json
from hfgcot.model.spec import ModelSpec, loaded_vlm, looks_like_path, spec_fingerprint_data
from hfgcot.publishing.redact import MASK, known_tokens

logger = logging.getLogger(__name__)

__all__ = [
    "FORMAT_VERSION",
    "PROVENANCE_FILE",
    "attach_provenance",
    "dataset_records",
    "dump_records",
    "get_provenance",
    "load_records",
    "model_provenance",
    "pipeline_provenance",
    "public_model_name",
    "record_provenance",
    "run_model_options",
    "set_provenance",
]

FORMAT_VERSION = 1
PROVENANCE_FILE = "provenance/{config}.json"
"""Where a release keeps the records of its config (see docs/publishing.md)."""
_OPEN, _CLOSE = "<hfgcot-provenance>", "</hfgcot-provenance>"
_BLOCK = re.compile(re.escape(_OPEN) + r"(.*?)" + re.escape(_CLOSE), re.DOTALL)


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


def dataset_records(dataset: Any) -> list[dict[str, Any]]:
    """The records of a ``Dataset``, or of every split of a ``DatasetDict`` (each once, in order).

    >>> from datasets import Dataset, DatasetDict
    >>> ds = attach_provenance(Dataset.from_dict({"x": [1]}), {"pipeline": "demo"})
    >>> dataset_records(DatasetDict({"a": ds, "b": ds}))
    [{'pipeline': 'demo'}]
    """
    splits = dataset.values() if not hasattr(dataset, "info") else [dataset]
    records: list[dict[str, Any]] = []
    for split in splits:
        records += [r for r in get_provenance(split) if r not in records]
    return records


def dump_records(records: Sequence[Mapping[str, Any]]) -> str:
    """The text of a release's provenance file (:data:`PROVENANCE_FILE`).

    >>> load_records(dump_records([{"pipeline": "demo"}]))
    [{'pipeline': 'demo'}]
    """
    data = {"format": FORMAT_VERSION, "records": [jsonable(dict(r)) for r in records]}
    return json.dumps(data, indent=1, ensure_ascii=False) + "\n"


def load_records(text: str | bytes) -> list[dict[str, Any]]:
    """The records of a provenance file written by :func:`dump_records`; raises ``ValueError``
    for a file that is not one."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not an hfgcot provenance file: {exc.msg}") from None
    records = data.get("records") if isinstance(data, dict) else None
    if not isinstance(records, list):
        raise ValueError("not an hfgcot provenance file: no 'records' list")
    return records


def attach_provenance(dataset: Any, record: Mapping[str, Any], *, replace: bool = False) -> Any:
    """A copy of ``dataset`` whose info carries ``record`` after its earlier records.

    The input dataset is not modified (its data is shared, not copied). ``replace=True`` drops the
    earlier records. ``record`` must be JSON-able (dataclasses are converted).
    """
    records = [] if replace else get_provenance(dataset)
    return set_provenance(dataset, [*records, dict(record)])


def set_provenance(dataset: Any, records: Sequence[Mapping[str, Any]]) -> Any:
    """A copy of ``dataset`` (or of each split of a ``DatasetDict``) carrying exactly ``records``.

    >>> from datasets import Dataset
    >>> ds = set_provenance(Dataset.from_dict({"x": [1]}), [{"pipeline": "a"}, {"pipeline": "b"}])
    >>> [r["pipeline"] for r in get_provenance(ds)]
    ['a', 'b']
    """
    if not hasattr(dataset, "info"):  # a DatasetDict: every split
        return type(dataset)({k: set_provenance(v, records) for k, v in dataset.items()})
    text, _ = _split_description(getattr(dataset.info, "description", None) or "")
    data = [jsonable(dict(r)) for r in records]
    block = _OPEN + json.dumps({"format": FORMAT_VERSION, "records": data}) + _CLOSE
    info = dataset.info.copy()
    info.description = f"{text}\n\n{block}" if text else block
    out = copy.copy(dataset)  # a new Dataset object sharing the Arrow table
    out._info = info
    return out


# ------------------------------------------------------------------------------------------
# Building records
# ------------------------------------------------------------------------------------------


def model_provenance(model: Any) -> dict[str, Any]:
    """Identity of a model for a card: id, resolved revision, family, dtype and resize limits.

    ``model`` is a loaded VLM, or a :class:`~hfgcot.model.spec.ModelSpec`. A spec whose model this process
    already loaded reports the loaded model's :meth:`~hfgcot.model.vlm.VLM.identity`; otherwise the facts
    are read from the model's config files (local folder or Hub cache) without loading weights, so
    this is safe after a ``num_proc`` run whose models lived in worker processes.
    """
    served = model if isinstance(model, EndpointSpec) else getattr(model, "spec", None)
    if isinstance(served, EndpointSpec):  # no URL, no key: see docs/serving.md
        ident = endpoint_identity(served)
        return jsonable({**ident, "model_id": public_model_name(str(ident["model_id"]))})
    spec = model if isinstance(model, ModelSpec) else getattr(model, "spec", None)
    loaded = model if hasattr(model, "identity") else loaded_vlm(spec)
    if loaded is not None:
        ident = dict(loaded.identity())
    elif spec is not None:
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
    ident["model_id"] = public_model_name(str(ident.get("model_id")))
    return jsonable(ident)


def public_model_name(model: str) -> str:
    """How a model is named in provenance and cards: a Hub id as is, a local model folder (or a
    served model named by its path) by its folder name only - a local model's revision is then
    ``local:<digest>``, never the machine path.

    >>> public_model_name("Qwen/Qwen2.5-VL-3B-Instruct"), public_model_name("/srv/models/ckpt-9/")
    ('Qwen/Qwen2.5-VL-3B-Instruct', 'ckpt-9')
    """
    if not model or not (looks_like_path(model) or os.path.isdir(model)):
        return model
    path = os.path.realpath(model) if os.path.isdir(model) else model.rstrip("/\\")
    return os.path.basename(path) or "local-model"


def run_model_options(spec: Any) -> dict[str, Any]:
    """A model's options as a run config records them (:func:`hfgcot.config_files.run_config`):
    the spec's fields, the model by :func:`public_model_name`, the revision resolved
    (``local:<digest>`` for a folder); no device, no server URL.

    >>> run_model_options(ModelSpec("org/m", revision="v2", device="cuda:1"))["revision"]
    'v2'
    """
    spec = getattr(spec, "spec", spec)  # a loaded VLM: its spec
    skip = ("device", "base_url")
    out = {f.name: getattr(spec, f.name) for f in dataclasses.fields(spec) if f.name not in skip}
    if isinstance(spec, ModelSpec):
        out["revision"] = spec_fingerprint_data(spec)["resolved_revision"]
    out["model"] = public_model_name(spec.model)
    return out


def _private_values(objects: Sequence[Any]) -> dict[str, str]:
    """``{text: replacement}`` for what the specs in ``objects`` (or held by the stages in
    ``objects``) must not reveal: local model paths (as written, absolute, real) become the
    folder name, endpoint URLs ``<endpoint>``."""
    specs = list(objects)
    for o in objects:
        if dataclasses.is_dataclass(o) and not isinstance(o, type):
            specs += [getattr(o, f.name) for f in dataclasses.fields(o)]
    found: dict[str, str] = {}
    for spec in specs:
        if not isinstance(spec, ModelSpec | EndpointSpec):
            continue
        name = public_model_name(spec.model)
        if name != spec.model:
            real, absolute = os.path.realpath(spec.model), os.path.abspath(spec.model)
            forms = (spec.model, spec.model.rstrip("/\\"), absolute, real)
            found.update({form: name for form in forms if len(form) > 1})
        if isinstance(spec, EndpointSpec):
            found[spec.base_url] = "<endpoint>"
    return found


def _scrub(value: Any, replacements: Mapping[str, str]) -> Any:
    """``value`` (JSON data) with each key of ``replacements`` replaced by its value."""
    if isinstance(value, str):
        for text in sorted(replacements, key=len, reverse=True):
            value = value.replace(text, replacements[text])
        return value
    if isinstance(value, dict):
        return {k: _scrub(v, replacements) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v, replacements) for v in value]
    return value


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
    record: dict[str, Any] = {
        "pipeline": name,
        "created_at": now_utc(),
        "hfgcot_version": hfgcot.__version__,
        "rows": len(dataset),
        "config": jsonable(config) if config is not None else None,
        "stages": [{"name": s.name, "config": jsonable(s)} for s in stages],
        "prompts": prompts.prompt_fingerprint_data(),
    }
    if spec is not None:
        record["model"] = model_provenance(spec)
    if dataclasses.is_dataclass(config) and not isinstance(config, type):  # `hfgcot config`
        options = run_model_options(spec) if spec is not None else None
        record["run_config"] = run_config(name, config, options)
    if status_column is not None and status_column in dataset.column_names:
        record["status_column"] = status_column
        record["status"] = status.summary(dataset[status_column])
    if boxes:
        record["boxes"] = boxes
    if extra:
        record.update(jsonable(dict(extra)))
    private = _private_values([spec, getattr(spec, "spec", None), config, *stages])
    private.update(dict.fromkeys(known_tokens(), MASK))
    return _scrub(record, private) if private else record


def record_provenance(dataset: Any, name: str, **kwargs: Any) -> Any:
    """``attach_provenance(dataset, pipeline_provenance(name, dataset, **kwargs))``: the one call a
    pipeline makes on its result."""
    return attach_provenance(dataset, pipeline_provenance(name, dataset, **kwargs))
