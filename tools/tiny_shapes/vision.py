"""The vision phase: the vision tower alone learns what every image token shows."""

from __future__ import annotations

import argparse
import logging
import math
import time
from typing import Any

import torch

from .data import DENSE_CLASSES, VisionBatches, worker_loader
from .evaluate import tail_mean
from .losses import dense_terms
from .model import dense_head

logger = logging.getLogger("train_tiny_shapes")


def pretrain_vision(model: Any, processor: Any, args: argparse.Namespace) -> dict[str, Any]:
    """Train the vision tower alone for ``args.vision_pretrain`` minutes (:func:`dense_terms`
    on its merged tokens, a throw-away linear head), so that image tokens tell shapes apart
    before the language model starts to read them.

    The whole model learns shape only through the answers and the dense probe; measured on its
    own (300 held-out scenes, shape of each object from its tokens), the vision tower gets to
    0.53 after 4 minutes and 0.76 after 12 minutes on one core this way.
    """
    visual = model.model.visual
    head = dense_head(model.config.text_config.hidden_size, args)
    params = [*visual.parameters(), *head.parameters()]
    optim = torch.optim.AdamW(params, lr=args.vision_pretrain_lr, weight_decay=args.weight_decay)
    loader = worker_loader(VisionBatches(processor, args))
    n_col, n_shape = DENSE_CLASSES
    budget = args.vision_pretrain * 60
    start = time.time()
    step, losses, right = 0, [], []
    for pixel_values, grids, dense in loader:
        progress = max(step / args.vision_pretrain_steps, (time.time() - start) / budget)
        if progress >= 1:
            break
        cos = 0.5 * (1 + math.cos(math.pi * progress))
        lr = args.vision_pretrain_lr * min(1.0, (step + 1) / 50) * (0.05 + 0.95 * cos)
        for group in optim.param_groups:
            group["lr"] = lr
        pred = head(visual(pixel_values, grid_thw=grids).pooler_output).float()
        loss = dense_terms(pred, dense, args.box_code, args.dense_shape_balance)
        optim.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optim.step()
        step += 1
        losses.append(float(loss.detach()))
        objects = dense["shape"] > 0
        guess = pred[objects, n_col + 1 : n_col + n_shape].argmax(dim=1) + 1
        right.append(float((guess == dense["shape"][objects]).float().mean()))
        if step % args.log_every == 0:
            logger.info(
                "vision step %d  loss %.4f  shape accuracy of object tokens %.3f  lr %.2e",
                step,
                tail_mean(losses, args.log_every),
                tail_mean(right, args.log_every),
                lr,
            )
    logger.info("vision tower: %d steps in %.1f min", step, (time.time() - start) / 60)
    return {
        "steps": step,
        "minutes": (time.time() - start) / 60,
        "final_loss": tail_mean(losses, 50),
        "final_shape_accuracy": tail_mean(right, 50),
    }
