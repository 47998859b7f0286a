"""The engine around a model with random weights: the real Qwen2.5-VL-3B shape on CUDA (bf16),
or the tiny test model on the CPU; and a recorder of ``model.generate`` calls.

No download: the configuration is written here, the weights are random, the tokenizer is the
tiny offline one (its ids lie inside the real vocabulary).
"""

from __future__ import annotations

HUB_MAX_PIXELS = 12_845_056  # the Hub preprocessor's limit: a 3584x3584 image is 16,384 tokens


def qwen25vl_3b_config(tokenizer):
    from transformers import Qwen2_5_VLConfig

    from hfgcot.testing.tiny import SPECIAL_TOKENS

    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    return Qwen2_5_VLConfig(
        text_config={
            "vocab_size": 151936,
            "hidden_size": 2048,
            "intermediate_size": 11008,
            "num_hidden_layers": 36,
            "num_attention_heads": 16,
            "num_key_value_heads": 2,
            "max_position_embeddings": 128000,
            "rope_parameters": {
                "rope_type": "default",
                "rope_theta": 1e6,
                "mrope_section": [16, 24, 24],
            },
            "eos_token_id": ids["<|im_end|>"],
            "pad_token_id": ids["<|endoftext|>"],
            "tie_word_embeddings": True,
        },
        vision_config={
            "depth": 32,
            "hidden_size": 1280,
            "intermediate_size": 3420,
            "num_heads": 16,
            "out_hidden_size": 2048,
            "fullatt_block_indexes": [7, 15, 23, 31],
            "window_size": 112,
        },
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=True,
    )


def build_vlm(tiny: bool):
    """The engine around a random model: Qwen2.5-VL-3B on CUDA in bf16, or the tiny one on CPU."""
    import torch
    from transformers import (
        Qwen2_5_VLForConditionalGeneration,
        Qwen2_5_VLProcessor,
        Qwen2VLImageProcessor,
        Qwen2VLVideoProcessor,
    )

    from hfgcot.model.spec import ModelSpec, default_attn_implementation, register_vlm
    from hfgcot.model.vlm import VLM
    from hfgcot.testing.tiny import CHAT_TEMPLATE, TINY_PIXELS, build_tiny_tokenizer, tiny_config

    device, dtype = ("cpu", torch.float32) if tiny else ("cuda", torch.bfloat16)
    tokenizer = build_tiny_tokenizer()
    config = tiny_config(tokenizer) if tiny else qwen25vl_3b_config(tokenizer)
    config._attn_implementation = default_attn_implementation(device)
    torch.manual_seed(0)
    torch.set_default_dtype(dtype)
    with torch.device(device):
        model = Qwen2_5_VLForConditionalGeneration(config).eval()
    torch.set_default_dtype(torch.float32)
    pixels = TINY_PIXELS if tiny else {"min_pixels": 3136, "max_pixels": HUB_MAX_PIXELS}
    processor = Qwen2_5_VLProcessor(
        image_processor=Qwen2VLImageProcessor(**pixels),
        tokenizer=tokenizer,
        video_processor=Qwen2VLVideoProcessor(),
        chat_template=CHAT_TEMPLATE,
    )
    name = "tiny" if tiny else "Qwen2.5-VL-3B-config"
    spec = ModelSpec(model=f"random-weights:{name}", dtype=str(dtype).split(".")[-1], device=device)
    vlm = VLM(model, processor, spec, device)
    register_vlm(vlm)
    return vlm, sum(p.numel() for p in model.parameters())


class Passes:
    """Wraps ``model.generate``: every call decodes its full budget and is recorded."""

    def __init__(self, model) -> None:
        self.calls: list[tuple[int, int, int]] = []  # (rows, prompt positions, new tokens)
        self._generate = model.generate
        model.generate = self

    def __call__(self, *args, **kwargs):
        kwargs["min_new_tokens"] = kwargs["max_new_tokens"]
        ids = kwargs["input_ids"]
        self.calls.append((int(ids.shape[0]), int(ids.shape[1]), int(kwargs["max_new_tokens"])))
        return self._generate(*args, **kwargs)
