"""Pure caption text helpers: sentence splitting and follow-up question lists (no torch)."""

from __future__ import annotations

import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hfgcot import prompts
from hfgcot.parsing.captions import (
    join_sentences,
    parse_object_list,
    sentence_spans,
    split_sentences,
)
from hfgcot.parsing.phrases import dedupe, normalize_phrase, phrase_key


def squash(text: str) -> str:
    return "".join(text.split())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("A cat. A dog.", ["A cat.", "A dog."]),
        ("Is it red? Yes! It is.", ["Is it red?", "Yes!", "It is."]),
        ("Wait?! Really...", ["Wait?!", "Really..."]),
        ("It is 3.5 m tall. The 2nd floor.", ["It is 3.5 m tall.", "The 2nd floor."]),
        (
            "Fruit, e.g. apples, i.e. red ones. Done.",
            ["Fruit, e.g. apples, i.e. red ones.", "Done."],
        ),
        ("Animals e.g. Cats and dogs.", ["Animals e.g. Cats and dogs."]),
        (
            "Dr. Smith met Mr. Li at St. Paul. They ate.",
            ["Dr. Smith met Mr. Li at St. Paul.", "They ate."],
        ),
        ("Room No. 5 is open. No. It is closed.", ["Room No. 5 is open.", "No.", "It is closed."]),
        ("Chairs, tables, etc. The room is big.", ["Chairs, tables, etc.", "The room is big."]),
        ("It is approx. two metres. Ok.", ["It is approx. two metres.", "Ok."]),
        ("At 5 p.m. the sun sets. Night.", ["At 5 p.m. the sun sets.", "Night."]),
        ("Made in the U.S.A. by hand.", ["Made in the U.S.A. by hand."]),
        ('He said "Stop." Then he left.', ['He said "Stop."', "Then he left."]),
        ("A box (red). A ball.", ["A box (red).", "A ball."]),
        ("It goes on... And on.", ["It goes on...", "And on."]),
        ("It goes on… and on.", ["It goes on… and on."]),
        ("See file.txt now. Ok", ["See file.txt now.", "Ok"]),
        (
            "1. The sky is blue.\n2. The grass is green.",
            ["1. The sky is blue.", "2. The grass is green."],
        ),
        ("Items:\n- a red car\n- a tree", ["Items:", "- a red car", "- a tree"]),
        ("a) First one.\nb) Second one.", ["a) First one.", "b) Second one."]),
        (
            "天空是蓝色的。草地上有一只狗！它在跑吗？",
            ["天空是蓝色的。", "草地上有一只狗！", "它在跑吗？"],
        ),
        ("「你好。」他说。", ["「你好。」", "他说。"]),
        ("空は青い．犬がいる｡", ["空は青い．", "犬がいる｡"]),
        ("Mixed. 中文句子。English again.", ["Mixed.", "中文句子。", "English again."]),
        ("No terminator at the end", ["No terminator at the end"]),
        ("   ", []),
        ("", []),
        ("...", ["..."]),
    ],
)
def test_split_sentences(text, expected):
    assert split_sentences(text) == expected


def test_split_sentences_odd_inputs():
    assert split_sentences(None) == []
    assert split_sentences(12) == []
    assert sentence_spans(b"A. B.") == []


def test_spans_point_into_the_text():
    text = "  A red ball.  The sky\tis blue!\n\nDone "
    spans = sentence_spans(text)
    assert [text[s:e] for s, e in spans] == ["A red ball.", "The sky\tis blue!", "Done"]
    assert all(s < e for s, e in spans)
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:], strict=False))


TRICKY = st.text(alphabet=st.sampled_from(list("aZ3 .!?。！？．｡…\"')」\n\t-e.g(Mr")), max_size=60)


@settings(max_examples=300, deadline=None)
@given(st.one_of(TRICKY, st.text(max_size=80)))
def test_split_never_raises_and_loses_nothing(text):
    sentences = split_sentences(text)
    assert squash("".join(sentences)) == squash(text)
    assert all(s and s == s.strip() for s in sentences)
    assert [text[s:e] for s, e in sentence_spans(text)] == sentences


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(max_size=30), max_size=6))
def test_join_sentences_keeps_text(parts):
    joined = join_sentences(parts)
    assert squash(joined) == squash("".join(parts))


