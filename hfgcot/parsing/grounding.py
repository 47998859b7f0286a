"""Parsers for the boxes a Qwen-VL model writes, and the labels of a joint grounding answer.

Pure module: standard library only (no torch, transformers or numpy), so it imports anywhere.

Invariant shared by every public function here: **no function raises on any ``str`` input**.
Model output is untrusted and often malformed (truncated JSON, markdown fences, prose around the
payload); the parsers recover what they can and return empty results otherwise. The text of a
GCoT reasoning (keywords, injection) is :mod:`hfgcot.parsing.gcot_text`.

- :func:`parse_grounding` -- boxes from ``{"bbox_2d": [...], "label": ...}`` JSON (Qwen2.5-VL,
  Qwen3-VL) or from ``<|object_ref_start|>cat<|object_ref_end|><|box_start|>(x1,y1),(x2,y2)
  <|box_end|>`` box tokens (Qwen2-VL), in the model's own coordinate convention.
- :func:`match_label` -- the asked-for phrase a box label refers to.

Short answers (yes/no, marked-region descriptions) are :mod:`hfgcot.parsing.replies`; their
parsers are re-exported here.
"""

from __future__ import annotations

import ast
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from hfgcot.parsing.guard import guard
from hfgcot.parsing.phrases import phrase_key
from hfgcot.parsing.replies import parse_region_answer, parse_yes_no

__all__ = [
    "ParsedBox",
    "match_label",
    "parse_grounding",
    "parse_region_answer",
    "parse_yes_no",
]


# --------------------------------------------------------------------------------------------
# Grounding
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ParsedBox:
    """One box as the model wrote it.

    ``box`` holds 4 finite floats in the model's coordinate convention (resized-image pixels for
    Qwen2.5-VL, 0..1000 for Qwen2-VL/Qwen3-VL), exactly as written: neither clipped nor reordered.
    Conversion to original pixels lives in :mod:`hfgcot.geometry.frames`.

    >>> ParsedBox("cat", (1.0, 2.0, 3.0, 4.0))
    ParsedBox(label='cat', box=(1.0, 2.0, 3.0, 4.0))
    """

    label: str | None
    box: tuple[float, float, float, float]


_NUM = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_NUM_RE = re.compile(_NUM)
# A key for the box list: "bbox_2d" (Qwen2.5-VL / Qwen3-VL) or "bbox"; quoted or bare.
_BBOX_KEY_RE = re.compile(r"""(?<![\w"'])(["']?)(?:bbox_2d|bbox)\1\s*:\s*["']?\s*\[""", re.I)
_LABEL_KEYS = ("label", "name", "phrase", "text", "description", "text_content")
_LABEL_KEY_RES = tuple(
    re.compile(rf"""(?<![\w"'])(["']?){key}\1\s*:\s*""", re.I) for key in _LABEL_KEYS
)
_INNER_LIST_RE = re.compile(r"\[([^\[\]]*)\]")
# The label of an object-ref span; it cannot run past the next ref token, so the scan is linear
# even on thousands of unclosed ``<|object_ref_start|>`` tokens.
_REF_RE = re.compile(
    r"<\|object_ref_start\|>((?:(?!<\|object_ref_(?:start|end)\|>).)*)<\|object_ref_end\|>", re.S
)
# A box-token span: its content must be exactly two points, else nothing inside it is a box.
_BOX_SPAN_RE = re.compile(r"<\|box_start\|>((?:(?!<\|box_(?:start|end)\|>).)*)<\|box_end\|>", re.S)
_TWO_POINTS_RE = re.compile(
    rf"\s*\(\s*{_NUM}\s*,\s*{_NUM}\s*\)\s*,\s*\(\s*{_NUM}\s*,\s*{_NUM}\s*\)\s*"
)
# Qwen2.5-VL cookbook's plain-text form, one box a line: ``x1,y1,x2,y2 label``.
_LINE_BOX_RE = re.compile(
    rf"^[ \t]*({_NUM})[ \t]*,[ \t]*({_NUM})[ \t]*,[ \t]*({_NUM})[ \t]*,[ \t]*({_NUM})"
    r"[ \t]+([^\W\d_][^\n]*?)[ \t]*$",
    re.M,
)
_PAREN_BOX_RE = re.compile(
    rf"(<\|box_start\|>)?\s*\(\s*({_NUM})\s*,\s*({_NUM})\s*\)\s*,\s*"
    rf"\(\s*({_NUM})\s*,\s*({_NUM})\s*\)\s*(?:<\|box_end\|>)?"
)
_SPECIAL_TOKEN_RE = re.compile(r"<\|[a-z_]+\|>")
_FENCE_RE = re.compile(r"```[A-Za-z0-9_-]*")
_TRAILING_AT_RE = re.compile(r"(?:^|\s+)(?:(?:is|are)\s+)?(?:located\s+)?at$", re.I)
_LABEL_STRIP = " \t\r\n\"'`*_[](){}<>.,;:!?-"


