"""The library's errors that mean "the caller asked for something that cannot be done".

They are raised where a mistake of the caller is found while a function already runs (a column
the dataset lacks, an input that cannot be found); a caller such as the command line shows them
as one line (``hfgcot: error: ...``), while any other exception is a bug and keeps its traceback.
Bad values of a config or spec are ``ValueError``/``TypeError`` raised when it is built.

Each is a ``ValueError`` (a missing column also a ``KeyError``), so code catching those keeps
working.

    >>> str(MissingColumnError("column 'q' not in dataset"))
    "column 'q' not in dataset"
    >>> isinstance(MissingColumnError("x"), KeyError | InputError)
    True
"""

from __future__ import annotations

__all__ = ["InputError", "MissingColumnError", "OptionError"]


class InputError(ValueError):
    """An input that cannot be used as given: not found (a path, a Hub dataset), a malformed
    ``.jsonl`` line, columns missing or in the way of the output."""


class MissingColumnError(InputError, KeyError):
    """A column the function needs is not in the dataset (the message names it and the columns
    there are)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class OptionError(ValueError):
    """An option value a function refuses when it is called (before doing any work)."""
