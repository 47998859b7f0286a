"""``hfgcot demo``: GCoT on the shipped example dataset with the embedded default model, offline.

The embedded default is the toy Qwen2.5-VL shipped in ``hfgcot/data/tiny-shapes`` (about a million
parameters, trained from scratch on synthetic scenes by ``python -m tools.tiny_shapes``): it
writes reasoning, keywords and boxes in the pipelines' formats, only about coloured circles,
squares and triangles, and (undertrained) often about the wrong ones. When that
checkpoint is missing, the demo falls back (with a warning) to a tiny random model built locally
by :mod:`hfgcot.testing.tiny`, whose reasoning is noise. Pass ``model="Qwen/Qwen2.5-VL-3B-Instruct"``
on a GPU machine for real output on real images.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hfgcot.images import load_image
from hfgcot.io import demo_dataset
from hfgcot.pipelines.gcot import add_gcot
from hfgcot.run.local import status_summary
from hfgcot.testing.tiny import get_tiny_vlm_path
from hfgcot.testing.toy import tiny_shapes_path
from hfgcot.viz.draw import draw_groundings
from hfgcot.viz.picture import grid, render_row
from hfgcot.viz.viewer import write_view

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DemoResult:
    dataset_dir: Path
    pictures_dir: Path
    summary: dict[str, int]
    model: str
    grid: Path | None = None
    index_html: Path | None = None


def default_demo_model() -> str:
    """The shipped toy model, else (with a warning) the random tiny model built locally."""
    path = tiny_shapes_path()
    if path is not None:
        return path
    logger.warning(
        "the toy model hfgcot/data/tiny-shapes is not installed; using a tiny model with random "
        "weights instead (its reasoning is noise)"
    )
    return get_tiny_vlm_path()


def run_demo(
    output: str | os.PathLike[str] = "outputs/demo",
    *,
    model: str | None = None,
    batch_size: int = 8,
    max_new_tokens: int = 64,
    **kwargs: Any,
) -> DemoResult:
    """Run GCoT on the demo data; save the dataset and pictures under ``output``.

    ``pictures/`` gets one ``row_NNN.png`` per row (boxes on the image; the box of a phrase the
    text never mentions is dashed), ``grid.png`` (every row with its text, phrases in the colour
    of their boxes) and ``index.html`` (the viewer page of ``hfgcot view``: boxes over the
    images, texts, statuses, a status filter and a search; self-contained).
    """
    out = Path(output)
    model = model or default_demo_model()
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
            drawn = draw_groundings(image, row["groundings"], text=row["gcot"])
            drawn.save(pictures / f"row_{i:03d}.png")
        else:  # pragma: no cover - the demo images are all valid
            logger.warning("row %d: %s", i, status)
    grid_path, index_path = pictures / "grid.png", pictures / "index.html"
    grid([render_row(row, width=480) for row in ds], cols=3).save(grid_path)
    write_view(ds, index_path, title="hfgcot demo: grounded chain-of-thought")
    summary = status_summary(ds, "gcot_status")
    return DemoResult(dataset_dir, pictures, summary, model, grid_path, index_path)
