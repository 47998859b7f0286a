"""The library's errors that mean "the caller asked for something that cannot be done".

They are raised where a mistake of the caller is found while a function already runs (a column
the dataset lacks, an input that cannot be found); a caller such as the command line shows them
as one line (``hfgcot: error: ...``), while any other exception is a bug and keeps its traceback.
Bad values of a config or spec are ``ValueError``/``TypeError`` raised when it is built.

Each is a ``ValueError`` (a missing column also a ``KeyError``), so code catching those keeps
working.

:func:`validate_choices` is the one check of a dataclass's ``Literal`` fields (configs, specs).

    >>> str(MissingColumnError("column 'q' not in dataset"))
    "column 'q' not in dataset"
    >>> isinstance(MissingColumnError("x"), KeyError | InputError)
    True
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any, Literal

__all__ = ["InputError", "MissingColumnError", "OptionError", "validate_choices"]


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


def validate_choices(config: Any) -> None:
    """Raise ``ValueError`` for a dataclass field whose value is not one of its ``Literal`` choices.

    >>> @dataclasses.dataclass
    ... class C:
    ...     mode: Literal["a", "b"] = "a"
    >>> validate_choices(C(mode="c"))
    Traceback (most recent call last):
    ...
    ValueError: mode must be one of ('a', 'b'), got 'c'
    """
    hints = typing.get_type_hints(type(config))
    for f in dataclasses.fields(config):
        hint = hints.get(f.name)
        if typing.get_origin(hint) is Literal:
            choices = typing.get_args(hint)
            value = getattr(config, f.name)
            if value not in choices:
                raise ValueError(f"{f.name} must be one of {choices}, got {value!r}")
