"""Fine-tune a Qwen-VL model for grounding: box data -> chat rows -> transformers.Trainer -> eval.

The well-known Qwen2.5-VL grounding recipe (e.g. TextVQA with boxes) with the coordinates right by
construction: :func:`hfgcot.to_grounding_sft` writes each box in the frame the training processor
will really show the model, :class:`hfgcot.GroundingCollator` puts the loss on the answer only and
checks every row's frame against the processor, and the evaluation maps predictions back to
original pixels (Acc@0.5, mean IoU).

Without --model and --dataset it runs offline on the embedded tiny model (random weights) and a
synthetic dataset of 4 rows; with a high learning rate it overfits them in a few seconds on a CPU
(the loss falls far below half, and the evaluation finds the boxes):

    python examples/train_grounding.py --max-steps 50 --lr 1e-2 --eval-rows 4 --threads 1

On a GPU with the real model and your data (``image``, ``question``, ``bbox`` = ``[x, y, w, h]``
pixels; a ``save_to_disk`` folder, a ``.jsonl`` file or a Hub id):

    python examples/train_grounding.py \\
        --model Qwen/Qwen2.5-VL-3B-Instruct --dataset my-org/textvqa-boxes --split train \\
        --max-pixels 1003520 --bf16 --gradient-checkpointing --freeze-vision \\
        --batch-size 4 --grad-accum 4 --lr 1e-5 --epochs 1 --output-dir out/qwen-grounding \\
        --eval-rows 500

Add ``--lora`` (needs ``pip install peft``) to train LoRA adapters on the language model instead of
all weights; the merged model is saved for evaluation and the adapter in ``<output-dir>/adapter``.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
from pathlib import Path
from typing import Any

logger = logging.getLogger("train_grounding")

EXAMPLE = """examples:
  # offline smoke run: tiny embedded model, synthetic data, CPU
  python examples/train_grounding.py --max-steps 50 --lr 1e-2 --eval-rows 4 --threads 1

  # real fine-tune on a GPU (full weights, vision tower frozen)
  python examples/train_grounding.py \\
      --model Qwen/Qwen2.5-VL-3B-Instruct --dataset my-org/textvqa-boxes --split train \\
      --max-pixels 1003520 --bf16 --gradient-checkpointing --freeze-vision \\
      --batch-size 4 --grad-accum 4 --lr 1e-5 --epochs 1 \\
      --output-dir out/qwen-grounding --eval-rows 500

  # LoRA instead of a full fine-tune (pip install peft)
  python examples/train_grounding.py --model Qwen/Qwen2.5-VL-3B-Instruct \\
      --dataset data/boxes.jsonl --lora --lora-r 16 --lr 2e-4 --bf16

