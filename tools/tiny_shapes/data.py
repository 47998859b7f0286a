"""Endless training batches (rows collated by :class:`hfgcot.GroundingCollator`) and the dense
targets of every image token.
"""

from __future__ import annotations

import argparse
import itertools
import math
import random
import time
from typing import Any

import torch
from torch.utils.data import IterableDataset

from hfgcot import GroundingCollator
from hfgcot.testing.shapes import COLOURS, SHAPES, make_scene

from .options import EASY_SCENES, TRAIN_SEED_BASE, mix_at, scene_kwargs
from .rows import RowMaker, answer_boxes

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

        torch.set_num_threads(1)
        args = self.args
        collator = GroundingCollator(self.processor)
        maker = RowMaker(args.min_pixels, args.max_pixels, args.ground_turns)
        rng = random.Random(args.seed)
        scene_id = 0
        while True:
            progress = (time.time() - self.start) / self.budget
            mix = mix_at(progress, args)
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
                    kwargs = scene_kwargs(args)
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

        torch.set_num_threads(1)
        args = self.args
        kwargs = scene_kwargs(args)
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


def worker_loader(batches: IterableDataset) -> Any:
    """A ``DataLoader`` over an endless batch iterable: rows are rendered and collated by one
    worker process on the other core."""
    return torch.utils.data.DataLoader(
        batches, batch_size=None, num_workers=1, prefetch_factor=4, multiprocessing_context="spawn"
    )
