"""``hfgcot view``: a saved dataset or a release as one self-contained HTML page (or a few).

Each page holds up to ``rows_per_file`` rows (more rows: ``page-2.html``, ``page-3.html``... next
to ``page.html``, linked from every page). Everything is inline - the images as ``data:`` URIs,
the CSS and a small script - so nothing is fetched from anywhere. Row fragments
(:func:`hfgcot.viz.html.row_fragment`) are stored as JSON; the script shows one screen of them
at a time (only those rows are in the document, their images load lazily) and filters them by
status and by a text search. :func:`serve` serves the pages on 127.0.0.1 only.

>>> from PIL import Image
>>> page = rows_html([{"image": Image.new("RGB", (8, 8)), "question": "<script>x</script>"}])
>>> "<script>x</script>" in page, page.count("<script")
(False, 2)
"""

from __future__ import annotations

import argparse
import functools
import html
import json
import logging
import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any

from hfgcot.errors import InputError, OptionError
from hfgcot.status import reason as status_reason
from hfgcot.viz.html import HTML, row_fragment, style_sheet

__all__ = ["add_view_parser", "load_rows", "make_server", "run_view", "rows_html", "write_view"]

logger = logging.getLogger(__name__)

_NO_STATUS = "(no status)"


def _script_json(value: Any) -> str:
    """JSON that is safe inside ``<script>``: no ``<``, ``>``, ``&`` or line separators."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    for ch in ("<", ">", "&", "\u2028", "\u2029"):
        text = text.replace(ch, f"\\u{ord(ch):04x}")
    return text


def _controls(
    reasons: Counter[str], total: int, files: Sequence[tuple[str, str]], current: int
) -> str:
    options = [f'<option value="">all statuses ({total})</option>']
    options += [
        f'<option value="{html.escape(r)}">{html.escape(r)} ({n})</option>'
        for r, n in reasons.most_common()
    ]
    links = ""
    if len(files) > 1:
        links = "files: " + " ".join(
            f"<b>{html.escape(label)}</b>"
            if i == current
            else f'<a href="{html.escape(name)}">{html.escape(label)}</a>'
            for i, (name, label) in enumerate(files)
        )
    return (
        '<div class="hfgcot-controls">'
        f'<label>status <select id="hfgcot-status">{"".join(options)}</select></label> '
        '<input id="hfgcot-search" type="search" placeholder="search the texts" size="28"> '
        '<span id="hfgcot-count"></span> '
        '<button id="hfgcot-prev" type="button">&larr; previous</button> '
        '<span id="hfgcot-page"></span> '
        '<button id="hfgcot-next" type="button">next &rarr;</button>'
        f'<div class="hfgcot-files">{links}</div></div>'
    )


_PAGE_CSS = """
body { max-width: 1200px; margin: 0 auto; padding: 0 16px; font-family: system-ui, sans-serif; }
.hfgcot-controls { position: sticky; top: 0; background: #fff; padding: 8px 0;
  border-bottom: 2px solid #ccc; z-index: 1; display: flex; gap: 8px; flex-wrap: wrap;
  align-items: center; }
