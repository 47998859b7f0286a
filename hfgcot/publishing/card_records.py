"""The provenance part of a dataset card: one Markdown section per pipeline run recorded on the
dataset (:mod:`hfgcot.publishing.provenance`), with the model, its revision and resize limits,
generation settings, prompts version, statuses, the box convention and the full record.

    >>> lines = record_section(1, {"pipeline": "gcot", "status": {"ok": 2}})
    >>> lines[1]
    '### 1. `gcot` pipeline'
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from hfgcot.config_files import dump_run_config
from hfgcot.geometry.families import get_family, known_families
from hfgcot.status import summary_text

__all__ = ["cell", "code", "record_section"]


def cell(value: Any) -> str:
    """A value for a Markdown table cell.

    >>> cell("a|b\\nc")
    'a\\\\|b c'
    """
    text = "" if value is None else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def code(value: Any) -> str:
    """A value as inline code, ``-`` when empty.

    >>> code("x"), code(None)
    ('`x`', '-')
    """
    return f"`{cell(value)}`" if value not in (None, "") else "-"


def _generation_table(record: Mapping[str, Any]) -> list[str]:
    rows = []
    for stage in record.get("stages") or []:
        gen = (stage.get("config") or {}).get("generation")
        if isinstance(gen, dict):
            settings = ", ".join(f"{k}={v}" for k, v in gen.items())
            batch = (stage.get("config") or {}).get("batch_size")
            rows.append(f"| {cell(stage.get('name'))} | {cell(settings)} | {cell(batch)} |")
    if not rows:
        return []
    return ["", "| stage | generation settings | batch size |", "|---|---|---|", *rows]


def _facts(record: Mapping[str, Any]) -> list[tuple[str, str]]:
    model = record.get("model") or {}
    facts = [
        ("created", cell(record.get("created_at"))),
        ("hfgcot version", code(record.get("hfgcot_version"))),
    ]
    if model:
        facts += [
            ("model", code(model.get("model_id"))),
            ("engine (revision as declared)", code(model.get("engine"))),
            ("resolved model revision", code(model.get("revision"))),
            ("requested revision", code(model.get("requested_revision"))),
            ("model family", code(model.get("family"))),
            ("dtype", code(model.get("dtype"))),
            ("min_pixels / max_pixels", f"{model.get('min_pixels')} / {model.get('max_pixels')}"),
        ]
    facts.append(("prompts version", code((record.get("prompts") or {}).get("version"))))
    if "rows" in record:
        facts.append(("rows out", cell(record["rows"])))
    return facts


def _run_config(record: Mapping[str, Any]) -> list[str]:
    """The run's config as the YAML file ``hfgcot <pipeline> --config`` reads (see docs/cli.md)."""
    config = record.get("run_config")
    if not isinstance(config, Mapping):
        return []
    return [
        "",
        "<details><summary>Run config (`hfgcot config <this release>` prints it as a file for "
        "`hfgcot <pipeline> --config`: the same input gives the same rows)</summary>",
        "",
        "```yaml",
        dump_run_config(config).rstrip(),
        "```",
        "",
        "</details>",
    ]


def record_section(i: int, record: Mapping[str, Any]) -> list[str]:
    """The Markdown lines of the ``i``-th provenance record."""
    model = record.get("model") or {}
    lines = ["", f"### {i}. `{cell(record.get('pipeline'))}` pipeline", "", "| | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in _facts(record) if v not in ("", "-")]
    if record.get("status") is not None:
        lines.append(
            f"| status (`{cell(record.get('status_column'))}`) | "
            f"{cell(summary_text(record['status']))} |"
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
    lines += _run_config(record)
    blob = json.dumps(record, indent=2, ensure_ascii=False, default=str)
    return [
        *lines,
        "",
        "<details><summary>Full provenance record (pipeline and stage configs, prompts)</summary>",
        "",
        "```json",
        blob,
        "```",
        "",
        "</details>",
    ]
