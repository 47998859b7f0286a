"""Train the toy Qwen2.5-VL that knows shapes: from scratch, on CPU, on synthetic scenes.

Every target comes from :mod:`hfgcot.shapes` and every prompt is the library's own
(:mod:`hfgcot.prompts`), so the pipelines (``add_gcot``, ``add_dense_captions``,
``add_region_captions``, ``add_grounding_predictions``) ask exactly what the model was trained on.
Grounding rows are built by :class:`hfgcot.stages.grounding_sft.GroundingSFTStage` (boxes in the
frame the training processor really produces); all rows are batched by
:class:`hfgcot.GroundingCollator` (loss on the assistant turn only).

The model is a Qwen2.5-VL architecture (patch 14, merge 2) with about a million parameters, a
byte-level BPE tokenizer trained on the target texts and small processor pixel limits (at most
36 image tokens). The defaults are the recipe the shipped checkpoint was trained with (crops and
grounding first, then every task; its exact arguments are in its ``training_info.json``). Options
for the grounding plateau, measured in 10-42 minute runs on one core (quick eval: 24 held-out
scenes, the label given):

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
  scratch scored below the shipped checkpoint end to end (answer accuracy 0.53 vs 0.695; both
  near 0 Acc@0.5, because most GCoT keywords name shapes that are not in the picture).

The learning-rate schedule and the curriculum follow the elapsed share of a time budget, so a
busy machine trains fewer steps but still finishes its schedule::

    python examples/train_tiny_shapes.py --minutes 40 --output-dir hfgcot/data/tiny-shapes

Intermediate checkpoints go to ``<output-dir>-ckpt`` every ``--save-every`` steps. The shipped
checkpoint (``hfgcot/data/tiny-shapes``) was made with this script; evaluate it with
``python benchmarks/eval_tiny_shapes.py``.
"""

from __future__ import annotations

import argparse
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
    p.add_argument("--minutes", type=float, default=40.0, help="time budget of the training loop")
    p.add_argument("--max-steps", type=int, default=100_000)
    p.add_argument("--batch-size", type=int, default=16)
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
    p.add_argument("--rope-theta", type=float, default=10000.0)
    p.add_argument(
        "--mrope-section",
        default="4,6,6",
        help="rotary frequency pairs for time, height, width (sum = head_dim / 2)",
    )
    p.add_argument(
        "--aux-position",
        type=float,
        default=0.0,
        help="weight of the auxiliary loss that reads each image token's grid cell back from the "
        "language model's hidden state (a throw-away linear probe; 0 disables)",
    )
    p.add_argument("--aux-layer", type=int, default=1, help="hidden state the probe reads")
    p.add_argument(
        "--aux-box",
        type=float,
        default=0.0,
        help="weight of the auxiliary loss that reads a grounding row's box (in grid cells) from "
        "the hidden state of every answer token (a throw-away linear probe; 0 disables)",
    )
    p.add_argument("--aux-box-layer", type=int, default=-2, help="hidden state the box probe reads")
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
    p.add_argument("--save-every", type=int, default=100)
    p.add_argument("--eval-every", type=int, default=200)
    p.add_argument("--final-eval-scenes", type=int, default=48)
    p.add_argument("--log-every", type=int, default=20)
    p.add_argument("--threads", type=int, default=1, help="torch threads of the training process")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--init", default=None, help="continue from this checkpoint folder")
    p.add_argument("--dtype", default="float32", help="dtype of the saved weights")
    return p


# --------------------------------------------------------------------------------------------
# Rows
# --------------------------------------------------------------------------------------------


def _chat(user: str, answer: str, image: Any = None) -> dict[str, Any]:
    from hfgcot.stages.grounding_sft import sft_messages

    if image is None:
        messages = [
            {"role": "user", "content": [{"type": "text", "text": user}]},
            {"role": "assistant", "content": [{"type": "text", "text": answer}]},
        ]
        return {"messages": messages}
    return {"messages": sft_messages(user, answer), "image": image}


