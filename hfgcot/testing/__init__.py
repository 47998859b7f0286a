"""Offline test helpers: tiny models, a scripted VLM, synthetic shape scenes and the shipped toy.

- :mod:`hfgcot.testing.tiny` - tiny tokenizer and Qwen-VL models of every family built offline.
- :mod:`hfgcot.testing.scripted` - ``ScriptedVLM`` and ``GroundingScriptedVLM`` (chosen answers,
  real frames; boxes written as the model's family writes them).
- :mod:`hfgcot.testing.shapes` - synthetic scenes with exact boxes.
- :mod:`hfgcot.testing.toy` - the shipped toy checkpoint and its scoring helpers.

    >>> from hfgcot.testing import shapes
    >>> scene = shapes.make_scene(seed=0)
    >>> len(scene.objects) > 0
    True
"""

from hfgcot.testing import shapes, toy
from hfgcot.testing.scripted import GroundingScriptedVLM, native_answer
from hfgcot.testing.tiny import (
    CHAT_TEMPLATE,
    SPECIAL_TOKENS,
    TINY_PIXELS,
    ScriptedVLM,
    build_tiny_tokenizer,
    build_tiny_vlm,
    default_tiny_path,
    get_tiny_vlm_path,
    number_token_ids,
    prompt_phrases,
    tiny_config,
)

__all__ = [
    "CHAT_TEMPLATE",
    "SPECIAL_TOKENS",
    "TINY_PIXELS",
    "GroundingScriptedVLM",
    "ScriptedVLM",
    "build_tiny_tokenizer",
    "build_tiny_vlm",
    "default_tiny_path",
    "get_tiny_vlm_path",
    "native_answer",
    "number_token_ids",
    "prompt_phrases",
    "shapes",
    "tiny_config",
    "toy",
]
