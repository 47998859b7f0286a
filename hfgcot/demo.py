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

    ``pictures/`` gets one ``row_NNN.png`` per row (boxes on the image), ``grid.png`` (every row
    with its text, phrases in the colour of their boxes) and ``index.html`` (the same, as HTML).

    Args:
        output: the folder of the dataset (``gcot/``) and the pictures (``pictures/``).
        model: another model instead of the shipped toy one (Hub id or folder).
        batch_size: rows per generate call.
        max_new_tokens: most new tokens per reasoning.
        kwargs: other :func:`hfgcot.add_gcot` options.
    """
    out = Path(output)
    model = model or default_demo_model()
    ds = add_gcot(
        demo_dataset(), model, batch_size=batch_size, max_new_tokens=max_new_tokens, **kwargs
    )
    dataset_dir = out / "gcot"
    ds.save_to_disk(str(dataset_dir))
    pictures = out / "pictures"
    grid_path, index_path = write_pictures(
        ds, pictures, title="hfgcot demo: grounded chain-of-thought"
    )
    summary = status_summary(ds, "gcot_status")
    return DemoResult(dataset_dir, pictures, summary, model, grid_path, index_path)


def write_pictures(
    rows: Any,
    folder: str | os.PathLike[str],
    *,
    title: str = "hfgcot",
    cols: int = 3,
    width: int = 480,
    text_column: str = "gcot",
    image_column: str = "image",
    groundings_column: str | None = "groundings",
) -> tuple[Path, Path]:
    """Pictures of ``rows`` (a dataset or row dicts) in ``folder``, as the demo writes them.

    ``row_NNN.png`` per row (its boxes on its image; the box of a phrase the text never
    mentions is dashed), ``grid.png`` (every row with its text, phrases in the colour of their
    boxes, ``cols`` per line, ``width`` pixels each) and ``index.html`` (the viewer page of
    ``hfgcot view``: boxes over the images, texts, statuses, a status filter and a search;
    self-contained). Returns the paths of the grid and the page.

    Args:
        title: the title of the HTML page.
        cols: rows per line of the grid.
        width: width of each row in the grid, in pixels.
        text_column: the text shown (GCoT reasoning by default; ``final_caption``, ``answer``...).
        image_column: the image column (e.g. ``image_with_bbox`` of region captions).
        groundings_column: ``[{"phrase", "bbox"}]`` boxes drawn and coloured (none: ``none``).

    Example:
        >>> write_pictures(ds, "outputs/pictures")   # doctest: +SKIP
        (PosixPath('outputs/pictures/grid.png'), PosixPath('outputs/pictures/index.html'))
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    columns = {
        "text_column": text_column,
        "image_column": image_column,
        "groundings_column": groundings_column,
    }
    rendered = []
    for i, row in enumerate(rows):
        image, status = load_image(row.get(image_column))
        if image is not None:
            boxes = (row.get(groundings_column) if groundings_column else None) or []
            text = row.get(text_column)
            drawn = draw_groundings(image, boxes, text=text if isinstance(text, str) else None)
            drawn.save(folder / f"row_{i:03d}.png")
        else:
            logger.warning("row %d: %s", i, status)
        rendered.append(render_row(row, width=width, **columns))
    grid_path, index_path = folder / "grid.png", folder / "index.html"
    grid(rendered, cols=cols).save(grid_path)
    write_view(rows, index_path, title=title, image_column=image_column)
    return grid_path, index_path
