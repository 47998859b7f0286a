"""What a row shows, whatever pipeline wrote it: boxes on its image and sections of text.

:func:`row_view` reads the columns the pipelines write (``docs/pipelines.md``) and returns a
:class:`RowView`: boxes in original pixels (GCoT groundings, numbered regions, reference and
predicted grounding boxes), sections (question and reference answer, GCoT text as phrase spans,
region captions by number, dense-caption sentences kept or dropped, follow-up questions, chat
turns, other fields) and the row's statuses. Every box and the text that names it share a
``key``, so the HTML can colour and highlight them as a pair. :mod:`hfgcot.viz.html` renders it.

>>> view = row_view({"question": "Which?", "gcot": "A cat.", "gcot_status": "ok",
...                  "groundings": [{"phrase": "cat", "bbox": [1, 2, 3, 4]}]})
>>> [s.title for s in view.sections], view.boxes[0].key, view.status
(['question', 'GCoT'], 'p0', 'ok')
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hfgcot.geometry.boxes import iou, is_finite_box
from hfgcot.viz.colours import colour, phrase_colours
from hfgcot.viz.text import mentioned_phrases, phrase_spans

__all__ = ["RowView", "Section", "ViewBox", "row_view", "view_image"]

RGB = tuple[int, int, int]
_REFERENCE, _PREDICTION = (255, 190, 0), (0, 130, 200)
_MAX_FIELD_CHARS = 300


@dataclass(frozen=True)
class ViewBox:
    """A box to draw: ``[x1, y1, x2, y2]`` original pixels, its label, colour and pairing key;
    ``number`` is drawn on it, ``dashed`` marks a box whose phrase the text never mentions."""

    bbox: tuple[float, float, float, float]
    label: str
    colour: RGB
    key: str
    number: str | None = None
    dashed: bool = False


@dataclass(frozen=True)
class Section:
    """A titled piece of the row. ``kind`` says what ``items`` hold:

    - ``"text"``: ``text`` only;
    - ``"spans"``: ``(piece, key or None)``, the text with its phrases (GCoT);
    - ``"regions"``: ``(number, key, caption)``;
    - ``"sentences"``: ``(sentence, kept, score)``, ``kept`` ``True``/``False``/``None``;
    - ``"pairs"``: ``(name, value)`` (follow-up questions and answers, chat turns, fields).
    """

    title: str
    kind: str
    text: str = ""
    items: tuple[tuple[Any, ...], ...] = ()


@dataclass(frozen=True)
class RowView:
    """A row as it is shown (see the module doc); ``status`` is the last status column's."""

    image: Any
    boxes: tuple[ViewBox, ...] = ()
    sections: tuple[Section, ...] = ()
    statuses: tuple[tuple[str, str], ...] = ()
    colours: Mapping[str, RGB] = field(default_factory=dict)

    @property
    def status(self) -> str | None:
        return self.statuses[-1][1] if self.statuses else None

    def search_text(self) -> str:
        """Every text of the row, lower case (what a text search looks in)."""
        parts = [s.text for s in self.sections]
        for s in self.sections:
            parts += [str(v) for item in s.items for v in item if isinstance(v, str)]
        parts += [v for _, v in self.statuses]
        return "\n".join(p for p in parts if p).lower()


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


def _box(value: Any) -> tuple[float, float, float, float] | None:
    return tuple(float(v) for v in value) if is_finite_box(value) else None  # type: ignore[return-value]


def _qa(row: Mapping[str, Any], used: set[str]) -> list[Section]:
    out = []
    if isinstance(row.get("question"), str):
        used.add("question")
        out.append(Section("question", "text", row["question"]))
    if isinstance(row.get("answer"), str) and "region_captions" not in row:
        used.add("answer")
        out.append(Section("reference answer", "text", row["answer"]))
    return out


