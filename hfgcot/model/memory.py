"""How many prompt tokens fit in one forward pass: the default ``max_batch_tokens`` on CUDA.

Pure arithmetic over a model config (no torch): :func:`token_cost` estimates the bytes one
prompt token needs (its KV-cache entries in every layer plus the activations of a layer while
the prompt is processed), :func:`budget_tokens` divides the free device memory by it. The rule is
written out in ``docs/batching.md``.

    >>> from types import SimpleNamespace as NS
    >>> text = NS(hidden_size=2048, intermediate_size=11008, num_hidden_layers=36,
    ...           num_attention_heads=16, num_key_value_heads=2)
    >>> vision = NS(hidden_size=1280, intermediate_size=3420, spatial_merge_size=2)
    >>> cost = token_cost(NS(text_config=text, vision_config=vision), dtype_bytes=2)
    >>> cost.kv, cost.activations
    (36864, 234144)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Transient activations of one layer while a prompt token is processed, in units of the layer's
# widths: residual, normed input, query, attention output, projection (5 x hidden, rounded up to
# 6 for K/V and rotary buffers) and the MLP's gate, up and their product (3 x intermediate).
HIDDEN_FACTOR = 6
INTERMEDIATE_FACTOR = 3
# Share of the free memory given to batches; the rest absorbs allocator fragmentation and the
# buffers the estimate leaves out.
MEMORY_FRACTION = 0.8


@dataclass(frozen=True)
class TokenCost:
    """Bytes per prompt token: ``kv`` (cache entries, all layers; also per generated token) and
    ``activations`` (one layer's transient tensors, text and vision share).

    >>> TokenCost(kv=10, activations=30).per_prompt_token
    40
    """

    kv: int
    activations: int

    @property
    def per_prompt_token(self) -> int:
        return self.kv + self.activations


def _layer_activations(hidden: int, intermediate: int, dtype_bytes: int) -> int:
    return dtype_bytes * (HIDDEN_FACTOR * hidden + INTERMEDIATE_FACTOR * intermediate)


def _vision_widths(vision: Any) -> tuple[int, int]:
    """(hidden, MLP width) of a vision tower: Qwen2.5-VL / Qwen3-VL names, or Qwen2-VL's."""
    if hasattr(vision, "embed_dim"):  # Qwen2-VL: embed_dim and mlp_ratio
        hidden = int(vision.embed_dim)
        return hidden, int(hidden * float(getattr(vision, "mlp_ratio", 4)))
    return int(vision.hidden_size), int(vision.intermediate_size)


def token_cost(config: Any, dtype_bytes: int) -> TokenCost:
    """The bytes a prompt token needs in a model with ``config`` (weights of ``dtype_bytes``).

    - KV cache: ``2 (K and V) x layers x KV heads x head size x dtype bytes``, kept for the
      whole generation (and needed again for every generated token).
    - Text activations: one decoder layer at a time, ``(6 x hidden + 3 x intermediate) x dtype
      bytes``.
    - Vision activations: an image token is ``merge_size**2`` patches of the vision tower, each
      ``(6 x hidden + 3 x intermediate) x dtype bytes`` of its widths; counted for every token
      (an upper bound for text tokens, which do not pass the vision tower).

    Attention is assumed memory-efficient (flash-attention or ``sdpa``'s fused kernels: linear in
    the sequence length); quadratic attention buffers are not counted.
    """
    text = getattr(config, "text_config", config)
    heads = int(text.num_attention_heads)
    head_dim = int(getattr(text, "head_dim", None) or text.hidden_size // heads)
    kv_heads = int(getattr(text, "num_key_value_heads", None) or heads)
    kv = 2 * int(text.num_hidden_layers) * kv_heads * head_dim * dtype_bytes
    activations = _layer_activations(
        int(text.hidden_size), int(text.intermediate_size), dtype_bytes
    )
    vision = getattr(config, "vision_config", None)
    if vision is not None:
        merge = int(getattr(vision, "spatial_merge_size", 2))
        activations += merge**2 * _layer_activations(*_vision_widths(vision), dtype_bytes)
    return TokenCost(kv=kv, activations=activations)


def budget_tokens(
    free_bytes: int,
    cost: TokenCost,
    *,
    batch_size: int,
    max_new_tokens: int,
    fraction: float = MEMORY_FRACTION,
) -> int:
    """Prompt tokens per forward pass that fit in ``fraction`` of ``free_bytes``.

    The generated tokens' KV-cache entries (``batch_size x max_new_tokens``) are set aside
    first; what is left is divided by :attr:`TokenCost.per_prompt_token`. At least 1 (a request
    above the limit runs alone).

    >>> budget_tokens(10_000, TokenCost(kv=10, activations=30), batch_size=2, max_new_tokens=100)
    150
    """
    usable = free_bytes * fraction - batch_size * max_new_tokens * cost.kv
    return max(1, int(usable // cost.per_prompt_token))


__all__ = ["MEMORY_FRACTION", "TokenCost", "budget_tokens", "token_cost"]