def test_join_sentences():
    assert join_sentences(["A cat.", " ", "A dog."]) == "A cat. A dog."
    assert join_sentences(["天空。", "草地。", "Then."]) == "天空。草地。Then."
    assert join_sentences(["「好。」", "他说。"]) == "「好。」他说。"
    assert join_sentences([]) == ""


def test_normalize_phrase_and_key():
    assert normalize_phrase("**The red car**.") == "red car"
    assert normalize_phrase("  an  old   tree ") == "old tree"
    assert normalize_phrase('"the dog"?') == "dog"
    assert normalize_phrase("the man in the image") == "man"
    assert normalize_phrase(None) == ""
    assert phrase_key("The red cars") == phrase_key("red car") == "red car"
    assert phrase_key("glass") == "glass"  # no folding of -ss
    assert phrase_key("bus") == "bus"  # too short to fold
    assert phrase_key("the boxes") == "box" and phrase_key("Glasses") == "glass"
    assert phrase_key("buses") == "bus" and phrase_key("houses") == "house"


def test_dedupe():
    assert dedupe(["red car", "Red Cars", "tree", "", "the tree"]) == ["red car", "tree"]
    assert dedupe(["A", "a"], key=str) == ["A", "a"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "1. Describe more details about the red car.\n"
            "2. Describe more details about the tall tree.\n"
            "3. Describe more details about the red car.",
            ["red car", "tall tree"],
        ),
        (
            "Here are the questions:\n"
            "- Describe more details about **the bench**.\n"
            "- Describe the position of the dog in the image.\n"
            "* Please describe additional details about a woman's hat",
            ["bench", "dog", "woman's hat"],
        ),
        ("Objects: a red car, the tree; red cars", ["red car", "tree"]),
        ("car\ntree\nthe car\n\n", ["car", "tree"]),
        ("Describe details of the sky. Describe more details about the image.", ["sky"]),
        (
            "The image shows a park with many people walking around happily in the sun.\n"
            "What color is the car?\nNone\n- N/A\n42\n\x00\x01",
            [],
        ),
        ("", []),
    ],
)
def test_parse_object_list(text, expected):
    assert parse_object_list(text) == expected


def test_parse_object_list_cap_and_odd_inputs():
    text = "\n".join(f"Describe more details about the object{i}." for i in range(10))
    assert parse_object_list(text, 3) == ["object0", "object1", "object2"]
    assert parse_object_list(text, 0) == []
    assert parse_object_list(None) == []
    assert parse_object_list("、".join(["猫", "狗", "猫"])) == ["猫", "狗"]


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=120), st.integers(min_value=0, max_value=6))
def test_parse_object_list_never_raises(text, cap):
    objects = parse_object_list(text, cap)
    assert len(objects) <= cap
    keys = [phrase_key(o) for o in objects]
    assert len(set(keys)) == len(keys) and all(keys)
    assert all(o == normalize_phrase(o) and o.isprintable() for o in objects)


def test_question_pairs_and_prompts_are_fingerprinted():
    assert prompts.detail_question("red car") == "Describe more details about the red car."
    assert prompts.position_question("red car").startswith("Describe the position of the red car")
    assert "<region1> to <region4>" in prompts.region_marked_prompt(4)
    data = prompts.prompt_fingerprint_data()
    for key in (
        "dense_caption",
        "sentence_check",
        "object_questions",
        "fuse_caption",
        "region_marked",
        "region_crop",
    ):
        assert data[key]
    fused = prompts.fuse_caption_prompt(["A cat."], [])
    assert "A cat." in fused and "(none)" in fused


def test_textproc_is_pure():
    import subprocess

    code = "import sys, hfgcot.parsing.captions; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


@given(st.lists(st.text(alphabet="abcesxyzhiu", min_size=1, max_size=9), min_size=1, max_size=4))
def test_phrase_key_is_stable(words):
    """The key of a key is itself; case and a leading article never change a key."""
    phrase = " ".join(words)
    key = phrase_key(phrase)
    assert phrase_key(key) == key
    assert phrase_key(phrase.upper()) == key
    assert phrase_key("The " + phrase) == key
