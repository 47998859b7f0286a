"""Seeded scene generation: every size, aspect ratio, layout and background from one seed."""

from __future__ import annotations

import math
import random

from hfgcot.testing.shapes.objects import BACKGROUNDS, COLOURS, SHAPES, ShapeObject
from hfgcot.testing.shapes.scene import Scene


def _neutral(rng: random.Random, tone: str) -> tuple[int, int, int]:
    level = rng.randint(185, 250) if tone == "light" else rng.randint(15, 70)
    return tuple(max(0, min(255, level + rng.randint(-12, 12))) for _ in range(3))  # type: ignore[return-value]


def make_scene(
    seed: int,
    *,
    min_side: int = 64,
    max_side: int = 2048,
    max_objects: int = 4,
    min_short_side: int = 32,
) -> Scene:
    """One scene, entirely determined by ``seed``.

    The long side is log-uniform in ``[min_side, max_side]``, the aspect ratio log-uniform in
    ``[1/4, 4]`` (short side at least ``min_short_side``), 1 to ``max_objects`` shapes of distinct
    colours that do not overlap, each 18-55% of the short side.

    >>> make_scene(3) == make_scene(3)
    True
    """
    rng = random.Random(seed)
    aspect = math.exp(rng.uniform(math.log(0.25), math.log(4.0)))
    long_lo = max(min_side, min_short_side * max(aspect, 1 / aspect))
    long_side = math.exp(rng.uniform(math.log(min(long_lo, max_side)), math.log(max_side)))
    if aspect >= 1:
        width, height = round(long_side), max(min_short_side, round(long_side / aspect))
    else:
        height, width = round(long_side), max(min_short_side, round(long_side * aspect))
    short = min(width, height)
    n = rng.randint(1, max_objects)
    colours = rng.sample(list(COLOURS), n)
    objects: list[ShapeObject] = []
    scale = 1.0
    attempts = 0
    while len(objects) < n:
        attempts += 1
        if attempts % 50 == 0:
            scale *= 0.85
        hi = (0.55 if n == 1 else 0.45 if n == 2 else 0.38) * scale
        side = max(6, round(short * rng.uniform(0.18 * scale, hi)))
        side = min(side, width, height)
        x = rng.randint(0, width - side)
        y = rng.randint(0, height - side)
        box = (float(x), float(y), float(x + side), float(y + side))
        gap = 0.03 * short
        if any(
            box[0] < o.bbox[2] + gap
            and o.bbox[0] < box[2] + gap
            and box[1] < o.bbox[3] + gap
            and o.bbox[1] < box[3] + gap
            for o in objects
        ):
            continue
        objects.append(ShapeObject(rng.choice(SHAPES), colours[len(objects)], box))
    tone = "light" if rng.random() < 0.75 else "dark"
    background = rng.choice(BACKGROUNDS)
    base = _neutral(rng, tone)
    second = _neutral(rng, tone)
    return Scene(seed, width, height, background, tone, base, second, tuple(objects))


def make_scenes(n: int, seed: int = 0) -> list[Scene]:
    """``n`` scenes from one seed (scene ``i`` uses ``seed * 1_000_003 + i``).

    >>> len(make_scenes(3, seed=1))
    3
    """
    return [make_scene(seed * 1_000_003 + i) for i in range(n)]
