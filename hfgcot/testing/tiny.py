"""Tiny offline Qwen2.5-VL models for tests, notebooks and the demo.

The Hugging Face Hub is not needed: :func:`build_tiny_vlm` trains a small byte-level BPE tokenizer
locally (with Qwen's special tokens and a Qwen-style chat template), builds a randomly initialised
``Qwen2_5_VLForConditionalGeneration`` with tiny text and vision towers (patch 14, merge 2, temporal
patch 2, like the real model) and saves everything with ``save_pretrained``. The folder loads through
the ordinary public path::

    >>> path = build_tiny_vlm("/tmp/tiny-qwen")            # doctest: +SKIP
    >>> vlm = load_vlm(path)                                 # doctest: +SKIP
    >>> AutoProcessor.from_pretrained(path)                  # stock Qwen2_5_VLProcessor  # doctest: +SKIP

The weights are random, so generations are nonsense; use :class:`ScriptedVLM` to test parsing and
coordinates end to end with the real processor but chosen texts.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from hfgcot import prompts

logger = logging.getLogger(__name__)

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

# A Qwen-style chat template: a default system turn, images and videos as vision placeholders.
CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}"
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
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

# Tiny sizes: about 0.5M parameters. Patch 14, merge 2 and temporal patch 2 as in Qwen2.5-VL.
TINY_PIXELS = {"min_pixels": 28 * 28 * 4, "max_pixels": 28 * 28 * 64}


def _corpus() -> list[str]:
    """Text the tiny tokenizer is trained on: the library's prompts plus common words and digits."""
    words = (
        "the a an of in on at to and or is are was were it this that there with for by from as "
        "red green blue yellow black white orange purple circle square triangle shape object "
        "left right top bottom above below next near image picture region question answer "
        "step reasoning keywords detect describe position details caption yes no bbox_2d label "
        "cat dog car tree person ball table chair sky grass road house window door"
    ).split()
    lines = [" ".join(words[i : i + 8]) for i in range(0, len(words), 8)]
    lines += [prompts.GCOT_PROMPT, prompts.GROUNDING_PROMPT]
    lines += [
        json.dumps({"bbox_2d": [i, i + 7, i * 3, i * 5 + 1], "label": "x"}) for i in range(50)
    ]
    lines += ["Step 1: ... Step 2: ... Answer: yes. Keywords: a, b, c", "0123456789 ,.;:!?()[]{}"]
    return lines * 4


def prompt_phrases(min_chars: int = 20) -> list[str]:
    """The fixed text of the library's prompts, one piece per stretch between placeholders.

    Every prompt template (:func:`hfgcot.prompts.prompt_fingerprint_data`) is cut at its
    ``{placeholders}``; pieces of at least ``min_chars`` characters (outer whitespace stripped)
    are kept, longest first, plus the default system turn of :data:`CHAT_TEMPLATE`. Given to
    :func:`build_tiny_tokenizer` as ``phrases``, each becomes one token, so a model trained from
    scratch does not spend most of its compute reading the same instructions again.

    >>> 'Locate every "' in prompt_phrases(10)
    True
    >>> all(len(p) >= 20 for p in prompt_phrases())
    True
    """
    import string

    cut = "\x00"
    pieces = {"You are a helpful assistant."}
    for name, template in prompts.prompt_fingerprint_data().items():
        if name == "version":
            continue
        fields = {f for _, f, _, _ in string.Formatter().parse(template) if f}
        for piece in template.format(**dict.fromkeys(fields, cut)).split(cut):
            if len(piece.strip()) >= min_chars:
                pieces.add(piece.strip())
    return sorted(pieces, key=lambda p: (-len(p), p))


