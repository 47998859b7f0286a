"""The status module: one OK, one note rule, one first-problem rule, one summary, one cap."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from hfgcot import status
from hfgcot.status import OK, cap, first_problem, is_ok, make, reason, summary, with_note


def test_cap_counts_what_it_leaves_out():
    long = "boxes_skipped: " + "box 2 outside_image; " * 3000
    capped = cap(long)
    assert capped.startswith(long[: status.MAX_CHARS])
    assert capped.endswith(f"... (+{len(long) - status.MAX_CHARS} more characters)")
    assert len(capped) < status.MAX_CHARS + 40
    assert cap("x" * status.MAX_CHARS) == "x" * status.MAX_CHARS


@given(st.text(max_size=1000), st.integers(min_value=1, max_value=400))
def test_cap_keeps_the_start_and_bounds_the_length(text, limit):
    capped = cap(text, limit)
    assert capped.startswith(text[:limit])
    assert len(capped) <= limit + len("... (+ more characters)") + len(str(len(text)))
    assert (capped == text) == (len(text) <= limit)


def test_make_and_reason():
    assert make("image_too_small", "20x20") == "image_too_small: 20x20"
    assert make("no_boxes") == make("no_boxes", "") == "no_boxes"
    assert reason(make("no_valid_boxes", "x" * 5000)) == "no_valid_boxes"
    assert len(make("generation_error", "y" * 5000)) < 400


def test_ok_and_notes():
    assert is_ok(OK) and is_ok("ok: note")
    assert not is_ok("okay") and not is_ok("broken: ok") and not is_ok(None)
    assert with_note(OK, "first") == "ok: first"
    assert with_note("ok: first", "second") == "ok: first; second"  # notes add up
    assert with_note("ok: first; second", "first") == "ok: first; second"  # not repeated
    assert len(with_note("ok: " + "n" * 400, "more")) < 400  # capped
    assert with_note("empty_caption", "second") == "empty_caption"


def test_first_problem():
    assert first_problem() == OK
    assert first_problem(OK, OK) == OK
    assert first_problem(OK, "empty_answer", "empty_question") == "empty_answer"


def test_summary_groups_by_reason_most_frequent_first():
    assert summary(["a: 1", "ok", "a: 2", "ok: n", "ok", "b"]) == {"ok": 3, "a": 2, "b": 1}
    assert list(summary(["b", "a", "a"])) == ["a", "b"]
    assert summary([]) == {}
    assert status.summary_text(summary(["ok", "x"])) == "ok 1, x 1"


# ------------------------------------------------------------------------------------------------
# Stages write capped statuses (the one place statuses are finished: Stage.__call__)
# ------------------------------------------------------------------------------------------------


def test_a_stage_caps_the_statuses_it_writes():
    import dataclasses

    import pytest

    from hfgcot.pipelines.base import Stage

    @dataclasses.dataclass(frozen=True)
    class Loud(Stage):
        status_column = "loud_status"

        def process(self, batch, rank=None):
            return {"loud_status": ["why: " + "x" * 60000, OK, None]}

    out = Loud()({"a": [1, 2, 3]})["loud_status"]
    assert out[0].endswith(f"(+{60005 - status.MAX_CHARS} more characters)")
    assert out[1:] == [OK, None]

    with pytest.raises(TypeError, match="implement process"):

        @dataclasses.dataclass(frozen=True)
        class Bypass(Stage):
            def __call__(self, batch, rank=None):
                return batch


def test_region_captions_with_thousands_of_bad_boxes_keep_a_short_status():
    from conftest import png_bytes, random_image

    from hfgcot.pipelines.region_captions import RegionPrepareStage

    # alternating reasons: the skipped-box description cannot group them into ranges
    boxes = [[500, 500, 5, 5] if k % 2 else [1, 2, 3] for k in range(6000)]
    out = RegionPrepareStage()({"image": [png_bytes(random_image(64, 64, 0))], "bbox": [boxes]})
    (text,) = out["region_caption_status"]
    assert text.startswith("no_valid_boxes: skipped 6000 of 6000 boxes: boxes 1, 3, 5")
    assert text.endswith("more characters)") and len(text) < status.MAX_CHARS + 40
