"""Grounded Chain-of-Thought on an image/question/answer dataset: a template script.

Reads a dataset, adds GCoT columns with ``hfgcot.add_gcot``, saves it, writes pictures of the boxes
(``grid.png``, ``index.html``) and, with ``--push-to-hub``, publishes a version with a dataset card.
Copy it and change what you need.

Usage (offline, the embedded tiny model, the shipped example data):

    python examples/gcot.py --output outputs/example-gcot

Real use, on a GPU machine with Hub access:

    python examples/gcot.py \\
        --input my-org/my-vqa --split train --limit 1000 \\
        --model Qwen/Qwen2.5-VL-3B-Instruct --batch-size 16 --max-pixels 1003520 \\
        --output out/my-gcot --push-to-hub me/my-gcot --version 1.0.0
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from hfgcot import add_gcot, publish
from hfgcot.io import DEMO_DATA, load_input
from hfgcot.publishing.release import check_target
from hfgcot.run.local import status_summary
from hfgcot.testing.tiny import get_tiny_vlm_path
from hfgcot.viz.draw import grid, render_row, rows_html

EXAMPLE = """example:
  python examples/gcot.py \\
      --input my-org/my-vqa --split train --limit 1000 \\
      --model Qwen/Qwen2.5-VL-3B-Instruct --batch-size 16 --max-pixels 1003520 \\
      --output out/my-gcot --push-to-hub me/my-gcot --version 1.0.0

  Without --model the embedded tiny random model is used (offline; shows the plumbing, not quality).
  --input: a save_to_disk folder, a .jsonl file (image paths relative to it) or a Hub dataset id.
"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Add Grounded Chain-of-Thought columns to an image/question/answer dataset.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--input", default=str(DEMO_DATA), help="default: the shipped example data")
    p.add_argument("--split", default="train")
    p.add_argument("--limit", type=int, default=None, help="only the first N rows")
    p.add_argument("--output", default="outputs/example-gcot", help="folder for the results")
    p.add_argument("--model", default=None, help="Hub id or folder (default: the tiny model)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--max-new-tokens", type=int, default=512)
    p.add_argument("--min-pixels", type=int, default=None)
    p.add_argument("--max-pixels", type=int, default=None)
    p.add_argument("--box-space", choices=["pixels", "model", "normalized"], default="pixels")
    p.add_argument("--push-to-hub", default=None, help="Hub repo 'me/name' or local './folder'")
    p.add_argument("--version", default=None, help="dataset version to publish, e.g. 1.0.0")
    p.add_argument("--license", default=None, help="license for the dataset card")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.push_to_hub:  # fail now, not after hours of generation
        if not args.version:
            raise SystemExit("--push-to-hub needs --version")
        check_target(args.push_to_hub, args.version)

    model = args.model or get_tiny_vlm_path()
    ds = load_input(args.input, split=args.split, limit=args.limit)
    ds = add_gcot(
        ds,
        model=model,
        batch_size=args.batch_size,
        max_new_tokens=args.max_new_tokens if args.model else min(args.max_new_tokens, 64),
        min_pixels=args.min_pixels,
        max_pixels=args.max_pixels,
        box_space=args.box_space,
    )
    out = Path(args.output)
    ds.save_to_disk(str(out / "dataset"))
    print(f"{len(ds)} rows -> {out / 'dataset'}; status: {status_summary(ds, 'gcot_status')}")

    shown = ds.select(range(min(12, len(ds))))
    grid([render_row(row, width=480) for row in shown], cols=3).save(out / "grid.png")
    rows_html(shown, title="GCoT rows").save(out / "index.html")
    print(f"pictures -> {out / 'grid.png'}, {out / 'index.html'}")

    if args.push_to_hub:
        card = {"license": args.license} if args.license else None
        result = publish(ds, args.push_to_hub, version=args.version, card=card)
        print(f"published {result.tag} -> {result.location}\n{result.load_code}")


if __name__ == "__main__":
    main()
