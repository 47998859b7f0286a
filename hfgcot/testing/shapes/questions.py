"""The questions a shape scene supports, with answers and reasoning: one table of kinds.

Each :class:`QuestionKind` names what it asks about (the scene, each object, each ordered pair
of objects) and a function that writes its questions, or none where the scene does not support
it. :func:`scene_questions` asks every kind of :data:`QUESTION_KINDS` in table order (consecutive
kinds about objects or pairs are asked together for each object or pair) and shuffles the
result; a new kind is one function and one row.

    >>> from hfgcot.testing.shapes import make_scene
    >>> scene = make_scene(7)
    >>> items = scene_questions(scene, random.Random(0))
    >>> {item.kind for item in items} <= {kind.kind for kind in QUESTION_KINDS}
    True
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from hfgcot import prompts
from hfgcot.testing.shapes.objects import COLOURS, SHAPES, ShapeObject, count_word, join_words

if TYPE_CHECKING:
    from hfgcot.testing.shapes.scene import Scene

__all__ = ["QUESTION_KINDS", "QAItem", "QuestionKind", "scene_questions"]


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


Question = tuple[str, str, tuple[str, ...], tuple[str, ...]]
"""``(question, answer, steps, keywords)`` of one :class:`QAItem`; its kind comes from the table."""


@dataclass(frozen=True)
class QuestionKind:
    """One kind of question: its name (``QAItem.kind``), what it is about, and ``ask``:
    ``ask(scene, rng, *subjects)`` (no subject, one object, or two) -> its questions."""

    kind: str
    about: Literal["scene", "object", "pair"]
    ask: Callable[..., list[Question]]


def _seen(scene: Scene) -> str:
    return join_words([f"a {o.label}" for o in scene.left_to_right()])


def _far_apart(a: float, b: float, side: int) -> bool:
    return b - a > 0.05 * side


def _how_many(scene: Scene, rng: random.Random) -> list[Question]:
    n = len(scene.objects)
    counted = f"Counting them gives {count_word(n)} {'shape' if n == 1 else 'shapes'}."
    labels = tuple(o.label for o in scene.left_to_right())
    steps = (f"The image shows {_seen(scene)}.", counted)
    return [("How many shapes are there?", count_word(n), steps, labels)]


def _what_colour(scene: Scene, rng: random.Random, obj: ShapeObject) -> list[Question]:
    if sum(o.shape == obj.shape for o in scene.objects) != 1:
        return []  # "the square" would not say which
    steps = (
        f"There is one {obj.shape} in the image: the {obj.label}.",
        f"Its colour is {obj.colour}.",
    )
    return [(f"What colour is the {obj.shape}?", obj.colour, steps, (obj.label,))]


def _what_shape(scene: Scene, rng: random.Random, obj: ShapeObject) -> list[Question]:
    steps = (
        f"The {obj.colour} object in the image is the {obj.label}.",
        f"Its shape is a {obj.shape}.",
    )
    return [(f"What shape is {obj.colour}?", obj.shape, steps, (obj.label,))]


def _where_is(scene: Scene, rng: random.Random, obj: ShapeObject) -> list[Question]:
    where = scene.position(obj)
    steps = (f"The {obj.label} is {where}.", "That gives its position.")
    return [
        (f"Where is the {obj.label}?", where.removesuffix(" of the image"), steps, (obj.label,))
    ]


def _is_there(scene: Scene, rng: random.Random, obj: ShapeObject) -> list[Question]:
    steps = (f"There is a {obj.label} in the image.", "So the answer is yes.")
    return [(f"Is there a {obj.label}?", "yes", steps, (obj.label,))]


def _is_there_absent(scene: Scene, rng: random.Random) -> list[Question]:
    labels = [o.label for o in scene.left_to_right()]
    absent = [f"{c} {s}" for c in COLOURS for s in SHAPES if f"{c} {s}" not in set(labels)]
    fake = rng.choice(absent)
    steps = (
        f"The image shows {_seen(scene)}.",
        f"None of them is a {fake}, so the answer is no.",
    )
    return [(f"Is there a {fake}?", "no", steps, tuple(labels))]


def _further_left(
    scene: Scene, rng: random.Random, a: ShapeObject, b: ShapeObject
) -> list[Question]:
    if not _far_apart(a.center[0], b.center[0], scene.width):
        return []
    question = (
        f"Which is further left, the {a.label} or the {b.label}?"
        if rng.random() < 0.5
        else f"Which is further left, the {b.label} or the {a.label}?"
    )
    steps = (
        f"The {a.label} is to the left of the {b.label}.",
        f"So the {a.label} is further left.",
    )
    return [(question, f"the {a.label}", steps, (a.label, b.label))]


def _right_of(scene: Scene, rng: random.Random, a: ShapeObject, b: ShapeObject) -> list[Question]:
    if not _far_apart(a.center[0], b.center[0], scene.width):
        return []
    steps = (f"The {a.label} is to the left of the {b.label}.", "So the answer is no.")
    return [(f"Is the {a.label} to the right of the {b.label}?", "no", steps, (a.label, b.label))]


def _above(scene: Scene, rng: random.Random, a: ShapeObject, b: ShapeObject) -> list[Question]:
    if not _far_apart(a.center[1], b.center[1], scene.height):
        return []
    return [
        (
            f"Is the {a.label} above the {b.label}?",
            "yes",
            (f"The {a.label} is above the {b.label}.", "So the answer is yes."),
            (a.label, b.label),
        ),
        (
            f"Is the {b.label} above the {a.label}?",
            "no",
            (f"The {b.label} is below the {a.label}.", "So the answer is no."),
            (b.label, a.label),
        ),
    ]


def _which_on_left(scene: Scene, rng: random.Random) -> list[Question]:
    objs = scene.objects
    if len(objs) != 2 or not abs(objs[0].center[0] - objs[1].center[0]) > 0.05 * scene.width:
        return []
    left, right = scene.left_to_right()
    steps = (
        f"The {left.label} is on the left and the {right.label} is on the right.",
        f"So the {left.label} is the shape on the left.",
    )
    answer = f"the {left.shape}" if left.shape != right.shape else f"the {left.label}"
    return [("Which shape is on the left?", answer, steps, (left.label, right.label))]


QUESTION_KINDS: tuple[QuestionKind, ...] = (
    QuestionKind("count", "scene", _how_many),
    QuestionKind("colour", "object", _what_colour),
    QuestionKind("shape", "object", _what_shape),
    QuestionKind("where", "object", _where_is),
    QuestionKind("exists", "object", _is_there),
    QuestionKind("exists", "scene", _is_there_absent),
    QuestionKind("leftright", "pair", _further_left),
    QuestionKind("leftright", "pair", _right_of),
    QuestionKind("above", "pair", _above),
    QuestionKind("leftright", "scene", _which_on_left),
)
"""Every kind of question, in the order they are asked (before the shuffle)."""


def _subjects(scene: Scene, about: str) -> list[tuple[ShapeObject, ...]]:
    objs = scene.objects
    if about == "object":
        return [(o,) for o in objs]
    if about == "pair":
        return [(a, b) for a in objs for b in objs if a is not b]
    return [()]


def scene_questions(scene: Scene, rng: random.Random) -> list[QAItem]:
    """Every question of :data:`QUESTION_KINDS` that ``scene`` supports, shuffled with ``rng``."""
    items = []
    for about, group in itertools.groupby(QUESTION_KINDS, key=lambda kind: kind.about):
        kinds = list(group)
        for subjects in _subjects(scene, about):
            for kind in kinds:
                asked = kind.ask(scene, rng, *subjects)
                items += [QAItem(*question, kind=kind.kind) for question in asked]
    rng.shuffle(items)
    return items
