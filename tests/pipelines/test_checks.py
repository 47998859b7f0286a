"""``hfgcot.pipelines.self_check``: the visual self-check of the dense-caption pipeline, on its own."""

from __future__ import annotations

import math

import pytest
from conftest import random_image
from hypothesis import given
from hypothesis import strategies as st

from hfgcot import prompts
from hfgcot.model.vlm import GenerationSettings, Request
from hfgcot.parsing import captions as textproc
from hfgcot.pipelines.self_check import (
    CheckJob,
    CheckResult,
    check_sentences,
    is_supported,
    locate_sentences,
)
from hfgcot.testing.tiny import ScriptedVLM

WORDS = st.sampled_from(["a", "red", "cat", "sits", "Dr.", "3.5", "e.g.", "here", "it"])
SENTENCE = st.builds(
    lambda words, end: " ".join(words) + end,
    st.lists(WORDS, min_size=1, max_size=6),
    st.sampled_from([".", "!", "?", ""]),
)


@given(st.lists(SENTENCE, min_size=1, max_size=5), st.sampled_from([" ", "\n", "  "]))
def test_each_sentence_is_found_right_after_its_prefix(sentences, gap):
    text = gap.join(sentences)
    parts = textproc.split_sentences(text)
    located = locate_sentences(text, parts)
    assert [s for _p, s in located] == parts
    end = 0
    for prefix, sentence in located:
        assert text.startswith(prefix + sentence)
        assert len(prefix) >= end  # in order, never overlapping the previous sentence
        end = len(prefix) + len(sentence)


def test_locate_gives_the_text_before_each_sentence():
    text = "A red cat. It sits here! Done"
    assert locate_sentences(text, ["A red cat.", "It sits here!", "Done"]) == [
        ("", "A red cat."),
        ("A red cat. ", "It sits here!"),
        ("A red cat. It sits here! ", "Done"),
    ]


def test_is_supported_by_checker():
    assert is_supported(1.0, "yesno", 0.0) and not is_supported(0.0, "yesno", -1.0)
    assert is_supported(0.3, "contrastive", 0.2) and not is_supported(0.2, "contrastive", 0.2)
    assert not is_supported(None, "contrastive", -5.0)
    assert not is_supported(math.nan, "contrastive", -5.0)


@pytest.mark.model
def test_yes_no_check_reads_each_verdict_in_order(tiny_vlm):
    verdicts = {"cat": "Yes, it is.", "dog": "No.", "owl": "It is hard to say."}

    def script(request: Request, _text: str) -> str:
        return next(v for k, v in verdicts.items() if k in request.prompt)

    fake = ScriptedVLM(tiny_vlm, script)
    image = random_image(64, 48)
    jobs = [CheckJob(image, "Describe.", "", f"A {k} sits here.") for k in verdicts]
    out = check_sentences(
        fake, jobs, checker="yesno", generation=GenerationSettings(), batch_size=2
    )
    assert out == [CheckResult(1.0), CheckResult(0.0), CheckResult(None)]
    assert fake.calls and all("sits here" in call for call in fake.calls)
    assert prompts.sentence_check_prompt("A cat sits here.") in fake.calls[0]
    assert (
        check_sentences(fake, [], checker="yesno", generation=GenerationSettings(), batch_size=2)
        == []
    )


@pytest.mark.model
def test_contrastive_score_is_the_mean_gain_from_the_image(tiny_vlm):
    image = random_image(64, 48, seed=3)
    jobs = [
        CheckJob(image, "Describe.", "", "A red cat."),
        CheckJob(image, "Describe.", "A red cat. ", "It sits here."),
    ]
    out = check_sentences(
        tiny_vlm, jobs, checker="contrastive", generation=GenerationSettings(), batch_size=4
    )
    for job, (score, error, truncated) in zip(jobs, out, strict=True):
        assert not truncated
        assert error is None
        with_image, without = tiny_vlm.continuation_logprobs(
            [Request(image, job.prompt), Request(None, job.prompt)],
            [job.sentence] * 2,
            [job.prefix] * 2,
        )
        gains = [a - b for a, b in zip(with_image.logprobs, without.logprobs, strict=True)]
        assert score == pytest.approx(sum(gains) / len(gains), abs=1e-4)
    assert out[0][0] != pytest.approx(out[1][0])  # each sentence scored in its own context
