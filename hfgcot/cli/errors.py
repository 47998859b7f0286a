"""Which errors are the user's (one line, exit status 2) and which are bugs (traceback, exit 1).

A subcommand runs in two phases. While it *checks* (options read and converted, configs and
specs built, the input, output, model and publishing target checked), every ``ValueError``,
``TypeError``, ``FileNotFoundError`` or ``FileExistsError`` is a mistake in the command:
:func:`checking` turns it into a :class:`UsageError`. While it *runs* (input loaded, pipeline,
saving, publishing) only the library's own user-facing errors (:func:`user_errors`) are; any
other exception, a ``KeyError`` or ``ValueError`` included, is a bug.

    >>> with checking():
    ...     int("four")
    Traceback (most recent call last):
    ...
    hfgcot.cli.errors.UsageError: invalid literal for int() with base 10: 'four'
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

__all__ = ["CHECK_ERRORS", "UsageError", "checking", "one_line", "user_errors"]

CHECK_ERRORS: tuple[type[BaseException], ...] = (
    ValueError,
    TypeError,
    FileNotFoundError,
    FileExistsError,
)
"""What a bad option, config value or path raises while a subcommand checks its command."""


class UsageError(Exception):
    """A mistake in the command: shown as one line (``--debug``: the error it came from)."""


def one_line(exc: BaseException) -> str:
    """The first line of an error's message (a ``KeyError``'s message unquoted).

    >>> one_line(KeyError("column 'q'\\nmore")), one_line(RuntimeError())
    ("column 'q'", 'RuntimeError')
    """
    text = str(exc.args[0] if isinstance(exc, KeyError) and exc.args else exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@contextlib.contextmanager
def checking() -> Iterator[None]:
    """Run the checks of a command: a :data:`CHECK_ERRORS` error becomes a :class:`UsageError`
    (the original as its ``__cause__``)."""
    try:
        yield
    except CHECK_ERRORS as exc:
        raise UsageError(one_line(exc)) from exc


def user_errors() -> tuple[type[BaseException], ...]:
    """The errors shown as one line: :class:`UsageError` and the library's documented
    user-facing errors (:mod:`hfgcot.errors`, an unknown model family, an endpoint that cannot
    serve the run, a refused publication)."""
    from hfgcot.errors import InputError, OptionError
    from hfgcot.geometry.families import UnknownFamilyError
    from hfgcot.model.endpoint import EndpointError
    from hfgcot.publishing.targets import PublishError

    return (UsageError, InputError, OptionError, UnknownFamilyError, EndpointError, PublishError)
