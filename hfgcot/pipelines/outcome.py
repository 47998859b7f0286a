"""How a model answer's outcome enters a row status: truncation and notes.

A status is ``"ok"``, ``"ok: <note>; <note>"`` (the row is usable, with something to know) or a
reason the row has no usable result. An answer cut at ``max_new_tokens``
(:attr:`hfgcot.model.requests.Generation.truncated`) makes a row ``truncated_output: <stage>``
where the cut text is the row's product and nothing repairs it, and adds the note
``truncated <stage>`` where the row stays usable (the rule per stage: ``docs/pipelines.md``).

    >>> note_truncated(add_note("ok", "grounded the first 16 of 20 keywords"), "gcot_grounding")
    'ok: grounded the first 16 of 20 keywords; truncated gcot_grounding'
    >>> truncated_output("gcot_reasoning")
    'truncated_output: gcot_reasoning'
"""

from __future__ import annotations

from hfgcot.pipelines.base import OK

TRUNCATED_OUTPUT = "truncated_output"


def add_note(status: str, note: str) -> str:
    """``status`` with ``note`` added if it is ``ok`` (a note already there is not repeated).

    >>> add_note("ok", "a"), add_note("ok: a", "b"), add_note("ok: a", "a"), add_note("no_boxes", "a")
    ('ok: a', 'ok: a; b', 'ok: a', 'no_boxes')
    """
    if status == OK:
        return f"{OK}: {note}"
    if status.startswith(f"{OK}:"):
        notes = status[len(OK) + 1 :].strip().split("; ")
        return status if note in notes else f"{status}; {note}"
    return status


def note_truncated(status: str, stage: str) -> str:
    """``status`` with the note that an answer of ``stage`` was cut (usable rows only).

    >>> note_truncated("ok", "dense_fuse"), note_truncated("empty_caption", "dense_fuse")
    ('ok: truncated dense_fuse', 'empty_caption')
    """
    return add_note(status, f"truncated {stage}")


def truncated_output(stage: str) -> str:
    """The status of a row whose ``stage`` answer was cut and is unusable."""
    return f"{TRUNCATED_OUTPUT}: {stage}"


__all__ = ["TRUNCATED_OUTPUT", "add_note", "note_truncated", "truncated_output"]
