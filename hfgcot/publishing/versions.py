"""What both publishing backends share: versions, the result of a publish, the version's card.

:mod:`hfgcot.publishing.hub` (the Hub, and :func:`~hfgcot.publishing.hub.publish`, which picks
a backend) and :mod:`hfgcot.publishing.local` (a local release folder) both build on this
module, so neither imports the other's internals.

    >>> parse_version("v1.2.0")
    '1.2.0'
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from huggingface_hub import DatasetCard

from hfgcot.publishing.card import build_card

__all__ = [
    "PublishError",
    "PublishResult",
    "VersionExistsError",
    "load_code_for",
    "make_card",
    "parse_version",
]

_VERSION = re.compile(
    r"^v?(?P<v>(0|[1-9]\d*)\.(0|[1-9]\d*)(\.(0|[1-9]\d*))?(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?)$"
)


class PublishError(RuntimeError):
    """Publishing failed; no tag (Hub) or version folder (local) was created."""


class VersionExistsError(PublishError, FileExistsError):
    """The version already exists: versions are immutable, publish a new one."""


@dataclass(frozen=True)
class PublishResult:
    """What :func:`publish` did.

    Attributes:
        backend: ``"hub"`` or ``"local"``.
        target: the repo id, or the local root folder.
        version: e.g. ``"1.0.0"``; ``tag`` is ``"v1.0.0"``.
        location: the Hub URL of the tag, or the local version folder.
        commit: the tagged commit (Hub), else ``None``.
        rows: rows per split.
        card: the dataset card written.
        load_code: Python that loads exactly this version.
    """

    backend: Literal["hub", "local"]
    target: str
    version: str
    tag: str
    location: str
    commit: str | None
    rows: dict[str, int]
    card: DatasetCard = field(repr=False)
    load_code: str = field(repr=False)


def parse_version(version: str) -> str:
    """Validate a semver-ish version and return it without a leading ``v``.

    >>> parse_version("1.2.0"), parse_version("v2.0"), parse_version("1.0.0-rc.1")
    ('1.2.0', '2.0', '1.0.0-rc.1')
    """
    m = _VERSION.match(str(version).strip()) if isinstance(version, str) else None
    if not m:
        raise ValueError(
            f"version must look like 1.0.0 (MAJOR.MINOR[.PATCH][-pre][+build]), got {version!r}"
        )
    return m.group("v")


def load_code_for(path: str, tag: str | None, split: str | None, config_name: str | None) -> str:
    """The ``load_dataset`` line that loads one published version.

    >>> load_code_for("me/data", "v1.0.0", "train", None)
    "ds = load_dataset('me/data', revision='v1.0.0', split='train')"
    """
    args = [repr(path)]
    if config_name not in (None, "default"):
        args.append(f"name={config_name!r}")
    if tag:
        args.append(f"revision={tag!r}")
    if split:
        args.append(f"split={split!r}")
    return f"ds = load_dataset({', '.join(args)})"


def make_card(
    dataset: Any,
    version: str,
    load_code: str,
    split: str,
    config_name: str | None,
    options: Mapping[str, Any] | None,
    fixed_card: DatasetCard | None,
    target: str,
) -> DatasetCard:
    """The card of a version: ``fixed_card`` when the user gave one, else a built one."""
    if fixed_card is not None:
        return fixed_card
    return build_card(
        dataset,
        version=version,
        load_code=load_code,
        split=split,
        config_name=config_name,
        options=options,
        target=target,
    )
