"""Row statuses: what every stage writes about every row, and the rules that read them.

Pure (stdlib only). A status is one short string per row:

- ``"ok"``: the row went through;
- ``"ok: <note>"``: it went through with a soft note (e.g. ``"ok: no follow-up questions"``);
- ``"<reason>"`` or ``"<reason>: <detail>"``: why not. The reason is a stable, machine-groupable
  name (``"empty_question"``, ``"undecodable_image"``...); the detail is for people.

A row keeps the first problem it meets (:func:`first_problem`); later stages leave a problem row
alone and add notes only to ``ok`` rows (:func:`with_note`; notes add up: ``"ok: a; b"``). An
answer cut at ``max_new_tokens`` makes a row :func:`truncated_output` where the cut text is the
row's product, and adds the note :func:`note_truncated` where the row stays usable. Every status a stage writes is
capped at :data:`MAX_CHARS` characters (:func:`cap`, applied by
:class:`hfgcot.pipelines.base.Stage` to its status column), and :func:`summary` counts rows per
reason for logs, provenance records and dataset cards.

    >>> s = with_note(OK, "no follow-up questions")
    >>> s, is_ok(s), reason(s)
    ('ok: no follow-up questions', True, 'ok')
    >>> first_problem(OK, make("question_too_long", "912 chars"), EMPTY_QUESTION)
    'question_too_long: 912 chars'
    >>> summary(["ok", "ok: note", "undecodable_image: OSError", "ok"])
    {'ok': 3, 'undecodable_image': 1}
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "EMPTY_QUESTION",
    "MAX_CHARS",
    "OK",
    "TRUNCATED_OUTPUT",
    "cap",
    "first_problem",
    "is_ok",
    "make",
    "note_truncated",
    "truncated_stage",
    "reason",
    "summary",
    "summary_text",
    "truncated_output",
    "with_note",
]

OK = "ok"
"""The status of a row that went through (``"ok: <note>"`` with a soft note)."""

EMPTY_QUESTION = "empty_question"
"""A row whose question (or referring phrase) is empty: written by several pipelines."""

TRUNCATED_OUTPUT = "truncated_output"
"""A row whose product is a model answer cut at ``max_new_tokens`` (:func:`truncated_output`)."""

MAX_CHARS = 300
"""Longest status kept whole; the rest is replaced by a count (:func:`cap`)."""


def cap(status: str, limit: int = MAX_CHARS) -> str:
    """``status`` cut at ``limit`` characters, with a count of the characters left out.

    >>> cap("no_valid_boxes: " + "x" * 400, limit=20)
    'no_valid_boxes: xxxx... (+396 more characters)'
    >>> cap("ok")
    'ok'
    """
    if len(status) <= limit:
        return status
    return f"{status[:limit]}... (+{len(status) - limit} more characters)"


def make(reason_name: str, detail: Any = None) -> str:
    """``"<reason>: <detail>"`` (just the reason without a detail), capped.

    >>> make("image_too_small", "20x20"), make("no_boxes")
    ('image_too_small: 20x20', 'no_boxes')
    """
    if detail is None or detail == "":
        return cap(reason_name)
    return cap(f"{reason_name}: {detail}")


def reason(status: Any) -> str:
    """The machine-groupable part of a status: everything before the first ``":"``.

    >>> reason("file_not_found: a.png"), reason("ok"), reason(None)
    ('file_not_found', 'ok', 'None')
    """
    return str(status).split(":", 1)[0]


def is_ok(status: Any) -> bool:
    """Whether a row went through: ``"ok"`` or ``"ok: <note>"``.

    >>> is_ok("ok"), is_ok("ok: 2 answers failed"), is_ok("okay"), is_ok("empty_question")
    (True, True, False, False)
    """
    return status == OK or (isinstance(status, str) and status.startswith(OK + ":"))


def with_note(status: str, note: str) -> str:
    """``status`` with a soft ``note`` added when the row is ok; a problem status is kept.

    Notes add up in the order they came (one already there is not repeated):

    >>> with_note("ok", "a"), with_note("ok: a", "b"), with_note("ok: a", "a")
    ('ok: a', 'ok: a; b', 'ok: a')
    >>> with_note("empty_caption", "b")
    'empty_caption'
    """
    if status == OK:
        return make(OK, note)
    if is_ok(status):
        notes = status[len(OK) + 1 :].strip().split("; ")
        return status if note in notes else cap(f"{status}; {note}")
    return status


def note_truncated(status: str, stage: str) -> str:
    """``status`` with the note that an answer of ``stage`` was cut (usable rows only).

    >>> note_truncated("ok", "dense_fuse"), note_truncated("empty_caption", "dense_fuse")
    ('ok: truncated dense_fuse', 'empty_caption')
    """
    return with_note(status, f"truncated {stage}")


def truncated_stage(status: str) -> str | None:
    """The stage whose cut answer a usable ``status`` notes (:func:`note_truncated`), if any.

    >>> truncated_stage("ok: 1 answers failed; truncated dense_init_caption"), truncated_stage("ok")
    ('dense_init_caption', None)
    """
    if not is_ok(status) or status == OK:
        return None
    for note in status[len(OK) + 1 :].strip().split("; "):
        if note.startswith("truncated "):
            return note[len("truncated ") :]
    return None


def truncated_output(stage: str) -> str:
    """The status of a row whose ``stage`` answer was cut and is unusable.

    >>> truncated_output("gcot_reasoning")
    'truncated_output: gcot_reasoning'
    """
    return make(TRUNCATED_OUTPUT, stage)


def first_problem(*statuses: str) -> str:
    """The first status that is not ``"ok"`` (``"ok"`` when every one is).

    >>> first_problem("ok", "empty_answer", "empty_question"), first_problem("ok", "ok")
    ('empty_answer', 'ok')
    """
    return next((s for s in statuses if s != OK), OK)


def summary(statuses: Iterable[Any]) -> dict[str, int]:
    """Rows per :func:`reason`, the most frequent first (ties in order of first appearance).

    >>> summary(["truncated_image", "ok", "ok: note", "ok"])
    {'ok': 3, 'truncated_image': 1}
    """
    return dict(Counter(reason(s) for s in statuses).most_common())


def summary_text(counts: Mapping[str, int]) -> str:
    """A :func:`summary` as one line: ``"ok 3, truncated_image 1"`` (``"-"`` when empty).

    >>> summary_text({"ok": 3, "truncated_image": 1}), summary_text({})
    ('ok 3, truncated_image 1', '-')
    """
    return ", ".join(f"{k} {v}" for k, v in counts.items()) or "-"
