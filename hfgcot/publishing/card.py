"""Dataset cards with provenance, for :func:`hfgcot.publish`.

A card is a ``huggingface_hub.DatasetCard``: YAML metadata (pretty name, license, task categories,
tags, size category and an ``hfgcot`` block with the dataset version) and a Markdown body: how to
load this exact version, rows and statuses (and rows left out by ``drop_bad_rows``), the box
convention, the versions published before it, the provenance of every pipeline run recorded on the
dataset (:mod:`hfgcot.publishing.provenance`: model id and resolved revision, resize limits,
generation settings, prompts and their version, configs; rendered by
:mod:`hfgcot.publishing.card_records`) and a short sample.

    >>> from datasets import Dataset
    >>> card = build_card(Dataset.from_dict({"question": ["Why?"]}), version="1.0.0",
    ...                   load_code='load_dataset("me/data", revision="v1.0.0")')
    >>> card.data.hfgcot["version"]
    '1.0.0'
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from huggingface_hub import DatasetCard, DatasetCardData

from hfgcot import status
from hfgcot.publishing.card_records import cell, record_section
from hfgcot.publishing.redact import redact
from hfgcot.publishing.targets import Release
from hfgcot.splits import as_splits
from hfgcot.status import summary_text

__all__ = [
    "CARD_OPTIONS",
    "PIPELINE_TAGS",
    "add_local_metadata",
    "build_card",
    "card_for",
    "card_options",
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
    out = {}
    for column in ds.column_names:
        if column.endswith("_status") and ds.features[column].dtype == "string":
            out[column] = status.summary(ds[column])
    return out


def _card_data(
    splits: Mapping[str, Any],
    records: list[dict[str, Any]],
    info: Mapping[str, Any],
    options: Mapping[str, Any],
    name: str,
) -> DatasetCardData:
    """The YAML of the card (without the backend's ``configs``/``dataset_info``)."""
    pipelines = info["pipelines"]
    tasks, tags = [], ["hfgcot", "synthetic"]
    for p in pipelines:
        p_tasks, p_tags = PIPELINE_TAGS.get(p, (["image-text-to-text"], []))
        tasks += p_tasks
        tags += p_tags
    tasks = list(dict.fromkeys(options.get("task_categories") or tasks or ["image-text-to-text"]))
    tags = list(dict.fromkeys([*tags, *(options.get("tags") or [])]))
    first = next(iter(splits.values()))
    models = [str((r.get("model") or {}).get("model_id")) for r in records if r.get("model")]
    return DatasetCardData(
        pretty_name=name,
        license=options.get("license") or getattr(first.info, "license", None) or "unknown",
        language=options.get("language"),
        task_categories=tasks,
        tags=tags,
        size_categories=[size_category(sum(len(ds) for ds in splits.values()))],
        hfgcot={**info, "models": list(dict.fromkeys(models))},
    )


def _load_lines(load_code: str, release_call: str | None) -> list[str]:
    lines = ["## Load this version", "", "```python"]
    lines += ["import hfgcot"] if release_call else []
    lines += ["from datasets import load_dataset", "", load_code]
    if release_call:
        lines += ["", "# or, with the provenance records (hfgcot.get_provenance):", release_call]
    return [*lines, "```", ""]


def _contents_lines(
    splits: Mapping[str, Any], config_name: str | None, dropped: Mapping[str, Mapping[str, int]]
) -> list[str]:
    lines = ["## Contents", "", "| config | split | rows |", "|---|---|---|"]
    lines += [f"| {config_name or 'default'} | {s} | {len(ds)} |" for s, ds in splits.items()]
    lines += ["", "| column | type |", "|---|---|"]
    first = next(iter(splits.values()))
    lines += [f"| `{c}` | {cell(_feature_name(f))} |" for c, f in first.features.items()]
    for s, ds in splits.items():
        for column, summary in _status_summaries(ds).items():
            lines += ["", f"Status `{column}` ({s}): {summary_text(summary)}."]
    for s, reasons in dropped.items():
        lines += [
            "",
            f"Left out at publishing ({s}): {sum(reasons.values())} rows whose image could not "
            f"be embedded ({summary_text(reasons)}; `drop_bad_rows=True`).",
        ]
    return lines


def _versions_lines(version: str, previous: Sequence[str]) -> list[str]:
    if not previous:
        return ["", "## Earlier versions", "", f"None: v{version} is the first version."]
    listed = ", ".join(f"`v{v}`" for v in previous)
    return [
        "",
        "## Earlier versions",
        "",
        f"Published before v{version} (oldest first): {listed}. Each loads like this one, with "
        "its own tag.",
    ]


def _provenance_lines(records: list[dict[str, Any]]) -> list[str]:
    lines = ["", "## Provenance"]
    if not records:
        return [*lines, "", "No hfgcot provenance was recorded on this dataset."]
    for i, record in enumerate(records, start=1):
        lines += record_section(i, record)
    return lines


def _sample_lines(splits: Mapping[str, Any]) -> list[str]:
    lines = ["", "## Sample", ""]
    for s, ds in splits.items():
        if len(splits) > 1:
            lines += [f"Split `{s}`:", ""]
        sample = [json.dumps(row, ensure_ascii=False, default=str) for row in _sample(ds)]
        lines += ["```json", *sample, "```", ""]
    return lines


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
    previous: Sequence[str] = (),
    dropped: Mapping[str, Mapping[str, int]] | None = None,
    release_call: str | None = None,
) -> DatasetCard:
    """The dataset card for publishing ``dataset`` (a Dataset or DatasetDict) as ``version``.

    Args:
        version: the dataset version, e.g. ``"1.0.0"`` (the tag is ``v<version>``).
        load_code: Python code that loads exactly this version (shown in the card).
        options: overrides, keys from :data:`CARD_OPTIONS` (``pretty_name``, ``license``,
            ``description``, ``task_categories``, ``tags``, ``language``).
        target: the repo id or folder name, for the title when no ``pretty_name`` is given.
        previous: the versions published before this one (listed in the card and its YAML).
        dropped: rows left out per split and reason (``publish(..., drop_bad_rows=True)``).
        release_call: the ``hfgcot.load_release`` line for this version, if any.

    The card holds no ``configs``/``dataset_info`` YAML: the publishing backend adds those.
    """
    import hfgcot
    from hfgcot.publishing.provenance import dataset_records, now_utc

    options = dict(options or {})
    unknown = sorted(set(options) - set(CARD_OPTIONS))
    if unknown:
        raise ValueError(f"unknown card option(s) {unknown}; allowed: {list(CARD_OPTIONS)}")
    splits = as_splits(dataset, split)
    records = dataset_records(dataset)
    pipelines = list(dict.fromkeys(str(r.get("pipeline")) for r in records))
    dropped = {s: dict(r) for s, r in (dropped or {}).items() if r}
    info = {
        "version": version,
        "tag": f"v{version}",
        "hfgcot_version": hfgcot.__version__,
        "created_at": created_at or now_utc(),
        "pipelines": pipelines,
        "rows": {s: len(ds) for s, ds in splits.items()},
        "previous_versions": list(previous),
    }
    if dropped:
        info["dropped_rows"] = {s: sum(r.values()) for s, r in dropped.items()}
    name = options.get("pretty_name") or (
        target.rstrip("/").split("/")[-1] if target else "hfgcot dataset"
    )
    data = _card_data(splits, records, info, options, name)
    made_by = ", ".join(f"`{p}`" for p in pipelines) or "no recorded"
    body = [f"# {name}", ""]
    if options.get("description"):
        body += [str(options["description"]), ""]
    body += [
        f"Version **v{version}**, published {info['created_at']} with hfgcot "
        f"{hfgcot.__version__} ({made_by} pipeline{'s' if len(pipelines) > 1 else ''}).",
        "",
        *_load_lines(load_code, release_call),
        *_contents_lines(splits, config_name, dropped),
        *_boxes_lines(records, next(iter(splits.values()))),
        *_versions_lines(version, previous),
        *_provenance_lines(records),
        *_sample_lines(splits),
    ]
    return DatasetCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(body).rstrip() + "\n")