def _gcot(row: Mapping[str, Any], used: set[str], boxes: list[ViewBox], colours: dict) -> list:
    names = ("gcot", "cleaned_cot", "raw_cot_output", "groundings", "extracted_keywords")
    if not any(n in row for n in names):
        return []
    used.update(names)
    text = next((str(row[n]) for n in names[:3] if row.get(n)), "")
    groundings = [g for g in row.get("groundings") or [] if isinstance(g, Mapping)]
    phrase_colour = phrase_colours(groundings)
    key = {p: f"p{k}" for k, p in enumerate(phrase_colour)}
    said = mentioned_phrases(text, phrase_colour)
    for g in groundings:
        b = _box(g.get("bbox"))
        if b is not None:
            p = g["phrase"]
            boxes.append(ViewBox(b, p, phrase_colour[p], key[p], dashed=p not in said))
    colours.update({key[p]: c for p, c in phrase_colour.items()})
    out = [
        Section(
            "GCoT",
            "spans",
            text,
            tuple((s, p and key[p]) for s, p in phrase_spans(text, phrase_colour)),
        )
    ]
    missing = [p for p in phrase_colour if p not in said]
    if missing:
        items = [item for p in missing for item in ((", ", None), (p, key[p]))][1:]
        out.append(Section("boxes of phrases not in the text", "spans", items=tuple(items)))
    if row.get("extracted_keywords"):
        out.append(Section("keywords", "text", ", ".join(map(str, row["extracted_keywords"]))))
    return out


def _regions(
    row: Mapping[str, Any],
    size: tuple[int, int] | None,
    used: set[str],
    boxes: list[ViewBox],
    colours: dict,
) -> list[Section]:
    if "normalized_bbox" not in row and "region_captions" not in row:
        return []
    used.update({"normalized_bbox", "region_captions", "answer", "valid_bboxes_num"})
    captions = list(row.get("region_captions") or [])
    normalized = [b for b in row.get("normalized_bbox") or [] if is_finite_box(b)]
    items = []
    for k in range(max(len(captions), len(normalized))):
        key, c = f"r{k}", colour(k)
        colours[key] = c
        if size is not None and k < len(normalized):
            x1, y1, x2, y2 = (float(v) for v in normalized[k])
            W, H = size
            boxes.append(
                ViewBox(
                    (x1 * W, y1 * H, x2 * W, y2 * H), f"region {k + 1}", c, key, number=str(k + 1)
                )
            )
        items.append((str(k + 1), key, str(captions[k]) if k < len(captions) else ""))
    out = [Section("region captions", "regions", items=tuple(items))]
    if isinstance(row.get("answer"), str):
        out.append(Section("model answer", "text", row["answer"]))
    return out


def _sentences(row: Mapping[str, Any]) -> tuple[tuple[Any, ...], ...]:
    sentences = [str(s) for s in row.get("sentences") or []]
    golden = {str(s) for s in row.get("golden_sentences") or []}
    scores = list(row.get("sentence_scores") or [])
    checked = "golden_sentences" in row
    return tuple(
        (s, (s in golden) if checked else None, scores[i] if i < len(scores) else None)
        for i, s in enumerate(sentences)
    )


def _dense(row: Mapping[str, Any], used: set[str]) -> list[Section]:
    names = (
        "final_caption",
        "init_caption",
        "sentences",
        "golden_sentences",
        "sentence_scores",
        "raw_questions",
        "q_list",
        "raw_answers",
        "final_details",
    )
    if not any(n in row for n in names):
        return []
    used.update(names)
    out = []
    if row.get("final_caption"):
        out.append(Section("final caption", "text", str(row["final_caption"])))
    if row.get("sentences"):
        out.append(Section("sentences of the first caption", "sentences", items=_sentences(row)))
    questions = [str(q) for q in row.get("q_list") or []]
    answers = [str(a) for a in row.get("final_details") or row.get("raw_answers") or []]
    if questions:
        pairs = tuple((q, answers[i] if i < len(answers) else "") for i, q in enumerate(questions))
        out.append(Section("follow-up questions", "pairs", items=pairs))
    return out


