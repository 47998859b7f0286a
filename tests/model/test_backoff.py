"""The engine on real memory limits, simulated: a tiny model whose forward pass runs out of memory
above a chosen size. Batches by tokens, halving on out-of-memory, the status of a request that
never fits, through the engine and through a real pipeline."""

from __future__ import annotations

import dataclasses
import functools
import logging

import pytest
import torch
from conftest import png_bytes, random_image
from datasets import Dataset

from hfgcot import add_grounding_predictions, prompts
from hfgcot.model.batching import BatchLimit
from hfgcot.model.vlm import VLM, GenerationSettings, Request

pytestmark = pytest.mark.model

SETTINGS = GenerationSettings(max_new_tokens=5)


def fresh_vlm(tiny_vlm: VLM, name: str) -> VLM:
    """The tiny model behind a VLM of its own (own backoff memory, own spec and cache key)."""
    vlm = VLM(tiny_vlm.model, tiny_vlm.processor, tiny_vlm.spec, "cpu")
    vlm.spec = dataclasses.replace(tiny_vlm.spec, model=f"{tiny_vlm.spec.model}#{name}")
    return vlm


def limit_memory(monkeypatch, vlm: VLM, *, rows: int | None = None, tokens: int | None = None):
    """Forward passes with more than ``rows`` sequences or ``tokens`` positions run out of memory.

    Returns the list of ``(rows, positions)`` of every prompt pass that ran.
    """
    passes: list[tuple[int, int]] = []
    forward = vlm.model.forward

    @functools.wraps(forward)  # generate checks its keyword arguments against the signature
    def limited(*args, **kwargs):
        ids = kwargs.get("input_ids")
        if ids is not None and ids.shape[1] > 1:  # a prompt pass (decode steps see 1 position)
            if (rows and ids.shape[0] > rows) or (tokens and ids.numel() > tokens):
                raise torch.OutOfMemoryError(f"CUDA out of memory (simulated): {tuple(ids.shape)}")
            passes.append(tuple(ids.shape))
        return forward(*args, **kwargs)

    monkeypatch.setattr(vlm.model, "forward", limited)
    return passes


def positions(vlm: VLM, request: Request) -> int:
    """Prompt positions of ``request`` alone (image tokens included)."""
    inputs = vlm.processor(
        text=vlm._prompt_texts([request]), images=[request.image], return_tensors="pt"
    )
    return int(inputs["input_ids"].shape[1])


def requests_of(sizes, prompt="Describe the image."):
    return [Request(random_image(w, h, seed=i), prompt) for i, (w, h) in enumerate(sizes)]


def same(a, b) -> bool:
    return [(g.text, g.frame, g.truncated, g.error) for g in a] == [
        (g.text, g.frame, g.truncated, g.error) for g in b
    ]


def test_max_batch_tokens_cuts_batches_and_keeps_the_results(tiny_vlm, monkeypatch):
    sizes = [(224, 224), (56, 56), (224, 224), (56, 56), (100, 100), (56, 56), (224, 224)]
    requests = requests_of(sizes)
    vlm = fresh_vlm(tiny_vlm, "tokens")
    free = vlm.generate(requests, SETTINGS, batch_size=8)
    costs = sorted(vlm.request_cost(r) for r in requests)
    limit = costs[-1] + costs[0]  # a large request fits with at most one small one
    passes = limit_memory(monkeypatch, vlm)
    cut = vlm.generate(requests, SETTINGS, batch_size=8, max_batch_tokens=limit)
    assert same(cut, free)  # greedy output does not depend on the batching
    assert len(passes) > 1 and sum(r for r, _ in passes) == len(requests)
    assert vlm.backoff.learned == {}
    assert vlm.batch_limit(8, None) == BatchLimit(8, None)  # no token limit on CPU


