"""A shape scene: its picture, its facts (positions, sizes), its grounding answers and the texts
every pipeline is trained on (captions, checks, follow-ups, regions); its questions are in
:mod:`hfgcot.testing.shapes.questions`."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from hfgcot import prompts
from hfgcot.geometry.frames import Frame
from hfgcot.testing.shapes.objects import COLOURS, SHAPES, ShapeObject, count_word
from hfgcot.testing.shapes.questions import QAItem, scene_questions


@dataclass(frozen=True)
class Scene:
    """A rendered-on-demand picture of shapes with exact boxes.

    ``background`` is ``"plain"``, ``"noisy"`` or ``"gradient"``; ``tone`` ``"light"`` or
    ``"dark"``. :meth:`image` draws it deterministically from ``seed``.
    """

    seed: int
    width: int
    height: int
    background: str
    tone: str
    base: tuple[int, int, int]
    second: tuple[int, int, int]
    objects: tuple[ShapeObject, ...] = field(default_factory=tuple)

    # -- picture ------------------------------------------------------------------------------

    def image(self) -> Any:
        """The scene as an RGB PIL image of ``width`` x ``height`` pixels."""
        import numpy as np
        from PIL import Image, ImageDraw

        rng = np.random.default_rng(self.seed)
        w, h = self.width, self.height
        base = np.array(self.base, dtype=np.float32)
        if self.background == "gradient":
            angle = rng.uniform(0, 2 * math.pi)
            xs = np.linspace(0, 1, w, dtype=np.float32)[None, :]
            ys = np.linspace(0, 1, h, dtype=np.float32)[:, None]
            t = math.cos(angle) * xs + math.sin(angle) * ys
            t = (t - t.min()) / max(1e-6, float(t.max() - t.min()))
            arr = base + t[..., None] * (np.array(self.second, dtype=np.float32) - base)
        else:
            arr = np.broadcast_to(base, (h, w, 3)).copy()
        if self.background == "noisy":
            cell = int(rng.integers(1, 4))
            small = rng.normal(0, rng.uniform(12, 28), (max(1, h // cell), max(1, w // cell), 3))
            noise = Image.fromarray(np.clip(small + 128, 0, 255).astype(np.uint8))
            noise = np.asarray(noise.resize((w, h), Image.NEAREST), dtype=np.float32) - 128
            arr = arr + noise
        img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")
        draw = ImageDraw.Draw(img)
        for obj in self.objects:
            x1, y1, x2, y2 = (int(v) for v in obj.bbox)
            fill = COLOURS[obj.colour]
            if obj.shape == "circle":
                draw.ellipse([x1, y1, x2 - 1, y2 - 1], fill=fill)
            elif obj.shape == "square":
                draw.rectangle([x1, y1, x2 - 1, y2 - 1], fill=fill)
            else:
                draw.polygon([(x1, y2 - 1), (x2 - 1, y2 - 1), ((x1 + x2 - 1) / 2, y1)], fill=fill)
        return img

    # -- facts ---------------------------------------------------------------------------------

    @property
    def labels(self) -> list[str]:
        return [o.label for o in self.objects]

    def by_label(self, label: str) -> ShapeObject | None:
        """The object named ``label`` (case-insensitive), or ``None``."""
        key = " ".join(label.lower().split())
        return next((o for o in self.objects if o.label == key), None)

    def left_to_right(self) -> list[ShapeObject]:
        return sorted(self.objects, key=lambda o: o.center[0])

    def background_phrase(self) -> str:
        if self.background == "plain":
            return f"plain {self.tone}"
        return self.background

    def position(self, obj: ShapeObject) -> str:
        """Where ``obj`` is: ``"in the top left of the image"``, ``"in the centre ..."``..."""
        cx, cy = obj.center
        hz = "left" if cx < self.width / 3 else "right" if cx > 2 * self.width / 3 else "centre"
        vt = "top" if cy < self.height / 3 else "bottom" if cy > 2 * self.height / 3 else "middle"
        if hz == "centre" and vt == "middle":
            return "in the centre of the image"
        if vt == "middle":
            return f"on the {hz} side of the image"
        if hz == "centre":
            return f"at the {vt} of the image"
        return f"in the {vt} {hz} of the image"

    def size_word(self, obj: ShapeObject) -> str:
        x1, y1, x2, y2 = obj.bbox
        frac = max(x2 - x1, y2 - y1) / min(self.width, self.height)
        return "small" if frac < 0.3 else "medium-sized" if frac < 0.42 else "large"

    # -- grounding -----------------------------------------------------------------------------

    def frame(self, min_pixels: int, max_pixels: int, factor: int = 28) -> Frame:
        """The frame a Qwen2.5-VL processor with these limits resizes this image to."""
        return Frame.for_image(
            self.width, self.height, min_pixels=min_pixels, max_pixels=max_pixels, factor=factor
        )

    def grounding_answer(self, obj: ShapeObject, min_pixels: int, max_pixels: int) -> str:
        """Qwen2.5-VL's answer for ``obj``: ``{"bbox_2d": [...]}`` in resized-image pixels."""
        box = self.frame(min_pixels, max_pixels).box_to_model(list(obj.bbox), "qwen2_5_vl")
        return json.dumps({"bbox_2d": [int(round(v)) for v in box]})

    # -- questions and reasoning ---------------------------------------------------------------

    def vqa(self, rng: random.Random) -> list[QAItem]:
        """Every question this scene supports (shuffled with ``rng``), with answer and reasoning
        (the kinds: :data:`hfgcot.testing.shapes.questions.QUESTION_KINDS`)."""
        return scene_questions(self, rng)

    # -- captions --------------------------------------------------------------------------------

    def caption_sentences(self) -> list[str]:
        """The true caption, one fact per sentence (objects left to right)."""
        n = len(self.objects)
        noun = "shape" if n == 1 else "shapes"
        out = [
            f"The image shows {count_word(n)} {noun} on a {self.background_phrase()} background."
        ]
        for obj in self.left_to_right():
            out.append(f"There is a {self.size_word(obj)} {obj.label} {self.position(obj)}.")
        return out

    def caption(self) -> str:
        """Answer to the dense-caption prompt."""
        return " ".join(self.caption_sentences())

    def false_sentence(self, rng: random.Random) -> str:
        """A caption-like sentence that this scene contradicts (for ``no`` self-checks)."""
        labels = set(self.labels)
        kind = rng.random()
        if kind < 0.2:
            n = len(self.objects)
            wrong = rng.choice([k for k in range(1, 5) if k != n])
            noun = "shape" if wrong == 1 else "shapes"
            bg = self.background_phrase()
            if rng.random() < 0.5:
                bg = rng.choice(
                    [b for b in ("plain light", "plain dark", "noisy", "gradient") if b != bg]
                )
                wrong = n
                noun = "shape" if n == 1 else "shapes"
            return f"The image shows {count_word(wrong)} {noun} on a {bg} background."
        obj = rng.choice(self.objects)
        if kind < 0.75:
            fake = rng.choice(
                [f"{c} {s}" for c in COLOURS for s in SHAPES if f"{c} {s}" not in labels]
            )
            return f"There is a {self.size_word(obj)} {fake} {self.position(obj)}."
        wrong_pos = rng.choice(
            [
                p
                for p in (
                    "in the top left of the image",
                    "in the top right of the image",
                    "in the bottom left of the image",
                    "in the bottom right of the image",
                    "in the centre of the image",
                    "at the top of the image",
                    "at the bottom of the image",
                )
                if p != self.position(obj)
            ]
        )
        return f"There is a {self.size_word(obj)} {obj.label} {wrong_pos}."

    def detail_answer(self, obj: ShapeObject) -> str:
        """Answer to "Describe more details about the <label>."."""
        return f"The {obj.label} is {self.size_word(obj)} and lies {self.position(obj)}."

    def position_answer(self, obj: ShapeObject) -> str:
        """Answer to "Describe the position of the <label> in the image."."""
        return f"The {obj.label} is {self.position(obj)}."

    def object_questions(self, sentences: Sequence[str], max_questions: int = 5) -> str:
        """Answer to the follow-up-question prompt: one line per object the sentences mention."""
        found: list[tuple[int, str]] = []
        text = " ".join(sentences)
        for obj in self.objects:
            at = text.find(obj.label)
            if at >= 0:
                found.append((at, obj.label))
        lines = [prompts.detail_question(lab) for _, lab in sorted(found)[:max_questions]]
        return "\n".join(lines)

    def fused_caption(self, sentences: Sequence[str], details: Sequence[str]) -> str:
        """Answer to the fusion prompt: the checked sentences, then the details, once each."""
        out: list[str] = []
        for s in list(sentences) + list(details):
            s = " ".join(s.split())
            if s and s not in out:
                out.append(s)
        return " ".join(out)

    def region_answer(self, objects: Sequence[ShapeObject]) -> str:
        """Answer to the marked-regions prompt for regions drawn around ``objects`` in order."""
        return "\n".join(f"<region{k}>: a {o.label}" for k, o in enumerate(objects, 1))

    @staticmethod
    def crop_answer(obj: ShapeObject) -> str:
        """Answer to the crop prompt for a crop around ``obj``."""
        return f"A {obj.label}."

    def to_dict(self) -> dict[str, Any]:
        """The scene as JSON-friendly data (objects with ``label`` and ``bbox``)."""
        return {
            "seed": self.seed,
            "width": self.width,
            "height": self.height,
            "background": self.background,
            "objects": [{"label": o.label, "bbox": list(o.bbox)} for o in self.objects],
        }