def _boxes_lines(records: list[dict[str, Any]], first: Any) -> list[str]:
    has_boxes = any(r.get("boxes") for r in records) or any(
        "bbox" in repr(f) for f in first.features.values()
    )
    if not has_boxes:
        return []
    return [
        "",
        "## Boxes",
        "",
        "Boxes in hfgcot columns (`bbox`) are floats `[x1, y1, x2, y2]` in pixels of the "
        "original image (clipped to it, x1 <= x2, y1 <= y2). `bbox_model` keeps the numbers "
        "the model wrote, in the model's own frame (see the model family below). Boxes depend "
        "on the processor's `min_pixels`/`max_pixels`, recorded per pipeline run.",
    ]


def _feature_name(feature: Any) -> str:
    dtype = getattr(feature, "dtype", None)
    if type(feature).__name__ == "Value":
        return str(dtype)
    text = repr(feature)
    return text if len(text) <= 120 else text[:117] + "..."


def card_options(card: Any) -> tuple[Mapping[str, Any] | None, DatasetCard | None]:
    """``publish(card=...)`` as ``(options, fixed card)``: a dict of overrides, or a card given as
    a ``DatasetCard`` or its text (used as is)."""
    if card is None or isinstance(card, Mapping):
        return card, None
    if isinstance(card, DatasetCard):
        return None, DatasetCard(str(card))
    if isinstance(card, str):
        return None, DatasetCard(card)
    raise TypeError("card must be None, a dict of card options, a DatasetCard or its text")


def card_for(
    release: Release,
    load_code: str,
    *,
    target: str,
    release_call: str | None,
    secrets: Sequence[str] | set[str] = (),
) -> DatasetCard:
    """The card of ``release`` (its fixed card, else :func:`build_card`), tokens redacted."""
    card = release.fixed_card or build_card(
        release.dataset,
        version=release.version,
        load_code=load_code,
        split=release.split,
        config_name=release.config_name,
        options=release.options,
        target=target,
        previous=release.previous,
        dropped=release.dropped,
        release_call=release_call,
    )
    text = str(card)
    return DatasetCard(redact(text, secrets)) if any(s in text for s in secrets) else card


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
