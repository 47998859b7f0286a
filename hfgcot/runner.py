"""Apply stages to a ``datasets.Dataset``: fingerprints, explicit features, ranks, image decoding.

>>> ds = run_stages(ds, [stage_a, stage_b], batch_size=8)   # doctest: +SKIP
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from typing import Any

from datasets import Dataset, Features, Image

from hfgcot.stages.base import OK, Stage

logger = logging.getLogger(__name__)


def undecoded(dataset: Dataset, column: str) -> tuple[Dataset, Any]:
    """Turn off decoding of an ``Image`` column so that stages see raw ``{bytes, path}`` storage.

    ``datasets`` would raise inside ``map`` on the first undecodable image and lose the whole batch;
    stages decode each image themselves and write a status instead. Returns the dataset and the
    column's original feature, to restore with :func:`restore_feature`.
    """
    if column not in dataset.column_names:
        raise KeyError(f"column {column!r} not in dataset (columns: {dataset.column_names})")
    feature = dataset.features[column]
    if isinstance(feature, Image) and feature.decode:
        dataset = dataset.cast_column(column, Image(decode=False))
    return dataset, feature


def restore_feature(dataset: Dataset, column: str, feature: Any) -> Dataset:
    if dataset.features[column] != feature:
        dataset = dataset.cast_column(column, feature)
    return dataset


def apply_stage(
    dataset: Dataset,
    stage: Stage,
    *,
    batch_size: int = 8,
    num_proc: int | None = None,
    desc: str | None = None,
) -> Dataset:
    """Run one stage as a batched ``Dataset.map`` with a deterministic ``new_fingerprint``.

    Output columns get the stage's explicit features, so an all-empty first batch cannot fix a
    wrong Arrow type for the rest of the run. Rows in == rows out, in order.
    """
    features = Features({**dataset.features, **stage.features()})
    n_in = len(dataset)
    out = dataset.map(
        stage,
        batched=True,
        batch_size=batch_size,
        with_rank=True,
        num_proc=num_proc,
        features=features,
        new_fingerprint=stage.new_fingerprint(dataset._fingerprint),
        desc=desc or f"hfgcot {stage.name}",
    )
    if len(out) != n_in:  # pragma: no cover - a stage bug, never expected
        raise RuntimeError(f"stage {stage.name} changed the number of rows: {n_in} -> {len(out)}")
    return out


def run_stages(
    dataset: Dataset,
    stages: Sequence[Stage],
    *,
    batch_size: int = 8,
    num_proc: int | None = None,
) -> Dataset:
    for stage in stages:
        dataset = apply_stage(dataset, stage, batch_size=batch_size, num_proc=num_proc)
    return dataset


def status_summary(dataset: Dataset, status_column: str) -> dict[str, int]:
    """Rows per status reason (the part before ``':'``), e.g. ``{"ok": 7, "truncated_image": 1}``."""
    counts = Counter(str(s).split(":", 1)[0] for s in dataset[status_column])
    return dict(counts.most_common())


def log_summary(dataset: Dataset, status_column: str, what: str) -> dict[str, int]:
    summary = status_summary(dataset, status_column)
    ok = summary.get(OK, 0)
    logger.info("%s: %d/%d rows ok; %s", what, ok, len(dataset), summary)
    return summary