def _box_from_numbers(values: Sequence[str]) -> tuple[float, float, float, float] | None:
    """4 finite floats from 4 numeric strings, else ``None``."""
    if len(values) != 4:
        return None
    out: list[float] = []
    for value in values:
        if not _NUM_RE.fullmatch(value):
            return None
        number = float(value)
        if not math.isfinite(number):
            return None
        out.append(number)
    return (out[0], out[1], out[2], out[3])


def _box_from_list_body(body: str) -> tuple[float, float, float, float] | None:
    """Parse the inside of ``[x1, y1, x2, y2]``; numbers may be quoted; trailing commas ok."""
    parts = body.split(",") if "," in body else body.split()
    values = [part.strip().strip("\"'()").strip() for part in parts]
    return _box_from_numbers([value for value in values if value])


def _matching_bracket(text: str, start: int, end: int) -> int | None:
    """Index just past the ``]`` closing the ``[`` at ``start`` (searching up to ``end``)."""
    depth = 0
    for i in range(start, end):
        char = text[i]
        if char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
            if depth == 0:
                return i + 1
    return None


def _bracket_pairs(text: str, start: int, end: int) -> dict[int, int]:
    """Map each ``[`` in ``text[start:end]`` to the index just past its ``]`` (if closed)."""
    pairs: dict[int, int] = {}
    stack: list[int] = []
    for i in range(start, end):
        char = text[i]
        if char == "[":
            stack.append(i)
        elif char == "]" and stack:
            pairs[stack.pop()] = i + 1
    return pairs


def _read_label_value(text: str, pos: int, end: int) -> str | None:
    """Read a JSON/Python-literal scalar starting at ``pos``; ``None`` if absent or truncated."""
    if pos >= end:
        return None
    quote = text[pos]
    if quote in "\"'":
        i = pos + 1
        while i < end:
            if text[i] == "\\":
                i += 2
                continue
            if text[i] == quote:
                break
            i += 1
        else:
            return None  # unterminated string: the output was cut here
        literal = text[pos : i + 1]
        raw = literal[1:-1]
        value: object = raw
        try:
            value = json.loads(literal) if quote == '"' else ast.literal_eval(literal)
        except Exception:  # malformed escapes: keep the raw text
            value = raw
        label = value.strip() if isinstance(value, str) else raw.strip()
        return label or None
    match = re.match(r"[^,}\]\n]*", text[pos:end])
    bare = match.group(0).strip() if match else ""
    if not bare or bare.lower() in ("null", "none"):
        return None
    return bare


def _find_label(text: str, start: int, end: int, last: bool) -> str | None:
    """The label in ``text[start:end]``: by key priority, first (or last) occurrence."""
    for key_re in _LABEL_KEY_RES:
        matches = list(key_re.finditer(text, start, end))
        if matches:
            match = matches[-1] if last else matches[0]
            return _read_label_value(text, match.end(), end)
    return None


def _object_chunks(text: str) -> list[tuple[int, int]]:
    """Spans of text between braces; braces inside quoted strings of an object do not count.

    Qwen's grounding objects are flat, so each object body is one span (the text between objects
    makes spans too). A string ends at its closing quote or, if truncated/malformed, at a newline.
    """
    chunks: list[tuple[int, int]] = []
    start, i, n = 0, 0, len(text)
    inside, quote = False, ""
    while i < n:
        char = text[i]
        if quote:
            if char == "\\":
                i += 2
                continue
            if char == quote or char == "\n":
                quote = ""
        elif char == "{" or char == "}":
            if i > start:
                chunks.append((start, i))
            start, inside = i + 1, char == "{"
        elif inside and char in "\"'":
            quote = char
        i += 1
    if n > start:
        chunks.append((start, n))
    return chunks


