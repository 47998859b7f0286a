"""``hfgcot demo``: GCoT on the shipped example dataset with the embedded default model, offline.

The embedded default is a tiny Qwen2.5-VL built locally by :mod:`hfgcot.testing` (no download).
Its weights are random, so its reasoning is noise and most rows end with a status such as
``no_keywords``: the demo shows the plumbing (statuses, columns, pictures), not model quality.
Pass ``model="Qwen/Qwen2.5-VL-3B-Instruct"`` on a GPU machine for real output.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hfgcot.images import load_image
from hfgcot.io import demo_dataset
from hfgcot.runner import status_summary
from hfgcot.stages.gcot import add_gcot
from hfgcot.testing import get_tiny_vlm_path
from hfgcot.viz import draw_groundings, grid, render_row, rows_html

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DemoResult:
    dataset_dir: Path
    pictures_dir: Path
    summary: dict[str, int]
    model: str
    grid: Path | None = None
    index_html: Path | None = None


def run_demo(
    output: str | os.PathLike[str] = "outputs/demo",
    *,
    model: str | None = None,
    batch_size: int = 8,
    max_new_tokens: int = 64,
    **kwargs: Any,
) -> DemoResult:
    """Run GCoT on the demo data; save the dataset and pictures under ``output``.

    ``pictures/`` gets one ``row_NNN.png`` per row (boxes on the image), ``grid.png`` (every row
    with its text, phrases in the colour of their boxes) and ``index.html`` (the same, as HTML).
    """
    out = Path(output)
    model = model or get_tiny_vlm_path()
    ds = add_gcot(
        demo_dataset(), model, batch_size=batch_size, max_new_tokens=max_new_tokens, **kwargs
    )
    dataset_dir = out / "gcot"
    ds.save_to_disk(str(dataset_dir))
    pictures = out / "pictures"
    pictures.mkdir(parents=True, exist_ok=True)
    for i, row in enumerate(ds):
        image, status = load_image(row["image"])
        if image is not None:
            draw_groundings(image, row["groundings"]).save(pictures / f"row_{i:03d}.png")
        else:  # pragma: no cover - the demo images are all valid
            logger.warning("row %d: %s", i, status)
    grid_path, index_path = pictures / "grid.png", pictures / "index.html"
    grid([render_row(row, width=480) for row in ds], cols=3).save(grid_path)
    rows_html(ds, title="hfgcot demo: grounded chain-of-thought").save(index_path)
    summary = status_summary(ds, "gcot_status")
    return DemoResult(dataset_dir, pictures, summary, model, grid_path, index_path)
