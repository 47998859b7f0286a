"""Batches by count and by tokens, the out-of-memory backoff, the memory estimate: pure rules."""

from __future__ import annotations

import logging
from types import SimpleNamespace as NS

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hfgcot.geometry.frames import Frame
from hfgcot.model.batching import (
    Backoff,
    BatchLimit,
    cut_batches,
    halved,
    is_out_of_memory,
    out_of_memory_error,
    prompt_cost,
)
from hfgcot.model.memory import TokenCost, budget_tokens, token_cost

costs_st = st.lists(st.integers(0, 5000), max_size=40)
limits_st = st.builds(BatchLimit, st.integers(1, 12), st.none() | st.integers(1, 8000))


@given(costs_st, limits_st)
def test_batches_cover_every_request_once_in_order_within_both_limits(costs, limit):
    batches = cut_batches(costs, limit)
    assert [i for b in batches for i in b] == list(range(len(costs)))
    for b in batches:
        assert len(b) >= 1
        if len(b) > 1:  # a request above the token limit runs alone
            assert len(b) <= limit.size
            assert limit.tokens is None or sum(costs[i] for i in b) <= limit.tokens


@given(costs_st, limits_st)
def test_batches_are_cut_only_when_a_limit_is_reached(costs, limit):
    batches = cut_batches(costs, limit)
    for b, after in zip(batches, batches[1:], strict=False):
        tokens = sum(costs[i] for i in b) + costs[after[0]]
        assert len(b) == limit.size or (limit.tokens is not None and tokens > limit.tokens)


def test_mixed_sizes_are_cut_by_tokens_and_by_count():
    costs = [300, 300, 16_400, 300, 300, 300, 300, 20]
    assert cut_batches(costs, BatchLimit(size=3, tokens=1000)) == [
        range(0, 2),
        range(2, 3),  # 12.8 Mpx image: above the limit, alone
        range(3, 6),
        range(6, 8),
    ]
    assert cut_batches(costs, BatchLimit(size=8)) == [range(0, 8)]
    assert cut_batches([], BatchLimit(size=8)) == []


def test_limits_validate_and_tighten():
    with pytest.raises(ValueError, match="batch size"):
        BatchLimit(0)
    with pytest.raises(ValueError, match="max_batch_tokens"):
        BatchLimit(4, 0)
    assert BatchLimit(8).tighter(BatchLimit(16, 500)) == BatchLimit(8, 500)
    assert BatchLimit(8, 300).tighter(None) == BatchLimit(8, 300)
    assert halved(1, 1) == BatchLimit(1, 1) and halved(7, 701) == BatchLimit(3, 350)


def test_prompt_cost_counts_the_frames_tokens_and_the_text():
    frame = Frame.for_image(640, 480, min_pixels=3136, max_pixels=1003520)
    expected = frame.model_width * frame.model_height // 28**2 + len("Describe it.") // 3
    assert prompt_cost("Describe it.", (640, 480)) == expected
    big = prompt_cost("", (4480, 2860), max_pixels=12_845_056)
    assert 16_000 < big <= 16_384  # a 12.8 Mpx image at the Hub's max_pixels
    assert prompt_cost("x" * 30) == 10
    assert prompt_cost("", (1, 1000)) == 0  # refused by the resize rule: the processor decides


class Memory:
    """A fake device: a forward pass holding more than ``capacity`` tokens runs out of memory."""

    def __init__(self, costs: dict[int, int], capacity: int) -> None:
        self.costs, self.capacity, self.calls = costs, capacity, []

    def work(self, batch: list[int]) -> list[str]:
        self.calls.append(list(batch))
        if sum(self.costs[i] for i in batch) > self.capacity:
            raise MemoryError("out of memory")
        return [f"answer {i}" for i in batch]


def oom_backoff() -> Backoff:
    return Backoff(is_oom=lambda exc: isinstance(exc, MemoryError))


@given(
    st.lists(st.integers(1, 400), min_size=1, max_size=30),
    st.integers(1, 1500),
    limits_st,
)
def test_backoff_gives_the_unconstrained_results_and_marks_what_never_fits(costs, capacity, limit):
    items = list(range(len(costs)))
    memory = Memory(dict(enumerate(costs)), capacity)
    out = oom_backoff().run(items, costs, memory.work, lambda i, e: e, limit, "stage")
    assert len(out) == len(items)  # rows in == rows out, in order
    for i, result in zip(items, out, strict=True):
        if costs[i] > capacity:
            assert result == out_of_memory_error(costs[i])
        else:
            assert result == f"answer {i}"
    assert all(len(c) <= limit.size for c in memory.calls)


