"""Dataset cards with provenance, for :func:`hfgcot.publish`.

A card is a ``huggingface_hub.DatasetCard``: YAML metadata (pretty name, license, task categories,
tags, size category and an ``hfgcot`` block with the dataset version) and a Markdown body: how to
load this exact version, rows and statuses, the box convention, the provenance of every pipeline run
recorded on the dataset (:mod:`hfgcot.publishing.provenance`: model id and resolved revision, resize limits,
generation settings, prompts and their version, configs) and a short sample.

    >>> from datasets import Dataset
    >>> card = build_card(Dataset.from_dict({"question": ["Why?"]}), version="1.0.0",
    ...                   load_code='load_dataset("me/data", revision="v1.0.0")')
    >>> card.data.hfgcot["version"]
    '1.0.0'
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from huggingface_hub import DatasetCard, DatasetCardData

import hfgcot
from hfgcot import status
from hfgcot.geometry.families import get_family, known_families
from hfgcot.publishing.provenance import get_provenance, now_utc
from hfgcot.splits import as_splits

__all__ = [
    "CARD_OPTIONS",
    "PIPELINE_TAGS",
    "add_local_metadata",
    "build_card",
    "merge_backend_metadata",
    "size_category",
]

# Task categories and tags the card gets for each pipeline found in the provenance.
PIPELINE_TAGS: dict[str, tuple[list[str], list[str]]] = {
    "gcot": (
        ["visual-question-answering", "image-text-to-text"],
        ["grounding", "chain-of-thought"],
    ),
    "dense_captions": (["image-to-text"], ["dense-captions"]),
    "region_captions": (["image-to-text"], ["region-captions", "grounding"]),
    "grounding_sft": (["image-text-to-text"], ["grounding", "sft"]),
}

# Keys a caller may set through ``publish(..., card={...})``.
CARD_OPTIONS = ("pretty_name", "license", "description", "task_categories", "tags", "language")

_SAMPLE_ROWS = 3
_SAMPLE_CHARS = 300


def size_category(n: int) -> str:
    """The Hub's ``size_categories`` value for ``n`` rows.

    >>> size_category(999), size_category(1000), size_category(2_500_000)
    ('n<1K', '1K<n<10K', '1M<n<10M')
    """
    bounds = [
        (1_000, "n<1K"),
        (10_000, "1K<n<10K"),
        (100_000, "10K<n<100K"),
        (1_000_000, "100K<n<1M"),
        (10_000_000, "1M<n<10M"),
        (100_000_000, "10M<n<100M"),
        (1_000_000_000, "100M<n<1B"),
    ]
    return next((label for bound, label in bounds if n < bound), "n>1B")


def _cell(value: Any) -> str:
    """A value for a Markdown table cell."""
    text = "" if value is None else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def _code(value: Any) -> str:
    return f"`{_cell(value)}`" if value not in (None, "") else "-"


def _short(value: Any, limit: int = _SAMPLE_CHARS) -> Any:
    """A cell value for the sample: long strings cut, nested lists summarised."""
    if isinstance(value, str):
        return value if len(value) <= limit else value[:limit] + " ..."
    if isinstance(value, list):
        items = [_short(v, limit) for v in value[:8]]
        return items + [f"... ({len(value)} items)"] if len(value) > 8 else items
    if isinstance(value, dict):
        return {k: _short(v, limit) for k, v in value.items()}
    return value


def _sample(ds: Any, n: int = _SAMPLE_ROWS) -> list[dict[str, Any]]:
    """The first rows as JSON-able dicts, media columns shown as ``<image>`` (never decoded)."""
    from datasets import Audio, Image, Video

    media = [c for c, f in ds.features.items() if isinstance(f, Image | Audio | Video)]
    rows = ds.select(range(min(n, len(ds)))).remove_columns(media).to_list() if len(ds) else []
    out = []
    for row in rows:
        shown = {c: f"<{type(ds.features[c]).__name__.lower()}>" for c in media}
        shown.update({k: _short(v) for k, v in row.items()})
        out.append({c: shown[c] for c in ds.column_names})
    return out


def _status_summaries(ds: Any) -> dict[str, dict[str, int]]:
    return {
        column: status.summary(ds[column])
        for column in ds.column_names
        if column.endswith("_status") and ds.features[column].dtype == "string"
    }


def _generation_table(record: Mapping[str, Any]) -> list[str]:
    rows = []
    for stage in record.get("stages") or []:
        gen = (stage.get("config") or {}).get("generation")
        if isinstance(gen, dict):
            settings = ", ".join(f"{k}={v}" for k, v in gen.items())
            batch = (stage.get("config") or {}).get("batch_size")
            rows.append(f"| {_cell(stage.get('name'))} | {_cell(settings)} | {_cell(batch)} |")
    if not rows:
        return []
    return ["", "| stage | generation settings | batch size |", "|---|---|---|", *rows]


def _record_section(i: int, record: Mapping[str, Any]) -> list[str]:
    model = record.get("model") or {}
    prompts = record.get("prompts") or {}
    facts = [
        ("created", _cell(record.get("created_at"))),
        ("hfgcot version", _code(record.get("hfgcot_version"))),
    ]
    if model:
        facts += [
            ("model", _code(model.get("model_id"))),
            ("engine (revision as declared)", _code(model.get("engine"))),
            ("resolved model revision", _code(model.get("revision"))),
            ("requested revision", _code(model.get("requested_revision"))),
            ("model family", _code(model.get("family"))),
            ("dtype", _code(model.get("dtype"))),
            ("min_pixels / max_pixels", f"{model.get('min_pixels')} / {model.get('max_pixels')}"),
        ]
    facts.append(("prompts version", _code(prompts.get("version"))))
    if "rows" in record:
        facts.append(("rows out", _cell(record["rows"])))
    lines = ["", f"### {i}. `{_cell(record.get('pipeline'))}` pipeline", "", "| | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in facts if v not in ("", "-")]
    if record.get("status") is not None:
        lines.append(
            f"| status (`{_cell(record.get('status_column'))}`) | "
            f"{_cell(status.summary_text(record['status']))} |"
        )
    lines += _generation_table(record)
    if record.get("boxes"):
        lines += ["", f"Boxes: {record['boxes']}"]
    family = model.get("family")
    if family in known_families():  # what its numbers mean: the family table
        lines += [
            "",
            f"The model ({family}) writes boxes as {get_family(family).box_wording}; with the "
            "resize limits "
            f"min_pixels={model.get('min_pixels')}, max_pixels={model.get('max_pixels')}. "
            "hfgcot converts them through the processor's own resize.",
        ]
    blob = json.dumps(record, indent=2, ensure_ascii=False, default=str)
    lines += [
        "",
        "<details><summary>Full provenance record (pipeline and stage configs, prompts)</summary>",
        "",
        "```json",
        blob,
        "```",
        "",
        "</details>",
    ]
    return lines


def _collect_records(splits: Mapping[str, Any]) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    for ds in splits.values():
        for record in get_provenance(ds):
            if record not in records:
                records.append(record)
    return records


def build_card(
    dataset: Any,
    *,
    version: str,
    load_code: str,
    split: str = "train",
    config_name: str | None = None,
    options: Mapping[str, Any] | None = None,
    created_at: str | None = None,
    target: str | None = None,
) -> DatasetCard:
    """The dataset card for publishing ``dataset`` (a Dataset or DatasetDict) as ``version``.

    Args:
        version: the dataset version, e.g. ``"1.0.0"`` (the tag is ``v<version>``).
        load_code: Python code that loads exactly this version (shown in the card).
        options: overrides, keys from :data:`CARD_OPTIONS` (``pretty_name``, ``license``,
            ``description``, ``task_categories``, ``tags``, ``language``).
        target: the repo id or folder, for the title when no ``pretty_name`` is given.

    The card holds no ``configs``/``dataset_info`` YAML: the publishing backend adds those.
    """
    options = dict(options or {})
    unknown = sorted(set(options) - set(CARD_OPTIONS))
    if unknown:
        raise ValueError(f"unknown card option(s) {unknown}; allowed: {list(CARD_OPTIONS)}")
    splits = as_splits(dataset, split)
    records = _collect_records(splits)
    pipelines = list(dict.fromkeys(str(r.get("pipeline")) for r in records))
    created_at = created_at or now_utc()
    n_rows = sum(len(ds) for ds in splits.values())

    tasks, tags = [], ["hfgcot", "synthetic"]
    for p in pipelines:
        p_tasks, p_tags = PIPELINE_TAGS.get(p, (["image-text-to-text"], []))
        tasks += p_tasks
        tags += p_tags
    tasks = list(dict.fromkeys(options.get("task_categories") or tasks or ["image-text-to-text"]))
    tags = list(dict.fromkeys([*tags, *(options.get("tags") or [])]))
    first = next(iter(splits.values()))
    license_ = options.get("license") or getattr(first.info, "license", None) or "unknown"
    name = options.get("pretty_name") or (
        f"{target.rstrip('/').split('/')[-1]}" if target else "hfgcot dataset"
    )
    models = list(
        dict.fromkeys(
            str((r.get("model") or {}).get("model_id")) for r in records if r.get("model")
        )
    )
    data = DatasetCardData(
        pretty_name=name,
        license=license_,
        language=options.get("language"),
        task_categories=tasks,
        tags=tags,
        size_categories=[size_category(n_rows)],
        hfgcot={
            "version": version,
            "tag": f"v{version}",
            "hfgcot_version": hfgcot.__version__,
            "created_at": created_at,
            "pipelines": pipelines,
            "models": models,
            "rows": {s: len(ds) for s, ds in splits.items()},
        },
    )

    body = [f"# {name}", ""]
    if options.get("description"):
        body += [str(options["description"]), ""]
    made_by = ", ".join(f"`{p}`" for p in pipelines) or "no recorded"
    body += [
        f"Version **v{version}**, published {created_at} with "
        f"hfgcot {hfgcot.__version__} ({made_by} pipeline"
        f"{'s' if len(pipelines) > 1 else ''}).",
        "",
        "## Load this version",
        "",
        "```python",
        "from datasets import load_dataset",
        "",
        load_code,
        "```",
        "",
        "## Contents",
        "",
        "| config | split | rows |",
        "|---|---|---|",
    ]
    body += [f"| {config_name or 'default'} | {s} | {len(ds)} |" for s, ds in splits.items()]
    body += ["", "| column | type |", "|---|---|"]
    for column, feature in first.features.items():
        body.append(f"| `{column}` | {_cell(_feature_name(feature))} |")
    for s, ds in splits.items():
        for column, summary in _status_summaries(ds).items():
            body.append("")
            body.append(f"Status `{column}` ({s}): {status.summary_text(summary)}.")
    has_boxes = any(r.get("boxes") for r in records) or any(
        "bbox" in repr(f) for f in first.features.values()
    )
    if has_boxes:
        body += [
            "",
            "## Boxes",
            "",
            "Boxes in hfgcot columns (`bbox`) are floats `[x1, y1, x2, y2]` in pixels of the "
            "original image (clipped to it, x1 <= x2, y1 <= y2). `bbox_model` keeps the numbers "
            "the model wrote, in the model's own frame (see the model family below). Boxes depend "
            "on the processor's `min_pixels`/`max_pixels`, recorded per pipeline run.",
        ]
    body += ["", "## Provenance"]
    if records:
        for i, record in enumerate(records, start=1):
            body += _record_section(i, record)
    else:
        body += ["", "No hfgcot provenance was recorded on this dataset."]
    body += ["", "## Sample", ""]
    for s, ds in splits.items():
        if len(splits) > 1:
            body += [f"Split `{s}`:", ""]
        sample = [json.dumps(row, ensure_ascii=False, default=str) for row in _sample(ds)]
        body += ["```json", *sample, "```", ""]
    return DatasetCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(body).rstrip() + "\n")


def _feature_name(feature: Any) -> str:
    dtype = getattr(feature, "dtype", None)
    if type(feature).__name__ == "Value":
        return str(dtype)
    text = repr(feature)
    return text if len(text) <= 120 else text[:117] + "..."


def merge_backend_metadata(card: DatasetCard, existing: DatasetCard | None) -> DatasetCard:
    """``card`` with the ``configs`` and ``dataset_info`` YAML of ``existing`` (other configs
    pushed earlier stay loadable)."""
    if existing is None:
        return card
    for key in ("configs", "dataset_info"):
        value = existing.data.to_dict().get(key)
        if value is not None:
            card.data[key] = value
    return DatasetCard(f"---\n{card.data.to_yaml()}\n---\n{card.text}")


def add_local_metadata(
    card: DatasetCard,
    splits: Mapping[str, Any],
    *,
    config_name: str,
    data_dir: str,
    sizes: Mapping[str, tuple[int, int]],
) -> DatasetCard:
    """Add the ``dataset_info`` and ``configs`` YAML that ``push_to_hub`` writes on the Hub.

    ``sizes`` maps each split to ``(arrow bytes, parquet bytes)``.
    """
    from datasets.info import DatasetInfo, DatasetInfosDict
    from datasets.splits import SplitDict, SplitInfo
    from datasets.utils.metadata import MetadataConfigs

    first = next(iter(splits.values()))
    info = DatasetInfo(
        config_name=config_name,
        features=first.features,
        splits=SplitDict(),
        download_size=0,
        dataset_size=0,
    )
    for name, ds in splits.items():
        arrow_bytes, parquet_bytes = sizes[name]
        info.splits.add(SplitInfo(name=name, num_bytes=arrow_bytes, num_examples=len(ds)))
        info.download_size += parquet_bytes
        info.dataset_size += arrow_bytes
    info.size_in_bytes = info.download_size + info.dataset_size
    DatasetInfosDict({config_name: info}).to_dataset_card_data(card.data)
    files = [{"split": name, "path": f"{data_dir}/{name}-*"} for name in splits]
    MetadataConfigs({config_name: {"data_files": files}}).to_dataset_card_data(card.data)
    return DatasetCard(f"---\n{card.data.to_yaml()}\n---\n{card.text}")
