"""Batches cut by request count and by prompt tokens, and the out-of-memory backoff.

Pure (no torch): the engines give the cost of each request (prompt tokens, image tokens
included), a function that runs one batch, and how to tell an out-of-memory error; this module
decides the batches.

- :func:`cut_batches`: consecutive batches, each cut before the request that would pass
  ``size`` requests or ``tokens`` prompt tokens; a request above ``tokens`` runs alone.
- :class:`Backoff`: runs the batches; a batch that runs out of memory is halved (in requests and
  in tokens) and retried, and the limit that worked is kept for the rest of the stage (per
  ``key``) and logged once; a request that does not fit alone gets
  ``out_of_memory: <tokens> tokens``; any other failing batch is retried one request at a time,
  so a bad request only costs itself.

    >>> cut_batches([100, 100, 900, 200], BatchLimit(size=3, tokens=1000))
    [range(0, 2), range(2, 3), range(3, 4)]
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from hfgcot.geometry.frames import Frame

logger = logging.getLogger(__name__)

OUT_OF_MEMORY = "out_of_memory"

T = TypeVar("T")
R = TypeVar("R")


def out_of_memory_error(tokens: int) -> str:
    """The error (and row status) of a request that does not fit in memory alone.

    >>> out_of_memory_error(16400)
    'out_of_memory: 16400 tokens'
    """
    return f"{OUT_OF_MEMORY}: {tokens} tokens"


def is_out_of_memory(error: object) -> bool:
    """Whether an error text (or status) is an out-of-memory one.

    >>> is_out_of_memory("out_of_memory: 12 tokens"), is_out_of_memory("ValueError: x")
    (True, False)
    """
    return str(error).startswith(f"{OUT_OF_MEMORY}:")


def prompt_cost(
    text: str,
    image_size: tuple[int, int] | None = None,
    *,
    min_pixels: int = 3136,
    max_pixels: int = 1003520,
    patch_size: int = 14,
    merge_size: int = 2,
) -> int:
    """Approximate prompt tokens of a request: its image tokens plus its text.

    Image tokens come from the frame the resize rule gives (one token per ``merge_size`` x
    ``merge_size`` patches); text is counted as one token per 3 characters. An image the resize
    rule refuses counts as no tokens (the processor will reject it anyway).

    >>> prompt_cost("Describe.", (448, 448))       # 16 x 16 tokens + 3
    259
    >>> prompt_cost("Describe.")
    3
    """
    tokens = len(text) // 3
    if image_size is None:
        return tokens
    factor = patch_size * merge_size
    try:
        frame = Frame.for_image(
            *image_size, min_pixels=min_pixels, max_pixels=max_pixels, factor=factor
        )
    except ValueError:
        return tokens
    return tokens + frame.model_width * frame.model_height // factor**2


@dataclass(frozen=True)
class BatchLimit:
    """At most ``size`` requests and ``tokens`` prompt tokens (``None``: no limit) per batch.

    >>> BatchLimit(8, 4000).tighter(BatchLimit(16, 1000))
    BatchLimit(size=8, tokens=1000)
    """

    size: int
    tokens: int | None = None

    def __post_init__(self) -> None:
        if self.size < 1:
            raise ValueError(f"batch size must be >= 1, got {self.size}")
        if self.tokens is not None and self.tokens < 1:
            raise ValueError(f"max_batch_tokens must be >= 1, got {self.tokens}")

    def tighter(self, other: BatchLimit | None) -> BatchLimit:
        """The smaller of both limits, field by field (``other=None``: this one)."""
        if other is None:
            return self
        tokens = [t for t in (self.tokens, other.tokens) if t is not None]
        return BatchLimit(min(self.size, other.size), min(tokens) if tokens else None)

    def describe(self) -> str:
        """``"4 requests / 2,000 tokens"`` (for logs)."""
        tokens = "no token limit" if self.tokens is None else f"{self.tokens:,} tokens"
        return f"{self.size} requests / {tokens}"


def halved(requests: int, tokens: int) -> BatchLimit:
    """The limit after a batch of ``requests`` holding ``tokens`` ran out of memory.

    >>> halved(16, 9000)
    BatchLimit(size=8, tokens=4500)
    """
    return BatchLimit(max(1, requests // 2), max(1, tokens // 2))


def batch_end(costs: Sequence[int], start: int, limit: BatchLimit) -> int:
    """The end (exclusive) of the batch that begins at ``start``: at least one request.

    >>> batch_end([5, 5, 5], 0, BatchLimit(size=8, tokens=10)), batch_end([50], 0, BatchLimit(8, 10))
    (2, 1)
    """
    end, total = start, 0
    while end < len(costs) and end - start < limit.size:
        if limit.tokens is not None and end > start and total + costs[end] > limit.tokens:
            break
        total += costs[end]
        end += 1
    return end


def cut_batches(costs: Sequence[int], limit: BatchLimit) -> list[range]:
    """Consecutive batches covering ``costs`` in order, each within ``limit`` unless alone.

    >>> cut_batches([1, 1, 1, 1, 1], BatchLimit(size=2))
    [range(0, 2), range(2, 4), range(4, 5)]
    """
    out, start = [], 0
    while start < len(costs):
        end = batch_end(costs, start, limit)
        out.append(range(start, end))
        start = end
    return out


class Backoff:
    """Runs work in batches, halving them on out-of-memory errors; remembers what worked.

    One instance per engine: ``learned[key]`` is the limit that worked after running out of
    memory in the work named ``key`` (a stage name), applied to every later call with that key.
    ``is_oom`` tells an out-of-memory exception; ``free`` releases cached memory before the retry.

    Example:
        >>> def work(batch):                    # runs out of memory above 2 requests
        ...     if len(batch) > 2:
        ...         raise MemoryError
        ...     return [x * 10 for x in batch]
        >>> backoff = Backoff(is_oom=lambda e: isinstance(e, MemoryError))
        >>> backoff.run([1, 2, 3, 4, 5], [1] * 5, work, lambda x, e: e, BatchLimit(8), "demo")
        [10, 20, 30, 40, 50]
        >>> backoff.learned["demo"]
        BatchLimit(size=2, tokens=2)
    """

    def __init__(
        self,
        is_oom: Callable[[BaseException], bool] = lambda exc: False,
        free: Callable[[], None] = lambda: None,
    ) -> None:
        self.is_oom = is_oom
        self.free = free
        self.learned: dict[str, BatchLimit] = {}
        self._unconfirmed: dict[str, str] = {}  # key -> the batch that ran out of memory

    def limit(self, key: str, requested: BatchLimit) -> BatchLimit:
        """``requested``, tightened by what was learned for ``key``."""
        return requested.tighter(self.learned.get(key))

    def run(
        self,
        items: Sequence[T],
        costs: Sequence[int],
        work: Callable[[list[T]], list[R]],
        failed: Callable[[T, str], R],
        limit: BatchLimit,
        key: str,
    ) -> list[R]:
        """``work`` over ``items`` in batches; one result per item, in order.

        ``failed(item, error)`` makes the result of an item that failed alone (``error`` is
        ``"out_of_memory: <tokens> tokens"`` or ``"<ExceptionType>: <message>"``).
        """
        results: list[R] = []
        start = 0
        while start < len(items):
            end = batch_end(costs, start, self.limit(key, limit))
            batch = list(items[start:end])
            try:
                results.extend(work(batch))
            except Exception as exc:  # noqa: BLE001 - every failure becomes a result below
                oom, error = self.is_oom(exc), f"{type(exc).__name__}: {exc}"
            else:
                self._confirm(key)
                start = end
                continue
            # Outside the ``except`` block: the exception and its frames are released now.
            tokens = sum(costs[start:end])
            if oom:
                self.free()
            if oom and len(batch) > 1:
                self._lower(key, len(batch), tokens)
                continue  # the same requests again, in smaller batches
            if oom:
                logger.warning("%s: one request of %d tokens does not fit in memory", key, tokens)
                results.append(failed(batch[0], out_of_memory_error(tokens)))
            elif len(batch) == 1:
                logger.warning("%s: request failed: %s", key, error)
                results.append(failed(batch[0], error))
            else:  # isolate the failing request: one at a time
                results.extend(self.run(batch, costs[start:end], work, failed, BatchLimit(1), key))
            start = end
        return results

    def _lower(self, key: str, requests: int, tokens: int) -> None:
        self.learned[key] = self.limit(key, halved(requests, tokens))
        self._unconfirmed.setdefault(key, f"{requests} requests / {tokens:,} tokens")

    def _confirm(self, key: str) -> None:
        failed = self._unconfirmed.pop(key, None)
        if failed is not None:
            logger.warning(
                "%s: out of memory with %s per batch; %s per batch fits and is kept for the rest "
                "of the stage",
                key,
                failed,
                self.learned[key].describe(),
            )


__all__ = [
    "OUT_OF_MEMORY",
    "Backoff",
    "BatchLimit",
    "batch_end",
    "cut_batches",
    "halved",
    "is_out_of_memory",
    "out_of_memory_error",
    "prompt_cost",
]