--dataset takes a save_to_disk folder, a .jsonl file (image paths relative to it) or a Hub id with
columns image, question, bbox ([x, y, w, h] pixels; --bbox-format xyxy for corners).
"""

LORA_TARGETS = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="train_grounding.py",
        description='Fine-tune a Qwen-VL model to answer {"bbox_2d": [x1, y1, x2, y2]} for a '
        "question or referring phrase, then evaluate Acc@0.5 / mean IoU.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--model", default=None, help="Hub id or folder (default: embedded tiny model)")
    p.add_argument(
        "--dataset",
        default=None,
        help="save_to_disk folder, .jsonl or Hub id "
        "(default: a synthetic dataset of coloured rectangles)",
    )
    p.add_argument("--split", default="train", help="split of a Hub dataset")
    p.add_argument("--limit", type=int, default=None, help="only the first N rows")
    p.add_argument("--synthetic-rows", type=int, default=4, help="rows of the synthetic dataset")
    p.add_argument("--image-column", default="image")
    p.add_argument("--text-column", default="question")
    p.add_argument("--bbox-column", default="bbox")
    p.add_argument("--bbox-format", choices=["xywh", "xyxy"], default="xywh")
    p.add_argument("--min-pixels", type=int, default=None, help="processor min_pixels")
    p.add_argument("--max-pixels", type=int, default=None, help="processor max_pixels")
    p.add_argument("--output-dir", default="outputs/train_grounding")
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--max-steps", type=int, default=-1, help="overrides --epochs when > 0")
    p.add_argument("--batch-size", type=int, default=4, help="rows per device and step")
    p.add_argument("--grad-accum", type=int, default=1, help="gradient accumulation steps")
    p.add_argument("--lr", type=float, default=1e-5, help="learning rate")
    p.add_argument("--warmup-steps", type=float, default=0.0, help="steps, or a ratio if < 1")
    p.add_argument("--scheduler", default="constant", help="lr scheduler (constant, cosine...)")
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--max-length", type=int, default=None, help="refuse longer rows (tokens)")
    p.add_argument("--dtype", default="auto", help="weights dtype: auto, bfloat16, float32")
    p.add_argument("--bf16", action="store_true", help="bf16 mixed precision")
    p.add_argument("--gradient-checkpointing", action="store_true")
    p.add_argument("--freeze-vision", action="store_true", help="train the language model only")
    p.add_argument("--lora", action="store_true", help="LoRA adapters (needs peft)")
    p.add_argument("--lora-r", type=int, default=16)
    p.add_argument("--lora-alpha", type=int, default=32)
    p.add_argument("--lora-dropout", type=float, default=0.05)
    p.add_argument(
        "--eval-rows",
        type=int,
        default=0,
        help="after training, predict and score this many training rows (0: skip)",
    )
    p.add_argument("--eval-max-new-tokens", type=int, default=32)
    p.add_argument("--no-save", action="store_true", help="do not save the model")
    p.add_argument("--logging-steps", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch (CPU runs)")
    return p


def synthetic_dataset(n: int = 4, seed: int = 0) -> Any:
    """``n`` images of different sizes, each with one coloured rectangle and its ``[x, y, w, h]``."""
    import random

    from datasets import Dataset, Features, Image, List, Value
    from PIL import Image as PILImage
    from PIL import ImageDraw

    rng = random.Random(seed)
    colours = {"red": (220, 30, 30), "green": (30, 180, 60), "blue": (40, 70, 220)}
    sizes = [(84, 56), (112, 84), (70, 98), (140, 70), (98, 98), (126, 56)]
    rows: dict[str, list] = {"image": [], "question": [], "bbox": []}
    for i in range(n):
        w, h = sizes[i % len(sizes)]
        name, rgb = list(colours.items())[i % len(colours)]
        bw, bh = rng.randint(w // 5, w // 2), rng.randint(h // 5, h // 2)
        x, y = rng.randint(0, w - bw), rng.randint(0, h - bh)
        image = PILImage.new("RGB", (w, h), (235, 235, 225))
        ImageDraw.Draw(image).rectangle([x, y, x + bw - 1, y + bh - 1], fill=rgb)
        rows["image"].append(image)
        rows["question"].append(f"the {name} rectangle")
        rows["bbox"].append([float(x), float(y), float(bw), float(bh)])
    features = Features(
        {"image": Image(), "question": Value("string"), "bbox": List(Value("float64"))}
    )
    return Dataset.from_dict(rows, features=features)


def _freeze_vision(model: Any) -> None:
    inner = getattr(model, "model", model)
    visual = getattr(inner, "visual", None) or getattr(model, "visual", None)
    if visual is None:
        raise SystemExit("--freeze-vision: this model has no 'visual' tower")
    for param in visual.parameters():
        param.requires_grad_(False)


def _lora(model: Any, args: argparse.Namespace) -> Any:
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError:
        raise SystemExit("--lora needs peft: pip install peft") from None
    config = LoraConfig(
        r=args.lora_r,
        lora_alpha=args.lora_alpha,
        lora_dropout=args.lora_dropout,
        target_modules=LORA_TARGETS,
        task_type="CAUSAL_LM",
    )
    model = get_peft_model(model, config)
    model.print_trainable_parameters()
    return model


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the recipe; returns ``{"losses", "rows", "trained_rows", "metrics", "output_dir"}``."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    from transformers import (
        AutoConfig,
        AutoModelForImageTextToText,
        AutoProcessor,
        Trainer,
        TrainingArguments,
        set_seed,
    )

    from hfgcot import GroundingCollator, to_grounding_sft
    from hfgcot.geometry.frames import family_for_model_type
    from hfgcot.io import load_input
    from hfgcot.run.local import status_summary
    from hfgcot.testing.tiny import get_tiny_vlm_path

    set_seed(args.seed)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    model_id = args.model or get_tiny_vlm_path()
    family = family_for_model_type(AutoConfig.from_pretrained(model_id).model_type)
    proc_kwargs = {
        k: v for k, v in (("min_pixels", args.min_pixels), ("max_pixels", args.max_pixels)) if v
    }
    processor = AutoProcessor.from_pretrained(model_id, **proc_kwargs)

    if args.dataset:
        raw = load_input(
            args.dataset, image_column=args.image_column, split=args.split, limit=args.limit
        )
    else:
        raw = synthetic_dataset(args.synthetic_rows, seed=args.seed)
    # The boxes are written in the frame of *this* processor (same min/max pixels, same factor).
    sft = to_grounding_sft(
        raw,
        image_column=args.image_column,
        text_column=args.text_column,
        bbox_column=args.bbox_column,
        bbox_format=args.bbox_format,
        model_family=family,
        processor=processor,
    )
    print(f"sft rows: {len(sft)}  status: {status_summary(sft, 'sft_status')}")
    train = sft.filter(lambda s: s == "ok", input_columns="sft_status")
    if len(train) == 0:
        raise SystemExit("no trainable rows (see the status summary above)")

    model = AutoModelForImageTextToText.from_pretrained(model_id, dtype=args.dtype)
    if args.freeze_vision:
        _freeze_vision(model)
    if args.lora:
        model = _lora(model, args)
    if args.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()

    training_args = TrainingArguments(
        output_dir=args.output_dir,
        num_train_epochs=args.epochs,
        max_steps=args.max_steps,
        per_device_train_batch_size=args.batch_size,
        gradient_accumulation_steps=args.grad_accum,
        learning_rate=args.lr,
        lr_scheduler_type=args.scheduler,
        warmup_steps=args.warmup_steps,
        weight_decay=args.weight_decay,
        bf16=args.bf16,
        logging_steps=args.logging_steps,
        save_strategy="no",
        report_to=[],
        remove_unused_columns=False,  # the collator needs `messages`, `image` and `sft_frame`
        dataloader_num_workers=0,
        seed=args.seed,
        disable_tqdm=True,
    )
    trainer = Trainer(
        model=model,
        args=training_args,
        train_dataset=train,
        data_collator=GroundingCollator(processor, max_length=args.max_length),
    )
    trainer.train()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    if losses:
        print(f"loss: first {losses[0]:.4f}  last {losses[-1]:.4f}  ({len(losses)} logs)")

    result: dict[str, Any] = {
        "losses": losses,
        "rows": len(sft),
        "trained_rows": len(train),
        "metrics": None,
        "output_dir": args.output_dir,
    }
    if args.no_save and not args.eval_rows:
        return result
    out = Path(args.output_dir)
    final = trainer.model
    if args.lora:
        final.save_pretrained(out / "adapter")
        final = final.merge_and_unload()
    final.save_pretrained(out)
    processor.save_pretrained(out)
    if args.eval_rows:
        result["metrics"] = _evaluate(out, train, args)
        print("eval:", json.dumps(result["metrics"], indent=2))
    return result


def _evaluate(model_dir: Path, rows: Any, args: argparse.Namespace) -> dict[str, Any]:
    """Predict boxes with the saved model on the first ``--eval-rows`` rows and score them."""
    from hfgcot import add_grounding_predictions, evaluate_grounding

    subset = rows.select(range(min(args.eval_rows, len(rows))))
    predicted = add_grounding_predictions(
        subset,
        model=str(model_dir),
        image_column=args.image_column,
        max_new_tokens=args.eval_max_new_tokens,
        batch_size=args.batch_size,
    )
    metrics = evaluate_grounding(predicted, "pred_bbox", "gt_bbox")
    metrics["example"] = {"pred_text": predicted[0]["pred_text"], "gt": predicted[0]["gt_bbox"]}
    return metrics


if __name__ == "__main__":
    result = main()
    sys.exit(0 if result["losses"] and math.isfinite(result["losses"][-1]) else 1)