def _json_boxes(text: str) -> tuple[list[tuple[int, ParsedBox]], list[tuple[int, int]]]:
    """Boxes from ``bbox_2d`` keys, with their positions, and the spans of their list values."""
    found: list[tuple[int, ParsedBox]] = []
    spans: list[tuple[int, int]] = []
    # Working per object body (instead of json.loads) recovers truncated output, python-literal
    # quotes and prose around the payload.
    for c_start, c_end in _object_chunks(text):
        entries: list[tuple[int, int, int]] = []  # (key start, list start, list end)
        pairs: dict[int, int] | None = None
        for key in _BBOX_KEY_RE.finditer(text, c_start, c_end):
            if pairs is None:
                pairs = _bracket_pairs(text, c_start, c_end)
            list_start = key.end() - 1
            list_end = pairs.get(list_start)
            if list_end is not None:
                entries.append((key.start(), list_start, list_end))
        if not entries:
            continue
        first_label = min(
            (m.start() for r in _LABEL_KEY_RES if (m := r.search(text, c_start, c_end))),
            default=None,
        )
        label_first = first_label is not None and first_label < entries[0][0]
        for idx, (key_start, list_start, list_end) in enumerate(entries):
            if len(entries) == 1:
                label = _find_label(text, c_start, c_end, last=False)
            elif label_first:
                lo = entries[idx - 1][2] if idx else c_start
                label = _find_label(text, lo, key_start, last=True)
            else:
                hi = entries[idx + 1][0] if idx + 1 < len(entries) else c_end
                label = _find_label(text, list_end, hi, last=False)
            spans.append((list_start, list_end))
            for inner in _INNER_LIST_RE.finditer(text, list_start, list_end):
                box = _box_from_list_body(inner.group(1))
                if box is not None:
                    found.append((key_start, ParsedBox(label, box)))
    return found, spans


def _paren_label(text: str, start: int, end: int) -> str | None:
    """Label of a stripped Qwen2-VL box ``cat(10,20),(30,40)``: the words just before it."""
    segment = _SPECIAL_TOKEN_RE.sub("", text[start:end])
    segment = _FENCE_RE.sub("", segment)
    segment = re.split(r"[\n;:,!?]|\.\s", segment)[-1]
    label = " ".join(segment.split()).strip(_LABEL_STRIP)
    label = _TRAILING_AT_RE.sub("", label).strip(_LABEL_STRIP)
    return label or None


def _paren_boxes(text: str, skip: list[tuple[int, int]]) -> list[tuple[int, ParsedBox]]:
    """Boxes in Qwen2-VL's ``(x1,y1),(x2,y2)`` form, with or without its special tokens."""
    refs = [(m.end(), m.group(1).strip() or None) for m in _REF_RE.finditer(text)]
    skip = skip + [
        m.span() for m in _BOX_SPAN_RE.finditer(text) if not _TWO_POINTS_RE.fullmatch(m.group(1))
    ]
    found: list[tuple[int, ParsedBox]] = []
    previous_end = 0
    for match in _PAREN_BOX_RE.finditer(text):
        start, end = match.span()
        if any(start < s_end and s_start < end for s_start, s_end in skip):
            continue
        box = _box_from_numbers(match.groups()[1:])
        if box is not None:
            if refs:
                before = [label for ref_end, label in refs if ref_end <= start]
                label = before[-1] if before else None
            else:
                label = _paren_label(text, previous_end, start)
            found.append((start, ParsedBox(label, box)))
        previous_end = end
    return found


def _line_boxes(text: str) -> list[ParsedBox]:
    """Fallback: lines of ``x1,y1,x2,y2 label`` (a label starts with a letter)."""
    found = []
    for match in _LINE_BOX_RE.finditer(text):
        box = _box_from_numbers(match.groups()[:4])
        if box is not None:
            found.append(ParsedBox(match.group(5).strip(_LABEL_STRIP) or None, box))
    return found