def build_tiny_tokenizer(
    vocab_size: int = 600,
    texts: Sequence[str] | None = None,
    *,
    number_tokens: int = 0,
    phrases: Sequence[str] = (),
) -> Any:
    """A byte-level BPE ``Qwen2Tokenizer`` trained locally, with Qwen's special tokens.

    ``texts`` is the training corpus (default: a small built-in one covering the library's
    prompts and output formats). Like Qwen's, the tokenizer writes numbers one digit per token;
    ``number_tokens=N`` adds one token for each integer ``0 .. N-1`` instead (matched longest
    first, so ``"191"`` is one token and ``"1234"`` is ``"123" + "4"``). A model trained from
    scratch then writes a box coordinate as one choice among ordered values, not as a digit
    string whose length depends on the value; the text, and so everything that parses it, is
    unchanged. ``phrases`` (e.g. :func:`prompt_phrases`) become one token each, wherever they
    occur (leftmost, longest first); the text is unchanged too.
    """
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import Qwen2Tokenizer

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_corpus() if texts is None else texts, trainer=trainer)
    model_state = json.loads(tok.to_str())["model"]
    merges = [
        tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model_state["merges"]
    ]
    tokenizer = Qwen2Tokenizer(vocab=model_state["vocab"], merges=merges)
    tokenizer.add_special_tokens({"additional_special_tokens": SPECIAL_TOKENS[1:]})
    tokenizer.eos_token = "<|im_end|>"
    tokenizer.pad_token = "<|endoftext|>"
    if number_tokens:
        tokenizer.add_tokens([str(n) for n in range(number_tokens)])
    if phrases:
        tokenizer.add_tokens(list(dict.fromkeys(phrases)))
    return tokenizer


def number_token_ids(tokenizer: Any, limit: int = 10_000) -> dict[int, int]:
    """``{token id: value}`` for the tokens that are a whole number below ``limit`` (``"0"``,
    ``"17"``, ...): the digits of any tokenizer, and every number of one built with
    ``build_tiny_tokenizer(number_tokens=N)``."""
    found = {}
    for n in range(limit):
        ids = tokenizer.encode(str(n), add_special_tokens=False)
        if len(ids) == 1:
            found[ids[0]] = n
    return found


def tiny_config(tokenizer: Any, *, hidden_size: int = 64, vision_hidden: int = 32) -> Any:
    """A tiny ``Qwen2_5_VLConfig`` whose special token ids match ``tokenizer``."""
    from transformers import Qwen2_5_VLConfig

    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    heads = 4
    half_head = hidden_size // heads // 2
    mrope = [half_head - 2 * (half_head * 3 // 8), half_head * 3 // 8, half_head * 3 // 8]
    return Qwen2_5_VLConfig(
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": hidden_size,
            "intermediate_size": hidden_size * 2,
            "num_hidden_layers": 2,
            "num_attention_heads": heads,
            "num_key_value_heads": 2,
            "max_position_embeddings": 4096,
            "rope_parameters": {
                "rope_type": "default",
                "rope_theta": 10000.0,
                "mrope_section": mrope,
            },
            "bos_token_id": ids["<|endoftext|>"],
            "eos_token_id": ids["<|im_end|>"],
            "pad_token_id": ids["<|endoftext|>"],
            "tie_word_embeddings": True,
        },
        vision_config={
            "depth": 2,
            "hidden_size": vision_hidden,
            "intermediate_size": vision_hidden * 2,
            "num_heads": 2,
            "out_hidden_size": hidden_size,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "window_size": 112,
            "fullatt_block_indexes": [1],
        },
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=True,
    )


def build_tiny_vlm(
    path: str | os.PathLike[str],
    *,
    seed: int = 0,
    min_pixels: int = TINY_PIXELS["min_pixels"],
    max_pixels: int = TINY_PIXELS["max_pixels"],
    hidden_size: int = 64,
    vision_hidden: int = 32,
    init_std: float = 0.5,
) -> str:
    """Build a tiny random Qwen2.5-VL, save it to ``path`` and return the path as a string.

    Deterministic for a ``seed``. ``init_std`` is larger than a real model's so that the random
    logits are well separated and greedy decoding does not hinge on rounding noise.

    Example:
        >>> path = build_tiny_vlm("/tmp/tiny-qwen", seed=0)   # doctest: +SKIP
    """
    import torch
    from transformers import (
        Qwen2_5_VLForConditionalGeneration,
        Qwen2_5_VLProcessor,
        Qwen2VLImageProcessor,
        Qwen2VLVideoProcessor,
    )

    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tiny_tokenizer()
    config = tiny_config(tokenizer, hidden_size=hidden_size, vision_hidden=vision_hidden)
    config.text_config.initializer_range = init_std
    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration(config).eval()
    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.dim() >= 2 and "visual" not in name:
                param.normal_(0.0, init_std / param.shape[-1] ** 0.5 * 4)
    model.generation_config.eos_token_id = [config.text_config.eos_token_id]
    model.generation_config.pad_token_id = config.text_config.pad_token_id
    model.generation_config.do_sample = False
    model.save_pretrained(out)
    image_processor = Qwen2VLImageProcessor(min_pixels=min_pixels, max_pixels=max_pixels)
    processor = Qwen2_5_VLProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=Qwen2VLVideoProcessor(),
        chat_template=CHAT_TEMPLATE,
    )
    processor.save_pretrained(out)
    logger.info("built tiny Qwen2.5-VL at %s", out)
    return str(out)


