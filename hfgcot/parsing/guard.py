"""The never-raise safety net of the parsers, with a strict mode for tests.

Every parser of :mod:`hfgcot.parsing` catches unexpected errors so that odd model output never
takes a stage down, and reports them through :func:`guard`. Tests run under :func:`strict`, where
:func:`guard` re-raises, so a parser that breaks is seen instead of absorbed.

    >>> with strict():
    ...     guard(ValueError("boom"), "example")
    Traceback (most recent call last):
    ...
    ValueError: boom
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator

__all__ = ["guard", "is_strict", "strict"]

_logger = logging.getLogger("hfgcot.parsing")
_modes: list[bool] = []


def is_strict() -> bool:
    """The innermost :func:`strict` block's mode; else whether ``HFGCOT_STRICT_PARSING=1``."""
    if _modes:
        return _modes[-1]
    return os.environ.get("HFGCOT_STRICT_PARSING") == "1"


@contextlib.contextmanager
def strict(enabled: bool = True) -> Iterator[None]:
    """Within this block :func:`guard` re-raises (``enabled=False``: logs, as in production)."""
    _modes.append(enabled)
    try:
        yield
    finally:
        _modes.pop()


def guard(exc: BaseException, where: str) -> None:
    """Log an unexpected parser error at debug level (re-raise it in strict mode)."""
    if is_strict():
        raise exc
    _logger.debug("hfgcot parser %s failed on odd input: %r", where, exc)
