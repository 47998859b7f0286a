"""Teacher-forced scoring helpers: which tokens are the continuation, and their log-probs.

Used by :meth:`hfgcot.model.vlm.VLM.continuation_logprobs`; no model here, only a tokenizer and
the tensors of one forward pass.

    >>> class Tok:                                   # one token per character
    ...     def __call__(self, texts, add_special_tokens=False):
    ...         return {"input_ids": [[ord(c) for c in t] for t in texts]}
    >>> continuation_lengths(Tok(), ["ab", "x"], ["cd", ""])
    [2, 0]
"""

from __future__ import annotations

from typing import Any

from hfgcot.model.requests import ContinuationScore


def continuation_lengths(
    tokenizer: Any, contexts: list[str], continuations: list[str]
) -> list[int]:
    """How many trailing tokens of ``context + continuation`` belong to the continuation.

    The longest common token prefix of ``context`` and ``context + continuation`` is the
    context; the rest is the continuation. Where BPE merges a token across the boundary, that
    token counts as continuation (it is what the model has to write). Placeholders such as
    ``<|image_pad|>`` are single special tokens here; the processor expands them before the
    assistant turn only, so the count of trailing tokens is the same after expansion.
    """
    full = tokenizer(
        [c + x for c, x in zip(contexts, continuations, strict=True)], add_special_tokens=False
    )
    head = tokenizer(contexts, add_special_tokens=False)
    lengths = []
    for a, b in zip(head["input_ids"], full["input_ids"], strict=True):
        common = 0
        while common < min(len(a), len(b)) and a[common] == b[common]:
            common += 1
        lengths.append(len(b) - common)
    return lengths


def gather_scores(ids: Any, logp: Any, lengths: list[int], keep: int) -> list[ContinuationScore]:
    """The log-prob of each row's last ``lengths[b]`` tokens, from left-padded ``ids``.

    ``logp`` holds log-softmaxed logits of the last ``keep`` positions of each row (``keep`` >
    every length): with left padding every row ends at the last position, and the token at
    position ``t`` is predicted at ``t - 1``.
    """
    width = ids.shape[1]
    out = []
    for b, n in enumerate(lengths):
        if n == 0:
            out.append(ContinuationScore(()))
            continue
        targets = ids[b, width - n :]
        rows = logp[b, keep - n - 1 : keep - 1]
        lp = rows.gather(-1, targets[:, None]).squeeze(-1)
        out.append(ContinuationScore(tuple(lp.tolist()), tuple(targets.tolist())))
    return out


__all__ = ["continuation_lengths", "gather_scores"]
