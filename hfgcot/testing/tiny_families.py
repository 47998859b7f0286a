"""What a tiny model of each Qwen-VL family is made of: config, model and processor classes.

Used by :func:`hfgcot.testing.tiny.build_tiny_vlm`. The vision geometry (patch and merge size)
comes from the family table (:mod:`hfgcot.geometry.families`); the rest is the smallest config
``transformers`` accepts for the family's stock classes (Qwen2-VL, Qwen2.5-VL, dense and MoE
Qwen3-VL), with the family's chat template: Qwen2-VL and Qwen2.5-VL add a default system turn,
Qwen3-VL does not.

    >>> tiny_pixels("qwen3_vl")
    {'min_pixels': 4096, 'max_pixels': 65536}
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hfgcot.geometry.families import get_family

__all__ = [
    "CHAT_TEMPLATE",
    "QWEN3_CHAT_TEMPLATE",
    "SPECIAL_TOKENS",
    "TinyClasses",
    "tiny_classes",
    "tiny_config",
    "tiny_pixels",
]

SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
]
"""Qwen's special tokens (the tiny tokenizer gets all of them; ids differ from the real ones)."""

_DEFAULT_SYSTEM = (
    "{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "{% endif %}"
)

CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}"
    "{% for message in messages %}" + _DEFAULT_SYSTEM + "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}"
    "{% endif %}{% endfor %}<|im_end|>\n{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
"""Qwen2-VL / Qwen2.5-VL style: a default system turn, images and videos as vision placeholders."""

QWEN3_CHAT_TEMPLATE = CHAT_TEMPLATE.replace(_DEFAULT_SYSTEM, "")
"""Qwen3-VL style: the same turns, but no system turn unless the messages bring one."""


@dataclass(frozen=True)
class TinyClasses:
    """The transformers classes of a family's stock model and processor, by name."""

    config: str
    model: str
    processor: str
    video_processor: str
    chat_template: str
    image_mean_std: float | None = None  # Qwen3-VL normalises with 0.5 / 0.5; None: CLIP's


def tiny_classes(family: str, *, moe: bool = False) -> TinyClasses:
    """The stock classes of ``family`` (``moe=True``: the Qwen3-VL mixture-of-experts model).

    >>> tiny_classes("qwen2_vl").model
    'Qwen2VLForConditionalGeneration'
    """
    name = get_family(family).name
    if moe and name != "qwen3_vl":
        raise ValueError(f"a mixture-of-experts variant exists for qwen3_vl only, not {name}")
    if name == "qwen2_vl":
        return TinyClasses(
            "Qwen2VLConfig",
            "Qwen2VLForConditionalGeneration",
            "Qwen2VLProcessor",
            "Qwen2VLVideoProcessor",
            CHAT_TEMPLATE,
        )
    if name == "qwen2_5_vl":
        return TinyClasses(
            "Qwen2_5_VLConfig",
            "Qwen2_5_VLForConditionalGeneration",
            "Qwen2_5_VLProcessor",
            "Qwen2VLVideoProcessor",
            CHAT_TEMPLATE,
        )
    if name == "qwen3_vl":
        prefix = "Qwen3VLMoe" if moe else "Qwen3VL"
        return TinyClasses(
            f"{prefix}Config",
            f"{prefix}ForConditionalGeneration",
            "Qwen3VLProcessor",
            "Qwen3VLVideoProcessor",
            QWEN3_CHAT_TEMPLATE,
            image_mean_std=0.5,
        )
    raise ValueError(f"no tiny model recipe for family {name!r}")


def tiny_pixels(family: str) -> dict[str, int]:
    """Resize limits of a tiny model: 2x2 to 8x8 merged patches of the family's factor."""
    factor = get_family(family).factor
    return {"min_pixels": factor * factor * 4, "max_pixels": factor * factor * 64}


def _text_config(family: str, ids: dict[str, int], vocab: int, hidden: int, moe: bool) -> dict:
    heads = 4
    half_head = hidden // heads // 2
    third = half_head * 3 // 8
    text: dict[str, Any] = {
        "vocab_size": vocab,
        "hidden_size": hidden,
        "intermediate_size": hidden * 2,
        "num_hidden_layers": 2,
        "num_attention_heads": heads,
        "num_key_value_heads": 2,
        "max_position_embeddings": 4096,
        "rope_parameters": {
            "rope_type": "default",
            "rope_theta": 10000.0,
            "mrope_section": [half_head - 2 * third, third, third],
        },
        "bos_token_id": ids["<|endoftext|>"],
        "eos_token_id": ids["<|im_end|>"],
        "pad_token_id": ids["<|endoftext|>"],
        "tie_word_embeddings": True,
    }
    if get_family(family).name == "qwen3_vl":
        text["head_dim"] = hidden // heads
        text["rope_parameters"]["mrope_interleaved"] = True
    if moe:
        text.update(num_experts=4, num_experts_per_tok=2, moe_intermediate_size=hidden)
    return text


def _vision_config(family: str, hidden: int, vision_hidden: int) -> dict:
    row = get_family(family)
    geometry = {
        "depth": 2,
        "num_heads": 2,
        "patch_size": row.patch_size,
        "spatial_merge_size": row.merge_size,
        "temporal_patch_size": 2,
    }
    if row.name == "qwen2_vl":  # hidden_size is the language model's width there
        return {**geometry, "embed_dim": vision_hidden, "hidden_size": hidden, "mlp_ratio": 2}
    sizes = {
        "hidden_size": vision_hidden,
        "intermediate_size": vision_hidden * 2,
        "out_hidden_size": hidden,
    }
    if row.name == "qwen2_5_vl":
        return {**geometry, **sizes, "window_size": 112, "fullatt_block_indexes": [1]}
    return {**geometry, **sizes, "num_position_embeddings": 64, "deepstack_visual_indexes": [1]}


def tiny_config(
    tokenizer: Any,
    family: str = "qwen2_5_vl",
    *,
    hidden_size: int = 64,
    vision_hidden: int = 32,
    moe: bool = False,
) -> Any:
    """A tiny config of ``family``'s stock model whose special token ids match ``tokenizer``."""
    import transformers

    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    config_class = getattr(transformers, tiny_classes(family, moe=moe).config)
    return config_class(
        text_config=_text_config(family, ids, len(tokenizer), hidden_size, moe),
        vision_config=_vision_config(family, hidden_size, vision_hidden),
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=True,
    )