def test_out_of_memory_halves_the_batch_and_keeps_the_size_that_worked(
    tiny_vlm, monkeypatch, caplog
):
    requests = requests_of([(64, 64)] * 8)
    vlm = fresh_vlm(tiny_vlm, "halve")
    free = vlm.generate(requests, SETTINGS, batch_size=8)
    passes = limit_memory(monkeypatch, vlm, rows=2)
    with caplog.at_level(logging.WARNING, logger="hfgcot.model.batching"):
        out = vlm.generate(requests, SETTINGS, batch_size=8, stage="gcot_reasoning")
    assert len(out) == len(requests) and same(out, free)
    assert [r for r, _ in passes] == [2, 2, 2, 2]  # 8 and 4 ran out of memory
    cost = vlm.request_cost(requests[0])
    assert vlm.backoff.learned == {"gcot_reasoning": BatchLimit(2, 2 * cost)}
    [record] = [r for r in caplog.records if "fits" in r.message]
    assert f"gcot_reasoning: out of memory with 8 requests / {8 * cost:,} tokens" in record.message
    assert f"2 requests / {2 * cost:,} tokens per batch fits" in record.message
    # the next call of the stage starts at the size that worked: no failing pass, no new log
    passes.clear()
    caplog.clear()
    vlm.generate(requests[:3], SETTINGS, batch_size=8, stage="gcot_reasoning")
    assert [r for r, _ in passes] == [2, 1] and not caplog.records


def test_a_request_too_big_alone_gets_out_of_memory(tiny_vlm, monkeypatch):
    requests = requests_of([(56, 56), (224, 224), (56, 56), (56, 56)])
    vlm = fresh_vlm(tiny_vlm, "alone")
    free = vlm.generate(requests, SETTINGS, batch_size=8)
    big = vlm.request_cost(requests[1])
    # two small requests fit, one large one does not
    limit_memory(monkeypatch, vlm, tokens=2 * positions(vlm, requests[0]) + 2)
    out = vlm.generate(requests, SETTINGS, batch_size=8)
    assert len(out) == 4
    assert out[1].error == f"out_of_memory: {big} tokens" and out[1].text == ""
    assert same([out[i] for i in (0, 2, 3)], [free[i] for i in (0, 2, 3)])


def test_scoring_shares_the_backoff(tiny_vlm, monkeypatch):
    image = random_image(64, 64)
    requests = [Request(image if i % 2 else None, "Describe.") for i in range(6)]
    continuations = [f"A shape number {i}." for i in range(6)]
    vlm = fresh_vlm(tiny_vlm, "score")
    free = vlm.continuation_logprobs(requests, continuations, batch_size=6)
    limit_memory(monkeypatch, vlm, rows=2)
    out = vlm.continuation_logprobs(requests, continuations, batch_size=6, stage="check")
    assert [s.error for s in out] == [None] * 6
    for a, b in zip(out, free, strict=True):
        assert a.token_ids == b.token_ids
        assert a.logprobs == pytest.approx(b.logprobs, abs=1e-4)
    assert vlm.backoff.learned["check"].size == 1  # 6 -> 3 -> 1


def test_out_of_memory_status_through_a_pipeline(tiny_vlm, monkeypatch):
    sizes = [(56, 56), (224, 224), (56, 56)]
    ds = Dataset.from_dict(
        {
            "image": [png_bytes(random_image(w, h, seed=i)) for i, (w, h) in enumerate(sizes)],
            "question": ["the red ball", "the blue box", "the green tree"],
        }
    )
    vlm = fresh_vlm(tiny_vlm, "pipeline")
    small = Request(random_image(56, 56), prompts.grounding_sft_prompt("the green tree"))
    limit_memory(monkeypatch, vlm, tokens=positions(vlm, small) + 1)  # one small request
    out = add_grounding_predictions(ds, vlm, max_new_tokens=4, batch_size=3)
    assert len(out) == len(ds) and out["question"] == ds["question"]
    statuses = out["pred_status"]
    assert statuses[1].startswith("out_of_memory: ") and statuses[1].endswith(" tokens")
    assert not any(s.startswith("out_of_memory") for s in (statuses[0], statuses[2]))
    assert out["pred_bbox"][1] == [] and out["pred_text"][1] == ""
