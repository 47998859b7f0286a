"""Command line: ``hfgcot gcot``, ``hfgcot demo``.

hfgcot gcot --input questions.jsonl --output out/gcot --model Qwen/Qwen2.5-VL-3B-Instruct
hfgcot demo
"""

from __future__ import annotations

import argparse
import logging
import sys

GCOT_EXAMPLE = """example:
  hfgcot gcot --input data/questions.jsonl --output out/gcot \\
      --model Qwen/Qwen2.5-VL-3B-Instruct --batch-size 16 --max-pixels 1003520

  --input takes a folder written by Dataset.save_to_disk, a .jsonl file (one row per line, image
  paths relative to the file) or a Hub dataset id. The output folder loads back with
  datasets.load_from_disk(<output>).
"""


def _add_model_args(p: argparse.ArgumentParser, default: str | None) -> None:
    p.add_argument("--model", default=default, help="Hub id or local folder (default: %(default)s)")
    p.add_argument("--revision", default=None, help="model revision (branch, tag or commit)")
    p.add_argument("--batch-size", type=int, default=8, help="requests per generate call")
    p.add_argument("--max-new-tokens", type=int, default=512)
    p.add_argument("--min-pixels", type=int, default=None, help="processor min_pixels")
    p.add_argument("--max-pixels", type=int, default=None, help="processor max_pixels")
    p.add_argument("--device", default=None, help="e.g. cuda:0 or cpu (default: GPU if any)")
    p.add_argument("--num-proc", type=int, default=None, help="map worker processes (one per GPU)")


def build_parser() -> argparse.ArgumentParser:
    from hfgcot import __version__
    from hfgcot.vlm import DEFAULT_MODEL

    parser = argparse.ArgumentParser(
        prog="hfgcot",
        description="Turn image datasets into grounded multimodal training data with Qwen-VL.",
    )
    parser.add_argument("--version", action="version", version=f"hfgcot {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    g = sub.add_parser(
        "gcot",
        help="add Grounded Chain-of-Thought columns",
        description="Reasoning + keywords -> per-keyword boxes -> boxes injected into the reasoning.",
        epilog=GCOT_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    g.add_argument("--input", required=True, help="saved dataset folder, .jsonl file or Hub id")
    g.add_argument("--output", required=True, help="folder to save the result (save_to_disk)")
    g.add_argument("--split", default="train", help="split, for Hub datasets")
    g.add_argument("--limit", type=int, default=None, help="only the first N rows")
    g.add_argument("--image-column", default="image")
    g.add_argument("--question-column", default="question")
    g.add_argument("--answer-column", default="answer")
    g.add_argument("--box-space", choices=["pixels", "model", "normalized"], default="pixels")
    _add_model_args(g, DEFAULT_MODEL)

    d = sub.add_parser(
        "demo",
        help="run GCoT on the shipped example data with the embedded tiny model (offline)",
        description="Builds (once) the embedded tiny model, runs GCoT on the example dataset and "
        "writes the dataset and pictures of its boxes.",
    )
    d.add_argument("--output", default="outputs/demo", help="output folder (default: %(default)s)")
    d.add_argument("--model", default=None, help="another model to use instead of the tiny one")
    d.add_argument("--max-new-tokens", type=int, default=64)
    return parser


def _cmd_gcot(args: argparse.Namespace) -> int:
    from hfgcot.io import load_input
    from hfgcot.runner import status_summary
    from hfgcot.stages.gcot import add_gcot

    ds = load_input(args.input, image_column=args.image_column, split=args.split, limit=args.limit)
    out = add_gcot(
        ds,
        args.model,
        image_column=args.image_column,
        question_column=args.question_column,
        answer_column=args.answer_column,
        batch_size=args.batch_size,
        max_new_tokens=args.max_new_tokens,
        box_space=args.box_space,
        revision=args.revision,
        min_pixels=args.min_pixels,
        max_pixels=args.max_pixels,
        device=args.device,
        num_proc=args.num_proc,
    )
    out.save_to_disk(args.output)
    print(f"{len(out)} rows -> {args.output}")
    print(f"status: {status_summary(out, 'gcot_status')}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from hfgcot.demo import run_demo

    result = run_demo(args.output, model=args.model, max_new_tokens=args.max_new_tokens)
    print(f"model:    {result.model}")
    print(f"dataset:  {result.dataset_dir}  (datasets.load_from_disk)")
    print(f"pictures: {result.pictures_dir}")
    print(f"status:   {result.summary}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return {"gcot": _cmd_gcot, "demo": _cmd_demo}[args.command](args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