def _bare_boxes(text: str) -> list[ParsedBox]:
    """Fallback: the whole output is ``[x1, y1, x2, y2]`` or a list of such lists; else lines of
    ``x1,y1,x2,y2 label``."""
    body = _FENCE_RE.sub("", text).strip()
    if not body.startswith("[") or _matching_bracket(body, 0, len(body)) != len(body):
        return _line_boxes(body)
    boxes = (_box_from_list_body(m.group(1)) for m in _INNER_LIST_RE.finditer(body))
    return [ParsedBox(None, box) for box in boxes if box is not None]


def parse_grounding(text: str) -> list[ParsedBox]:
    """Every box in a grounding answer, in order of appearance, exact duplicates dropped.

    Understands Qwen2.5-VL/Qwen3-VL JSON (one object or a list, in or out of ```json fences,
    with prose around it, python-literal quotes, numbers as strings, a truncated tail, label under
    ``label``/``name``/``phrase``/``text``/``description``/``text_content``, nested ``[[...], [...]]`` lists as several boxes) and
    Qwen2-VL's ``(x1,y1),(x2,y2)`` form with or without its box/object-ref tokens (a box-token
    span holding anything but two points gives no box), and, failing all of these, the plain
    ``x1,y1,x2,y2 label`` lines of the Qwen2.5-VL cookbook. Boxes whose list has not exactly 4
    finite numbers are skipped. Never raises.

    >>> parse_grounding('```json\\n[{"bbox_2d": [10, 20, 300, 400], "label": "cat"}]\\n```')
    [ParsedBox(label='cat', box=(10.0, 20.0, 300.0, 400.0))]
    >>> parse_grounding("{'bbox_2d': ['1', '2', '3', '4'], 'label': 'dog'}, {'bbox_2d': [5, 6")
    [ParsedBox(label='dog', box=(1.0, 2.0, 3.0, 4.0))]
    >>> parse_grounding("<|object_ref_start|>cat<|object_ref_end|><|box_start|>(1,2),(3,4)<|box_end|>")
    [ParsedBox(label='cat', box=(1.0, 2.0, 3.0, 4.0))]
    >>> parse_grounding("no boxes here")
    []
    """
    try:
        if not isinstance(text, str):
            return []
        json_found, spans = _json_boxes(text)
        found = sorted(json_found + _paren_boxes(text, spans), key=lambda item: item[0])
        boxes = [box for _, box in found] or _bare_boxes(text)
        return list(dict.fromkeys(boxes))
    except Exception as exc:  # a parser of model output must never take a stage down
        guard(exc, "parse_grounding")
        return []


# --------------------------------------------------------------------------------------------
# Labels of a joint grounding answer -> the phrases that were asked for
# --------------------------------------------------------------------------------------------


def match_label(label: str | None, phrases: Sequence[str]) -> str | None:
    """The phrase a model's box label refers to, or ``None``.

    Case, articles and plurals do not matter (:func:`hfgcot.parsing.phrases.phrase_key`). An exact normalized match
    wins; otherwise the single phrase whose words appear, whole, in the label (or the label's in
    the phrase) - longest first; ambiguity gives ``None``.

    >>> match_label("The red balls", ["red ball", "ball", "table"])
    'red ball'
    >>> match_label("left cup", ["cup", "table"])
    'cup'
    >>> match_label("dog", ["cat"]) is None
    True
    """
    try:
        if not label or not phrases:
            return None
        target = phrase_key(label)
        if not target:
            return None
        normalized = [(phrase_key(p), p) for p in phrases]
        for norm, phrase in normalized:
            if norm == target:
                return phrase
        padded = f" {target} "
        hits = [
            (len(norm), phrase)
            for norm, phrase in normalized
            if norm and (f" {norm} " in padded or padded in f" {norm} ")
        ]
        if not hits:
            return None
        hits.sort(key=lambda h: -h[0])
        if len(hits) > 1 and hits[0][0] == hits[1][0]:
            return None
        return hits[0][1]
    except Exception as exc:  # never take a stage down on odd model output
        guard(exc, "match_label")
        return None
