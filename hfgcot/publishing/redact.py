"""Keep Hub tokens out of everything hfgcot writes: log records, warnings, errors and cards.

The token in effect is whichever ``huggingface_hub`` would send: the ``token=`` argument, else
``HF_TOKEN`` (or ``HUGGING_FACE_HUB_TOKEN``), else the stored ``hf auth login`` token
(:func:`huggingface_hub.get_token`). :func:`known_tokens` collects all of them, and
:func:`redacting` replaces each with ``***``:

- in every log record created while it is active (any logger: hfgcot's retry warnings,
  ``huggingface_hub``'s and ``datasets``' messages), message and formatted traceback;
- in every warning shown while it is active;
- in the exception that leaves it: one whose text (or a cause's) carries a token is replaced by a
  :class:`~hfgcot.publishing.targets.PublishError` with the redacted text and no chained cause.

    >>> redact("Bearer hf_abcdefghijkl failed", {"hf_abcdefghijkl"})
    'Bearer *** failed'
"""

from __future__ import annotations

import logging
import os
import threading
import warnings
from collections import Counter
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from typing import Any

from hfgcot.publishing.targets import PublishError

__all__ = ["MASK", "chain_text", "known_tokens", "redact", "redacting", "token_in_effect"]

MASK = "***"
_MIN_TOKEN_CHARS = 8  # shorter strings are no credible token and would garble every message

_lock = threading.Lock()
_active: Counter[str] = Counter()
_saved: dict[str, Any] = {}


def token_in_effect(token: str | bool | None = None) -> str | None:
    """The token ``huggingface_hub`` sends for ``token``: the string itself, ``None`` for
    ``token=False``, else ``huggingface_hub.get_token()`` (``HF_TOKEN``, then the stored login).

    >>> token_in_effect("hf_given_token")
    'hf_given_token'
    """
    if isinstance(token, str):
        return token or None
    if token is False:
        return None
    from huggingface_hub import get_token

    try:
        return get_token()
    except Exception:  # noqa: BLE001 - e.g. a failed OIDC exchange: no token in effect
        return None


def known_tokens(token: str | bool | None = None) -> set[str]:
    """Every token that could be sent or printed: ``token``, the one in effect, and the
    ``HF_TOKEN`` / ``HUGGING_FACE_HUB_TOKEN`` variables.

    >>> "hf_given_token" in known_tokens("hf_given_token")
    True
    """
    found = {token if isinstance(token, str) else None, token_in_effect(None)}
    found |= {os.environ.get(name) for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")}
    return {t.strip() for t in found if t and len(t.strip()) >= _MIN_TOKEN_CHARS}


def redact(text: str, secrets: Collection[str]) -> str:
    """``text`` with every secret replaced by ``***`` (longest first).

    >>> redact("a hf_abcdefghijkl b", {"hf_abcdefghijkl", "abcdefghijkl"})
    'a *** b'
    """
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


def chain_text(exc: BaseException | None) -> str:
    """The text of ``exc`` and of its causes/contexts (messages, args and notes)."""
    parts, seen = [], 0
    while exc is not None and seen < 10:
        notes = getattr(exc, "__notes__", None) or []
        parts.append(f"{exc!s} {exc.args!r} {' '.join(map(str, notes))}")
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return "\n".join(parts)


def _redact_record(record: logging.LogRecord, secrets: Collection[str]) -> logging.LogRecord:
    try:
        message = record.getMessage()
    except Exception:  # noqa: BLE001 - a malformed record: redact what it holds
        message = f"{record.msg} {record.args}"
    if any(s in message for s in secrets):
        record.msg, record.args = redact(message, secrets), None
    if record.exc_info and record.exc_info[1] is not None:
        text = logging.Formatter().formatException(record.exc_info)
        if any(s in text for s in secrets):
            record.exc_text = redact(text, secrets)
            record.exc_info = None
    if record.stack_info and any(s in record.stack_info for s in secrets):
        record.stack_info = redact(record.stack_info, secrets)
    return record


def _install() -> None:
    """Wrap the log record factory and ``warnings.showwarning`` (once, while any secret is
    registered)."""
    previous_factory = logging.getLogRecordFactory()
    previous_show = warnings.showwarning

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        return _redact_record(previous_factory(*args, **kwargs), set(_active))

    def show(message: Any, category: Any, filename: str, lineno: int, *rest: Any) -> None:
        secrets = set(_active)
        if any(s in str(message) for s in secrets):
            message = category(redact(str(message), secrets))
        previous_show(message, category, filename, lineno, *rest)

    _saved.update(factory=previous_factory, show=previous_show, ours=(factory, show))
    logging.setLogRecordFactory(factory)
    warnings.showwarning = show


def _uninstall() -> None:
    factory, show = _saved.pop("ours")
    if logging.getLogRecordFactory() is factory:  # else someone wrapped ours: leave theirs
        logging.setLogRecordFactory(_saved["factory"])
    if warnings.showwarning is show:
        warnings.showwarning = _saved["show"]
    _saved.clear()


@contextmanager
def redacting(token: str | bool | None = None) -> Iterator[set[str]]:
    """Redact :func:`known_tokens` (``token`` included) from log records, warnings and the
    exception that leaves the block; yields the set of secrets.

    >>> with redacting("hf_abcdefghijkl") as secrets:
    ...     redact("token hf_abcdefghijkl", secrets)
    'token ***'
    """
    secrets = known_tokens(token)
    with _lock:
        if not _active and secrets:
            _install()
        _active.update(secrets)
    try:
        yield secrets
    except Exception as exc:
        if any(s in chain_text(exc) for s in secrets):
            cls = type(exc) if isinstance(exc, PublishError) else PublishError
            raise cls(redact(f"{type(exc).__name__}: {exc}", secrets)) from None
        raise
    finally:
        with _lock:
            _active.subtract(secrets)
            for secret in [s for s, n in _active.items() if n <= 0]:
                del _active[secret]
            if not _active and "ours" in _saved:
                _uninstall()