.hfgcot-files { width: 100%; font-size: 13px; }
"""


def rows_html(
    rows: Iterable[Mapping[str, Any]],
    *,
    title: str = "hfgcot rows",
    image_column: str = "image",
    max_side: int = 480,
    page_size: int = 20,
    first_index: int = 0,
    files: Sequence[tuple[str, str]] = (),
    current: int = 0,
) -> HTML:
    """One self-contained viewer page of ``rows`` (dicts of dataset rows, any pipeline's
    columns): per row its image with boxes, texts and statuses; a status filter, a text search
    and ``page_size`` rows per screen. ``files`` (``(file name, label)``) are linked pages of
    the same dataset, ``current`` the index of this one; rows are titled from ``first_index``.
    """
    data, keys, reasons = [], set(), Counter()
    for i, row in enumerate(rows):
        fragment, view = row_fragment(
            row, image_column=image_column, max_side=max_side, title=f"row {first_index + i}"
        )
        reason = _NO_STATUS if view.status is None else status_reason(view.status)
        reasons[reason] += 1
        keys.update(view.colours)
        data.append({"h": fragment, "s": reason, "t": view.search_text()})
    script = resources.files("hfgcot.viz").joinpath("assets/viewer.js").read_text("utf-8")
    return HTML(
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title>"
        f"<style>{_PAGE_CSS}{style_sheet(keys)}</style></head>"
        f'<body data-page-size="{int(page_size)}"><h1>{html.escape(title)}</h1>'
        f"{_controls(reasons, len(data), files, current)}"
        '<main id="hfgcot-rows"><noscript>This page shows its rows with JavaScript.</noscript>'
        "</main>"
        f'<script type="application/json" id="hfgcot-data">{_script_json(data)}</script>'
        f"<script>{script}</script></body></html>\n"
    )


def _page_names(output: Path, count: int) -> list[Path]:
    return [output] + [
        output.with_name(f"{output.stem}-{k}{output.suffix}") for k in range(2, count + 1)
    ]


def write_view(
    rows: Any,
    output: str | os.PathLike[str],
    *,
    rows_per_file: int = 500,
    title: str | None = None,
    **options: Any,
) -> list[Path]:
    """Write ``rows`` (a ``datasets.Dataset`` or a list of row dicts) as viewer pages:
    ``output`` and, past ``rows_per_file`` rows, ``<stem>-2.html``... beside it. Returns the
    paths written. ``options`` go to :func:`rows_html` (``image_column``, ``max_side``,
    ``page_size``)."""
    if rows_per_file < 1:
        raise OptionError(f"rows_per_file must be >= 1, got {rows_per_file}")
    out = Path(output)
    total = len(rows)
    count = max(1, -(-total // rows_per_file))
    paths = _page_names(out, count)
    files = [
        (p.name, f"rows {k * rows_per_file}-{min(total, (k + 1) * rows_per_file) - 1}")
        for k, p in enumerate(paths)
    ]
    out.parent.mkdir(parents=True, exist_ok=True)
    for k, path in enumerate(paths):
        start, stop = k * rows_per_file, min(total, (k + 1) * rows_per_file)
        chunk = rows.select(range(start, stop)) if hasattr(rows, "select") else rows[start:stop]
        page = rows_html(
            chunk,
            title=title or out.stem,
            first_index=start,
            files=files,
            current=k,
            **options,
        )
        page.save(path)
    logger.info(
        "%d rows -> %s", total, ", ".join(str(p) for p in paths[:3]) + (" ..." if count > 3 else "")
    )
    return paths


def load_rows(
    source: str | os.PathLike[str], *, split: str = "train", limit: int | None = None
) -> Any:
    """A dataset to view: a ``save_to_disk`` folder (a ``DatasetDict``: its ``split``), a local
    release's folder (its latest version, by :func:`hfgcot.load_release`), a released version
    folder, a ``.jsonl`` file or a Hub id (anything :func:`hfgcot.io.load_input` reads)."""
    from datasets import DatasetDict, load_from_disk

    from hfgcot.io import load_input
    from hfgcot.publishing.local import local_versions
    from hfgcot.publishing.release import load_release

    path = Path(source)
    if path.is_dir() and (path / "dataset_dict.json").exists():
        loaded = load_from_disk(str(path))
        if not isinstance(loaded, DatasetDict) or split not in loaded:
            raise InputError(f"{path} has no split {split!r}: it has {sorted(loaded)}")
        ds = loaded[split]
    elif path.is_dir() and local_versions(path):
        ds = load_release(path, split=split)
        logger.info("viewing the latest release in %s", path)
    else:
        return load_input(path if path.exists() else str(source), split=split, limit=limit)
    return ds.select(range(min(limit, len(ds)))) if limit is not None else ds


class _Handler(SimpleHTTPRequestHandler):
    """Serves only the viewer's own files (no folder listing, nothing else of the folder)."""

    allowed: frozenset[str] = frozenset()
    index: str = ""

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        name = self.path.split("?", 1)[0].lstrip("/") or self.index
        if name not in self.allowed:
            self.send_error(404)
            return
        self.path = "/" + name
        super().do_GET()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        logger.debug("serve: " + format, *args)


def make_server(paths: Sequence[Path], port: int = 8000) -> ThreadingHTTPServer:
    """An HTTP server on 127.0.0.1:``port`` (0: any free port) for the pages ``paths`` (one
    folder); ``/`` is the first page. Call ``serve_forever()`` on it."""
    folder = paths[0].resolve().parent
    handler = type(
        "ViewHandler",
        (_Handler,),
        {"allowed": frozenset(p.name for p in paths), "index": paths[0].name},
    )
    return ThreadingHTTPServer(
        ("127.0.0.1", port), functools.partial(handler, directory=str(folder))
    )


def add_view_parser(sub: Any) -> None:
    """Add the ``view`` subcommand to the ``hfgcot`` command line's subparsers."""
    v = sub.add_parser(
        "view",
        help="write (and serve) a self-contained HTML page to look at a dataset's rows",
        description="One HTML page per --rows-per-file rows of a saved dataset or a release: "
        "images with their boxes, texts, statuses; filter by status, search. Nothing is loaded "
        "from the network. --serve serves it on 127.0.0.1.",
    )
    v.add_argument("dataset", help="save_to_disk folder, release folder, .jsonl file or Hub id")
    v.add_argument("--output", required=True, help="the HTML file to write, e.g. page.html")
    v.add_argument("--split", default="train", help="split to show (default: %(default)s)")
    v.add_argument("--image-column", default="image")
    v.add_argument("--limit", type=int, default=None, help="show only the first N rows")
    v.add_argument("--rows-per-file", type=int, default=500)
    v.add_argument("--page-size", type=int, default=20, help="rows per screen")
    v.add_argument("--max-side", type=int, default=480, help="longest image side shown (px)")
    v.add_argument("--title", default=None)
    v.add_argument("--serve", action="store_true", help="serve the page on 127.0.0.1")
    v.add_argument("--port", type=int, default=8000)
    v.add_argument("--debug", action="store_true", help="show the traceback of an error")


def run_view(args: argparse.Namespace) -> int:
    """The ``view`` subcommand: write the pages, then serve them if asked (Ctrl-C stops)."""
    rows = load_rows(args.dataset, split=args.split, limit=args.limit)
    paths = write_view(
        rows,
        args.output,
        rows_per_file=args.rows_per_file,
        title=args.title or Path(str(args.dataset)).name,
        image_column=args.image_column,
        page_size=args.page_size,
        max_side=args.max_side,
    )
    if args.serve:
        try:
            server = make_server(paths, args.port)
        except OSError as exc:  # e.g. the port is taken: a user error, said in one line
            raise OptionError(
                f"cannot serve on 127.0.0.1:{args.port} ({exc.strerror or exc}); "
                "choose another --port (0: any free port)"
            ) from exc
        logger.info("serving http://127.0.0.1:%d/ (Ctrl-C stops)", server.server_address[1])
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
    return 0