class RowMaker:
    """Training rows (collator-ready dicts) for each task from one scene."""

    def __init__(self, min_pixels: int, max_pixels: int) -> None:
        from hfgcot import prompts
        from hfgcot.stages.grounding_sft import GroundingSFTStage

        template = prompts.GROUNDING_PROMPT.replace("{phrase}", "{question}")
        common = {"bbox_format": "xyxy", "min_pixels": min_pixels, "max_pixels": max_pixels}
        self.ground_stage = GroundingSFTStage(prompt=template, **common)
        self.sft_stage = GroundingSFTStage(**common)
        self.min_pixels, self.max_pixels = min_pixels, max_pixels

    def ground(self, scene: Any, image: Any, rng: random.Random) -> dict[str, Any]:
        obj = rng.choice(scene.objects)
        stage = self.sft_stage if rng.random() < 0.15 else self.ground_stage
        row = stage.row_for_size(scene.width, scene.height, obj.label, list(obj.bbox))
        if row["sft_status"] != "ok":
            return self.caption(scene, image, rng)
        return {**row, "image": image}

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
        from hfgcot.viz import draw_regions

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
    from hfgcot.shapes import make_scene

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

    from hfgcot.testing import tiny_config

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
    model.generation_config.eos_token_id = [text.eos_token_id]
    model.generation_config.pad_token_id = text.pad_token_id
    model.generation_config.do_sample = False
    return model


def build_processor(tokenizer: Any, min_pixels: int, max_pixels: int) -> Any:
    from transformers import Qwen2_5_VLProcessor, Qwen2VLImageProcessor, Qwen2VLVideoProcessor

    from hfgcot.testing import CHAT_TEMPLATE

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


def _lr(step: int, progress: float, args: argparse.Namespace) -> float:
    if step < args.warmup_steps:
        return args.lr * (step + 1) / args.warmup_steps
    cos = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return args.lr * (args.min_lr_ratio + (1 - args.min_lr_ratio) * cos)


