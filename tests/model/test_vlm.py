"""The engine on the tiny offline model: loading path, frames, batch invariance."""

from __future__ import annotations

import pytest
from conftest import random_image
from transformers import AutoProcessor, Qwen2_5_VLProcessor

from hfgcot import load_vlm
from hfgcot.geometry.frames import Frame
from hfgcot.model.spec import ModelSpec, get_vlm
from hfgcot.model.vlm import GenerationSettings, Request

pytestmark = pytest.mark.model

SIZES = [(64, 64), (100, 50), (300, 200), (40, 120), (224, 224), (57, 91), (500, 30), (80, 80)]


def test_tiny_model_loads_as_stock_processor(tiny_vlm_path):
    processor = AutoProcessor.from_pretrained(tiny_vlm_path)
    assert isinstance(processor, Qwen2_5_VLProcessor)
    text = processor.apply_chat_template(
        Request(random_image(32, 32), "hi").messages(), tokenize=False, add_generation_prompt=True
    )
    assert "<|vision_start|><|image_pad|><|vision_end|>hi<|im_end|>" in text
    assert text.endswith("<|im_start|>assistant\n")


def test_load_vlm_facts(tiny_vlm, tiny_vlm_path):
    assert tiny_vlm.family == "qwen2_5_vl"
    assert tiny_vlm.processor.tokenizer.padding_side == "left"
    assert tiny_vlm.model.config._attn_implementation == "sdpa"
    assert tiny_vlm.identity()["revision"].startswith("local:")
    # cached per process: the same object comes back
    assert load_vlm(tiny_vlm_path) is tiny_vlm


def test_min_max_pixels_reach_the_processor(tiny_vlm_path):
    vlm = get_vlm(ModelSpec(model=tiny_vlm_path, min_pixels=28 * 28, max_pixels=28 * 28 * 16))
    assert (vlm.min_pixels, vlm.max_pixels) == (28 * 28, 28 * 28 * 16)
    [frame] = vlm.frames([random_image(300, 200)])
    assert frame == Frame.for_image(300, 200, min_pixels=28 * 28, max_pixels=28 * 28 * 16)


def test_frames_match_processor_grid(tiny_vlm):
    images = [random_image(w, h, seed=i) for i, (w, h) in enumerate(SIZES)]
    frames = tiny_vlm.frames(images)
    for (w, h), frame in zip(SIZES, frames, strict=True):
        expected = Frame.for_image(
            w, h, min_pixels=tiny_vlm.min_pixels, max_pixels=tiny_vlm.max_pixels
        )
        assert frame == expected


def test_batched_greedy_equals_one_by_one(tiny_vlm):
    images = [random_image(w, h, seed=i) for i, (w, h) in enumerate(SIZES)]
    prompts = [f"Describe image {i}" + " in detail" * (i % 3) for i in range(len(SIZES))]
    requests = [Request(im, p) for im, p in zip(images, prompts, strict=True)]
    settings = GenerationSettings(max_new_tokens=12)
    batched = tiny_vlm.generate(requests, settings, batch_size=8)
    single = [tiny_vlm.generate([r], settings, batch_size=1)[0] for r in requests]
    assert [b.text for b in batched] == [s.text for s in single]
    assert [b.frame for b in batched] == [s.frame for s in single]
    assert any(b.text for b in batched)


def test_text_only_and_mixed_requests(tiny_vlm):
    requests = [Request(None, "Hello"), Request(random_image(60, 60), "Hi"), Request(None, "Yo")]
    out = tiny_vlm.generate(requests, GenerationSettings(max_new_tokens=4), batch_size=3)
    assert [o.frame is None for o in out] == [True, False, True]
    assert all(o.error is None for o in out)


def test_failing_request_is_isolated(tiny_vlm):
    """A request the processor rejects costs only itself: the rest of the batch still runs."""
    bad = Request(random_image(64, 64), "x")
    bad.image = "not an image"
    good = Request(random_image(64, 64), "Describe")
    out = tiny_vlm.generate([good, bad, good], GenerationSettings(max_new_tokens=4), batch_size=3)
    assert out[1].error and not out[1].text
    assert out[0].error is None and out[2].error is None
    assert out[0].text == out[2].text


def test_generation_settings_validate():
    with pytest.raises(ValueError):
        GenerationSettings(max_new_tokens=0)
    with pytest.raises(ValueError):
        GenerationSettings(do_sample=True, temperature=0)


