"""The training loop: the vision phase, then every task, on a time budget; quick evaluations.

The learning-rate schedule and the curriculum follow the elapsed share of a time budget, so a
busy machine trains fewer steps but still finishes its schedule. Intermediate checkpoints go to
``<output-dir>-ckpt`` every ``--save-every`` steps; the final model and its
``training_info.json`` (steps, losses, quick evaluations, every argument) to ``--output-dir``.

    python -m tools.tiny_shapes --output-dir hfgcot/data/tiny-shapes    # about 42 minutes, CPU
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForImageTextToText, AutoProcessor

from hfgcot.testing.tiny import build_tiny_tokenizer, prompt_phrases

from .data import Batches, worker_loader
from .evaluate import quick_eval, tail_mean
from .losses import (
    AttentionTap,
    answer_loss,
    attention_loss,
    box_loss,
    dense_loss,
    next_box_loss,
    position_loss,
    shape_attention_loss,
)
from .model import (
    box_width,
    build_model,
    build_processor,
    dense_head,
    number_table,
    save,
    word_table,
)
from .options import lr_at, parse_args, smoothing_at
from .rows import corpus
from .vision import pretrain_vision

logger = logging.getLogger("train_tiny_shapes")


@dataclass
class Probes:
    """The throw-away linear heads of the main phase (never saved): grid cell, box, dense."""

    cell: Any
    box: Any
    dense: Any

    def parameters(self) -> list[Any]:
        return [*self.cell.parameters(), *self.box.parameters(), *self.dense.parameters()]


@dataclass
class Lookups:
    """What the auxiliary losses read besides the batch: the attention tap and token tables."""

    tap: AttentionTap | None
    words: dict[str, Any] | None  # colour and shape words (--aux-attention-shapes)
    numbers: dict[str, Any] | None  # number tokens: coordinates smoothed and located


@dataclass
class Record:
    """Running record of the main phase."""

    start: float
    step: int = 0
    losses: list[float] = field(default_factory=list)
    aux_losses: list[float] = field(default_factory=lambda: [0.0])
    attention_losses: list[float] = field(default_factory=lambda: [0.0])
    history: list[dict[str, Any]] = field(default_factory=list)

    def minutes(self) -> float:
        return (time.time() - self.start) / 60


def load_or_build(args: argparse.Namespace) -> tuple[Any, Any]:
    """``(model, processor)``: from ``--init``, or a new tokenizer, processor and model."""
    if args.init:
        processor = AutoProcessor.from_pretrained(args.init)
        model = AutoModelForImageTextToText.from_pretrained(args.init, dtype=torch.float32)
        return model, processor
    t0 = time.time()
    tokenizer = build_tiny_tokenizer(
        args.vocab_size,
        texts=corpus(args.tokenizer_scenes),
        number_tokens=args.number_tokens,
        phrases=prompt_phrases() if args.phrase_tokens else (),
    )
    logger.info("tokenizer: %d tokens (%.1fs)", len(tokenizer), time.time() - t0)
    processor = build_processor(tokenizer, args.min_pixels, args.max_pixels)
    return build_model(tokenizer, args), processor


def make_optimizer(model: Any, args: argparse.Namespace) -> tuple[Any, Probes]:
    """AdamW over the model (vision tower at a lower rate, no decay on norms and embeddings)
    and the probes of the auxiliary losses."""
    # The vision tower gets a lower learning rate: at the text model's rate its small merger
    # matrices blow up and every image token collapses to one large constant vector.
    groups: dict[tuple[bool, bool], list[Any]] = {}
    for name, param in model.named_parameters():
        vision = "visual" in name
        decay = param.dim() >= 2 and "embed" not in name
        groups.setdefault((vision, decay), []).append(param)
    hidden = model.config.text_config.hidden_size
    probes = Probes(
        cell=torch.nn.Linear(hidden, 2),
        box=torch.nn.Linear(hidden, box_width(args)),
        dense=dense_head(hidden, args),
    )
    groups[(False, False)] = groups.get((False, False), []) + probes.parameters()
    optim = torch.optim.AdamW(
        [
            {
                "params": params,
                "weight_decay": args.weight_decay if decay else 0.0,
                "lr_scale": args.vision_lr_scale if vision else 1.0,
            }
            for (vision, decay), params in groups.items()
        ],
        lr=args.lr,
        betas=(0.9, 0.98),
    )
    return optim, probes


def lookups(model: Any, processor: Any, args: argparse.Namespace) -> Lookups:
    """The attention tap and the token tables the switched-on losses need."""
    vocab = model.config.text_config.vocab_size
    looks = args.aux_attention or args.aux_attention_shapes
    return Lookups(
        tap=AttentionTap(model, args.aux_attention_layer) if looks else None,
        words=word_table(processor.tokenizer, vocab) if args.aux_attention_shapes else None,
        numbers=number_table(processor.tokenizer, vocab) if args.number_tokens else None,
    )


def attention_term(batch: dict, dense: dict, model: Any, look: Lookups, args: Any) -> Any:
    """The looks: from grounding answers (``--aux-attention``) and before shape words."""
    on_coordinates = look.numbers if args.aux_attention_on == "coordinates" else None
    term = args.aux_attention * attention_loss(
        look.tap, batch, dense, model.config, args.aux_attention_heads, on_coordinates
    )
    if args.aux_attention_shapes:
        term = term + args.aux_attention_shapes * shape_attention_loss(
            look.tap, batch, dense, model.config, look.words, args.aux_attention_heads
        )
    return term


def probe_term(
    hidden: Any,
    batch: dict,
    boxes: Any,
    dense: dict | None,
    model: Any,
    probes: Probes,
    look: Lookups,
    args: Any,
) -> Any:
    """The auxiliary probes: grid cell, the answer's box (or the next coordinate), dense."""
    aux = args.aux_position * position_loss(
        hidden[args.aux_layer], batch, probes.cell, model.config
    )
    if args.box_code_next:
        aux = aux + args.aux_box * next_box_loss(
            hidden[args.aux_box_layer], batch, boxes, probes.box, look.numbers
        )
    else:
        aux = aux + args.aux_box * box_loss(
            hidden[args.aux_box_layer], batch, boxes, probes.box, args.box_code
        )
    if dense is not None:
        aux = aux + args.aux_dense * dense_loss(
            hidden[args.aux_dense_layer],
            batch,
            dense,
            probes.dense,
            model.config,
            args.box_code,
            args.aux_dense_shape_balance,
        )
    return aux


