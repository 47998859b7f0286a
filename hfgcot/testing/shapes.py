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

Pure apart from PIL and numpy (no torch)::

    >>> scene = make_scene(7)
    >>> 1 <= len(scene.objects) <= 4
    True
    >>> scene.image().size == (scene.width, scene.height)
    True
    >>> from hfgcot.parsing.gcot_text import parse_gcot
    >>> item = scene.vqa(random.Random(0))[0]
    >>> parse_gcot(item.gcot())[1] == list(item.keywords)
    True
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from hfgcot import prompts
from hfgcot.geometry.frames import Frame

__all__ = [
    "BACKGROUNDS",
    "COLOURS",
    "SHAPES",
    "QAItem",
    "Scene",
    "ShapeObject",
    "make_scene",
    "make_scenes",
]

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (215, 35, 35),
    "green": (35, 160, 55),
    "blue": (40, 75, 215),
    "yellow": (240, 205, 30),
    "orange": (245, 130, 20),
    "purple": (135, 50, 185),
}
"""Shape colours (names as written in the texts) and their RGB fill."""

SHAPES: tuple[str, ...] = ("circle", "square", "triangle")
BACKGROUNDS: tuple[str, ...] = ("plain", "noisy", "gradient")
NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five")


@dataclass(frozen=True)
class ShapeObject:
    """One shape: its kind, colour name and box ``[x1, y1, x2, y2]`` in original pixels."""

    shape: str
    colour: str
    bbox: tuple[float, float, float, float]

    @property
    def label(self) -> str:
        """The phrase that names it, e.g. ``"red circle"`` (unique in its scene)."""
        return f"{self.colour} {self.shape}"

    @property
    def center(self) -> tuple[float, float]:
        x1, y1, x2, y2 = self.bbox
        return (x1 + x2) / 2, (y1 + y2) / 2


@dataclass(frozen=True)
class QAItem:
    """A question, its answer, the reasoning steps that lead to it and the keywords they name."""

    question: str
    answer: str
    steps: tuple[str, ...]
    keywords: tuple[str, ...]
    kind: str = "other"

    def gcot(self) -> str:
        """The GCoT target: numbered steps, ``Answer:`` and the ``Keywords:`` line."""
        lines = [f"Step {i}: {s}" for i, s in enumerate(self.steps, 1)]
        lines.append(f"Answer: {self.answer}")
        lines.append("Keywords: " + ", ".join(self.keywords))
        return "\n".join(lines)

    def prompt(self) -> str:
        """The library's GCoT prompt for this question and answer."""
        return prompts.gcot_prompt(self.question, self.answer)


def _count_word(n: int) -> str:
    return NUMBER_WORDS[n] if n < len(NUMBER_WORDS) else str(n)


def _join(items: Sequence[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


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
        """Every question this scene supports (shuffled with ``rng``), with answer and reasoning."""
        objs = list(self.objects)
        labels = [o.label for o in self.left_to_right()]
        seen = _join([f"a {lab}" for lab in labels])
        items = []
        n = len(objs)
        shape_word = "shape" if n == 1 else "shapes"
        items.append(
            QAItem(
                "How many shapes are there?",
                _count_word(n),
                (f"The image shows {seen}.", f"Counting them gives {_count_word(n)} {shape_word}."),
                tuple(labels),
                kind="count",
            )
        )
        for obj in objs:
            same_shape = [o for o in objs if o.shape == obj.shape]
            if len(same_shape) == 1:
                items.append(
                    QAItem(
                        f"What colour is the {obj.shape}?",
                        obj.colour,
                        (
                            f"There is one {obj.shape} in the image: the {obj.label}.",
                            f"Its colour is {obj.colour}.",
                        ),
                        (obj.label,),
                        kind="colour",
                    )
                )
            items.append(
                QAItem(
                    f"What shape is {obj.colour}?",
                    obj.shape,
                    (
                        f"The {obj.colour} object in the image is the {obj.label}.",
                        f"Its shape is a {obj.shape}.",
                    ),
                    (obj.label,),
                    kind="shape",
                )
            )
            items.append(
                QAItem(
                    f"Where is the {obj.label}?",
                    self.position(obj).removesuffix(" of the image"),
                    (
                        f"The {obj.label} is {self.position(obj)}.",
                        "That gives its position.",
                    ),
                    (obj.label,),
                    kind="where",
                )
            )
            items.append(
                QAItem(
                    f"Is there a {obj.label}?",
                    "yes",
                    (f"There is a {obj.label} in the image.", "So the answer is yes."),
                    (obj.label,),
                    kind="exists",
                )
            )
        absent = [f"{c} {s}" for c in COLOURS for s in SHAPES if f"{c} {s}" not in set(labels)]
        fake = rng.choice(absent)
        items.append(
            QAItem(
                f"Is there a {fake}?",
                "no",
                (f"The image shows {seen}.", f"None of them is a {fake}, so the answer is no."),
                tuple(labels),
                kind="exists",
            )
        )
        for a in objs:
            for b in objs:
                if a is b:
                    continue
                dx = b.center[0] - a.center[0]
                dy = b.center[1] - a.center[1]
                if dx > 0.05 * self.width:
                    items.append(
                        QAItem(
                            f"Which is further left, the {a.label} or the {b.label}?"
                            if rng.random() < 0.5
                            else f"Which is further left, the {b.label} or the {a.label}?",
                            f"the {a.label}",
                            (
                                f"The {a.label} is to the left of the {b.label}.",
                                f"So the {a.label} is further left.",
                            ),
                            (a.label, b.label),
                            kind="leftright",
                        )
                    )
                    items.append(
                        QAItem(
                            f"Is the {a.label} to the right of the {b.label}?",
                            "no",
                            (
                                f"The {a.label} is to the left of the {b.label}.",
                                "So the answer is no.",
                            ),
                            (a.label, b.label),
                            kind="leftright",
                        )
                    )
                if dy > 0.05 * self.height:
                    items.append(
                        QAItem(
                            f"Is the {a.label} above the {b.label}?",
                            "yes",
                            (f"The {a.label} is above the {b.label}.", "So the answer is yes."),
                            (a.label, b.label),
                            kind="above",
                        )
                    )
                    items.append(
                        QAItem(
                            f"Is the {b.label} above the {a.label}?",
                            "no",
                            (f"The {b.label} is below the {a.label}.", "So the answer is no."),
                            (b.label, a.label),
                            kind="above",
                        )
                    )
        if n == 2 and abs(objs[0].center[0] - objs[1].center[0]) > 0.05 * self.width:
            left, right = self.left_to_right()
            items.append(
                QAItem(
                    "Which shape is on the left?",
                    f"the {left.shape}" if left.shape != right.shape else f"the {left.label}",
                    (
                        f"The {left.label} is on the left and the {right.label} is on the right.",
                        f"So the {left.label} is the shape on the left.",
                    ),
                    (left.label, right.label),
                    kind="leftright",
                )
            )
        rng.shuffle(items)
        return items

    # -- captions --------------------------------------------------------------------------------

    def caption_sentences(self) -> list[str]:
        """The true caption, one fact per sentence (objects left to right)."""
        n = len(self.objects)
        noun = "shape" if n == 1 else "shapes"
        out = [
            f"The image shows {_count_word(n)} {noun} on a {self.background_phrase()} background."
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
            return f"The image shows {_count_word(wrong)} {noun} on a {bg} background."
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
