"""Command-line flags made from the library's dataclasses and signatures (nothing written twice).

Every field of a config dataclass (``GCoTConfig``...), a model spec (``ModelSpec``,
``EndpointSpec``) or ``RunOptions`` becomes one :class:`Flag`:

- the flag is ``--`` + the field name with ``-`` for ``_`` (``max_new_tokens`` ->
  ``--max-new-tokens``); the config-file key is the field name;
- a field whose value is itself a dataclass (``image_policy: ImagePolicy``) is flattened: each of
  its fields is a flag under its own name (``--allow-urls``, ``--max-image-pixels``);
- the help is the field's ``metadata["help"]`` (:func:`hfgcot.pipelines.base.option`), else its
  entry in the class docstring's ``Args:``/``Attributes:`` section; the default is shown;
- ``Literal`` types give the choices, ``bool`` fields are ``--x/--no-x``, an optional field takes
  ``none``, a text field of a config takes ``@file.txt`` (read from the file), a ``dict`` field
  a JSON object.

The same rules read config-file values (:func:`parse_value`), so a file and a flag are checked
alike.

    >>> from hfgcot.images import ImagePolicy
    >>> flag = next(f for f in dataclass_flags(ImagePolicy) if f.name == "allow_urls")
    >>> flag.option, flag.default
    ('--allow-urls', True)
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import os
import re
import types
import typing
from collections.abc import Callable, Iterable
from typing import Any, Literal

__all__ = ["Flag", "add_flags", "dataclass_flags", "doc_entries", "parse_value", "signature_flags"]

_SECTION = re.compile(r"^(Args|Arguments|Attributes|Parameters):\s*$")
_ENTRY = re.compile(r"^([A-Za-z_][\w]*(?:\s*,\s*[A-Za-z_][\w]*)*)\s*(?:\([^)]*\))?:\s*(.*)$")
_ROLE = re.compile(r":\w+:`~?([^`]*)`")  # Sphinx roles (:mod:`urllib`) as plain names
_SHOWN_DEFAULT = 40  # characters of a default value shown in --help


@dataclasses.dataclass(frozen=True)
class Flag:
    """One option: its name (the config-file key), type, default and help.

    ``parent`` names the nested dataclass field it belongs to (``"image_policy"``), if any.
    """

    name: str
    hint: Any
    default: Any
    help: str
    parent: str | None = None
    text_file: bool = False  # a text value may be written @file
    choices: tuple[Any, ...] | None = None  # valid values of a type that is no Literal
    aliases: tuple[str, ...] = ()  # other spellings of the flag, e.g. ("--ray-actors",)

    def shape(self) -> tuple[Any, tuple[Any, ...] | None, bool]:
        """``(base type, choices or None, optional)``."""
        base, choices, optional = _shape(self.hint)
        return base, choices if choices is not None else self.choices, optional

    @property
    def option(self) -> str:
        """The flag as typed: ``--max-new-tokens``."""
        return "--" + self.name.replace("_", "-")


def doc_entries(obj: Any) -> dict[str, str]:
    """The ``name: text`` entries of the ``Args:``/``Attributes:`` sections of a docstring
    (``a, b: text`` gives both names the text).

    >>> def f(x, y):
    ...     '''Do it.
    ...
    ...     Args:
    ...         x: the first
    ...             value.
    ...         y (int): the second.
    ...     '''
    >>> doc_entries(f)
    {'x': 'the first value.', 'y': 'the second.'}
    """
    entries: dict[str, str] = {}
    names: list[str] = []
    indent: int | None = None
    in_section = False
    for line in (inspect.getdoc(obj) or "").splitlines():
        depth = len(line) - len(line.lstrip())
        if depth == 0 and line.strip():
            in_section, indent, names = bool(_SECTION.match(line)), None, []
            continue
        if not in_section or not line.strip():
            continue
        match = _ENTRY.match(line.strip())
        if match and (indent is None or depth == indent):
            indent, names = depth, [n.strip() for n in match.group(1).split(",")]
            for name in names:
                entries[name] = match.group(2).strip()
        elif names and indent is not None and depth > indent:
            for name in names:
                entries[name] = f"{entries[name]} {line.strip()}".strip()
    return {k: _ROLE.sub(r"\1", v.replace("``", "")) for k, v in entries.items()}


def _shape(hint: Any) -> tuple[Any, tuple[Any, ...] | None, bool]:
    """``(base type, Literal choices or None, optional)`` of a type hint.

    >>> _shape(int | None), _shape(Literal["a", "b"])
    ((<class 'int'>, None, True), (<class 'str'>, ('a', 'b'), False))
    """
    optional = False
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        rest = [a for a in args if a is not type(None)]
        optional = len(rest) < len(args)
        hint = str if str in rest else rest[0]  # str | os.PathLike: text
    if typing.get_origin(hint) is Literal:
        choices = typing.get_args(hint)
        return type(choices[0]), choices, optional
    if typing.get_origin(hint) is os.PathLike or hint is os.PathLike:
        return str, None, optional
    if typing.get_origin(hint) is dict:
        return dict, None, optional
    return hint, None, optional


def _field_default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def dataclass_flags(
    cls: type,
    *,
    skip: Iterable[str] = (),
    text_file: bool = False,
    parent: str | None = None,
    prefix: str = "",
) -> list[Flag]:
    """The flags of every field of ``cls`` (nested dataclasses flattened), in field order.

    ``text_file``: text fields accept ``@file`` (the fields of pipeline configs). ``prefix`` goes
    before each name (``"ray_"``: ``num_actors`` is ``--ray-num-actors``).
    """
    hints = typing.get_type_hints(cls)
    docs = doc_entries(cls)
    flags: list[Flag] = []
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        default = _field_default(f)
        if dataclasses.is_dataclass(hints[f.name]):
            nested = dataclass_flags(
                hints[f.name], text_file=text_file, parent=f.name, prefix=prefix
            )
            flags += [dataclasses.replace(n, default=getattr(default, n.name)) for n in nested]
            continue
        text = f.metadata.get("help") or docs.get(f.name, "")
        choices = f.metadata.get("choices")
        choices = tuple(choices() if callable(choices) else choices) if choices else None
        name = prefix + f.name
        flags.append(Flag(name, hints[f.name], default, text, parent, text_file, choices))
    return flags


def signature_flags(func: Callable[..., Any], *, skip: Iterable[str] = ()) -> list[Flag]:
    """The flags of the keyword parameters (with defaults) of ``func``."""
    hints = typing.get_type_hints(func)
    docs = doc_entries(func)
    flags = []
    for p in inspect.signature(func).parameters.values():
        if p.default is inspect.Parameter.empty or p.name in skip or p.name not in hints:
            continue
        text = docs.get(p.name) or f"`{p.name}` of {func.__module__}.{func.__name__}."
        flags.append(Flag(p.name, hints[p.name], p.default, text))
    return flags


_EXPECTED = {
    bool: "true or false",
    int: "an integer",
    float: "a number",
    str: "text",
    dict: "a mapping (JSON object)",
}


def _is_a(value: Any, base: type) -> bool:
    """Whether ``value`` is of ``base`` (an int is a number, a bool is not an int)."""
    if base is str or base is bool or base is dict:
        return isinstance(value, base)
    return isinstance(value, int | float if base is float else int) and not isinstance(value, bool)


def _wrong(where: str, what: str, value: Any) -> ValueError:
    return ValueError(f"{where}: expected {what}, got {value!r}")


def _parse_text(flag: Flag, value: str, base: Any, where: str) -> Any:
    if base is bool:
        lowered = value.strip().lower()
        if lowered in ("true", "yes", "1", "on"):
            return True
        if lowered in ("false", "no", "0", "off"):
            return False
        raise _wrong(where, "true or false", value)
    if base is int:
        try:
            return int(value)
        except ValueError:
            raise _wrong(where, "an integer", value) from None
    if base is float:
        try:
            return float(value)
        except ValueError:
            raise _wrong(where, "a number", value) from None
    if base is dict:
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            raise _wrong(where, "a JSON object", value) from None
    if flag.text_file:
        from hfgcot.config_files import read_text_value

        try:
            return read_text_value(value)
        except ValueError as exc:  # the file of @file: keep its name, say which option
            raise ValueError(f"{where}: {exc}") from None
    return value


def parse_value(flag: Flag, value: Any, where: str | None = None) -> Any:
    """A flag's text or a config file's value, checked and converted to the field's type.

    Raises ``ValueError`` naming ``where`` (default: the flag) for a value of the wrong type or
    not among the choices.

    >>> flag = Flag("num_proc", int | None, None, "")
    >>> parse_value(flag, "4"), parse_value(flag, "none"), parse_value(flag, 2)
    (4, None, 2)
    >>> parse_value(flag, "four")
    Traceback (most recent call last):
    ...
    ValueError: --num-proc: expected an integer, got 'four'
    """
    where = where or flag.option
    base, choices, optional = flag.shape()
    if value is None or (optional and isinstance(value, str) and value.lower() == "none"):
        if optional:
            return None
        raise _wrong(where, "a value", value)
    if isinstance(value, str):
        value = _parse_text(flag, value, base, where)
    if base in _EXPECTED and not _is_a(value, base):
        raise _wrong(where, _EXPECTED[base], value)
    if base is float:
        value = float(value)
    if choices is not None and value not in choices:
        shown = ", ".join(str(c) for c in choices)
        raise ValueError(f"{where}: must be one of {shown}, got {value!r}")
    return value


def _shown(value: Any) -> str:
    if value is None:
        return "none"
    text = str(value).lower() if isinstance(value, bool) else str(value)
    text = text.replace("\n", " ")
    return text if len(text) <= _SHOWN_DEFAULT else text[: _SHOWN_DEFAULT - 3] + "..."


def _metavar(flag: Flag) -> str:
    base, choices, optional = flag.shape()
    if choices is not None:
        return "{" + ",".join(str(c) for c in choices) + ("|none}" if optional else "}")
    name = {int: "N", float: "X", dict: "JSON"}.get(base, "TEXT")
    return f"{name}|none" if optional else name


def _arg_type(flag: Flag) -> Callable[[str], Any]:
    def convert(text: str) -> Any:
        try:
            return parse_value(flag, text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc).removeprefix(f"{flag.option}: ")) from None

    return convert


def add_flags(group: Any, flags: Iterable[Flag]) -> None:
    """Add ``flags`` to an argparse parser or group; an option not typed is absent from the
    parsed namespace (so a config file, then the library's default, gives its value)."""
    for flag in flags:
        text = flag.help.rstrip(".")
        if "(default: " not in text:  # else the help says what the default means
            text += f" (default: {_shown(flag.default)})"
        kwargs: dict[str, Any] = {
            "dest": flag.name,
            "default": argparse.SUPPRESS,
            "help": text.replace("%", "%%"),
        }
        if flag.shape()[0] is bool:
            group.add_argument(
                flag.option, *flag.aliases, action=argparse.BooleanOptionalAction, **kwargs
            )
        else:
            base, choices, optional = flag.shape()
            if choices is not None:  # checked by the type (one message); listed for introspection
                kwargs["choices"] = (*choices, None) if optional else choices
            group.add_argument(
                flag.option, *flag.aliases, type=_arg_type(flag), metavar=_metavar(flag), **kwargs
            )