def image_cells(batch: dict[str, Any], merge: int = 2) -> Any:
    """(row, column) of every image token of ``batch`` in its image's merged grid, in order."""
    import torch

    cells = []
    for _t, h, w in batch["image_grid_thw"].tolist():
        hm, wm = h // merge, w // merge
        k = torch.arange(hm * wm)
        cells.append(torch.stack([k // wm, k % wm], dim=1))
    return torch.cat(cells).float() if cells else torch.zeros(0, 2)


def answer_box(row: dict[str, Any]) -> list[float] | None:
    """The box of a grounding row's answer in the model's frame, or ``None``."""
    from hfgcot.parsing import parse_grounding

    text = row["messages"][-1]["content"][-1]["text"]
    found = parse_grounding(text)
    return list(found[0].box) if found else None


def box_loss(hidden: Any, batch: dict[str, Any], boxes: Any, probe: Any) -> Any:
    """MSE of a linear probe reading each grounding row's box from its answer tokens.

    The box (frame pixels / 28, i.e. grid cells, / 6) is what every answer token of the row
    needs to write its numbers; asking for it directly teaches the answer to look at the named
    object and fetch the position the image tokens carry, which the digits alone teach slowly.
    """
    rows = ~boxes.isnan().any(dim=1)
    answer = (batch["labels"] != -100) & rows[:, None]
    if not bool(answer.any()):
        return hidden.sum() * 0.0
    per_token = boxes[:, None, :].expand(-1, hidden.shape[1], -1)[answer] / (28.0 * 6.0)
    pred = probe(hidden[answer])
    return ((pred - per_token.to(pred.dtype)) ** 2).mean()


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
    from hfgcot.geometry import iou
    from hfgcot.shapes import make_scenes
    from hfgcot.stages.gcot import ground_boxes
    from hfgcot.vlm import VLM, GenerationSettings, ModelSpec, Request

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
        from hfgcot.shapes import make_scene

        torch.set_num_threads(1)
        args = self.args
        collator = GroundingCollator(self.processor)
        maker = RowMaker(args.min_pixels, args.max_pixels)
        rng = random.Random(args.seed)
        scene_id = 0
        while True:
            progress = (time.time() - self.start) / self.budget
            mix = _mix(progress, args)
            tasks = rng.choices(list(mix), weights=list(mix.values()), k=args.batch_size)
            rows = []
            boxes = []
            for i, task in enumerate(tasks):
                if i % 2 == 0:
                    kwargs = {"max_objects": args.max_objects, **json.loads(args.scene_kwargs)}
                    if args.easy_scenes and progress < args.curriculum:
                        kwargs.update(EASY_SCENES)
                    scene = make_scene(
                        TRAIN_SEED_BASE + args.seed * 10_000_000 + scene_id, **kwargs
                    )
                    scene_id += 1
                    image = scene.image()
                rows.append(maker.make(task, scene, image, rng))
                boxes.append(answer_box(rows[-1]) if task == "ground" else None)
            batch = collator(rows)
            batch["aux_boxes"] = torch.tensor(
                [b if b is not None else [math.nan] * 4 for b in boxes], dtype=torch.float32
            )
            yield progress, batch


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    # Import everything up front: a long run must not depend on the source tree staying
    # importable while it trains.
    import hfgcot.stages.gcot
    import hfgcot.stages.grounding_sft
    import hfgcot.vlm  # noqa: F401
    from hfgcot.testing import build_tiny_tokenizer

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    out = Path(args.output_dir)
    ckpt = out.with_name(out.name + "-ckpt")
    if args.init:
        processor = AutoProcessor.from_pretrained(args.init)
        model = AutoModelForImageTextToText.from_pretrained(args.init, dtype=torch.float32)
    else:
        t0 = time.time()
        tokenizer = build_tiny_tokenizer(args.vocab_size, texts=corpus(args.tokenizer_scenes))
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
    box_probe = torch.nn.Linear(model.config.text_config.hidden_size, 4)
    groups[(False, False)] = (
        groups.get((False, False), []) + list(probe.parameters()) + list(box_probe.parameters())
    )
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
    budget = args.minutes * 60
    start = time.time()
    batches = Batches(processor, args, start, budget)
    loader = torch.utils.data.DataLoader(
        batches,
        batch_size=None,
        num_workers=1,  # rows are rendered and collated on the other core
        prefetch_factor=4,
        multiprocessing_context="spawn",
        persistent_workers=False,
    )
    step = 0
    losses: list[float] = []
    aux_losses: list[float] = [0.0]
    history: list[dict[str, Any]] = []
    for _made_at, batch in loader:
        progress = max(step / args.max_steps, (time.time() - start) / budget)
        if progress >= 1 or step >= args.max_steps:
            break
        lr = _lr(step, progress, args)
        for group in optim.param_groups:
            group["lr"] = lr * group["lr_scale"]
        boxes = batch.pop("aux_boxes")
        if args.aux_position or args.aux_box:
            result = model(**batch, output_hidden_states=True)
            aux = args.aux_position * position_loss(
                result.hidden_states[args.aux_layer], batch, probe, model.config
            )
            aux = aux + args.aux_box * box_loss(
                result.hidden_states[args.aux_box_layer], batch, boxes, box_probe
            )
            loss = result.loss + aux
            aux_losses.append(float(aux.detach()))
        else:
            loss = model(**batch).loss
        optim.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optim.step()
        losses.append(float(loss.detach()))
        step += 1
        if step % args.log_every == 0:
            recent = sum(losses[-args.log_every :]) / args.log_every
            logger.info(
                "step %d  loss %.4f  aux %.4f  lr %.2e  progress %.2f  %.2fs/step",
                step,
                recent,
                sum(aux_losses[-args.log_every :]) / len(aux_losses[-args.log_every :]),
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
        "final_loss": sum(losses[-50:]) / max(1, len(losses[-50:])),
        "final_aux_loss": sum(aux_losses[-50:]) / len(aux_losses[-50:]),
        "quick_eval": metrics,
        "history": history,
        "args": vars(args),
    }
    (out / "training_info.json").write_text(json.dumps(info, indent=2))
    return info


if __name__ == "__main__":
    main()
