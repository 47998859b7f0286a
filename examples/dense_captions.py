"""Dense captions, the ScaleCap way, for an image dataset (``hfgcot.add_dense_captions``).

Without ``--model`` it runs offline on the embedded tiny Qwen2.5-VL (random weights: it shows the
plumbing, not caption quality) and, without ``--input``, on the images shipped with hfgcot.

    python examples/dense_captions.py
    python examples/dense_captions.py --model Qwen/Qwen2.5-VL-3B-Instruct \\
        --input my-org/my-images --split train --limit 200 \\
        --checker contrastive --threshold 0.2 --max-questions 5 --batch-size 8 \\
        --max-pixels 1003520 --output out/dense
"""

from __future__ import annotations

import argparse
import logging
import sys

EXAMPLE = """example:
  python examples/dense_captions.py --model Qwen/Qwen2.5-VL-3B-Instruct \\
      --input my-org/my-images --split train --limit 200 \\
      --checker contrastive --threshold 0.2 --max-questions 5 --batch-size 8 \\
      --max-pixels 1003520 --output out/dense

  Without --model: the embedded tiny offline model; without --input: the shipped demo images.
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description="Add ScaleCap-style dense captions (init_caption, golden_sentences, q_list, "
        "final_details, final_caption) to an image dataset.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--model", default=None, help="Hub id or folder (default: the tiny model)")
    p.add_argument("--input", default=None, help="saved dataset, .jsonl or Hub id (default: demo)")
    p.add_argument("--split", default="train", help="split, for Hub datasets")
    p.add_argument("--limit", type=int, default=None, help="only the first N rows")
    p.add_argument("--image-column", default="image")
    p.add_argument("--checker", choices=["yesno", "contrastive"], default="yesno")
    p.add_argument("--threshold", type=float, default=0.0, help="contrastive: keep above this")
    p.add_argument("--max-questions", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument(
        "--max-new-tokens", type=int, default=None, help="default: 512 (32 with the tiny model)"
    )
    p.add_argument("--max-pixels", type=int, default=None, help="processor max_pixels")
    p.add_argument("--device", default=None, help="e.g. cuda:0 or cpu")
    p.add_argument("--output", default="outputs/dense_captions", help="save_to_disk folder")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    from hfgcot import add_dense_captions
    from hfgcot.io import demo_dataset, load_input
    from hfgcot.run.local import status_summary
    from hfgcot.testing.tiny import get_tiny_vlm_path

    model = args.model or get_tiny_vlm_path()
    max_new_tokens = args.max_new_tokens or (512 if args.model else 32)
    if args.input:
        ds = load_input(args.input, image_column=args.image_column, split=args.split)
    else:
        ds = demo_dataset().select_columns([args.image_column])
    if args.limit is not None:
        ds = ds.select(range(min(args.limit, len(ds))))
    out = add_dense_captions(
        ds,
        model,
        image_column=args.image_column,
        checker=args.checker,
        threshold=args.threshold,
        max_questions=args.max_questions,
        batch_size=args.batch_size,
        max_new_tokens=max_new_tokens,
        max_pixels=args.max_pixels,
        device=args.device,
    )
    out.save_to_disk(args.output)
    print(f"{len(out)} rows -> {args.output}  (datasets.load_from_disk)")
    print(f"status: {status_summary(out, 'dense_caption_status')}")
    for i, row in enumerate(out.select(range(min(2, len(out))))):
        print(f"--- row {i}: {row['dense_caption_status']}")
        print(f"golden sentences: {len(row['golden_sentences'])}/{len(row['sentences'])}")
        print(f"questions: {row['q_list'][:4]}")
        print(f"final caption: {row['final_caption'][:300]!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
