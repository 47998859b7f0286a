"""The parsers on verbatim outputs of real Qwen-VL models (and MM-GCoT annotations).

The corpus is not part of the package: it lives in the ``shared/real-outputs`` folder beside the
repository (``real_outputs.jsonl``, one published output per line with what a careful reader
extracts from it), or in the file ``HFGCOT_REAL_OUTPUTS`` names. Without it these tests are skipped.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest

from hfgcot.geometry import Frame
from hfgcot.parsing import gcot_text
from hfgcot.parsing.answers import final_answer
from hfgcot.parsing.grounding import parse_grounding
from hfgcot.parsing.replies import parse_region_answer, parse_yes_no

# HFGCOT_REAL_OUTPUTS names the file where the corpus is not beside the repository
CORPUS = Path(
    os.environ.get("HFGCOT_REAL_OUTPUTS")
    or Path(__file__).resolve().parents[2].parent / "shared" / "real-outputs" / "real_outputs.jsonl"
)


def _items() -> list[dict]:
    if not CORPUS.is_file():
        return []
    return [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines() if line]


ITEMS = _items()
pytestmark = pytest.mark.skipif(
    not ITEMS, reason=f"real-output corpus not found at {CORPUS} (it lives beside the repository)"
)


def _ids(kind: str) -> list[pytest.param]:
    return [
        pytest.param(item, id=f"{i}-{item['family']}")
        for i, item in enumerate(ITEMS)
        if item["kind"] == kind
    ]


def test_corpus_is_whole():
    assert len(ITEMS) == 62


@pytest.mark.parametrize("item", _ids("grounding"))
def test_grounding(item):
    expected = item["expected"]
    found = parse_grounding(item["text"])
    assert [list(b.box) for b in found] == expected["boxes"], item["note"]
    if expected.get("labels") is not None:
        assert [b.label for b in found] == expected["labels"], item["note"]
    if "frame" in expected:
        frame = Frame(**expected["frame"])
        pixels = [frame.box_to_pixels(b.box, item["family"]) for b in found]
        for got, want in zip(pixels, expected["pixels"], strict=True):
            assert got == pytest.approx(want, abs=1e-6)
        if "crop_aspect" in expected:
            x1, y1, x2, y2 = pixels[0]
            # The tool displayed a crop resized to its own grid: its aspect is the box's within 2%
            # (the same numbers read as resized-image pixels would give a very different one).
            assert (x2 - x1) / (y2 - y1) == pytest.approx(expected["crop_aspect"], rel=0.02)


@pytest.mark.parametrize("item", _ids("gcot"))
def test_gcot(item):
    expected = item["expected"]
    cleaned, keywords = gcot_text.parse_gcot(item["text"])
    assert keywords == expected["keywords"], item["note"]
    assert cleaned == expected["cleaned"], item["note"]
    if "merged" in expected:
        assert gcot_text.merge_keywords(keywords, cleaned) == expected["merged"]
    if "answer" in expected:
        assert final_answer(cleaned) == expected["answer"], item["note"]


@pytest.mark.parametrize("item", _ids("yesno"))
def test_yes_no(item):
    assert parse_yes_no(item["text"]) is item["expected"]["answer"], item["note"]


@pytest.mark.parametrize("item", _ids("region"))
def test_region_answer(item):
    expected = item["expected"]
    got = parse_region_answer(item["text"], expected["n"])
    assert got in expected["accept"], item["note"]


def test_no_box_is_invented_anywhere():
    """Items with nothing to extract give no box; every box read is finite."""
    for item in ITEMS:
        if item["kind"] != "grounding":
            continue
        found = parse_grounding(item["text"])
        assert all(math.isfinite(v) for b in found for v in b.box)
        if not item["expected"]["boxes"]:
            assert found == [], item["note"]