def default_tiny_path() -> Path:
    """Where the demo and tests keep the tiny model: ``$HFGCOT_CACHE`` or ``~/.cache/hfgcot``."""
    root = Path(os.environ.get("HFGCOT_CACHE", Path.home() / ".cache" / "hfgcot"))
    return root / "tiny-qwen2_5_vl"


def get_tiny_vlm_path(path: str | os.PathLike[str] | None = None, *, seed: int = 0) -> str:
    """Build the tiny model once (at ``path`` or :func:`default_tiny_path`) and return its folder."""
    target = Path(path) if path is not None else default_tiny_path()
    if not (target / "config.json").exists() or not (target / "processor_config.json").exists():
        build_tiny_vlm(target, seed=seed)
    return str(target)


Script = Callable[[Any, str], str]


class ScriptedVLM:
    """A VLM whose texts come from a function, with the real processor's frames.

    Wraps a loaded :class:`hfgcot.model.vlm.VLM`: every request still goes through the real processor so
    the :class:`~hfgcot.geometry.frames.Frame` of each image is exactly what the model would see, but the
    text of each answer is ``script(request, prompt_text)``. Used to test parsing and coordinates
    end to end where a random tiny model can only write nonsense.

    With ``budget=True`` an answer is held to the call's ``max_new_tokens`` like a real engine's:
    a scripted text of that many tokens or more (real tokenizer) is cut there and reported
    ``truncated`` (no end-of-sequence token fitted).

    Example:
        >>> fake = ScriptedVLM(load_vlm(path), lambda req, text: '{"bbox_2d": [0, 0, 10, 10]}')  # doctest: +SKIP
    """

    def __init__(self, vlm: Any, script: Script, *, budget: bool = False) -> None:
        self._vlm = vlm
        self.script = script
        self.budget = budget
        self.calls: list[str] = []
        # A spec of its own: its outputs must never share a cache fingerprint with the real model.
        self.spec = replace(vlm.spec, model=f"{vlm.spec.model}#scripted-{uuid.uuid4().hex[:12]}")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._vlm, name)

    def generate(self, requests: Sequence[Any], settings: Any = None, **kwargs: Any) -> list[Any]:
        from hfgcot.model.vlm import Generation

        frames = self._vlm.frames([r.image for r in requests])
        out = []
        for request, frame in zip(requests, frames, strict=True):
            text = request.prompt_text()
            self.calls.append(text)
            answer, cut = self._within_budget(self.script(request, text), settings)
            out.append(Generation(text=answer, frame=frame, truncated=cut))
        return out

    def _within_budget(self, text: str, settings: Any) -> tuple[str, bool]:
        """``(text, truncated)``: cut at ``settings.max_new_tokens`` tokens when ``budget``."""
        if not self.budget or settings is None:
            return text, False
        tokenizer = self._vlm.processor.tokenizer
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        if len(ids) < settings.max_new_tokens:
            return text, False
        return tokenizer.decode(ids[: settings.max_new_tokens], skip_special_tokens=True), True
