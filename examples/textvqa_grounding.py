"""TextVQA with boxes -> grounding SFT rows (and, optionally, a zero-shot grounding score).

Input rows (the schema of the TextVQA-with-evidence-boxes datasets): ``image``, ``question``,
``answer`` (list of the annotators' answers) and ``bbox`` = ``[x, y, w, h]`` in pixels of the
image. Output: the same rows with ``messages`` (user: image + question + grounding instruction;
assistant: ``{"bbox_2d": [x1, y1, x2, y2]}`` in the frame of the model family that will be
trained), ``gt_bbox`` (original pixels, xyxy), ``gt_bbox_model``, ``sft_frame``, ``model_family``
and ``sft_status``. Train on them with ``examples/train_grounding.py --dataset <output>``.

    python examples/textvqa_grounding.py --input my-org/textvqa-boxes --split train \\
        --output out/textvqa_sft --max-pixels 1003520

    # also score a model zero-shot on the first 200 rows (Acc@0.5, mean IoU, by image size)
    python examples/textvqa_grounding.py --input data/textvqa_boxes --output out/textvqa_sft \\
        --eval-model Qwen/Qwen2.5-VL-3B-Instruct --eval-rows 200

Pass the resize limits the training processor will use (``--min-pixels``/``--max-pixels``, or
``--processor <model id>`` to read them from it): Qwen2.5-VL boxes are pixels of the resized
image, so they depend on them.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any

from hfgcot.geometry.families import known_families

EXAMPLE = """examples:
  python examples/textvqa_grounding.py --input my-org/textvqa-boxes --split train \\
      --output out/textvqa_sft --max-pixels 1003520
  python examples/textvqa_grounding.py --input data/textvqa.jsonl --output out/textvqa_sft \\
      --model-family qwen3_vl --drop-bad
  python examples/textvqa_grounding.py --input data/textvqa_boxes --output out/textvqa_sft \\
      --processor Qwen/Qwen2.5-VL-3B-Instruct --eval-model Qwen/Qwen2.5-VL-3B-Instruct

--input: a save_to_disk folder, a .jsonl file (image paths relative to it) or a Hub id with columns
image, question, answer (list) and bbox ([x, y, w, h] pixels).
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="textvqa_grounding.py",
        description="Convert TextVQA-with-boxes rows into grounding SFT chat rows.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--input", required=True, help="save_to_disk folder, .jsonl or Hub id")
    p.add_argument("--output", required=True, help="folder for the result (save_to_disk)")
    p.add_argument("--split", default="train")
    p.add_argument("--limit", type=int, default=None, help="only the first N rows")
    p.add_argument("--model-family", choices=known_families(), default="qwen2_5_vl")
    p.add_argument("--min-pixels", type=int, default=None)
    p.add_argument("--max-pixels", type=int, default=None)
    p.add_argument("--processor", default=None, help="read the resize limits from this model")
    p.add_argument("--drop-bad", action="store_true", help="keep only rows with sft_status ok")
    p.add_argument("--num-proc", type=int, default=None)
    p.add_argument("--eval-model", default=None, help="score this model's grounding zero-shot")
    p.add_argument("--eval-rows", type=int, default=200)
    p.add_argument("--batch-size", type=int, default=8)
    return p


def convert(
    dataset: Any,
    *,
    model_family: str = "qwen2_5_vl",
    min_pixels: int | None = None,
    max_pixels: int | None = None,
    processor: Any = None,
    drop_bad: bool = False,
    num_proc: int | None = None,
) -> Any:
    """TextVQA-with-boxes rows -> grounding SFT rows (every row kept unless ``drop_bad``)."""
    from hfgcot import to_grounding_sft

    missing = {"image", "question", "bbox"} - set(dataset.column_names)
    if missing:
        raise KeyError(f"TextVQA rows need columns {sorted(missing)} (have {dataset.column_names})")
    sft = to_grounding_sft(
        dataset,
        image_column="image",
        text_column="question",
        bbox_column="bbox",
        bbox_format="xywh",
        model_family=model_family,  # type: ignore[arg-type]
        min_pixels=min_pixels,
        max_pixels=max_pixels,
        processor=processor,
        num_proc=num_proc,
    )
    if drop_bad:
        sft = sft.filter(lambda s: s == "ok", input_columns="sft_status")
    return sft


def main(argv: list[str] | None = None) -> Any:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from hfgcot.io import load_input
    from hfgcot.run.local import status_summary

    processor = None
    if args.processor:
        from transformers import AutoProcessor

        kwargs = {
            k: v for k, v in (("min_pixels", args.min_pixels), ("max_pixels", args.max_pixels)) if v
        }
        processor = AutoProcessor.from_pretrained(args.processor, **kwargs)
    ds = load_input(args.input, image_column="image", split=args.split, limit=args.limit)
    sft = convert(
        ds,
        model_family=args.model_family,
        min_pixels=args.min_pixels,
        max_pixels=args.max_pixels,
        processor=processor,
        drop_bad=args.drop_bad,
        num_proc=args.num_proc,
    )
    sft.save_to_disk(args.output)
    print(f"{len(sft)} rows -> {args.output}")
    print(f"status: {status_summary(sft, 'sft_status')}")
    ok = [i for i, s in enumerate(sft["sft_status"]) if s == "ok"]
    if ok:
        row = sft[ok[0]]
        print("example user turn:     ", json.dumps(row["messages"][0]["content"][1]["text"]))
        print("example assistant turn:", row["messages"][1]["content"][0]["text"])
        print("original box (xyxy):   ", row["gt_bbox"], " frame:", row["sft_frame"])
    if args.eval_model:
        from hfgcot import add_grounding_predictions, evaluate_grounding

        subset = sft.select(range(min(args.eval_rows, len(sft))))
        predicted = add_grounding_predictions(
            subset,
            model=args.eval_model,
            batch_size=args.batch_size,
            min_pixels=args.min_pixels,
            max_pixels=args.max_pixels,
        )
        print(json.dumps(evaluate_grounding(predicted), indent=2))
    return sft


if __name__ == "__main__":
    main()
    sys.exit(0)