def test_backoff_halves_remembers_per_stage_and_logs_once(caplog):
    backoff, memory = oom_backoff(), Memory(dict.fromkeys(range(16), 100), capacity=450)
    with caplog.at_level(logging.WARNING, logger="hfgcot.model.batching"):
        out = backoff.run(
            list(range(16)), [100] * 16, memory.work, lambda i, e: e, BatchLimit(16), "reasoning"
        )
    assert out == [f"answer {i}" for i in range(16)]
    # 16 -> 8 -> 4 requests: 4 x 100 tokens fit in 450
    assert [len(c) for c in memory.calls] == [16, 8, 4, 4, 4, 4]
    assert backoff.learned == {"reasoning": BatchLimit(4, 400)}
    [record] = caplog.records
    assert "reasoning" in record.message and "16 requests / 1,600 tokens" in record.message
    assert "4 requests / 400 tokens per batch fits" in record.message
    # the rest of the stage starts at the size that worked; another stage does not
    memory.calls.clear()
    backoff.run(
        [0, 1, 2, 3, 4], [100] * 5, memory.work, lambda i, e: e, BatchLimit(16), "reasoning"
    )
    assert [len(c) for c in memory.calls] == [4, 1]
    memory.calls.clear()
    backoff.run([0, 1, 2], [100] * 3, memory.work, lambda i, e: e, BatchLimit(16), "grounding")
    assert [len(c) for c in memory.calls] == [3]
    assert len(caplog.records) == 1


def test_a_request_too_big_alone_gets_out_of_memory_and_the_rest_run(caplog):
    costs = [100, 5000, 100]
    memory = Memory(dict(enumerate(costs)), capacity=1000)
    with caplog.at_level(logging.WARNING):
        out = oom_backoff().run([0, 1, 2], costs, memory.work, lambda i, e: e, BatchLimit(8), "k")
    assert out == ["answer 0", "out_of_memory: 5000 tokens", "answer 2"]
    assert is_out_of_memory(out[1]) and not is_out_of_memory(out[0])
    assert any("one request of 5000 tokens" in r.message for r in caplog.records)


def test_other_failures_cost_only_the_failing_request():
    def work(batch: list[int]) -> list[str]:
        if 2 in batch:
            raise ValueError("bad image")
        return [str(i) for i in batch]

    freed = []
    backoff = Backoff(is_oom=lambda exc: False, free=lambda: freed.append(1))
    out = backoff.run([0, 1, 2, 3], [1] * 4, work, lambda i, e: e, BatchLimit(4), "k")
    assert out == ["0", "1", "ValueError: bad image", "3"]
    assert backoff.learned == {} and freed == []


def test_memory_is_freed_before_each_retry():
    freed = []
    memory = Memory(dict.fromkeys(range(4), 10), capacity=15)
    backoff = Backoff(is_oom=lambda exc: isinstance(exc, MemoryError), free=lambda: freed.append(1))
    backoff.run([0, 1, 2, 3], [10] * 4, memory.work, lambda i, e: e, BatchLimit(4), "k")
    assert len(freed) == 2  # 4 -> 2 -> 1


QWEN25_3B = NS(
    model_type="qwen2_5_vl",
    text_config=NS(
        hidden_size=2048,
        intermediate_size=11008,
        num_hidden_layers=36,
        num_attention_heads=16,
        num_key_value_heads=2,
    ),
    vision_config=NS(hidden_size=1280, intermediate_size=3420, spatial_merge_size=2),
)


def test_token_cost_from_the_model_config():
    cost = token_cost(QWEN25_3B, dtype_bytes=2)
    assert cost.kv == 2 * 36 * 2 * 128 * 2  # K and V, layers, KV heads, head size, bf16
    text = 2 * (6 * 2048 + 3 * 11008)
    vision = 4 * 2 * (6 * 1280 + 3 * 3420)  # 2x2 patches per image token
    assert cost.activations == text + vision
    assert token_cost(QWEN25_3B, dtype_bytes=4).kv == 2 * cost.kv
    # Qwen2-VL names its vision widths embed_dim / mlp_ratio
    qwen2 = NS(
        text_config=QWEN25_3B.text_config,
        vision_config=NS(embed_dim=1280, mlp_ratio=4, hidden_size=1536, spatial_merge_size=2),
    )
    assert token_cost(qwen2, 2).activations == text + 4 * 2 * (6 * 1280 + 3 * 5120)


@given(
    st.integers(0, 200 * 2**30),
    st.integers(1, 64),
    st.integers(1, 4096),
)
def test_budget_fits_in_the_free_memory(free, batch_size, max_new_tokens):
    cost = token_cost(QWEN25_3B, 2)
    tokens = budget_tokens(free, cost, batch_size=batch_size, max_new_tokens=max_new_tokens)
    assert tokens >= 1
    used = tokens * cost.per_prompt_token + batch_size * max_new_tokens * cost.kv
    assert tokens == 1 or used <= 0.8 * free
    more = budget_tokens(free + 2**30, cost, batch_size=batch_size, max_new_tokens=max_new_tokens)
    assert more >= tokens


def test_budget_on_an_h100_holds_a_batch_of_large_images():
    # 80 GB card, 7.5 GB of weights: about 70 GB free
    tokens = budget_tokens(70 * 10**9, token_cost(QWEN25_3B, 2), batch_size=8, max_new_tokens=512)
    assert 150_000 < tokens < 300_000
    assert TokenCost(1, 1).per_prompt_token == 2
