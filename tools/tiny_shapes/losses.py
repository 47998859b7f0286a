"""The losses: answers (smoothed box coordinates), and the auxiliary probes and looks.

The probes are throw-away linear heads (never saved) that read what an image token shows, a
grounding answer's box or a token's grid cell from a hidden state; the looks teach attention
heads to attend to the object a turn asks for (see ``NOTES.md`` for what each measured).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import apply_rotary_pos_emb

from .data import DENSE_BOX_SCALE, DENSE_CLASSES
from .model import BOX_CODE, box_code, value_code


def image_cells(batch: dict[str, Any], merge: int = 2) -> Any:
    """(row, column) of every image token of ``batch`` in its image's merged grid, in order."""
    cells = []
    for _t, h, w in batch["image_grid_thw"].tolist():
        hm, wm = h // merge, w // merge
        k = torch.arange(hm * wm)
        cells.append(torch.stack([k // wm, k % wm], dim=1))
    return torch.cat(cells).float() if cells else torch.zeros(0, 2)


def dense_loss(
    hidden: Any,
    batch: dict[str, Any],
    dense: dict[str, Any],
    probe: Any,
    config: Any,
    code: bool = False,
    balance: float = 0.0,
):
    """Cross-entropy (colour, shape) plus MSE (object box, grid cell) of a linear probe that reads
    every image token's targets (:func:`dense_batch`) from ``hidden`` (``balance``: see
    :func:`dense_terms`).

    One grounding row teaches one box; this teaches every token of every picture what it shows
    and where its object is, so grounding only has to find the named object's tokens and copy.
    """
    mask = batch["input_ids"] == config.image_token_id
    if not bool(mask.any()):
        return hidden.sum() * 0.0
    return dense_terms(probe(hidden[mask]).float(), dense, code, balance)


def dense_terms(pred: Any, dense: dict[str, Any], code: bool = False, balance: float = 0.0) -> Any:
    """The loss of :func:`dense_loss` for probe outputs ``pred`` (one row per image token):
    colour and shape classes, then the object box (or its code), then the grid cell.

    Token by token, a large object outweighs a small one many times over in the shape term,
    though small objects are the ones whose shape goes unread; ``balance`` adds, with that
    weight, the shape cross-entropy of object tokens with every object counting once (each
    token weighted by one over its object's token count)."""
    n_col, n_shape = DENSE_CLASSES
    loss = ((pred[:, -2:] - dense["cell"]) ** 2).mean()
    shown = dense["colour"] != -100
    if bool(shown.any()):
        loss = loss + F.cross_entropy(pred[shown, :n_col], dense["colour"][shown])
        loss = loss + F.cross_entropy(pred[shown, n_col : n_col + n_shape], dense["shape"][shown])
    objects = dense["tokens"] > 0
    if balance and bool(objects.any()):
        weight = 1.0 / dense["tokens"][objects]
        each = F.cross_entropy(
            pred[objects, n_col : n_col + n_shape], dense["shape"][objects], reduction="none"
        )
        loss = loss + balance * (weight * each).sum() / weight.sum()
    box = dense["box"]
    has = ~box.isnan().any(dim=1)
    if bool(has.any()):
        target = box[has]
        if code:
            target = box_code(target * DENSE_BOX_SCALE)
        read = pred[has, n_col + n_shape : n_col + n_shape + target.shape[1]]
        loss = loss + 4 * ((read - target) ** 2).mean()
    return loss


def answer_turns(labels: Any) -> Any:
    """For every position of ``labels``: which assistant turn it answers (0, 1, ...; -1 where
    there is no label). The k-th run of labelled tokens of a row is its k-th turn."""

    labelled = labels != -100
    turn = (labelled & ~shifted_right(labelled)).long().cumsum(dim=1) - 1
    return turn.masked_fill(~labelled, -1)


def next_coordinate(labels: Any, numbers: dict[str, Any]) -> Any:
    """For every position of ``labels``: which coordinate (0-3) of its turn's box the token is
    (the k-th number inside ``[...]`` of the turn), -1 for every other token."""
    ids = labels.clamp(min=0)
    labelled = labels != -100
    depth = numbers["bracket"][ids].masked_fill(~labelled, 0).cumsum(dim=1)
    coord = (numbers["value"][ids] >= 0) & (depth > 0) & labelled
    count = coord.long().cumsum(dim=1)
    starts = labelled & ~shifted_right(labelled)
    base = ((count - coord.long()) * starts).cummax(dim=1).values
    return (count - base - 1).masked_fill(~coord, -1)


def shifted_right(mask: Any) -> Any:
    """``mask`` shifted right by one position (False enters on the left)."""
    return torch.nn.functional.pad(mask[:, :-1], (1, 0), value=False)


def next_box_loss(
    hidden: Any, batch: dict[str, Any], boxes: Any, probe: Any, numbers: dict[str, Any]
) -> Any:
    """MSE of a linear probe reading, from the token before each box coordinate, the code
    (:func:`box_code`) of that coordinate: the one number the output head must pick there."""
    labels = batch["labels"]
    turn = answer_turns(labels)
    k = next_coordinate(labels, numbers)
    valid = (k >= 0) & (k < 4) & (turn >= 0) & (turn < boxes.shape[1])
    valid[:, 0] = False
    rows, cols = valid.nonzero(as_tuple=True)
    values = boxes[rows, turn[rows, cols], k[rows, cols]]
    keep = ~values.isnan()
    if not bool(keep.any()):
        return hidden.sum() * 0.0
    target = value_code(values[keep])
    pred = probe(hidden[rows[keep], cols[keep] - 1])[:, :BOX_CODE]
    return ((pred - target.to(pred.dtype)) ** 2).mean()


def box_loss(hidden: Any, batch: dict[str, Any], boxes: Any, probe: Any, code: bool = False) -> Any:
    """MSE of a linear probe reading each grounding answer's box from its answer tokens.

    ``boxes`` is ``(rows, turns, 4)`` (``nan``: no box), one per assistant turn. The box (frame
    pixels / 168) is what every answer token needs to write its numbers; asking for it directly
    teaches the answer to look at the named object and fetch the position the image tokens
    carry, which the digits alone teach slowly.
    """
    turn = answer_turns(batch["labels"])
    valid = (turn >= 0) & (turn < boxes.shape[1])
    rows = torch.arange(turn.shape[0])[:, None].expand_as(turn)
    target = torch.full((*turn.shape, 4), math.nan)
    target[valid] = boxes[rows[valid], turn[valid]]
    keep = ~target.isnan().any(dim=-1)
    if not bool(keep.any()):
        return hidden.sum() * 0.0
    pred = probe(hidden[keep])
    target = box_code(target[keep]) if code else target[keep] / DENSE_BOX_SCALE
    return ((pred - target.to(pred.dtype)) ** 2).mean()


def position_loss(hidden: Any, batch: dict[str, Any], probe: Any, config: Any) -> Any:
    """MSE of a linear probe that reads each image token's grid cell from ``hidden``.

    The language model only learns where an image token sits through rotary attention to the
    tokens around the image; until it does, nothing in the image tokens correlates with box
    numbers and grounding sits on a plateau. This auxiliary loss makes the first layers write
    the cell into every image token from the start; the probe is not saved.
    """
    mask = batch["input_ids"] == config.image_token_id
    if not bool(mask.any()):
        return hidden.sum() * 0.0
    target = image_cells(batch) / 6.0
    pred = probe(hidden[mask])
    return ((pred - target.to(pred.dtype)) ** 2).mean()


class AttentionTap:
    """Keeps the input of one language-model attention layer so one head's pattern can be
    recomputed (the fast attention kernels do not return attention weights)."""

    def __init__(self, model: Any, layer: int) -> None:
        self.attn = model.model.language_model.layers[layer].self_attn
        self.inputs: dict[str, Any] = {}
        self.scores: dict[int, Any] = {}
        self.attn.register_forward_pre_hook(self._keep, with_kwargs=True)

    def _keep(self, _module: Any, args: tuple, kwargs: dict[str, Any]) -> None:
        self.inputs = {
            "hidden": kwargs.get("hidden_states", args[0] if args else None),
            "rope": kwargs["position_embeddings"],
        }
        self.scores = {}

    def head_scores(self, head: int = 0) -> Any:
        """Pre-softmax causal attention scores ``(batch, query, key)`` of ``head`` (computed once
        per forward pass, however many losses read them)."""
        if head not in self.scores:
            self.scores[head] = self._head_scores(head)
        return self.scores[head]

    def _head_scores(self, head: int) -> Any:
        hidden, (cos, sin) = self.inputs["hidden"], self.inputs["rope"]
        dim = self.attn.head_dim
        bsz, seq = hidden.shape[:2]
        q = self.attn.q_proj(hidden).view(bsz, seq, -1, dim)[:, :, head : head + 1]
        k = self.attn.k_proj(hidden).view(bsz, seq, -1, dim)[:, :, head : head + 1]
        q, k = apply_rotary_pos_emb(q.transpose(1, 2), k.transpose(1, 2), cos, sin)
        scores = (q @ k.transpose(-1, -2))[:, 0] * self.attn.scaling
        causal = torch.ones(seq, seq, dtype=torch.bool, device=scores.device).tril()
        return scores.masked_fill(~causal, float("-inf"))


def attention_loss(
    tap: AttentionTap,
    batch: dict[str, Any],
    dense: dict[str, Any],
    config: Any,
    heads: int = 1,
    numbers: dict[str, Any] | None = None,
):
    """Teach the first ``heads`` attention heads where to look: from every token of a grounding
    answer, the attention mass on the image tokens that show the object the turn asks for.

    ``dense["turns"]`` holds, per row, the colour class of each grounding turn's object (colours
    are distinct within a scene); the k-th run of labelled tokens is the k-th turn. With
    ``numbers`` (:func:`number_table`), only the tokens before box coordinates are taught.
    """
    turn = answer_turns(batch["labels"])
    colours = token_colours(batch, dense, config)
    most = max((len(t) for t in dense["turns"]), default=0)
    if most == 0:
        return batch["labels"].new_zeros((), dtype=torch.float32)
    asked = torch.tensor([t + [-1] * (most - len(t)) for t in dense["turns"]])
    # the token before a label predicts it: that is where the lookup happens
    valid = (turn >= 0) & (turn < most)
    if numbers is not None:  # only where a box coordinate is written
        valid &= next_coordinate(batch["labels"], numbers) >= 0
    valid[:, 0] = False
    rows, cols = valid.nonzero(as_tuple=True)
    return look_loss(tap, colours, rows, cols - 1, asked[rows, turn[rows, cols]], heads)


def look_loss(tap: AttentionTap, colours: Any, rows: Any, queries: Any, wanted: Any, heads: int):
    """Minus the log attention mass that the first ``heads`` heads put, from token
    ``queries[i]`` of row ``rows[i]``, on the image tokens whose colour class (``colours``, per
    token; -100 elsewhere) is ``wanted[i]``; queries whose colour is not shown are skipped."""
    hit = (colours[rows] == wanted[:, None]) & (wanted[:, None] >= 0)
    found = hit.any(dim=1)
    if not bool(found.any()):
        return colours.new_zeros((), dtype=torch.float32)
    total = 0.0
    for head in range(heads):  # each head copies head_dim numbers of the object's tokens
        logp = tap.head_scores(head)[rows[found], queries[found]].float().log_softmax(-1)
        total = total - (logp.masked_fill(~hit[found], float("-inf")).logsumexp(-1)).mean()
    return total / heads


def shape_word_queries(batch: dict[str, Any], words: dict[str, Any]) -> tuple[Any, Any, Any]:
    """Where a prompt or an answer names an object by colour and shape ("yellow circle"): the
    rows, the positions of the colour words (followed by the shape word) and their colour
    classes. In answers the colour word predicts the shape; in prompts ("Is there a red
    circle?", a sentence to check) the model has to look there to tell whether it is right."""
    ids = batch["input_ids"]
    colour = words["colour"][ids[:, :-1]]
    named = (colour > 0) & words["shape"][ids[:, 1:]]
    rows, cols = named.nonzero(as_tuple=True)
    return rows, cols, colour[rows, cols]


def shape_attention_loss(
    tap: AttentionTap,
    batch: dict[str, Any],
    dense: dict[str, Any],
    config: Any,
    words: dict[str, Any],
    heads: int = 1,
):
    """:func:`look_loss` from every colour word followed by a shape word, to the
    image tokens of the object of that colour (colours are distinct within a scene): the look
    that grounding is taught (:func:`attention_loss`), taught where the shape is named."""
    rows, queries, wanted = shape_word_queries(batch, words)
    return look_loss(tap, token_colours(batch, dense, config), rows, queries, wanted, heads)


def token_colours(batch: dict[str, Any], dense: dict[str, Any], config: Any) -> Any:
    """Per token of ``batch``: the colour class the image token shows (:func:`dense_batch`;
    0 background), -100 for text tokens and for pictures without targets (crops)."""
    is_image = batch["input_ids"] == config.image_token_id
    colours = torch.full(is_image.shape, -100, dtype=torch.long)
    colours[is_image] = dense["colour"]
    return colours


def answer_loss(
    model: Any,
    batch: dict[str, Any],
    hidden_states: bool,
    numbers: Any = None,
    sigma: float = 0.0,
) -> tuple[Any, Any]:
    """The language-model loss of ``batch``, with the output head applied to answer tokens only.

    Same value as ``model(**batch).loss`` (mean over the tokens that have a label), but the
    vocabulary projection of the prompt tokens - a fifth of a step - is skipped. With
    ``numbers`` (:func:`number_table`) and ``sigma > 0``, the target of a number token inside
    ``[...]`` (a box coordinate; not the 2 of ``bbox_2d`` nor ``Step 1``) is a Gaussian of width
    ``sigma`` over the number tokens around its value.
    """
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    result = model.model(**inputs, output_hidden_states=bool(hidden_states))
    labels = batch["labels"]
    keep = labels[:, 1:] != -100
    logits = model.lm_head(result.last_hidden_state[:, :-1][keep]).float()
    target = labels[:, 1:][keep]
    if numbers is None or sigma <= 0:
        return result, F.cross_entropy(logits, target)
    value = numbers["value"]
    coordinate = (next_coordinate(labels, numbers) >= 0)[:, 1:][keep]
    soft = torch.zeros_like(logits)
    soft[~coordinate, target[~coordinate]] = 1.0
    if bool(coordinate.any()):
        column = value >= 0
        near = -((value[column][None, :] - value[target[coordinate]][:, None]).float() ** 2)
        soft[coordinate.nonzero()[:, :1], column.nonzero()[:, 0][None, :]] = (
            near / (2 * sigma**2)
        ).softmax(-1)
    return result, -(soft * logits.log_softmax(-1)).sum(-1).mean()
