"""Teacher-forced log-probs through a server: vLLM's ``prompt_logprobs`` extension.

The OpenAI API has no log-probs of a given text; vLLM's chat completions take
``prompt_logprobs=k`` and answer with a top-level ``prompt_logprobs`` list: ``None`` for the
first prompt token, then per position a mapping ``{token id: {"logprob", "rank",
"decoded_token"}}`` holding the top ``k`` tokens and always the prompt's own token. With
``return_token_ids`` newer versions also give ``prompt_token_ids``.

To score ``continuation`` after the assistant text ``prefix`` (what
:meth:`hfgcot.model.vlm.VLM.continuation_logprobs` computes in process), the client sends the
chat with a final assistant message ``prefix + continuation`` and
``continue_final_message=True``: the server's prompt is then the chat template with the
generation prompt, ``prefix`` and ``continuation``, the text scored in process. The model's own
processor, read locally (:func:`load_template`), says how many trailing tokens are the
continuation (:func:`hfgcot.model.scoring.continuation_lengths`, the in-process rule) and which
tokens the whole prompt must have: :func:`read_scores` checks the server's prompt against them
(each run of image placeholder tokens counted once) before it reads any log-prob, so a server
with another template or tokenizer gives an error, never a silently shifted score.

    >>> payload = {"prompt_token_ids": [5, 6, 7],
    ...            "prompt_logprobs": [None, {"6": {"logprob": -0.5, "rank": 1}},
    ...                                {"7": {"logprob": -2.0, "rank": 3},
    ...                                 "9": {"logprob": -0.1, "rank": 1}}]}
    >>> read_scores(payload, expected=[5, 6, 7], length=1, image_token_id=None).logprobs
    (-2.0,)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from hfgcot.model.endpoint import EndpointError, EndpointSpec
from hfgcot.model.vlm import ContinuationScore, Request

logger = logging.getLogger(__name__)

PROMPT_LOGPROBS = "prompt_logprobs"
"""Prefix of a scoring error: the server's answer had no usable prompt log-probs."""

SCORING_BODY: dict[str, Any] = {
    "prompt_logprobs": 1,  # top-1 plus the prompt's own token (0 meant "off" in early vLLM V1)
    "return_token_ids": True,  # prompt_token_ids in the answer (ignored by older versions)
    "add_generation_prompt": False,
    "continue_final_message": True,
}
"""vLLM's extension fields of a scoring request (sent as ``extra_body``)."""


@dataclass(frozen=True)
class LocalTemplate:
    """The served model's processor read locally: chat template, tokenizer, image placeholder."""

    processor: Any

    @property
    def image_token_id(self) -> int | None:
        """The image placeholder token (``<|image_pad|>``), which the server repeats per patch."""
        token = getattr(self.processor, "image_token", None)
        return None if token is None else int(self.processor.tokenizer.convert_tokens_to_ids(token))

    def prompt_text(self, request: Request) -> str:
        """The chat template of ``request`` with the generation prompt, as in process."""
        return str(
            self.processor.apply_chat_template(
                request.messages(), tokenize=False, add_generation_prompt=True
            )
        )

    def token_ids(self, text: str) -> list[int]:
        return list(self.processor.tokenizer(text, add_special_tokens=False)["input_ids"])


def load_template(spec: EndpointSpec) -> LocalTemplate:
    """The processor of ``spec.model`` from a local folder or the Hub cache (never the network).

    Raises:
        EndpointError: when it cannot be read (then the continuation's tokens cannot be found).
    """
    from transformers import AutoProcessor

    try:
        processor = AutoProcessor.from_pretrained(
            spec.model, revision=spec.revision, local_files_only=True
        )
    except Exception as exc:  # noqa: BLE001 - any failure means "not readable here"
        raise EndpointError(
            f"scoring text through {spec.base_url} needs the tokenizer and chat template of "
            f"{spec.model!r} on this machine (a local folder or the Hub cache) to find the "
            f"scored tokens; it could not be read ({type(exc).__name__})"
        ) from None
    return LocalTemplate(processor)


