"""Grounded Chain-of-Thought on a Ray cluster: one model per GPU, parquet on shared storage.

Usage (on a Ray cluster, one actor per GPU)::

    ray start --head                      # or an existing cluster (KubeRay, Anyscale, ...)
    python examples/gcot_ray.py --address auto --input my-org/my-vqa \\
        --model Qwen/Qwen2.5-VL-3B-Instruct --num-actors 8 --num-gpus-per-actor 1 \\
        --batch-size 16 --output-dir s3://my-bucket/gcot/run-1 --save-to-disk out/gcot

Offline smoke test on this machine (local Ray, the embedded tiny model, the shipped demo data)::

    python examples/gcot_ray.py --tiny --num-actors 2 --output-dir outputs/gcot_ray

Needs ``pip install 'hfgcot[ray]'``. Every Ray node must have hfgcot installed and reach the model
(a Hub id, or a folder on a shared filesystem) and ``--output-dir`` (s3://, gs:// or a shared
folder). The result loads back as a ``datasets.Dataset`` with the input's row order.
"""

from __future__ import annotations

import argparse
import logging
import sys

EXAMPLE = """example:
  python examples/gcot_ray.py --address auto --input my-org/my-vqa \\
      --model Qwen/Qwen2.5-VL-3B-Instruct --num-actors 8 --num-gpus-per-actor 1 \\
      --batch-size 16 --output-dir s3://my-bucket/gcot/run-1 --save-to-disk out/gcot

  python examples/gcot_ray.py --tiny --num-actors 2 --output-dir outputs/gcot_ray   # offline
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description="Add GCoT columns with a pool of Ray actors (one model per actor).",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--input", default=None, help="saved dataset, .jsonl or Hub id (default: demo)")
    p.add_argument("--split", default="train")
    p.add_argument("--limit", type=int, default=None, help="only the first N rows")
    p.add_argument("--output-dir", required=True, help="parquet folder every Ray node can reach")
    p.add_argument("--overwrite", action="store_true", help="replace parquet in --output-dir")
    p.add_argument("--save-to-disk", default=None, help="also save the result (save_to_disk)")
    p.add_argument("--address", default=None, help='Ray address: "auto" for a running cluster')
    p.add_argument("--num-actors", type=int, default=1, help="actors = models (= GPUs to use)")
    p.add_argument("--num-gpus-per-actor", type=float, default=0, help="1 on a GPU cluster")
    p.add_argument("--model", default="Qwen/Qwen2.5-VL-3B-Instruct", help="Hub id or shared folder")
    p.add_argument("--tiny", action="store_true", help="use the embedded tiny model (offline)")
    p.add_argument("--batch-size", type=int, default=8, help="rows per Ray batch and generate")
    p.add_argument("--max-new-tokens", type=int, default=512)
    p.add_argument("--max-pixels", type=int, default=None, help="processor max_pixels")
    p.add_argument("--image-column", default="image")
    p.add_argument("--question-column", default="question")
    p.add_argument("--answer-column", default="answer")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )

    import ray

    from hfgcot.io import demo_dataset, load_input
    from hfgcot.ray import add_gcot_ray
    from hfgcot.run.local import status_summary

    ray.init(address=args.address)
    if args.input is None:
        ds = demo_dataset()
    else:
        ds = load_input(args.input, image_column=args.image_column, split=args.split)
    if args.limit is not None:
        ds = ds.select(range(min(args.limit, len(ds))))
    model = args.model
    max_new_tokens = args.max_new_tokens
    if args.tiny:
        from hfgcot.testing.tiny import get_tiny_vlm_path

        model, max_new_tokens = get_tiny_vlm_path(), min(max_new_tokens, 32)

    out = add_gcot_ray(
        ds,
        model,
        output_dir=args.output_dir,
        overwrite=args.overwrite,
        num_actors=args.num_actors,
        num_gpus_per_actor=args.num_gpus_per_actor,
        max_pixels=args.max_pixels,
        batch_size=args.batch_size,
        max_new_tokens=max_new_tokens,
        image_column=args.image_column,
        question_column=args.question_column,
        answer_column=args.answer_column,
    )
    if args.save_to_disk:
        out.save_to_disk(args.save_to_disk)
    print(f"{len(out)} rows -> {args.output_dir} (parquet)")
    print(f"status: {status_summary(out, 'gcot_status')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
