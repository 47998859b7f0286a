"""The toy model and its parts: a tiny Qwen2.5-VL, its processor, number codes, token tables.

The model is a Qwen2.5-VL architecture (patch 14, merge 2) with about a million parameters, a
byte-level BPE tokenizer trained on the target texts plus one token per integer below 400, and
small processor pixel limits (at most 36 image tokens).
"""

from __future__ import annotations

import argparse
import math
import shutil
from pathlib import Path
from typing import Any

import torch
from transformers import (
    Qwen2_5_VLForConditionalGeneration,
    Qwen2_5_VLProcessor,
    Qwen2VLImageProcessor,
    Qwen2VLVideoProcessor,
)

from hfgcot.testing.shapes import COLOURS, SHAPES
from hfgcot.testing.tiny import CHAT_TEMPLATE, number_token_ids, tiny_config

from .data import DENSE_CLASSES


def build_model(tokenizer: Any, args: argparse.Namespace) -> Any:
    """A Qwen2.5-VL (patch 14, merge 2, temporal patch 2) with the sizes of ``args``."""

    config = tiny_config(tokenizer, hidden_size=args.hidden_size, vision_hidden=args.vision_hidden)
    text = config.text_config
    text.num_hidden_layers = args.layers
    text.layer_types = ["full_attention"] * args.layers
    text.max_window_layers = args.layers
    text.intermediate_size = args.hidden_size * 3
    text.num_attention_heads = args.heads
    text.num_key_value_heads = args.heads
    text.initializer_range = 0.02
    section = [int(v) for v in args.mrope_section.split(",")]
    if sum(section) != args.hidden_size // args.heads // 2:
        raise ValueError(f"--mrope-section must sum to head_dim / 2, got {section}")
    # Qwen2.5-VL gives height and width the lowest rotary frequencies; with a default theta
    # they barely turn across a 6x6 grid and the language model cannot tell where an image
    # token is. --rope-theta 20 --mrope-section 2,7,7 keeps them at 0.06-0.19 rad per token.
    text.rope_parameters = {
        "rope_type": "default",
        "rope_theta": args.rope_theta,
        "mrope_section": section,
    }
    vision = config.vision_config
    vision.depth = args.vision_depth
    vision.intermediate_size = args.vision_hidden * 3
    vision.num_heads = max(2, args.vision_hidden // 32)
    vision.fullatt_block_indexes = list(range(args.vision_depth))  # no window loops: faster
    model = Qwen2_5_VLForConditionalGeneration(config)
    if args.number_tokens:
        init_number_embeddings(model, tokenizer, args.number_tokens)
    model.generation_config.eos_token_id = [text.eos_token_id]
    model.generation_config.pad_token_id = text.pad_token_id
    model.generation_config.do_sample = False
    return model


BOX_CODE = 16  # features of a value: in the number-token embeddings and with --box-code


def box_width(args: argparse.Namespace) -> int:
    """Outputs a probe spends on one box: four codes with ``--box-code``, else four values."""
    return 4 * BOX_CODE if args.box_code else 4


def number_features(values: Any, dim: int) -> Any:
    """Smooth features of integer ``values``: sines and cosines of periods from 4x the largest
    frame coordinate down to 16 (``dim`` must be even). Close values get close features."""
    periods = torch.logspace(math.log10(1600), math.log10(16), dim // 2)
    angle = 2 * math.pi * values.float()[:, None] / periods
    return torch.cat([angle.cos(), angle.sin()], dim=-1) / math.sqrt(dim // 2)


def value_code(values: Any) -> Any:
    """``(n,)`` frame-pixel values -> ``(n, BOX_CODE)`` codes in [-1, 1] (unit-scaled
    :func:`number_features`): what an answer token needs to pick the number token, in a form
    the output head reads linearly."""
    return number_features(values, BOX_CODE) * math.sqrt(BOX_CODE // 2)


def box_code(boxes: Any) -> Any:
    """``(n, 4)`` frame-pixel boxes -> ``(n, 4 * BOX_CODE)``: the :func:`value_code` of each
    coordinate, side by side."""
    return value_code(boxes.reshape(-1)).reshape(boxes.shape[0], 4 * BOX_CODE)


def init_number_embeddings(model: Any, tokenizer: Any, limit: int) -> None:
    """Give the (tied) embedding of each number token a smooth code of its value plus noise.

    A random init knows nothing of the order of 0..399; this one makes the output logits of
    neighbouring values close from the start, so a near miss is learned as nearly right.
    """

    numbers = number_token_ids(tokenizer, limit)
    ids = torch.tensor(list(numbers))
    values = torch.tensor(list(numbers.values()))
    weight = model.get_input_embeddings().weight
    generator = torch.Generator().manual_seed(0)
    basis = torch.linalg.qr(torch.randn(weight.shape[1], BOX_CODE, generator=generator))[0]
    with torch.no_grad():
        code = number_features(values, BOX_CODE) @ basis.T
        scale = weight[ids].norm(dim=-1).mean()
        weight[ids] = 0.5 * weight[ids] + scale * code / code.norm(dim=-1, keepdim=True)


def build_processor(tokenizer: Any, min_pixels: int, max_pixels: int) -> Any:

    return Qwen2_5_VLProcessor(
        image_processor=Qwen2VLImageProcessor(min_pixels=min_pixels, max_pixels=max_pixels),
        tokenizer=tokenizer,
        video_processor=Qwen2VLVideoProcessor(),
        chat_template=CHAT_TEMPLATE,
    )


def dense_head(hidden_size: int, args: argparse.Namespace) -> Any:
    """A throw-away linear probe with the output layout :func:`dense_terms` reads."""
    return torch.nn.Linear(hidden_size, sum(DENSE_CLASSES) + box_width(args) + 2)


def number_table(tokenizer: Any, size: int) -> dict[str, Any]:
    """For each of ``size`` token ids: ``value`` (the whole number it is, -1 if none) and
    ``bracket`` (+1 if the token opens a ``[``, -1 if it closes one, else 0)."""

    value = torch.full((size,), -1, dtype=torch.long)
    for token_id, number in number_token_ids(tokenizer, 1000).items():
        value[token_id] = number
    bracket = torch.zeros(size, dtype=torch.long)
    for token, token_id in tokenizer.get_vocab().items():
        if token_id < size:
            bracket[token_id] = ("[" in token) - ("]" in token)
    return {"value": value, "bracket": bracket}


def word_table(tokenizer: Any, size: int) -> dict[str, Any]:
    """For each of ``size`` token ids: ``colour`` (1 + index in ``COLOURS`` if the token is a
    colour word, else 0) and ``shape`` (True if it is a shape word), as written after a space."""

    def word_ids(names: Any) -> list[tuple[int, int]]:
        """(index, token id) of each name that is one token below ``size`` after a space."""
        found = []
        for k, name in enumerate(names):
            ids = tokenizer.encode(" " + name, add_special_tokens=False)
            if len(ids) == 1 and ids[0] < size:
                found.append((k, ids[0]))
        return found

    colour = torch.zeros(size, dtype=torch.long)
    shape = torch.zeros(size, dtype=torch.bool)
    for k, token in word_ids(COLOURS):
        colour[token] = k + 1
    for _, token in word_ids(SHAPES):
        shape[token] = True
    return {"colour": colour, "shape": shape}


def save(model: Any, processor: Any, path: Path, dtype: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    state_dtype = getattr(torch, dtype)
    state = {k: v.detach().to(state_dtype) for k, v in model.state_dict().items()}
    model.config.dtype = state_dtype
    model.save_pretrained(tmp, state_dict=state)
    processor.save_pretrained(tmp)
    shutil.rmtree(path, ignore_errors=True)
    tmp.rename(path)