def _prompt_token(entry: Any) -> int | None:
    """The prompt's own token at one position of ``prompt_logprobs``: the entry of largest rank.

    With ``prompt_logprobs=1`` a position holds the top-1 token (rank 1) and, when it differs, the
    prompt's token (rank > 1); one entry means both are the same token.
    """
    if not isinstance(entry, dict) or not entry:
        return None
    token, _ = max(entry.items(), key=lambda kv: (kv[1] or {}).get("rank") or 0)
    return int(token)


def _collapse(ids: list[int | None], placeholder: int | None) -> list[int | None]:
    """``ids`` with each run of ``placeholder`` tokens kept as one token."""
    out: list[int | None] = []
    for t in ids:
        if placeholder is None or t != placeholder or not out or out[-1] != placeholder:
            out.append(t)
    return out


def read_scores(
    payload: dict[str, Any], expected: list[int], length: int, image_token_id: int | None
) -> ContinuationScore:
    """The log-probs of the last ``length`` prompt tokens of a vLLM answer, checked first.

    ``expected`` is the local tokenization of the whole scored text (one placeholder token per
    image). The server's prompt tokens (``prompt_token_ids``, else read off ``prompt_logprobs``)
    with each placeholder run collapsed must equal it; otherwise, or without log-probs, the
    score carries an ``error`` starting with ``"prompt_logprobs"``.

    >>> print(read_scores({}, [1], 1, None).error)
    prompt_logprobs: the answer has none (the server lacks vLLM's extension)
    """
    logprobs = payload.get("prompt_logprobs")
    if not isinstance(logprobs, list) or not logprobs:
        return _failed("the answer has none (the server lacks vLLM's extension)")
    ids = payload.get("prompt_token_ids")
    if not isinstance(ids, list):
        ids = [_prompt_token(entry) for entry in logprobs]
    if len(ids) != len(logprobs) or not 0 < length < len(ids):
        return _failed(f"{len(logprobs)} positions for {len(ids)} prompt tokens")
    seen = _collapse(ids, image_token_id)
    if len(seen) != len(expected) or any(
        a is not None and a != b for a, b in zip(seen, expected, strict=True)
    ):
        return _failed("the server's prompt tokens differ from the model's chat template here")
    scores = []
    for token, entry in zip(ids[-length:], logprobs[-length:], strict=True):
        found = entry.get(str(token)) if isinstance(entry, dict) else None
        if not isinstance(found, dict) or not isinstance(found.get("logprob"), int | float):
            return _failed(f"no log-prob for prompt token {token}")
        scores.append(float(found["logprob"]))
    return ContinuationScore(tuple(scores), tuple(expected[-length:]))


def _failed(reason: str) -> ContinuationScore:
    return ContinuationScore((), error=f"{PROMPT_LOGPROBS}: {reason}")


def scoring_messages(messages: list[dict[str, Any]], assistant_text: str) -> list[dict[str, Any]]:
    """A request's chat messages followed by the assistant text to continue (and score).

    >>> scoring_messages([{"role": "user", "content": "Hi"}], "Hello.")[-1]
    {'role': 'assistant', 'content': 'Hello.'}
    """
    return [*messages, {"role": "assistant", "content": assistant_text}]


def no_prompt_logprobs(spec: EndpointSpec, reason: str) -> EndpointError:
    """The error of a server that does not score text, with what to do instead."""
    return EndpointError(
        f"scoring text (the contrastive self-check) needs prompt log-probs, which {spec.base_url} "
        f"does not give ({reason}): serve the model with vLLM (its prompt_logprobs extension), "
        'use checker="yesno", or load the model in process'
    )


def refuse_if_declared_off(spec: EndpointSpec) -> None:
    """Raise at once, without asking the server, when the spec says it does not score text."""
    if spec.prompt_logprobs is False:
        raise no_prompt_logprobs(spec, "EndpointSpec(prompt_logprobs=False)")


__all__ = [
    "PROMPT_LOGPROBS",
    "SCORING_BODY",
    "LocalTemplate",
    "load_template",
    "no_prompt_logprobs",
    "read_scores",
    "refuse_if_declared_off",
    "scoring_messages",
]