def test_vision_reuse_is_exact_and_encodes_each_image_once(tiny_vlm):
    images = [random_image(w, h, seed=i) for i, (w, h) in enumerate([(300, 200), (64, 64)])]
    requests = [Request(im, f'Locate every "thing {k}".') for im in images for k in range(3)]
    settings = GenerationSettings(max_new_tokens=10)
    try:
        tiny_vlm.reuse_vision, tiny_vlm.vision_patches = False, 0
        plain = tiny_vlm.generate(requests, settings, batch_size=6)
        plain_patches = tiny_vlm.vision_patches
        tiny_vlm.reuse_vision, tiny_vlm.vision_patches = True, 0
        reused = tiny_vlm.generate(requests, settings, batch_size=6)
        reused_patches = tiny_vlm.vision_patches
    finally:
        tiny_vlm.reuse_vision = True
    assert [r.text for r in reused] == [p.text for p in plain]
    assert [r.frame for r in reused] == [p.frame for p in plain]
    unique = sum(f.model_width * f.model_height // 14**2 for f in tiny_vlm.frames(images))
    assert reused_patches == unique and plain_patches == 3 * unique


def test_length_sorting_keeps_caller_order(tiny_vlm):
    images = [random_image(40 + 60 * (i % 4), 50, seed=i) for i in range(7)]
    requests = [Request(im, "Describe" + " this" * (7 - i)) for i, im in enumerate(images)]
    settings = GenerationSettings(max_new_tokens=6)
    unsorted = tiny_vlm.generate(requests, settings, batch_size=3, sort_by_length=False)
    sorted_ = tiny_vlm.generate(requests, settings, batch_size=3, sort_by_length=True)
    assert [s.text for s in sorted_] == [u.text for u in unsorted]
    assert [s.frame.width for s in sorted_] == [im.width for im in images]


def test_load_vlm_rejects_min_pixels_above_max_pixels():
    with pytest.raises(ValueError, match="min_pixels"):
        ModelSpec(min_pixels=20_000_000, max_pixels=3136)


def test_a_dtype_torch_does_not_name_is_refused_when_the_spec_is_built():
    with pytest.raises(ValueError, match=r"dtype must be one of \('auto', 'bfloat16'"):
        ModelSpec(dtype="float17")
    assert ModelSpec(dtype="float16").dtype == "float16"


def test_missing_local_model_folder_is_named(tmp_path):
    missing = str(tmp_path / "no-such-model")
    with pytest.raises(FileNotFoundError, match="model folder not found: " + missing):
        load_vlm(missing, device="cpu")


def test_default_max_batch_tokens_on_cuda_comes_from_the_free_memory_measured_once(
    tiny_vlm, monkeypatch
):
    """The CUDA branch on the CPU: free memory plus the allocator's cached blocks, read once,
    divided by the model config's bytes per token; no limit off CUDA."""
    import torch

    from hfgcot.model.memory import budget_tokens, token_cost

    assert tiny_vlm.default_max_batch_tokens(8, 512) is None  # CPU: no limit
    asked: list = []

    def mem_get_info(device=None):
        asked.append(device)
        return 70 * 10**9, 80 * 10**9

    monkeypatch.setattr(torch.cuda, "mem_get_info", mem_get_info)
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda device=None: 3 * 10**9)
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda device=None: 1 * 10**9)
    monkeypatch.setattr(tiny_vlm, "device", "cuda:1")
    tiny_vlm.reset_limits()
    try:
        cost = token_cost(tiny_vlm.model.config, tiny_vlm.model.dtype.itemsize)
        expected = budget_tokens(72 * 10**9, cost, batch_size=8, max_new_tokens=512)
        assert tiny_vlm.default_max_batch_tokens(8, 512) == expected
        assert tiny_vlm.batch_limit(8, None, 512).tokens == expected
        assert tiny_vlm.batch_limit(8, 100, 512).tokens == 100  # a given limit wins
        assert tiny_vlm.default_max_batch_tokens(32, 64) == budget_tokens(
            72 * 10**9, cost, batch_size=32, max_new_tokens=64
        )
        assert asked == ["cuda:1"]  # measured once, on the model's device
        tiny_vlm.reset_limits()
        monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (10**9, 80 * 10**9))
        assert tiny_vlm.default_max_batch_tokens(8, 512) == budget_tokens(
            3 * 10**9, cost, batch_size=8, max_new_tokens=512
        )
    finally:
        tiny_vlm.reset_limits()
