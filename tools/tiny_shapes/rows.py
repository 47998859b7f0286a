"""Training rows: one chat of each task from a scene, in the library's prompts and formats.

Every target comes from :mod:`hfgcot.testing.shapes` and every prompt is the library's own
(:mod:`hfgcot.prompts`), so the pipelines ask exactly what the model was trained on. Grounding
rows are built by :class:`hfgcot.pipelines.grounding_sft.GroundingSFTStage` (boxes in the frame
the training processor really produces).
"""

from __future__ import annotations

import math
import random
from typing import Any

from hfgcot import prompts
from hfgcot.parsing.grounding import parse_grounding
from hfgcot.pipelines.grounding_sft import GroundingSFTStage, sft_messages
from hfgcot.testing.shapes import make_scene
from hfgcot.viz.draw import draw_regions

from .options import MAX_PIXELS, MIN_PIXELS, TRAIN_SEED_BASE


def chat(user: str, answer: str, image: Any = None) -> dict[str, Any]:
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
        template = prompts.GROUNDING_PROMPT.replace("{phrase}", "{question}")
        common = {"bbox_format": "xyxy", "min_pixels": min_pixels, "max_pixels": max_pixels}
        self.ground_stage = GroundingSFTStage(prompt=template, **common)
        self.sft_stage = GroundingSFTStage(**common)
        self.min_pixels, self.max_pixels = min_pixels, max_pixels
        self.ground_turns = ground_turns

    def ground(self, scene: Any, image: Any, rng: random.Random) -> dict[str, Any]:
        """A grounding chat: one object, then up to ``ground_turns - 1`` follow-up turns that
        ask for other objects of the same picture (the image is encoded once for all)."""
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
        return chat(item.prompt(), item.gcot(), image)

    def caption(self, scene: Any, image: Any, rng: random.Random) -> dict[str, Any]:
        return chat(prompts.dense_caption_prompt(), scene.caption(), image)

    def check(self, scene: Any, image: Any, rng: random.Random) -> dict[str, Any]:
        if rng.random() < 0.5:
            obj = rng.choice(scene.objects)
            pool = scene.caption_sentences() + [
                scene.detail_answer(obj),
                scene.position_answer(obj),
            ]
            sentence, answer = rng.choice(pool), "yes"
        else:
            sentence, answer = scene.false_sentence(rng), "no"
        return chat(prompts.sentence_check_prompt(sentence), answer, image)

    def objq(self, scene: Any, image: Any, rng: random.Random) -> dict[str, Any]:
        sentences = scene.caption_sentences()
        keep = [s for s in sentences if rng.random() < 0.8] or sentences[-1:]
        text = scene.object_questions(keep, 5)
        if not text:
            return self.caption(scene, image, rng)
        return chat(prompts.object_questions_prompt(keep, 5), text)

    def detail(self, scene: Any, image: Any, rng: random.Random) -> dict[str, Any]:
        obj = rng.choice(scene.objects)
        if rng.random() < 0.5:
            q, a = prompts.detail_question(obj.label), scene.detail_answer(obj)
        else:
            q, a = prompts.position_question(obj.label), scene.position_answer(obj)
        return chat(prompts.detail_answer_prompt(q), a, image)

    def fuse(self, scene: Any, image: Any, rng: random.Random) -> dict[str, Any]:
        sentences = [s for s in scene.caption_sentences() if rng.random() < 0.85]
        sentences = sentences or scene.caption_sentences()[:1]
        details = []
        for obj in scene.objects:
            if rng.random() < 0.5:
                details.append(scene.detail_answer(obj))
            if rng.random() < 0.3:
                details.append(scene.position_answer(obj))
        answer = scene.fused_caption(sentences, details)
        return chat(prompts.fuse_caption_prompt(sentences, details), answer)

    def region(self, scene: Any, image: Any, rng: random.Random) -> dict[str, Any]:
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
        return chat(prompts.region_marked_prompt(len(objs)), scene.region_answer(objs), marked)

    def crop(self, scene: Any, image: Any, rng: random.Random) -> dict[str, Any]:
        obj = rng.choice(scene.objects)
        x1, y1, x2, y2 = obj.bbox
        pad = rng.uniform(0.02, 0.3) * (x2 - x1)
        box = (
            max(0, int(x1 - pad)),
            max(0, int(y1 - pad)),
            min(scene.width, int(x2 + pad + 1)),
            min(scene.height, int(y2 + pad + 1)),
        )
        return chat(prompts.region_crop_prompt(), scene.crop_answer(obj), image.crop(box))

    def make(self, task: str, scene: Any, image: Any, rng: random.Random) -> dict[str, Any]:
        return getattr(self, task)(scene, image, rng)


def corpus(n_scenes: int = 2000, seed: int = 12345) -> list[str]:
    """Texts the tokenizer is trained on: every prompt and target of ``n_scenes`` scenes."""
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


def answer_boxes(row: dict[str, Any]) -> list[list[float]]:
    """The box of each assistant turn of a grounding row, in the model's frame."""
    boxes = []
    for message in row["messages"]:
        if message["role"] == "assistant":
            found = parse_grounding(message["content"][-1]["text"])
            boxes.append(list(found[0].box) if found else [math.nan] * 4)
    return boxes
