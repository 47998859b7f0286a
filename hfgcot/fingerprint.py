"""Plain JSON data of configs and records, and the stable hash of it.

What stage fingerprints, checkpoint fingerprints and provenance records are made of:
:func:`jsonable` turns dataclasses (configs, stages, image policies), mappings, tuples, sets and
paths into plain JSON data; :func:`stable_hash` hashes such data the same way in every process
(``datasets``' hasher over sorted JSON), so a rerun finds its caches and checkpoints.

    >>> import dataclasses
    >>> @dataclasses.dataclass(frozen=True)
    ... class Config:
    ...     size: tuple[int, int] = (2, 3)
    >>> jsonable({"config": Config(), "tags": frozenset({"b", "a"})})
    {'config': {'size': [2, 3]}, 'tags': ['a', 'b']}
    >>> stable_hash({"a": 1, "b": [1, 2]}) == stable_hash({"b": [1, 2], "a": 1})
    True
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from typing import Any

from datasets.fingerprint import Hasher

__all__ = ["jsonable", "stable_hash"]


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON data: dataclasses and mappings as dicts (string keys), tuples
    as lists, sets as sorted lists, paths as strings, any other object as its ``str``.

    >>> from pathlib import PurePosixPath
    >>> jsonable([PurePosixPath("a/b"), None, 1.5, object]) == ["a/b", None, 1.5, str(object)]
    True
    """
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, set | frozenset):
        return sorted((jsonable(v) for v in value), key=repr)
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def stable_hash(data: Any) -> str:
    """A process-independent hash of :func:`jsonable` data (keys sorted).

    >>> len(stable_hash(["x", 1]))
    16
    """
    return Hasher.hash(json.dumps(jsonable(data), sort_keys=True, default=str))