def train_step(
    model: Any,
    batch: dict,
    probes: Probes,
    look: Lookups,
    record: Record,
    progress: float,
    args: Any,
) -> Any:
    """The loss of one batch: the answers, plus the looks and probes that are switched on."""
    boxes = batch.pop("aux_boxes")
    dense = batch.pop("aux_dense", None)
    result, loss = answer_loss(
        model,
        batch,
        args.aux_position or args.aux_box or args.aux_dense,
        look.numbers,
        smoothing_at(progress, args),
    )
    if look.tap is not None and dense is not None:
        aux_attention = attention_term(batch, dense, model, look, args)
        loss = loss + aux_attention
        record.attention_losses.append(float(aux_attention.detach()))
    if result.hidden_states is not None:
        aux = probe_term(result.hidden_states, batch, boxes, dense, model, probes, look, args)
        loss = loss + aux
        record.aux_losses.append(float(aux.detach()))
    return loss


def monitor(
    model: Any, processor: Any, record: Record, lr: float, progress: float, args: Any
) -> None:
    """Log, evaluate and save a checkpoint when their step comes."""
    step = record.step
    if step % args.log_every == 0:
        logger.info(
            "step %d  loss %.4f  aux %.4f  attention %.4f  lr %.2e  progress %.2f  %.2fs/step",
            step,
            tail_mean(record.losses, args.log_every),
            tail_mean(record.aux_losses, args.log_every),
            tail_mean(record.attention_losses, args.log_every),
            lr,
            progress,
            (time.time() - record.start) / step,
        )
    if args.eval_every and step % args.eval_every == 0:
        try:
            metrics = quick_eval(model, processor)
        except Exception:  # noqa: BLE001 - monitoring only; never lose the run for it
            logger.exception("quick eval failed at step %d", step)
            model.train()
            metrics = {}
        record.history.append({"step": step, "minutes": record.minutes(), **metrics})
        logger.info("eval step %d: %s", step, metrics)
    if args.save_every and step % args.save_every == 0:
        out = Path(args.output_dir)
        save(model, processor, out.with_name(out.name + "-ckpt"), args.dtype)


def train(model: Any, processor: Any, optim: Any, probes: Probes, args: Any) -> Record:
    """The main phase: every task, until the budget or ``--max-steps`` is used up."""
    budget = (args.minutes - args.vision_pretrain) * 60
    record = Record(start=time.time())
    loader = worker_loader(Batches(processor, args, record.start, budget))
    look = lookups(model, processor, args)
    for _made_at, batch in loader:
        progress = max(record.step / args.max_steps, (time.time() - record.start) / budget)
        if progress >= 1 or record.step >= args.max_steps:
            break
        lr = lr_at(record.step, progress, args)
        for group in optim.param_groups:
            group["lr"] = lr * group["lr_scale"]
        loss = train_step(model, batch, probes, look, record, progress, args)
        optim.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optim.step()
        record.losses.append(float(loss.detach()))
        record.step += 1
        monitor(model, processor, record, lr, progress, args)
    logger.info("trained %d steps in %.1f min", record.step, record.minutes())
    return record


def finish(model: Any, processor: Any, record: Record, extra: dict, args: Any) -> dict[str, Any]:
    """Save the model, evaluate it once more and write ``training_info.json`` beside it."""
    out = Path(args.output_dir)
    save(model, processor, out, args.dtype)
    try:
        metrics = quick_eval(model, processor, n=args.final_eval_scenes)
    except Exception:  # noqa: BLE001 - monitoring only
        logger.exception("final quick eval failed")
        metrics = {}
    logger.info("final quick eval: %s", metrics)
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    logger.info("saved %s (%.1f MB)", out, size / 1e6)
    info = {
        "steps": record.step,
        "minutes": record.minutes(),
        "parameters": extra["parameters"],
        "final_loss": tail_mean(record.losses, 50),
        "final_aux_loss": tail_mean(record.aux_losses, 50),
        "final_attention_loss": tail_mean(record.attention_losses, 50),
        "quick_eval": metrics,
        "vision_pretrain": extra["vision_pretrain"],
        "history": record.history,
        # the output folder by its name: the machine's paths stay on the machine
        "args": {**vars(args), "output_dir": os.path.basename(os.path.normpath(args.output_dir))},
    }
    (out / "training_info.json").write_text(json.dumps(info, indent=2))
    return info


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Train as ``argv`` says (``python -m tools.tiny_shapes --help``); returns the training info."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model, processor = load_or_build(args)
    processor.tokenizer.padding_side = "right"
    n_params = sum(p.numel() for p in model.parameters())
    logger.info("model: %.2fM parameters", n_params / 1e6)
    model.train()
    optim, probes = make_optimizer(model, args)
    vision_info = pretrain_vision(model, processor, args) if args.vision_pretrain > 0 else None
    record = train(model, processor, optim, probes, args)
    extra = {"parameters": n_params, "vision_pretrain": vision_info}
    return finish(model, processor, record, extra, args)
