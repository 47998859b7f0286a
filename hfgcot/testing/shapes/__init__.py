"""Synthetic shape scenes with exact boxes, and training targets for every pipeline.

A seeded generator of small worlds that a tiny model can learn offline: 1-4 shapes (circle,
square, triangle) in distinct colours and varied sizes, on plain, noisy or gradient backgrounds,
in images of 64 to 2048 pixels with aspect ratios from 1:4 to 4:1 (so the Qwen-VL resize really
changes the frame). Each :class:`Scene` knows the exact box of every object and writes targets in
the formats the library's pipelines ask for, with the library's own prompts:

- questions with answers and GCoT reasoning (``Step 1: ...``, ``Answer: ...``, ``Keywords: ...``);
- grounding answers in Qwen2.5-VL's convention (``bbox_2d`` in pixels of the resized image);
- captions, sentences to check (yes/no), follow-up questions, detail answers, fused captions;
- region descriptions for marked images and crops.

Where each part lives: :mod:`~hfgcot.testing.shapes.objects` (colours, shapes, one object),
:mod:`~hfgcot.testing.shapes.generate` (:func:`make_scene` from a seed),
:mod:`~hfgcot.testing.shapes.scene` (the picture, its facts and the texts of every pipeline) and
:mod:`~hfgcot.testing.shapes.questions` (the question kinds, one table).

Pure apart from PIL and numpy (no torch)::

    >>> scene = make_scene(7)
    >>> 1 <= len(scene.objects) <= 4
    True
    >>> scene.image().size == (scene.width, scene.height)
    True
    >>> import random
    >>> from hfgcot.parsing.gcot_text import parse_gcot
    >>> item = scene.vqa(random.Random(0))[0]
    >>> parse_gcot(item.gcot())[1] == list(item.keywords)
    True
"""

from hfgcot.testing.shapes.generate import make_scene, make_scenes
from hfgcot.testing.shapes.objects import (
    BACKGROUNDS,
    COLOURS,
    NUMBER_WORDS,
    SHAPES,
    ShapeObject,
)
from hfgcot.testing.shapes.questions import QAItem
from hfgcot.testing.shapes.scene import Scene

__all__ = [
    "BACKGROUNDS",
    "COLOURS",
    "NUMBER_WORDS",
    "SHAPES",
    "QAItem",
    "Scene",
    "ShapeObject",
    "make_scene",
    "make_scenes",
]
