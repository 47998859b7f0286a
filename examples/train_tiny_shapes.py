"""Train the toy Qwen2.5-VL that knows shapes: from scratch, on CPU, on synthetic scenes.

Every target comes from :mod:`hfgcot.testing.shapes` and every prompt is the library's own
(:mod:`hfgcot.prompts`), so the pipelines (``add_gcot``, ``add_dense_captions``,
``add_region_captions``, ``add_grounding_predictions``) ask exactly what the model was trained on.
Grounding rows are built by :class:`hfgcot.pipelines.grounding_sft.GroundingSFTStage` (boxes in the
frame the training processor really produces); all rows are batched by
:class:`hfgcot.GroundingCollator` (loss on the assistant turn only).

The model is a Qwen2.5-VL architecture (patch 14, merge 2) with about a million parameters, a
byte-level BPE tokenizer trained on the target texts plus one token per integer below 400, and
small processor pixel limits (at most 36 image tokens). The defaults are the recipe of the
shipped checkpoint (its exact arguments are in its ``training_info.json``): 42 minutes from
scratch with one training thread (the data worker takes the other core): first 6 minutes on the
vision tower alone (996 steps of 16 scenes, ``--vision-pretrain``), then 7,589 steps of 8 rows -
crops and grounding first, then every task - with the M-RoPE fix, one token per fixed prompt
piece, number tokens with coarse-to-fine smoothing, the dense, box and attention auxiliaries
reading box coordinates as smooth codes, the look taught before shape words too, a shape term
in which every object counts once (``--dense-shape-balance 1``, ``--aux-dense-shape-balance
0.5``), three grounding turns and one task per batch. End to end
(``benchmarks/eval_tiny_shapes.py``, 200 held-out scenes): keyword Acc@0.5 0.748 (0.195 if its
numbers are misread as original pixels; 0.82 among the keywords that name an object of the
picture - 15 of 266 keywords name the right colour with the wrong shape, 8 the wrong colour),
answer accuracy 0.91, GCoT keywords name 0.56 of the objects in the picture; on the CI test's 30
scenes Acc@0.5 0.684 (misread 0.079). Crop region captions name 25 of 25 regions right,
marked-region captions 11 of 25. Dense captions: the final caption is on topic for 7 of 12
scenes with either self-check (``checker="yesno"``, the default, or ``"contrastive"``).
Earlier checkpoints, Acc@0.5 / answer accuracy / keyword object recall: the same recipe without
the shape term (7,187 steps) 0.670 / 0.86 / 0.49 (0.88 among keywords naming an object, 60 of
264 with the wrong shape; its yes/no self-check rejected the object sentences of 10 of 12 scenes
- rightly for 13 of the 15 it rejected: wrong place or size - and accepted every opening "The
image shows ..." sentence, 11 of 12 of them wrong, so dense captions were on topic for 2 of 12
with yes/no and 11 of 12 with the contrastive check); without the look before shape words too
(7,653 steps) 0.565 / 0.895 / 0.47 (0.88 among
keywords naming an object, 97 of 276 with the wrong shape; dense captions 3 of 12 with yes/no);
the previous recipe (two threads, no phrase tokens: 727 + 5,198 steps) 0.186 / 0.69 / 0.39,
dense captions 9 of 12 with yes/no;
without its vision phase (5,771 steps) 0.162 / 0.685 / 0.35; digit tokens with the dense, box
and attention auxiliaries (5,883 steps) 0.090 / 0.755 / 0.43; 65 CPU-minutes with none of these
options 0.004 / 0.695 / 0.08.

Options and what they measured (10-43 minute runs on one core; quick eval: 24 held-out scenes,
the label given):

- ``--rope-theta 20 --mrope-section 2,7,7``: Qwen2.5-VL gives height and width the lowest rotary
  frequencies; with theta 10000 the width ones turn less than 0.04 rad across a 12-token row, so
  the language model can hardly tell image tokens apart by place.
- ``--aux-position`` / ``--aux-box`` (weights): auxiliary losses through throw-away linear
  probes (never saved) that read every image token's grid cell from an early hidden state and a
  grounding row's box from every answer token. The cell is readable after a few hundred steps
  (MSE 0.003); the box alone stays at the frame-size baseline on the full scene distribution.
- ``--easy-scenes``: the early phase (``--curriculum``) on one-shape scenes with a 168 px long
  side, mostly grounding. With the three options above this breaks the plateau (box-probe MSE
  0.04 -> 0.005, quick-eval Acc@0.5 0.04 -> 0.125 with IoU 0.16 after 600 steps), but the
  gain shrinks once the full distribution (1-4 shapes) comes back, and a 42-minute run from
  scratch scored below the previous checkpoint end to end (answer accuracy 0.53 vs 0.695; both
  near 0 Acc@0.5, because most GCoT keywords name shapes that are not in the picture).
- ``--aux-dense`` (weight): a throw-away linear probe reads, from every image token of a
  whole-scene picture (``--aux-dense-layer``), the colour and shape of the object the token
  shows, that object's box in the model's frame and the token's grid cell: dense supervision,
  every token of every picture, where a grounding row teaches one box. Measured with a
  least-squares probe on 9,000 held-out image tokens after 700 steps (15 minutes, one core,
  with the M-RoPE fix): the box is linear in layer 2 (R^2 0.97, mean error 5.8 frame pixels),
  the cell too (R^2 0.998), the colour of object tokens 81% and their shape only 39%; the
  previous checkpoint had box R^2 0.56 (23 px) and cell R^2 0.64 there. Reading the named
  object's box out of those tokens into the answer digits is still the slow part (quick-eval
  Acc@0.5 0.02 after 15 minutes, with or without ``--aux-box``; teacher-forced, the first digit
  of x1 is right no more often than its prior allows).
- ``--aux-attention`` (weight): head 0 of language-model layer ``--aux-attention-layer`` is
  taught to look, from the token before each grounding answer token, at the image tokens of the
  object the turn asks for (its scores are recomputed from the layer's input, equal to eager
  attention to 6e-8). No visible effect in 15 minutes or at 2,400 steps; by 5,883 steps the
  answers read the boxes (a checkpoint of 0.090, above).
- ``--ground-turns N``: grounding chats ask for up to N objects of one picture, one per turn
  (the image and the prompt prefix are paid once); ``--one-task-batches`` (default): one task
  per batch, so rows are not padded to the longest task (GCoT prompts are twice a grounding
  row's length). The output head runs on answer tokens only (a step is about 12% faster).
- ``--number-tokens 400``: the tokenizer gets one token per integer below 400
  (``hfgcot.testing.tiny.build_tiny_tokenizer(number_tokens=...)``; frame coordinates stay below 340),
  their tied embeddings start as a smooth code of the value (:func:`number_features`), so a box
  coordinate is one choice among ordered values, not a digit string whose first digit depends on
  how many digits follow. The text, and everything that parses it, is unchanged.
  Alone it is a modest gain: quick-eval mean IoU at 1,500 steps 0.08 vs 0.03 with digits, and
  x1 stays at its prior; the codes below make the difference.
- ``--phrase-tokens`` (default) and ``--threads 1``: the tokenizer gets one token for each fixed
  piece of the library's prompts (:func:`hfgcot.testing.tiny.prompt_phrases`: the GCoT instruction,
  the grounding prompt's text around the phrase, the system turn, ...), so a GCoT row has 25
  prompt tokens instead of 150 and a grounding turn 17 instead of 60; the text is unchanged.
  A step on the same batch takes half the time (grounding rows 0.33 -> 0.17 s, GCoT rows
  0.22 -> 0.14 s with two threads), but then the data worker (0.13 s a batch on one core) and
  two training threads fight over two cores: one training thread trains 0.27 s per step where
  two take 0.35 (and 0.41 without phrase tokens). The vision phase too: 1,057 steps in 6
  minutes instead of 727. With both, the previous recipe went from Acc@0.5 0.186 to 0.565 end
  to end, and grounding with the label given (quick eval) from 0.31 to 0.92: not only more
  steps (7,653 vs 5,198) - by step 3,000 the quick eval's mean IoU was 0.35 against 0.22, so
  rows made mostly of the object's name, the image and the answer are easier to learn from.
- ``--number-smoothing 8 --number-smoothing-end 1``: the target of a box coordinate (a number
  token inside ``[...]``) is a Gaussian over neighbouring values, 8 wide at first and 1 at the
  end: coarse to fine, and a near miss costs less than a far one. (Smoothing every number token
  taught the model to write ``bbox_1d`` and ``Step 3`` for ``Step 2``.)
- ``--box-code``: the dense and box probes read each coordinate as that code (16 sines and
  cosines, periods 1,600 to 16 px) instead of the value: a linear read-out of a value cannot
  make the output head peak at it, a read-out of its code can. Two runs side by side (same
  options otherwise, about 2,000 steps): teacher-forced x1 error 25 px with it, 35 px without
  (prior 34).
- ``--box-code-next`` and ``--aux-attention-heads 2``: the box probe reads, from the token before
  each coordinate, the code of that coordinate only (what the output head needs there), and two
  heads are taught to look at the object (one head's 32 numbers cannot carry the codes of four
  coordinates). x1 error 22.6 px at 2,200 steps vs 27 px at 3,000 steps without. Looking from
  the token before x1 is the weak spot: head 0 put 0.52 of its attention on the asked object
  there and 0.76-0.80 before the other coordinates. ``--aux-attention-on coordinates`` (teach
  the look only there) was not better after 1,000 steps.
- ``--vision-pretrain MINUTES``: the budget starts with the vision tower alone: a throw-away
  linear head reads from every merged token of whole scenes (16 per step) the colour, shape and
  box of its object (:func:`dense_terms`, the ``--aux-dense`` targets). Why: the checkpoint
  then shipped answers "What shape is <colour>?" right for 0.42 of the objects under 28 frame pixels and
  0.54 of those of 28-56 px (chance 0.33). Trained this way on its own (300 held-out scenes,
  shape of each object from its tokens, one core), the tower gets 0.53 after 4 minutes and 0.76
  after 12 (0.63 under 28 px, 0.92 for 28-56 px); in 4 minutes neither a wider, deeper tower
  (``--vision-hidden 128 --vision-depth 3``: 0.52), more image tokens (64: 0.53; 144: 0.57),
  7 px patches (0.56) nor a higher rate (0.56) did much better: shape is slow to learn, not
  blurred away. A 42-minute run on one core beside another (10 minutes of it here, 1,062 + 2,961
  steps) scored Acc@0.5 0.086 end to end with half the steps of the previous checkpoint. Six
  minutes with two threads, then the rest of the recipe (the checkpoint shipped before this
  one): Acc@0.5 0.186 vs 0.162, dense captions on topic for 9 of 12 scenes vs 6; shapes of objects under 28 px are
  still named no better (0.39 vs 0.42; 28-56 px: 0.58 vs 0.54). Both gains are small against
  the noise of 285 keywords and 12 scenes; the vision phase is kept because nothing got worse.
  The tower is not where shape is lost: a linear probe on the frozen tower of that
  checkpoint reads the shape of 0.72 of the objects (0.64 under 28 px; the previous
  checkpoint's 0.675 / 0.59), twice what the language model makes of it for small objects.
- ``--aux-attention-shapes 1``: the look of ``--aux-attention`` (same heads, same layer) is also
  taught from every colour word followed by a shape word, in prompts and answers ("yellow" of
  "Keywords: yellow circle" or of a sentence to check), to the image tokens of the object of that
  colour. Why: the language model named shapes far worse than the image tokens carry them (see
  the vision phase above). Side by side with the same recipe (36 minutes each, 7,187 vs 7,653
  steps): Acc@0.5 0.670 vs 0.565, keywords with the wrong shape 60 of 264 vs 97 of 276, answer
  accuracy 0.86 vs 0.895; on the CI scenes 0.694 vs 0.579.
- ``--max-pixels 50176`` (64 image tokens at most, not 36): wrong shapes are mostly small
  objects (of the 60 keywords with the wrong shape, 50 name objects under a fifth of the
  picture's long side; square and circle swapped 46 times), and the shipped checkpoint, given 64
  tokens at inference only, named 44 wrong instead of 60. Trained with 64 (the recipe above,
  42 minutes): 0.45 s per step against 0.36, 5,467 steps, Acc@0.5 0.502, answer accuracy 0.76,
  52 of 261 keywords with the wrong shape. Shapes barely gain and the boxes lose the steps.
  Not adopted.
- ``--dense-shape-balance`` (vision phase) and ``--aux-dense-shape-balance`` (the
  ``--aux-dense`` probe; default: the same): token by token, a large object outweighs a small
  one many times in the dense shape loss, and small objects are the ones named wrong. This adds
  a shape term in which every object counts once (:func:`dense_terms`). With weight 1 in both
  phases (the recipe above otherwise; 999 + 7,461 steps): the vision phase ends with 0.83 of
  object tokens' shapes right (0.65 without), keywords with the wrong shape fall from 60 of 264
  to 21 of 261, answer accuracy 0.87, keyword object recall 0.57 (0.49); but the boxes came
  later (quick eval 0.77 vs 0.90; Acc@0.5 among keywords that name an object 0.74 vs 0.88):
  Acc@0.5 0.674 end to end and 0.50 on the CI scenes (38 keywords). Dense captions on topic
  with the yes/no self-check 11 of 12, contrastive 9 of 12; crop captions 24 of 25.
  With weight 1 in the vision phase and 0.5 in the main phase (the shipped checkpoint; 996 +
  7,589 steps): quick eval 0.83, wrong shapes 15 of 266, Acc@0.5 0.748 end to end, 0.684 on the
  CI scenes. Whether halving the main-phase weight is what let the boxes catch up, or run-to-run
  noise (large at this size), one run each cannot tell.
- Copying: the toy hardly repeats what the prompt says. For GCoT questions whose keyword is in
  the prompt ("Where is the green triangle?") that checkpoint's keyword is right for 13 of 48,
  its ``Answer:`` line repeats the given answer for 32 of 48, and a fusion answer reproduces 7
  of the 175 sentences it is given. With ``--rope-theta 20`` every rotary pair of the language
  model turns at least 0.06 rad per token, so matching a token by content 100 tokens back is
  blurred by its position. ``--rope-theta 300 --mrope-section 2,4,10`` keeps four pairs under
  0.015 rad per token (and width at 0.005-0.12): beside the run above, with the same options,
  keywords right 22 of 48 (that run: 16), answer accuracy 0.68 (0.54), but boxes worse
  (Acc@0.5 among keywords that name an object 0.10 vs 0.18; end to end 0.051). Not adopted.
  Text only (``--tasks fuse``, 15 minutes on one core each, 1,200 steps): fusion loss 0.245 with
  theta 300 vs 0.343 with 20, yet both reproduce only 11-12 of 175 input sentences when they
  write freely.

The learning-rate schedule and the curriculum follow the elapsed share of a time budget, so a
busy machine trains fewer steps but still finishes its schedule::

    python examples/train_tiny_shapes.py --output-dir hfgcot/data/tiny-shapes

Intermediate checkpoints go to ``<output-dir>-ckpt`` every ``--save-every`` steps. The shipped
checkpoint (``hfgcot/data/tiny-shapes``) was made with this script; evaluate it with
``python benchmarks/eval_tiny_shapes.py``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import math
import os
import random
import shutil
import time
from pathlib import Path
from typing import Any

from torch.utils.data import IterableDataset

from hfgcot.testing.shapes import COLOURS, SHAPES

logger = logging.getLogger("train_tiny_shapes")

MIN_PIXELS = 28 * 28 * 4
MAX_PIXELS = 28 * 28 * 36
# The grounding prompt of the GCoT pipeline as a GroundingSFTStage template: formatting it with
# question=<phrase> gives exactly prompts.grounding_prompt(<phrase>).
TRAIN_SEED_BASE = 10**9  # training scenes: seeds 10**9 + k; benchmarks use make_scenes(n, seed)

# Share of each task in a batch, early (curriculum) and late in training.
# Crops first: an object that fills the picture makes the image's mean feature name its colour and
# shape, which is how the language model first learns to read the image at all.
# With --easy-scenes the early phase uses EASY_SCENES (one shape, long side 168 px, so the frame is
# the picture) and MIX_EASY: grounding breaks through there within a few hundred steps.
EASY_SCENES = {"max_objects": 1, "min_side": 168, "max_side": 168}
MIX_EASY = {"ground": 0.6, "crop": 0.15, "gcot": 0.15, "caption": 0.05, "check": 0.05}
MIX_EARLY = {"crop": 0.35, "ground": 0.3, "check": 0.15, "caption": 0.1, "gcot": 0.1}
MIX_LATE = {
    "ground": 0.38,
    "gcot": 0.20,
    "caption": 0.06,
    "check": 0.08,
    "objq": 0.04,
    "detail": 0.07,
    "fuse": 0.04,
    "region": 0.09,
    "crop": 0.04,
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--output-dir", default="outputs/tiny-shapes")
    p.add_argument("--minutes", type=float, default=42.0, help="time budget of the training loop")
    p.add_argument("--max-steps", type=int, default=100_000)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, default=1.5e-3)
    p.add_argument("--vision-lr-scale", type=float, default=0.7)
    p.add_argument("--min-lr-ratio", type=float, default=0.05)
    p.add_argument("--warmup-steps", type=int, default=100)
    p.add_argument("--weight-decay", type=float, default=0.05)
    p.add_argument("--hidden-size", type=int, default=128)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--vision-hidden", type=int, default=64)
    p.add_argument("--vision-depth", type=int, default=2)
    p.add_argument("--vocab-size", type=int, default=1200)
    p.add_argument("--tokenizer-scenes", type=int, default=2000, help="scenes the BPE learns from")
    p.add_argument(
        "--number-tokens",
        type=int,
        default=400,
        help="one token per integer below this (frame coordinates are < 340); 0: digit by "
        "digit, as Qwen's tokenizer writes numbers",
    )
    p.add_argument(
        "--phrase-tokens",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="one token for each fixed piece of the library's prompts "
        "(hfgcot.testing.tiny.prompt_phrases): rows get 2-6 times shorter, so a step costs less",
    )
    p.add_argument(
        "--number-smoothing",
        type=float,
        default=8.0,
        help="with --number-tokens: the target of a number token is a Gaussian of this width "
        "(in values) around the true value, so a near miss costs less than a far one (0: off)",
    )
    p.add_argument(
        "--number-smoothing-end",
        type=float,
        default=1.0,
        help="the width at the end of training (geometric from --number-smoothing; coarse to "
        "fine); none: constant",
    )
    p.add_argument(
        "--box-code-next",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="with --box-code: the box probe reads, from each answer token, only the code of the "
        "coordinate the next token writes (what the output head needs there)",
    )
    p.add_argument(
        "--box-code",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="the box and dense probes read each box coordinate as the smooth code of its value "
        "(number_features, as in the number-token embeddings) instead of the value itself",
    )
    p.add_argument("--rope-theta", type=float, default=20.0)
    p.add_argument(
        "--mrope-section",
        default="2,7,7",
        help="rotary frequency pairs for time, height, width (sum = head_dim / 2)",
    )
    probes = {
        "--aux-position": (0.0, "each image token's grid cell, from an early hidden state"),
        "--aux-box": (1.0, "a grounding row's box, from every answer token's hidden state"),
        "--aux-dense": (
            1.0,
            "from every image token of a whole-scene picture: the colour and shape of the object "
            "it shows, that object's box in the model's frame and the token's grid cell",
        ),
    }
    for flag, (default, what) in probes.items():
        help_text = f"weight of the auxiliary loss of a throw-away linear probe that reads {what}"
        p.add_argument(flag, type=float, default=default, help=help_text + " (0 disables)")
    p.add_argument(
        "--dense-shape-balance",
        type=float,
        default=1.0,
        help="weight of a shape term of the vision phase's dense head in which every object "
        "counts once, however few tokens show it (0 disables)",
    )
    p.add_argument(
        "--aux-dense-shape-balance",
        type=float,
        default=0.5,
        help="the same term for the --aux-dense probe of the main phase (0 disables)",
    )
    p.add_argument("--aux-layer", type=int, default=1, help="hidden state the cell probe reads")
    p.add_argument("--aux-box-layer", type=int, default=-2, help="hidden state the box probe reads")
    p.add_argument("--aux-dense-layer", type=int, default=2, help="hidden state it reads")
    p.add_argument(
        "--aux-attention",
        type=float,
        default=1.0,
        help="weight of the loss that makes the first --aux-attention-heads heads of "
        "--aux-attention-layer attend, from each grounding answer token, to the image tokens of "
        "the object asked for (needs --aux-dense)",
    )
    p.add_argument(
        "--aux-attention-shapes",
        type=float,
        default=1.0,
        help="weight of the same look taught before shape words: from every colour word followed "
        "by a shape word ('yellow' of 'yellow circle', in prompts and answers), to the image "
        "tokens of the object of that colour (needs --aux-dense)",
    )
    p.add_argument("--aux-attention-layer", type=int, default=2, help="language-model layer")
    p.add_argument(
        "--aux-attention-on",
        choices=["answer", "coordinates"],
        default="answer",
        help="teach the look from every answer token, or only from those before a box "
        "coordinate (with --number-tokens)",
    )
    p.add_argument(
        "--aux-attention-heads",
        type=int,
        default=2,
        help="how many heads of that layer (0, 1, ...) are taught to look at the object",
    )
    p.add_argument(
        "--ground-turns",
        type=int,
        default=3,
        help="grounding chats ask for up to this many objects of one picture, one per turn",
    )
    p.add_argument(
        "--one-task-batches",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="every batch is one task (rows of similar length: less padding)",
    )
    p.add_argument("--max-objects", type=int, default=4, help="shapes per training scene")
    p.add_argument(
        "--scene-kwargs",
        default="{}",
        help='more make_scene arguments as JSON, e.g. \'{"min_side": 168, "max_side": 168}\'',
    )
    p.add_argument("--tasks", default=None, help="comma list: train only these tasks of the mix")
    p.add_argument("--min-pixels", type=int, default=MIN_PIXELS)
    p.add_argument("--max-pixels", type=int, default=MAX_PIXELS)
    p.add_argument(
        "--curriculum",
        type=float,
        default=0.2,
        help="share of time on the early mix (and on easy scenes with --easy-scenes)",
    )
    p.add_argument(
        "--easy-scenes",
        action="store_true",
        help="early phase on one-shape scenes with a 168 px long side, mostly grounding",
    )
    p.add_argument(
        "--vision-pretrain",
        type=float,
        default=6.0,
        help="minutes of the budget spent first on the vision tower alone: a throw-away linear "
        "head reads from every merged image token of whole scenes the colour, shape and box of "
        "the object it shows (0 disables)",
    )
    p.add_argument("--vision-pretrain-lr", type=float, default=4e-3)
    p.add_argument("--vision-pretrain-batch", type=int, default=16, help="scenes per step")
    p.add_argument("--vision-pretrain-steps", type=int, default=100_000, help="at most")
    p.add_argument("--save-every", type=int, default=100)
    p.add_argument("--eval-every", type=int, default=300)
    p.add_argument("--final-eval-scenes", type=int, default=48)
    p.add_argument("--log-every", type=int, default=20)
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads of the training process (the data worker takes another core; on two "
        "cores 1 thread trains 0.27 s per step, 2 threads 0.35: they fight the worker)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--init", default=None, help="continue from this checkpoint folder")
    p.add_argument("--dtype", default="float32", help="dtype of the saved weights")
    return p


# --------------------------------------------------------------------------------------------
# Rows
# --------------------------------------------------------------------------------------------


def _chat(user: str, answer: str, image: Any = None) -> dict[str, Any]:
    from hfgcot.pipelines.grounding_sft import sft_messages

    if image is None:
        messages = [
            {"role": "user", "content": [{"type": "text", "text": user}]},
            {"role": "assistant", "content": [{"type": "text", "text": answer}]},
        ]
        return {"messages": messages}
    return {"messages": sft_messages(user, answer), "image": image}


class RowMaker:
    """Training rows (collator-ready dicts) for each task from one scene."""

    def __init__(self, min_pixels: int, max_pixels: int, ground_turns: int = 1) -> None:
        from hfgcot import prompts
        from hfgcot.pipelines.grounding_sft import GroundingSFTStage

        template = prompts.GROUNDING_PROMPT.replace("{phrase}", "{question}")
        common = {"bbox_format": "xyxy", "min_pixels": min_pixels, "max_pixels": max_pixels}
        self.ground_stage = GroundingSFTStage(prompt=template, **common)
        self.sft_stage = GroundingSFTStage(**common)
        self.min_pixels, self.max_pixels = min_pixels, max_pixels
        self.ground_turns = ground_turns

    def ground(self, scene: Any, image: Any, rng: random.Random) -> dict[str, Any]:
        """A grounding chat: one object, then up to ``ground_turns - 1`` follow-up turns that
        ask for other objects of the same picture (the image is encoded once for all)."""
        from hfgcot import prompts

        objs = list(scene.objects)
        rng.shuffle(objs)
        stage = self.sft_stage if rng.random() < 0.15 else self.ground_stage
        row = stage.row_for_size(scene.width, scene.height, objs[0].label, list(objs[0].bbox))
        if row["sft_status"] != "ok":
            return self.caption(scene, image, rng)
        messages, asked = list(row["messages"]), [objs[0]]
        for obj in objs[1 : rng.randint(1, self.ground_turns)]:
            more = self.ground_stage.row_for_size(
                scene.width, scene.height, obj.label, list(obj.bbox)
            )
            if more["sft_status"] == "ok":
                question = {"type": "text", "text": prompts.grounding_prompt(obj.label)}
                messages += [{"role": "user", "content": [question]}, more["messages"][-1]]
                asked.append(obj)
        return {**row, "messages": messages, "image": image, "turn_objects": asked}

    def gcot(self, scene: Any, image: Any, rng: random.Random) -> dict[str, Any]:
        items = scene.vqa(rng)
        kinds = sorted({it.kind for it in items})
        kind = rng.choice(kinds)
        item = rng.choice([it for it in items if it.kind == kind])
        return _chat(item.prompt(), item.gcot(), image)

    def caption(self, scene: Any, image: Any, rng: random.Random) -> dict[str, Any]:
        from hfgcot import prompts

        return _chat(prompts.dense_caption_prompt(), scene.caption(), image)

    def check(self, scene: Any, image: Any, rng: random.Random) -> dict[str, Any]:
        from hfgcot import prompts

        if rng.random() < 0.5:
            obj = rng.choice(scene.objects)
            pool = scene.caption_sentences() + [
                scene.detail_answer(obj),
                scene.position_answer(obj),
            ]
            sentence, answer = rng.choice(pool), "yes"
        else:
            sentence, answer = scene.false_sentence(rng), "no"
        return _chat(prompts.sentence_check_prompt(sentence), answer, image)

    def objq(self, scene: Any, image: Any, rng: random.Random) -> dict[str, Any]:
        from hfgcot import prompts

        sentences = scene.caption_sentences()
        keep = [s for s in sentences if rng.random() < 0.8] or sentences[-1:]
        text = scene.object_questions(keep, 5)
        if not text:
            return self.caption(scene, image, rng)
        return _chat(prompts.object_questions_prompt(keep, 5), text)

    def detail(self, scene: Any, image: Any, rng: random.Random) -> dict[str, Any]:
        from hfgcot import prompts

        obj = rng.choice(scene.objects)
        if rng.random() < 0.5:
            q, a = prompts.detail_question(obj.label), scene.detail_answer(obj)
        else:
            q, a = prompts.position_question(obj.label), scene.position_answer(obj)
        return _chat(prompts.detail_answer_prompt(q), a, image)

    def fuse(self, scene: Any, image: Any, rng: random.Random) -> dict[str, Any]:
        from hfgcot import prompts

        sentences = [s for s in scene.caption_sentences() if rng.random() < 0.85]
        sentences = sentences or scene.caption_sentences()[:1]
        details = []
        for obj in scene.objects:
            if rng.random() < 0.5:
                details.append(scene.detail_answer(obj))
            if rng.random() < 0.3:
                details.append(scene.position_answer(obj))
        answer = scene.fused_caption(sentences, details)
        return _chat(prompts.fuse_caption_prompt(sentences, details), answer)

    def region(self, scene: Any, image: Any, rng: random.Random) -> dict[str, Any]:
        from hfgcot import prompts
        from hfgcot.viz.draw import draw_regions

        objs = list(scene.objects)
        rng.shuffle(objs)
        objs = objs[: rng.randint(1, len(objs))]
        boxes = []
        for o in objs:
            x1, y1, x2, y2 = o.bbox
            pad = rng.uniform(0, 0.15) * (x2 - x1)
            boxes.append(
                [
                    max(0.0, x1 - pad),
                    max(0.0, y1 - pad),
                    min(scene.width, x2 + pad),
                    min(scene.height, y2 + pad),
                ]
            )
        marked = draw_regions(image, boxes)
        return _chat(prompts.region_marked_prompt(len(objs)), scene.region_answer(objs), marked)

    def crop(self, scene: Any, image: Any, rng: random.Random) -> dict[str, Any]:
        from hfgcot import prompts

        obj = rng.choice(scene.objects)
        x1, y1, x2, y2 = obj.bbox
        pad = rng.uniform(0.02, 0.3) * (x2 - x1)
        box = (
            max(0, int(x1 - pad)),
            max(0, int(y1 - pad)),
            min(scene.width, int(x2 + pad + 1)),
            min(scene.height, int(y2 + pad + 1)),
        )
        return _chat(prompts.region_crop_prompt(), scene.crop_answer(obj), image.crop(box))

    def make(self, task: str, scene: Any, image: Any, rng: random.Random) -> dict[str, Any]:
        return getattr(self, task)(scene, image, rng)


def corpus(n_scenes: int = 2000, seed: int = 12345) -> list[str]:
    """Texts the tokenizer is trained on: every prompt and target of ``n_scenes`` scenes."""
    from hfgcot import prompts
    from hfgcot.testing.shapes import make_scene

    rng = random.Random(seed)
    maker = RowMaker(MIN_PIXELS, MAX_PIXELS)
    lines = list(prompts.prompt_fingerprint_data().values())
    lines += ["You are a helpful assistant.", "0 1 2 3 4 5 6 7 8 9"]
    for k in range(n_scenes):
        scene = make_scene(TRAIN_SEED_BASE - 1 - k)
        for item in scene.vqa(rng)[:6]:
            lines += [item.prompt(), item.gcot()]
        lines += scene.caption_sentences() + [scene.false_sentence(rng) for _ in range(2)]
        for obj in scene.objects:
            lines += [
                scene.detail_answer(obj),
                scene.position_answer(obj),
                prompts.detail_question(obj.label),
                prompts.position_question(obj.label),
                prompts.grounding_prompt(obj.label),
                scene.grounding_answer(obj, maker.min_pixels, maker.max_pixels),
                scene.crop_answer(obj),
            ]
        lines.append(scene.region_answer(scene.objects))
    return lines


def build_model(tokenizer: Any, args: argparse.Namespace) -> Any:
    """A Qwen2.5-VL (patch 14, merge 2, temporal patch 2) with the sizes of ``args``."""
    from transformers import Qwen2_5_VLForConditionalGeneration

    from hfgcot.testing.tiny import tiny_config

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
    import torch

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
    import torch

    from hfgcot.testing.tiny import number_token_ids

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
    from transformers import Qwen2_5_VLProcessor, Qwen2VLImageProcessor, Qwen2VLVideoProcessor

    from hfgcot.testing.tiny import CHAT_TEMPLATE

    return Qwen2_5_VLProcessor(
        image_processor=Qwen2VLImageProcessor(min_pixels=min_pixels, max_pixels=max_pixels),
        tokenizer=tokenizer,
        video_processor=Qwen2VLVideoProcessor(),
        chat_template=CHAT_TEMPLATE,
    )


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------


def _mix(progress: float, args: argparse.Namespace) -> dict[str, float]:
    early = MIX_EASY if args.easy_scenes else MIX_EARLY
    mix = early if progress < args.curriculum else MIX_LATE
    if args.tasks:
        keep = set(args.tasks.split(","))
        mix = {k: v for k, v in {**MIX_EARLY, **MIX_LATE}.items() if k in keep}
    return mix


def _smoothing(progress: float, args: argparse.Namespace) -> float:
    start, end = args.number_smoothing, args.number_smoothing_end
    if end is None or start <= 0 or end <= 0:
        return start
    return start * (end / start) ** min(1.0, progress)


def _lr(step: int, progress: float, args: argparse.Namespace) -> float:
    if step < args.warmup_steps:
        return args.lr * (step + 1) / args.warmup_steps
    cos = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return args.lr * (args.min_lr_ratio + (1 - args.min_lr_ratio) * cos)


def _tail_mean(values: list[float], n: int) -> float:
    """Mean of the last ``n`` values (0 when there are none)."""
    tail = values[-n:]
    return sum(tail) / max(1, len(tail))


def _scene_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """``make_scene`` arguments of training scenes (a new dict each call)."""
    return {"max_objects": args.max_objects, **json.loads(args.scene_kwargs)}


def _worker_loader(batches: IterableDataset) -> Any:
    """A ``DataLoader`` over an endless batch iterable: rows are rendered and collated by one
    worker process on the other core."""
    import torch

    return torch.utils.data.DataLoader(
        batches, batch_size=None, num_workers=1, prefetch_factor=4, multiprocessing_context="spawn"
    )


def image_cells(batch: dict[str, Any], merge: int = 2) -> Any:
    """(row, column) of every image token of ``batch`` in its image's merged grid, in order."""
    import torch

    cells = []
    for _t, h, w in batch["image_grid_thw"].tolist():
        hm, wm = h // merge, w // merge
        k = torch.arange(hm * wm)
        cells.append(torch.stack([k // wm, k % wm], dim=1))
    return torch.cat(cells).float() if cells else torch.zeros(0, 2)


DENSE_CLASSES = (1 + len(COLOURS), 1 + len(SHAPES))  # background + colours, + shapes
DENSE_BOX_SCALE = 168.0  # frame pixels -> probe targets (6 tokens of 28 px)


def dense_targets(scene: Any, grid_h: int, grid_w: int, merge: int = 2) -> dict[str, list]:
    """Per merged image token of ``scene`` (raster order): what the token shows.

    ``colour`` and ``shape`` are class ids (0: background), ``box`` the frame box of the object
    (``nan`` on background), ``cell`` the token's (row, column) and ``tokens`` how many tokens
    show the token's object (0 on background). A token shows the object
    whose frame box holds the token's centre, or whose centre lies in the token's cell (so a
    small object has at least one token); the larger overlap wins.
    """
    colours, shapes = list(COLOURS), list(SHAPES)
    sx, sy = grid_w * 14 / scene.width, grid_h * 14 / scene.height
    frame_boxes = [
        (o.bbox[0] * sx, o.bbox[1] * sy, o.bbox[2] * sx, o.bbox[3] * sy) for o in scene.objects
    ]
    side = 14 * merge
    out: dict[str, list] = {"colour": [], "shape": [], "box": [], "cell": []}
    shown: list[int] = []  # index of the object each token shows, -1 on background
    for r in range(grid_h // merge):
        for c in range(grid_w // merge):
            cx1, cy1 = c * side, r * side
            cx, cy = cx1 + side / 2, cy1 + side / 2
            best, best_area = None, 0.0
            for k, (obj, (x1, y1, x2, y2)) in enumerate(
                zip(scene.objects, frame_boxes, strict=True)
            ):
                ox, oy = (x1 + x2) / 2, (y1 + y2) / 2
                holds = x1 <= cx < x2 and y1 <= cy < y2
                inside = cx1 <= ox < cx1 + side and cy1 <= oy < cy1 + side
                area = max(0.0, min(x2, cx1 + side) - max(x1, cx1)) * max(
                    0.0, min(y2, cy1 + side) - max(y1, cy1)
                )
                if (holds or inside) and area > best_area:
                    best, best_area = (k, obj, (x1, y1, x2, y2)), area
            shown.append(-1 if best is None else best[0])
            if best is None:
                out["colour"].append(0)
                out["shape"].append(0)
                out["box"].append([math.nan] * 4)
            else:
                _, obj, box = best
                out["colour"].append(1 + colours.index(obj.colour))
                out["shape"].append(1 + shapes.index(obj.shape))
                out["box"].append([v / DENSE_BOX_SCALE for v in box])
            out["cell"].append([r / 6.0, c / 6.0])
    out["tokens"] = [0 if k < 0 else shown.count(k) for k in shown]
    return out


def dense_batch(rows: list[dict[str, Any]], scenes: list[Any], grids: Any) -> dict[str, Any]:
    """Dense targets for every image token of a collated batch (``-100``/``nan``: no target).

    ``scenes[i]`` is the scene row ``i``'s picture shows whole (``None`` for crops);
    ``grids`` is the batch's ``image_grid_thw``.
    """
    import torch

    cols: dict[str, list] = {"colour": [], "shape": [], "box": [], "cell": [], "tokens": []}
    grid_rows = iter(grids.tolist())
    for row, scene in zip(rows, scenes, strict=True):
        if "image" not in row:
            continue
        _t, h, w = next(grid_rows)
        if scene is not None:
            found = dense_targets(scene, h, w)
        else:
            n = (h // 2) * (w // 2)
            found = {"colour": [-100] * n, "shape": [-100] * n, "box": [[math.nan] * 4] * n}
            found["tokens"] = [0] * n
            found["cell"] = [[k // (w // 2) / 6.0, k % (w // 2) / 6.0] for k in range(n)]
        for key in cols:
            cols[key] += found[key]
    return {
        "colour": torch.tensor(cols["colour"], dtype=torch.long),
        "shape": torch.tensor(cols["shape"], dtype=torch.long),
        "box": torch.tensor(cols["box"], dtype=torch.float32).reshape(-1, 4),
        "cell": torch.tensor(cols["cell"], dtype=torch.float32).reshape(-1, 2),
        "tokens": torch.tensor(cols["tokens"], dtype=torch.float32),
    }


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


def dense_head(hidden_size: int, args: argparse.Namespace) -> Any:
    """A throw-away linear probe with the output layout :func:`dense_terms` reads."""
    import torch

    return torch.nn.Linear(hidden_size, sum(DENSE_CLASSES) + box_width(args) + 2)


def dense_terms(pred: Any, dense: dict[str, Any], code: bool = False, balance: float = 0.0) -> Any:
    """The loss of :func:`dense_loss` for probe outputs ``pred`` (one row per image token):
    colour and shape classes, then the object box (or its code), then the grid cell.

    Token by token, a large object outweighs a small one many times over in the shape term,
    though small objects are the ones whose shape goes unread; ``balance`` adds, with that
    weight, the shape cross-entropy of object tokens with every object counting once (each
    token weighted by one over its object's token count)."""
    import torch.nn.functional as F

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


def answer_boxes(row: dict[str, Any]) -> list[list[float]]:
    """The box of each assistant turn of a grounding row, in the model's frame."""
    from hfgcot.parsing.grounding import parse_grounding

    boxes = []
    for message in row["messages"]:
        if message["role"] == "assistant":
            found = parse_grounding(message["content"][-1]["text"])
            boxes.append(list(found[0].box) if found else [math.nan] * 4)
    return boxes


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
    import torch

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
    import torch

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
        import torch
        from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import apply_rotary_pos_emb

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
    import torch

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
    import torch

    hit = (colours[rows] == wanted[:, None]) & (wanted[:, None] >= 0)
    found = hit.any(dim=1)
    if not bool(found.any()):
        return colours.new_zeros((), dtype=torch.float32)
    total = 0.0
    for head in range(heads):  # each head copies head_dim numbers of the object's tokens
        logp = tap.head_scores(head)[rows[found], queries[found]].float().log_softmax(-1)
        total = total - (logp.masked_fill(~hit[found], float("-inf")).logsumexp(-1)).mean()
    return total / heads


def word_table(tokenizer: Any, size: int) -> dict[str, Any]:
    """For each of ``size`` token ids: ``colour`` (1 + index in ``COLOURS`` if the token is a
    colour word, else 0) and ``shape`` (True if it is a shape word), as written after a space."""
    import torch

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
    import torch

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
    import torch
    import torch.nn.functional as F

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


def number_table(tokenizer: Any, size: int) -> dict[str, Any]:
    """For each of ``size`` token ids: ``value`` (the whole number it is, -1 if none) and
    ``bracket`` (+1 if the token opens a ``[``, -1 if it closes one, else 0)."""
    import torch

    from hfgcot.testing.tiny import number_token_ids

    value = torch.full((size,), -1, dtype=torch.long)
    for token_id, number in number_token_ids(tokenizer, 1000).items():
        value[token_id] = number
    bracket = torch.zeros(size, dtype=torch.long)
    for token, token_id in tokenizer.get_vocab().items():
        if token_id < size:
            bracket[token_id] = ("[" in token) - ("]" in token)
    return {"value": value, "bracket": bracket}


def save(model: Any, processor: Any, path: Path, dtype: str) -> None:
    import torch

    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    state_dtype = getattr(torch, dtype)
    state = {k: v.detach().to(state_dtype) for k, v in model.state_dict().items()}
    model.config.dtype = state_dtype
    model.save_pretrained(tmp, state_dict=state)
    processor.save_pretrained(tmp)
    shutil.rmtree(path, ignore_errors=True)
    tmp.rename(path)


def quick_eval(model: Any, processor: Any, n: int = 24, seed: int = 99) -> dict[str, float]:
    """Grounding Acc@0.5 of greedy answers to the grounding prompt on ``n`` held-out scenes."""
    import torch

    from hfgcot import prompts
    from hfgcot.geometry.frames import iou
    from hfgcot.model.spec import ModelSpec
    from hfgcot.model.vlm import VLM, GenerationSettings, Request
    from hfgcot.pipelines.gcot import ground_boxes
    from hfgcot.testing.shapes import make_scenes

    model.eval()
    vlm = VLM(model, processor, ModelSpec(model="in-training"), "cpu")
    scenes = make_scenes(n, seed=seed)
    rng = random.Random(seed)
    objs = [rng.choice(s.objects) for s in scenes]
    reqs = [
        Request(s.image(), prompts.grounding_prompt(o.label))
        for s, o in zip(scenes, objs, strict=True)
    ]
    with torch.no_grad():
        outs = vlm.generate(reqs, GenerationSettings(max_new_tokens=24), batch_size=12)
    ious = []
    for out, obj in zip(outs, objs, strict=True):
        boxes = ground_boxes(out.text, out.frame, "qwen2_5_vl") if out.frame else []
        ious.append(iou(boxes[0][1], list(obj.bbox)) if boxes else 0.0)
    model.train()
    return {
        "acc50": sum(v > 0.5 for v in ious) / n,
        "miou": sum(ious) / n,
        "example": outs[0].text[:80],
    }


class Batches(IterableDataset):
    """Endless collated batches (an iterable for a ``DataLoader`` worker): ``(progress, batch)``.

    ``progress`` is the elapsed share of the time budget when the batch was made; it picks the
    task mix (curriculum). Two rows per scene halve the rendering.
    """

    def __init__(self, processor: Any, args: argparse.Namespace, start: float, budget: float):
        super().__init__()
        self.processor = processor
        self.args = args
        self.start = start
        self.budget = budget

    def __iter__(self) -> Any:
        import torch

        from hfgcot import GroundingCollator
        from hfgcot.testing.shapes import make_scene

        torch.set_num_threads(1)
        args = self.args
        collator = GroundingCollator(self.processor)
        maker = RowMaker(args.min_pixels, args.max_pixels, args.ground_turns)
        rng = random.Random(args.seed)
        scene_id = 0
        while True:
            progress = (time.time() - self.start) / self.budget
            mix = _mix(progress, args)
            if args.one_task_batches:  # no padding to the longest task's length
                tasks = rng.choices(list(mix), weights=list(mix.values()), k=1) * args.batch_size
            else:
                tasks = rng.choices(list(mix), weights=list(mix.values()), k=args.batch_size)
            rows = []
            boxes = []
            shown = []
            turn_objects = []
            for i, task in enumerate(tasks):
                if i % 2 == 0:
                    kwargs = _scene_kwargs(args)
                    if args.easy_scenes and progress < args.curriculum:
                        kwargs.update(EASY_SCENES)
                    scene = make_scene(
                        TRAIN_SEED_BASE + args.seed * 10_000_000 + scene_id, **kwargs
                    )
                    scene_id += 1
                    image = scene.image()
                rows.append(maker.make(task, scene, image, rng))
                turn_objects.append(rows[-1].pop("turn_objects", []))
                boxes.append(answer_boxes(rows[-1]) if task == "ground" else [])
                shown.append(None if task == "crop" else scene)
            batch = collator(rows)
            if args.aux_dense:
                grids = batch.get("image_grid_thw", torch.zeros(0, 3, dtype=torch.long))
                batch["aux_dense"] = dense_batch(rows, shown, grids)
                batch["aux_dense"]["turns"] = [
                    [1 + list(COLOURS).index(o.colour) for o in objs] for objs in turn_objects
                ]
            turns = max(1, *(len(b) for b in boxes))
            batch["aux_boxes"] = torch.tensor(
                [b + [[math.nan] * 4] * (turns - len(b)) for b in boxes], dtype=torch.float32
            )
            yield progress, batch


class VisionBatches(IterableDataset):
    """Endless batches of whole training scenes for :func:`pretrain_vision`: the processor's
    ``pixel_values`` and ``image_grid_thw`` plus :func:`dense_targets` of every merged token."""

    def __init__(self, processor: Any, args: argparse.Namespace) -> None:
        super().__init__()
        self.processor = processor
        self.args = args

    def __iter__(self) -> Any:
        import torch

        from hfgcot.testing.shapes import make_scene

        torch.set_num_threads(1)
        args = self.args
        kwargs = _scene_kwargs(args)
        # seeds apart from the main phase's scenes (TRAIN_SEED_BASE + seed * 10**7 + k)
        first = TRAIN_SEED_BASE + args.seed * 10_000_000 + 5_000_000
        for k in itertools.count(0, args.vision_pretrain_batch):
            scenes = [
                make_scene(first + k + i, **kwargs) for i in range(args.vision_pretrain_batch)
            ]
            inputs = self.processor.image_processor(
                images=[s.image() for s in scenes], return_tensors="pt"
            )
            grids = inputs["image_grid_thw"]
            dense = dense_batch([{"image": True}] * len(scenes), scenes, grids)
            yield inputs["pixel_values"], grids, dense


def pretrain_vision(model: Any, processor: Any, args: argparse.Namespace) -> dict[str, Any]:
    """Train the vision tower alone for ``args.vision_pretrain`` minutes (:func:`dense_terms`
    on its merged tokens, a throw-away linear head), so that image tokens tell shapes apart
    before the language model starts to read them.

    The whole model learns shape only through the answers and the dense probe; measured on its
    own (300 held-out scenes, shape of each object from its tokens), the vision tower gets to
    0.53 after 4 minutes and 0.76 after 12 minutes on one core this way.
    """
    import torch

    visual = model.model.visual
    head = dense_head(model.config.text_config.hidden_size, args)
    params = [*visual.parameters(), *head.parameters()]
    optim = torch.optim.AdamW(params, lr=args.vision_pretrain_lr, weight_decay=args.weight_decay)
    loader = _worker_loader(VisionBatches(processor, args))
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
                _tail_mean(losses, args.log_every),
                _tail_mean(right, args.log_every),
                lr,
            )
    logger.info("vision tower: %d steps in %.1f min", step, (time.time() - start) / 60)
    return {
        "steps": step,
        "minutes": (time.time() - start) / 60,
        "final_loss": _tail_mean(losses, 50),
        "final_shape_accuracy": _tail_mean(right, 50),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.number_tokens and (args.box_code_next or args.aux_attention_on == "coordinates"):
        # with digit tokens a coordinate is several tokens: next_coordinate() would miscount
        parser.error(
            "--box-code-next and --aux-attention-on coordinates need --number-tokens "
            "(with --number-tokens 0 pass --no-box-code-next)"
        )
    if args.aux_attention_shapes and not args.aux_dense:
        parser.error("--aux-attention-shapes needs --aux-dense (the colour of each image token)")
    if not 0 <= args.vision_pretrain < args.minutes:
        parser.error("--vision-pretrain must be at least 0 and less than --minutes")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    # Import everything up front: a long run must not depend on the source tree staying
    # importable while it trains.
    import hfgcot.model.spec  # noqa: F401
    import hfgcot.model.vlm  # noqa: F401
    from hfgcot.testing.tiny import build_tiny_tokenizer, prompt_phrases

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    out = Path(args.output_dir)
    ckpt = out.with_name(out.name + "-ckpt")
    if args.init:
        processor = AutoProcessor.from_pretrained(args.init)
        model = AutoModelForImageTextToText.from_pretrained(args.init, dtype=torch.float32)
    else:
        t0 = time.time()
        tokenizer = build_tiny_tokenizer(
            args.vocab_size,
            texts=corpus(args.tokenizer_scenes),
            number_tokens=args.number_tokens,
            phrases=prompt_phrases() if args.phrase_tokens else (),
        )
        logger.info("tokenizer: %d tokens (%.1fs)", len(tokenizer), time.time() - t0)
        processor = build_processor(tokenizer, args.min_pixels, args.max_pixels)
        model = build_model(tokenizer, args)
    processor.tokenizer.padding_side = "right"
    n_params = sum(p.numel() for p in model.parameters())
    logger.info("model: %.2fM parameters", n_params / 1e6)
    model.train()
    # The vision tower gets a lower learning rate: at the text model's rate its small merger
    # matrices blow up and every image token collapses to one large constant vector.
    groups: dict[tuple[bool, bool], list[Any]] = {}
    for name, param in model.named_parameters():
        vision = "visual" in name
        decay = param.dim() >= 2 and "embed" not in name
        groups.setdefault((vision, decay), []).append(param)
    probe = torch.nn.Linear(model.config.text_config.hidden_size, 2)
    box_probe = torch.nn.Linear(model.config.text_config.hidden_size, box_width(args))
    dense_probe = dense_head(model.config.text_config.hidden_size, args)
    probes = [*probe.parameters(), *box_probe.parameters(), *dense_probe.parameters()]
    groups[(False, False)] = groups.get((False, False), []) + probes
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
    vision_info = pretrain_vision(model, processor, args) if args.vision_pretrain > 0 else None
    budget = (args.minutes - args.vision_pretrain) * 60
    start = time.time()
    loader = _worker_loader(Batches(processor, args, start, budget))
    step = 0
    losses: list[float] = []
    aux_losses: list[float] = [0.0]
    attention_losses: list[float] = [0.0]
    looks = args.aux_attention or args.aux_attention_shapes
    tap = AttentionTap(model, args.aux_attention_layer) if looks else None
    words = (
        word_table(processor.tokenizer, model.config.text_config.vocab_size)
        if args.aux_attention_shapes
        else None
    )
    # number tokens: coordinate targets are smoothed and located (digits: plain cross-entropy)
    numbers = (
        number_table(processor.tokenizer, model.config.text_config.vocab_size)
        if args.number_tokens
        else None
    )
    history: list[dict[str, Any]] = []
    for _made_at, batch in loader:
        progress = max(step / args.max_steps, (time.time() - start) / budget)
        if progress >= 1 or step >= args.max_steps:
            break
        lr = _lr(step, progress, args)
        for group in optim.param_groups:
            group["lr"] = lr * group["lr_scale"]
        boxes = batch.pop("aux_boxes")
        dense = batch.pop("aux_dense", None)
        result, loss = answer_loss(
            model,
            batch,
            args.aux_position or args.aux_box or args.aux_dense,
            numbers,
            _smoothing(progress, args),
        )
        if tap is not None and dense is not None:
            aux_attention = args.aux_attention * attention_loss(
                tap,
                batch,
                dense,
                model.config,
                args.aux_attention_heads,
                numbers if args.aux_attention_on == "coordinates" else None,
            )
            if args.aux_attention_shapes:
                aux_attention = aux_attention + args.aux_attention_shapes * shape_attention_loss(
                    tap, batch, dense, model.config, words, args.aux_attention_heads
                )
            loss = loss + aux_attention
            attention_losses.append(float(aux_attention.detach()))
        if result.hidden_states is not None:
            hidden = result.hidden_states
            aux = args.aux_position * position_loss(
                hidden[args.aux_layer], batch, probe, model.config
            )
            if args.box_code_next:
                aux = aux + args.aux_box * next_box_loss(
                    hidden[args.aux_box_layer], batch, boxes, box_probe, numbers
                )
            else:
                aux = aux + args.aux_box * box_loss(
                    hidden[args.aux_box_layer], batch, boxes, box_probe, args.box_code
                )
            if dense is not None:
                aux = aux + args.aux_dense * dense_loss(
                    hidden[args.aux_dense_layer],
                    batch,
                    dense,
                    dense_probe,
                    model.config,
                    args.box_code,
                    args.aux_dense_shape_balance,
                )
            loss = loss + aux
            aux_losses.append(float(aux.detach()))
        optim.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optim.step()
        losses.append(float(loss.detach()))
        step += 1
        if step % args.log_every == 0:
            logger.info(
                "step %d  loss %.4f  aux %.4f  attention %.4f  lr %.2e  progress %.2f  %.2fs/step",
                step,
                _tail_mean(losses, args.log_every),
                _tail_mean(aux_losses, args.log_every),
                _tail_mean(attention_losses, args.log_every),
                lr,
                progress,
                (time.time() - start) / step,
            )
        if args.eval_every and step % args.eval_every == 0:
            try:
                metrics = quick_eval(model, processor)
            except Exception:  # noqa: BLE001 - monitoring only; never lose the run for it
                logger.exception("quick eval failed at step %d", step)
                model.train()
                metrics = {}
            history.append({"step": step, "minutes": (time.time() - start) / 60, **metrics})
            logger.info("eval step %d: %s", step, metrics)
        if args.save_every and step % args.save_every == 0:
            save(model, processor, ckpt, args.dtype)
    logger.info("trained %d steps in %.1f min", step, (time.time() - start) / 60)
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
        "steps": step,
        "minutes": (time.time() - start) / 60,
        "parameters": n_params,
        "final_loss": _tail_mean(losses, 50),
        "final_aux_loss": _tail_mean(aux_losses, 50),
        "final_attention_loss": _tail_mean(attention_losses, 50),
        "quick_eval": metrics,
        "vision_pretrain": vision_info,
        "history": history,
        "args": vars(args),
    }
    (out / "training_info.json").write_text(json.dumps(info, indent=2))
    return info


if __name__ == "__main__":
    main()
