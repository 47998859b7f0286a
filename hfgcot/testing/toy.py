"""The toy model shipped with the package, and what is scored with it on shape scenes.

:func:`tiny_shapes_path` finds the toy Qwen2.5-VL trained on :mod:`hfgcot.testing.shapes` scenes
(``tools/tiny_shapes``, its recipe); :func:`vqa_rows` turns held-out scenes into ``add_gcot``
input; :func:`score_gcot` scores the keyword boxes of GCoT outputs against the true boxes
(``benchmarks/eval_tiny_shapes.py`` and the CI test). Pure (no torch).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hfgcot.geometry.boxes import iou
from hfgcot.parsing.phrases import phrase_key
from hfgcot.testing.shapes import Scene

__all__ = ["TINY_SHAPES_DIR", "score_gcot", "tiny_shapes_path", "vqa_rows"]

TINY_SHAPES_DIR = Path(__file__).parent.parent / "data" / "tiny-shapes"
"""Where the toy Qwen2.5-VL trained on these scenes ships (``tools/tiny_shapes``, its recipe)."""


def tiny_shapes_path() -> str | None:
    """The folder of the shipped toy model, or ``None`` when it is not installed.

    >>> tiny_shapes_path() is None or tiny_shapes_path().endswith("tiny-shapes")
    True
    """
    ok = (TINY_SHAPES_DIR / "config.json").exists() and (
        TINY_SHAPES_DIR / "model.safetensors"
    ).exists()
    return str(TINY_SHAPES_DIR) if ok else None


def vqa_rows(scenes: Sequence[Scene], seed: int = 0) -> dict[str, list]:
    """Columns for ``add_gcot``: ``image`` (PIL), ``question``, ``answer``, ``scene`` (index).

    One question per scene; the question kind is drawn uniformly among those the scene supports.
    """
    rng = random.Random(seed)
    rows: dict[str, list] = {"image": [], "question": [], "answer": [], "scene": []}
    for i, scene in enumerate(scenes):
        items = scene.vqa(rng)
        kind = rng.choice(sorted({it.kind for it in items}))
        item = rng.choice([it for it in items if it.kind == kind])
        rows["image"].append(scene.image())
        rows["question"].append(item.question)
        rows["answer"].append(item.answer)
        rows["scene"].append(i)
    return rows


def score_gcot(
    scenes: Sequence[Scene],
    keywords: Sequence[Sequence[str]],
    groundings: Sequence[Sequence[dict[str, Any]]],
    *,
    box_key: str = "bbox",
    iou_threshold: float = 0.5,
) -> dict[str, Any]:
    """Keyword grounding Acc@0.5 of GCoT outputs against the scenes' true boxes.

    Every distinct keyword of a row counts once: it is correct when the scene has an object with
    that label (case-insensitive) and the first box grounded for the keyword has an IoU above
    ``iou_threshold`` with the object's box. Keywords that name no object of the scene
    (``unmatched``) or got no box (``ungrounded``) count as wrong. ``box_key="bbox_model"`` scores
    the model's numbers as if they were original pixels (the classic coordinate bug).

    >>> from hfgcot.testing.shapes import make_scene
    >>> s = make_scene(0)
    >>> o = s.objects[0]
    >>> score_gcot([s], [[o.label]], [[{"phrase": o.label, "bbox": list(o.bbox)}]])["acc50"]
    1.0
    """
    total = correct = unmatched = ungrounded = 0
    ious: list[float] = []
    for scene, kws, grounds in zip(scenes, keywords, groundings, strict=True):
        seen: set[str] = set()
        for kw in kws:
            key = phrase_key(kw)
            if key in seen:
                continue
            seen.add(key)
            total += 1
            obj = scene.by_label(key)
            boxes = [g[box_key] for g in grounds if phrase_key(g["phrase"]) == key]
            if obj is None:
                unmatched += 1
                ious.append(0.0)
                continue
            if not boxes:
                ungrounded += 1
                ious.append(0.0)
                continue
            value = iou(list(boxes[0]), list(obj.bbox))
            ious.append(value)
            correct += value > iou_threshold
    return {
        "acc50": correct / total if total else None,
        "mean_iou": sum(ious) / len(ious) if ious else None,
        "keywords": total,
        "unmatched": unmatched,
        "ungrounded": ungrounded,
    }
