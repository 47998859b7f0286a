"""What an engine is asked and what it answers: plain dataclasses, no torch.

Both engines (:class:`hfgcot.model.vlm.VLM` in process, :class:`hfgcot.model.endpoint_client.EndpointVLM`
over HTTP) take :class:`Request` lists with :class:`GenerationSettings` and give one
:class:`Generation` (or :class:`ContinuationScore`) per request, in order.

    >>> Request(None, "Hello").messages()
    [{'role': 'user', 'content': [{'type': 'text', 'text': 'Hello'}]}]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hfgcot.geometry.frames import Frame


@dataclass(frozen=True)
class GenerationSettings:
    """Explicit generation settings; all of them enter stage fingerprints.

    Example:
        >>> GenerationSettings(max_new_tokens=64).do_sample
        False
    """

    max_new_tokens: int = 512
    do_sample: bool = False
    temperature: float = 0.7
    top_p: float = 0.9
    seed: int = 0
    cache_implementation: str | None = None  # e.g. "static": compiled decode step on CUDA

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.do_sample and not (self.temperature > 0 and 0 < self.top_p <= 1):
            raise ValueError("sampling needs temperature > 0 and 0 < top_p <= 1")


@dataclass
class Request:
    """One generation request: an image (or None for text only) and a user prompt.

    Example:
        >>> [m["role"] for m in Request(None, "Hi", system="Be brief.").messages()]
        ['system', 'user']
    """

    image: Any
    prompt: str
    system: str | None = None

    def messages(self) -> list[dict[str, Any]]:
        """The chat messages of this request (an image placeholder before the text)."""
        content: list[dict[str, Any]] = []
        if self.image is not None:
            content.append({"type": "image"})
        content.append({"type": "text", "text": self.prompt})
        messages: list[dict[str, Any]] = []
        if self.system is not None:
            messages.append({"role": "system", "content": [{"type": "text", "text": self.system}]})
        messages.append({"role": "user", "content": content})
        return messages

    def prompt_text(self) -> str:
        """The user prompt (what a scripted engine answers to)."""
        return self.prompt


@dataclass(frozen=True)
class Generation:
    """The answer to one request, with the frame its image was seen in (None without image).

    ``error`` is set (and ``text`` empty) when the request failed; an error that begins with a
    status reason (``out_of_memory: ...``, ``endpoint_error: ...``) is the row status as it is.
    ``truncated``: the answer stopped at ``max_new_tokens`` without its end-of-sequence token (an
    in-process count, or a server's ``finish_reason="length"``).

    Example:
        >>> Generation("A red ball", None, truncated=True).truncated
        True
    """

    text: str
    frame: Frame | None
    error: str | None = None
    truncated: bool = False


@dataclass(frozen=True)
class ContinuationScore:
    """Teacher-forced natural-log probabilities of a continuation's tokens, in order.

    ``token_ids`` are the continuation's tokens as they appear in the tokenized context +
    continuation (see :meth:`hfgcot.model.vlm.VLM.continuation_logprobs`); ``error`` is set (and
    both are empty) when the forward pass failed.

    Example:
        >>> ContinuationScore((-1.0, -3.0)).mean
        -2.0
    """

    logprobs: tuple[float, ...]
    token_ids: tuple[int, ...] = ()
    error: str | None = None

    @property
    def mean(self) -> float:
        """Mean log-prob per token (``nan`` when there are no tokens)."""
        return sum(self.logprobs) / len(self.logprobs) if self.logprobs else float("nan")


__all__ = ["ContinuationScore", "Generation", "GenerationSettings", "Request"]