def _grounding(
    row: Mapping[str, Any], used: set[str], boxes: list[ViewBox], colours: dict
) -> list[Section]:
    out = []
    messages = row.get("messages")
    if isinstance(messages, list) and messages:
        used.add("messages")
        turns = []
        for m in messages:
            if isinstance(m, Mapping):
                content = m.get("content")
                parts = content if isinstance(content, list) else [{"text": content}]
                text = "\n".join(
                    str(p.get("text")) for p in parts if isinstance(p, Mapping) and p.get("text")
                )
                turns.append((str(m.get("role", "")), text))
        out.append(Section("chat", "pairs", items=tuple(turns)))
    legend: list[tuple[str, str]] = []
    gt = _box(row.get("gt_bbox"))
    if gt is not None:
        used.update({"gt_bbox", "gt_bbox_model"})
        colours["gt"] = _REFERENCE
        boxes.append(ViewBox(gt, "reference", _REFERENCE, "gt"))
        legend.append(("reference", "gt"))
    predictions = [n[: -len("_bbox")] for n in row if n.endswith("_bbox") and n != "gt_bbox"]
    for j, prefix in enumerate(p for p in predictions if f"{p}_status" in row):
        used.update({f"{prefix}_bbox", f"{prefix}_text"})
        key, c = f"q{j}", _PREDICTION if j == 0 else colour(j + 2)
        colours[key] = c
        pred = _box(row[f"{prefix}_bbox"])
        if pred is not None:
            boxes.append(ViewBox(pred, f"prediction ({prefix})", c, key))
            legend.append((f"prediction ({prefix})", key))
        items = [(f"{prefix}_text", _text(row.get(f"{prefix}_text")))]
        if pred is not None and gt is not None:
            items.append(("IoU with the reference", f"{iou(list(pred), list(gt)):.3f}"))
        out.append(Section(f"prediction ({prefix})", "pairs", items=tuple(items)))
    if legend:
        spans = [item for label, key in legend for item in (("  ", None), (label, key))][1:]
        out.insert(0, Section("boxes", "spans", items=tuple(spans)))
    return out


def _is_media(value: Any) -> bool:
    if isinstance(value, (bytes, bytearray)) or hasattr(value, "getpixel"):
        return True
    return isinstance(value, Mapping) and "bytes" in value


def row_view(
    row: Mapping[str, Any],
    *,
    image_column: str = "image",
    image_size: tuple[int, int] | None = None,
) -> RowView:
    """The :class:`RowView` of ``row`` (a dict of one dataset row). ``image_size``
    (``(width, height)`` of the row's image) places the region boxes, which are stored as
    fractions of the image; other boxes are in original pixels already."""
    used = {image_column, "image", "image_with_bbox"}
    boxes: list[ViewBox] = []
    colours: dict[str, RGB] = {}
    sections = _qa(row, used)
    sections += _gcot(row, used, boxes, colours)
    sections += _regions(row, image_size, used, boxes, colours)
    sections += _dense(row, used)
    sections += _grounding(row, used, boxes, colours)
    statuses = tuple((n, str(v)) for n, v in row.items() if n.endswith("_status") and v is not None)
    used.update(n for n, _ in statuses)
    fields = tuple(
        (n, (t[:_MAX_FIELD_CHARS] + "...") if len(t := _text(v)) > _MAX_FIELD_CHARS else t)
        for n, v in row.items()
        if n not in used and v is not None and not _is_media(v)
    )
    if fields:
        sections.append(Section("other columns", "pairs", items=fields))
    return RowView(view_image(row, image_column), tuple(boxes), tuple(sections), statuses, colours)


def view_image(row: Mapping[str, Any], image_column: str = "image") -> Any:
    """The image a row is shown on: ``image_column``, else the marked image of region rows.

    >>> view_image({"image": None, "image_with_bbox": "marked.png"})
    'marked.png'
    """
    image = row.get(image_column)
    return row.get("image_with_bbox") if image is None else image
