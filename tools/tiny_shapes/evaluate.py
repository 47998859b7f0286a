"""Watching a run: the quick grounding evaluation and running means of the losses."""

from __future__ import annotations

import random
from typing import Any

import torch

from hfgcot import prompts
from hfgcot.geometry.boxes import iou
from hfgcot.model.spec import ModelSpec
from hfgcot.model.vlm import VLM, GenerationSettings, Request
from hfgcot.pipelines.gcot import ground_boxes
from hfgcot.testing.shapes import make_scenes


def tail_mean(values: list[float], n: int) -> float:
    """Mean of the last ``n`` values (0 when there are none)."""
    tail = values[-n:]
    return sum(tail) / max(1, len(tail))


def quick_eval(model: Any, processor: Any, n: int = 24, seed: int = 99) -> dict[str, float]:
    """Grounding Acc@0.5 of greedy answers to the grounding prompt on ``n`` held-out scenes."""

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
