"""Region captions for images with boxes (``hfgcot.add_region_captions``).

Without ``--model`` it runs offline on the embedded tiny Qwen2.5-VL (random weights: it shows the
plumbing, not caption quality) and, without ``--input``, on the shipped demo images with their
object boxes (``[x1, y1, x2, y2]`` pixels). The first marked image is saved as ``preview.png``.

    python examples/region_captions.py
    python examples/region_captions.py --model Qwen/Qwen2.5-VL-3B-Instruct \\
        --input regions.jsonl --bbox-column bbox --bbox-format xywh --max-boxes 10 \\
        --mode marked --batch-size 8 --output out/regions
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

EXAMPLE = """example:
  python examples/region_captions.py --model Qwen/Qwen2.5-VL-3B-Instruct \\
      --input regions.jsonl --bbox-column bbox --bbox-format xywh --max-boxes 10 \\
      --mode marked --batch-size 8 --output out/regions

  Without --model: the embedded tiny offline model; without --input: the shipped demo images and
  their object boxes (xyxy).
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description="Caption given boxes of each image: numbered boxes drawn on a copy of the "
        "image (mode marked) or one request per cropped region (mode crop).",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--model", default=None, help="Hub id or folder (default: the tiny model)")
    p.add_argument("--input", default=None, help="saved dataset, .jsonl or Hub id (default: demo)")
    p.add_argument("--split", default="train", help="split, for Hub datasets")
    p.add_argument("--limit", type=int, default=None, help="only the first N rows")
    p.add_argument("--image-column", default="image")
    p.add_argument("--bbox-column", default="bbox")
    p.add_argument(
        "--bbox-format", choices=["xywh", "xyxy"], default=None, help="default: xywh (demo: xyxy)"
    )
    p.add_argument("--max-boxes", type=int, default=10)
    p.add_argument("--mode", choices=["marked", "crop"], default="marked")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument(
        "--max-new-tokens", type=int, default=None, help="default: 512 (32 with the tiny model)"
    )
    p.add_argument("--max-pixels", type=int, default=None, help="processor max_pixels")
    p.add_argument("--device", default=None, help="e.g. cuda:0 or cpu")
    p.add_argument("--output", default="outputs/region_captions", help="save_to_disk folder")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    from hfgcot import add_region_captions
    from hfgcot.io import demo_dataset, load_input
    from hfgcot.run.local import status_summary
    from hfgcot.testing.tiny import get_tiny_vlm_path

    model = args.model or get_tiny_vlm_path()
    max_new_tokens = args.max_new_tokens or (512 if args.model else 32)
    if args.input:
        ds = load_input(args.input, image_column=args.image_column, split=args.split)
        bbox_format = args.bbox_format or "xywh"
    else:  # the demo rows carry {"label", "bbox": [x1, y1, x2, y2]} objects
        ds = demo_dataset()
        ds = ds.map(
            lambda row: {args.bbox_column: [o["bbox"] for o in row["objects"]]},
            desc="boxes from objects",
        ).select_columns([args.image_column, args.bbox_column])
        bbox_format = args.bbox_format or "xyxy"
    if args.limit is not None:
        ds = ds.select(range(min(args.limit, len(ds))))
    out = add_region_captions(
        ds,
        model,
        image_column=args.image_column,
        bbox_column=args.bbox_column,
        bbox_format=bbox_format,
        max_boxes=args.max_boxes,
        mode=args.mode,
        batch_size=args.batch_size,
        max_new_tokens=max_new_tokens,
        max_pixels=args.max_pixels,
        device=args.device,
    )
    out.save_to_disk(args.output)
    print(f"{len(out)} rows -> {args.output}  (datasets.load_from_disk)")
    print(f"status: {status_summary(out, 'region_caption_status')}")
    marked = next((m for m in out["image_with_bbox"] if m is not None), None)
    if marked is not None:
        marked.save(Path(args.output) / "preview.png")
        print(f"preview: {Path(args.output) / 'preview.png'}")
    for i, row in enumerate(out.select(range(min(2, len(out))))):
        print(f"--- row {i}: {row['region_caption_status']} ({row['valid_bboxes_num']} regions)")
        print(f"answer: {row['answer']!r}"[:300])
        for k, caption in enumerate(row["region_captions"], 1):
            print(f"  region {k}: {caption!r}"[:200])
    return 0


if __name__ == "__main__":
    sys.exit(main())
