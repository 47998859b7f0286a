"""The recipe's options, the task mix and the schedules (learning rate, smoothing, curriculum).

The defaults are the recipe of the shipped checkpoint (``hfgcot/data/tiny-shapes``; its exact
arguments are in its ``training_info.json``); what each option measured is in ``NOTES.md``.
"""

from __future__ import annotations

import argparse
import json
import math
from typing import Any

DESCRIPTION = (
    "Train the toy Qwen2.5-VL that knows shapes: from scratch, on CPU, on synthetic scenes."
)

MIN_PIXELS = 28 * 28 * 4  # processor limits: 4 to 36 image tokens


MAX_PIXELS = 28 * 28 * 36


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
    """Every option of the recipe; the defaults are the shipped checkpoint's."""
    p = argparse.ArgumentParser(description=DESCRIPTION)
    for add in (
        _add_run_options,
        _add_model_options,
        _add_aux_options,
        _add_data_options,
        _add_phases_options,
    ):
        add(p)
    return p


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The options of ``argv``; combinations that cannot work are a usage error (exit 2)."""
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
    return args


def _add_run_options(p: argparse.ArgumentParser) -> None:
    """Where the model goes, the time budget and the optimiser."""
    p.add_argument("--output-dir", default="outputs/tiny-shapes")
    p.add_argument("--minutes", type=float, default=42.0, help="time budget of the training loop")
    p.add_argument("--max-steps", type=int, default=100_000)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, default=1.5e-3)
    p.add_argument("--vision-lr-scale", type=float, default=0.7)
    p.add_argument("--min-lr-ratio", type=float, default=0.05)
    p.add_argument("--warmup-steps", type=int, default=100)
    p.add_argument("--weight-decay", type=float, default=0.05)


def _add_model_options(p: argparse.ArgumentParser) -> None:
    """The model, its tokenizer and how box coordinates are written and coded."""
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


def _add_aux_options(p: argparse.ArgumentParser) -> None:
    """The auxiliary probes and looks (losses of throw-away heads, never saved)."""
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


def _add_data_options(p: argparse.ArgumentParser) -> None:
    """The task mix, the scenes and the image sizes."""
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


def _add_phases_options(p: argparse.ArgumentParser) -> None:
    """The vision phase, checkpoints, evaluation, logging and threads."""
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


def mix_at(progress: float, args: argparse.Namespace) -> dict[str, float]:
    """The task mix at ``progress`` (elapsed share of the budget): early, then late."""
    early = MIX_EASY if args.easy_scenes else MIX_EARLY
    mix = early if progress < args.curriculum else MIX_LATE
    if args.tasks:
        keep = set(args.tasks.split(","))
        mix = {k: v for k, v in {**MIX_EARLY, **MIX_LATE}.items() if k in keep}
    return mix


def smoothing_at(progress: float, args: argparse.Namespace) -> float:
    """Width of the number-token target at ``progress``: geometric from start to end."""
    start, end = args.number_smoothing, args.number_smoothing_end
    if end is None or start <= 0 or end <= 0:
        return start
    return start * (end / start) ** min(1.0, progress)


def lr_at(step: int, progress: float, args: argparse.Namespace) -> float:
    """Linear warm-up, then a cosine over the budget down to ``min_lr_ratio``."""
    if step < args.warmup_steps:
        return args.lr * (step + 1) / args.warmup_steps
    cos = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return args.lr * (args.min_lr_ratio + (1 - args.min_lr_ratio) * cos)


def scene_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """``make_scene`` arguments of training scenes (a new dict each call)."""
    return {"max_objects": args.max_objects, **json.loads(args.scene_kwargs)}
