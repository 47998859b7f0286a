"""Tiny offline Qwen-VL models of every family for tests, notebooks and the demo.

The Hugging Face Hub is not needed: :func:`build_tiny_vlm` trains a small byte-level BPE tokenizer
locally (with Qwen's special tokens and the family's chat template), builds a randomly
initialised stock model of the family (``Qwen2VLForConditionalGeneration``,
``Qwen2_5_VLForConditionalGeneration``, ``Qwen3VLForConditionalGeneration`` or, with
``moe=True``, ``Qwen3VLMoeForConditionalGeneration``)
with tiny text and vision towers (patch and merge size from the family table: 14 x 2, or 16 x 2
for Qwen3-VL; temporal patch 2) and saves everything with ``save_pretrained``. The folder loads
through the ordinary public path::

    >>> path = build_tiny_vlm("/tmp/tiny-qwen3", family="qwen3_vl")   # doctest: +SKIP
    >>> vlm = load_vlm(path)                                            # doctest: +SKIP
    >>> AutoProcessor.from_pretrained(path)          # stock Qwen3VLProcessor  # doctest: +SKIP

The weights are random, so generations are nonsense; use :class:`ScriptedVLM` (or
:class:`GroundingScriptedVLM`, which answers as the family writes boxes) to test parsing and
coordinates end to end with the real processor but chosen texts.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hfgcot import prompts
from hfgcot.geometry.families import get_family
from hfgcot.testing.scripted import GroundingScriptedVLM, ScriptedVLM
from hfgcot.testing.tiny_families import (
    CHAT_TEMPLATE,
    SPECIAL_TOKENS,
    tiny_classes,
    tiny_config,
    tiny_pixels,
)

logger = logging.getLogger(__name__)

TINY_PIXELS = tiny_pixels("qwen2_5_vl")
"""Resize limits of the tiny Qwen2.5-VL: 2x2 to 8x8 merged patches (28 * 28 * 4 .. 28 * 28 * 64)."""


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


def build_tiny_vlm(
    path: str | os.PathLike[str],
    *,
    family: str = "qwen2_5_vl",
    seed: int = 0,
    min_pixels: int | None = None,
    max_pixels: int | None = None,
    hidden_size: int = 64,
    vision_hidden: int = 32,
    init_std: float = 0.5,
    moe: bool = False,
) -> str:
    """Build a tiny random model of ``family``, save it to ``path`` and return the path.

    Deterministic for a ``seed``. ``min_pixels``/``max_pixels`` default to 2x2 .. 8x8 merged
    patches of the family (:func:`~hfgcot.testing.tiny_families.tiny_pixels`). ``init_std`` is
    larger than a real model's so that the random logits are well separated and greedy decoding
    does not hinge on rounding noise. ``moe=True`` (Qwen3-VL only) builds the mixture-of-experts
    model (``model_type`` ``qwen3_vl_moe``, 4 experts).

    Example:
        >>> path = build_tiny_vlm("/tmp/tiny-qwen2", family="qwen2_vl", seed=0)   # doctest: +SKIP
    """
    import torch
    import transformers

    row = get_family(family)
    classes = tiny_classes(row.name, moe=moe)
    pixels = tiny_pixels(row.name)
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tiny_tokenizer()
    config = tiny_config(
        tokenizer, row.name, hidden_size=hidden_size, vision_hidden=vision_hidden, moe=moe
    )
    config.text_config.initializer_range = init_std
    torch.manual_seed(seed)
    model = getattr(transformers, classes.model)(config).eval()
    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.dim() >= 2 and "visual" not in name:
                param.normal_(0.0, init_std / param.shape[-1] ** 0.5 * 4)
    model.generation_config.eos_token_id = [config.text_config.eos_token_id]
    model.generation_config.pad_token_id = config.text_config.pad_token_id
    model.generation_config.do_sample = False
    model.save_pretrained(out)
    norm = classes.image_mean_std
    image_processor = transformers.Qwen2VLImageProcessor(
        patch_size=row.patch_size,
        merge_size=row.merge_size,
        min_pixels=pixels["min_pixels"] if min_pixels is None else min_pixels,
        max_pixels=pixels["max_pixels"] if max_pixels is None else max_pixels,
        **({"image_mean": [norm] * 3, "image_std": [norm] * 3} if norm is not None else {}),
    )
    processor = getattr(transformers, classes.processor)(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=getattr(transformers, classes.video_processor)(),
        chat_template=classes.chat_template,
    )
    processor.save_pretrained(out)
    logger.info("built tiny %s (%s) at %s", row.title, classes.model, out)
    return str(out)


def default_tiny_path(family: str = "qwen2_5_vl") -> Path:
    """Where the demo and tests keep a tiny model: ``$HFGCOT_CACHE`` or ``~/.cache/hfgcot``."""
    root = Path(os.environ.get("HFGCOT_CACHE", Path.home() / ".cache" / "hfgcot"))
    return root / f"tiny-{family}"


def get_tiny_vlm_path(
    path: str | os.PathLike[str] | None = None, *, seed: int = 0, family: str = "qwen2_5_vl"
) -> str:
    """Build a tiny model once (at ``path`` or :func:`default_tiny_path`) and return its folder."""
    target = Path(path) if path is not None else default_tiny_path(family)
    if not (target / "config.json").exists() or not (target / "processor_config.json").exists():
        build_tiny_vlm(target, seed=seed, family=family)
    return str(target)


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
    "number_token_ids",
    "prompt_phrases",
    "tiny_config",
]
