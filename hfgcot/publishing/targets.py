"""Where a release goes and what it is called: targets, versions, tags and errors (pure).

A target is a local folder when it is an ``os.PathLike``, starts with ``/``, ``.``, ``~`` or
``file://``, contains a backslash or two or more ``/``, or is an existing local directory.
Anything else must be a Hub repo id ``namespace/name`` (``name`` alone is refused as ambiguous:
write ``./name`` for a folder). A version is semver-ish (``1.0.0``, ``2.1``, ``1.0.0-rc.1``) and
is published as the tag (Hub) or folder (local) ``v<version>``.

    >>> is_local_target("me/my-gcot"), is_local_target("./out")
    (False, True)
    >>> latest_version(["1.0.0", "1.10.0", "1.2.0", "2.0.0-rc.1"])
    '1.10.0'
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

__all__ = [
    "BadRowsError",
    "MissingTokenError",
    "PublishError",
    "PublishResult",
    "Release",
    "VersionExistsError",
    "check_names",
    "check_repo_id",
    "is_local_target",
    "latest_version",
    "load_code",
    "local_root",
    "parse_version",
    "release_code",
    "tag_version",
    "version_key",
]

_VERSION = re.compile(
    r"^v?(?P<v>(0|[1-9]\d*)\.(0|[1-9]\d*)(\.(0|[1-9]\d*))?(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?)$"
)
_SPLIT = re.compile(r"^\w+(\.\w+)*$")
_CONFIG = re.compile(r"^[A-Za-z0-9][\w.-]*$")
_REPO_PART = re.compile(r"^[A-Za-z0-9][\w.-]*$")


class PublishError(RuntimeError):
    """Publishing failed; no tag (Hub) or version folder (local) was created."""


class VersionExistsError(PublishError, FileExistsError):
    """The version already exists: versions are immutable, publish a new one."""


class BadRowsError(PublishError, ValueError):
    """Rows whose image cannot be embedded: publishing refused before writing anything."""


class MissingTokenError(PublishError, ValueError):
    """Publishing to the Hub without a token: nothing was attempted."""


@dataclass(frozen=True)
class PublishResult:
    """What :func:`~hfgcot.publishing.release.publish` did.

    Attributes:
        backend: ``"hub"`` or ``"local"``.
        target: the repo id, or the local root folder.
        version: e.g. ``"1.0.0"``; ``tag`` is ``"v1.0.0"``.
        location: the Hub URL of the tag, or the local version folder.
        commit: the tagged commit (Hub), else ``None``.
        rows: rows per split (after ``drop_bad_rows``).
        card: the dataset card written (a ``huggingface_hub.DatasetCard``).
        load_code: Python that loads exactly this version.
        dropped: rows left out per split by ``drop_bad_rows=True`` (``{}`` when none).
    """

    backend: Literal["hub", "local"]
    target: str
    version: str
    tag: str
    location: str
    commit: str | None
    rows: dict[str, int]
    card: Any = field(repr=False)
    load_code: str = field(repr=False)
    dropped: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Release:
    """One version on its way out, as both backends and the card see it.

    Attributes:
        dataset: the ``Dataset``/``DatasetDict`` to write (images already checked and cast).
        version: without the ``v``; ``tag`` is ``v<version>``.
        split: the split name of a single ``Dataset``.
        config_name: the dataset config (``None``: ``"default"``).
        options: card overrides (``publish(card={...})``) or ``None``.
        fixed_card: a card given as is (``DatasetCard``), or ``None``.
        rows: rows per split.
        dropped: rows left out per split, with their reasons: ``{split: {reason: n}}``.
        previous: the versions published before this one, oldest first.
    """

    dataset: Any
    version: str
    split: str
    config_name: str | None
    options: Mapping[str, Any] | None
    fixed_card: Any
    rows: dict[str, int]
    dropped: dict[str, dict[str, int]]
    previous: list[str]

    @property
    def tag(self) -> str:
        return f"v{self.version}"

    @property
    def config(self) -> str:
        return self.config_name or "default"

    @property
    def dropped_rows(self) -> dict[str, int]:
        """Rows left out per split."""
        return {s: sum(reasons.values()) for s, reasons in self.dropped.items()}


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


def tag_version(name: str) -> str | None:
    """The version a tag or folder name ``v<version>`` stands for, else ``None``.

    >>> tag_version("v1.2.0"), tag_version("1.2.0"), tag_version("main")
    ('1.2.0', None, None)
    """
    if not name.startswith("v"):
        return None
    try:
        return parse_version(name)
    except ValueError:
        return None


def version_key(version: str) -> tuple[Any, ...]:
    """A sort key giving semver precedence: numbers compare numerically, a pre-release sorts
    before its release (identifiers: numeric < alphanumeric), build metadata is ignored.

    >>> sorted(["1.0.0", "1.0.0-rc.2", "1.0.0-rc.10", "0.9", "1.0.0-beta"], key=version_key)
    ['0.9', '1.0.0-beta', '1.0.0-rc.2', '1.0.0-rc.10', '1.0.0']
    """
    core, _, pre = parse_version(version).split("+", 1)[0].partition("-")
    numbers = [int(n) for n in core.split(".")] + [0]
    ids = (
        tuple((0, int(i), "") if i.isdigit() else (1, 0, i) for i in pre.split(".")) if pre else ()
    )
    return (*numbers[:3], not pre, ids)


def latest_version(versions: Iterable[str]) -> str | None:
    """The highest release version (no pre-release), else the highest pre-release; ``None``
    when there is none.

    >>> latest_version(["1.0.0", "2.0.0-rc.1"]), latest_version(["2.0.0-rc.1"])
    ('1.0.0', '2.0.0-rc.1')
    """
    ordered = sorted(versions, key=version_key)
    releases = [v for v in ordered if "-" not in v.split("+", 1)[0]]
    return (releases or ordered or [None])[-1]


def is_local_target(target: str | os.PathLike[str]) -> bool:
    """Whether ``target`` names a local folder rather than a Hub repo id (rule in the module doc).

    >>> is_local_target("me/my-gcot"), is_local_target("./out"), is_local_target("a/b/c")
    (False, True, True)
    """
    if isinstance(target, os.PathLike):
        return True
    t = str(target)
    return (
        t.startswith(("/", ".", "~", "file://"))
        or "\\" in t
        or t.count("/") >= 2
        or (os.sep != "/" and os.sep in t)
        or os.path.isdir(t)
    )


def local_root(target: str | os.PathLike[str]) -> Path:
    """The folder a local target names (``file://`` and ``~`` resolved).

    >>> local_root("file:///data/releases").as_posix()
    '/data/releases'
    """
    t = os.fspath(target)
    if t.startswith("file://"):
        t = t[len("file://") :]
    return Path(os.path.expanduser(t))


def check_repo_id(repo_id: str) -> None:
    """Raise ``ValueError`` unless ``repo_id`` is a valid Hub repo id ``namespace/name``.

    >>> check_repo_id("me/data")
    >>> check_repo_id("data")
    Traceback (most recent call last):
    ...
    ValueError: not a Hub repo id 'namespace/name' nor a local path: 'data' (a bare name is ambiguous: use 'namespace/name' or './name')
    """
    parts = repo_id.split("/")
    if len(parts) != 2 or not all(_REPO_PART.match(p) and len(p) <= 96 for p in parts):
        hint = (
            " (a bare name is ambiguous: use 'namespace/name' or './name')"
            if "/" not in repo_id
            else ""
        )
        raise ValueError(f"not a Hub repo id 'namespace/name' nor a local path: {repo_id!r}{hint}")
    if any(p.endswith((".git", ".")) or "--" in p or ".." in p for p in parts):
        raise ValueError(f"invalid Hub repo id {repo_id!r}")


def check_names(split: str, config_name: str | None) -> None:
    """Raise ``ValueError`` for a split or config name the Hub layout cannot hold.

    >>> check_names("train", None)
    >>> check_names("train/x", None)
    Traceback (most recent call last):
    ...
    ValueError: split must match ^\\w+(\\.\\w+)*$, got 'train/x'
    """
    if not _SPLIT.match(split):
        raise ValueError(f"split must match {_SPLIT.pattern}, got {split!r}")
    if config_name is not None and not _CONFIG.match(config_name):
        raise ValueError(f"config_name must match {_CONFIG.pattern}, got {config_name!r}")


def load_code(path: str, tag: str | None, split: str | None, config_name: str | None) -> str:
    """The ``load_dataset`` line that loads one version.

    >>> load_code("me/data", "v1.0.0", "train", None)
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


def release_code(target: str, version: str, split: str | None, config_name: str | None) -> str:
    """The ``hfgcot.load_release`` line that loads one version with its provenance.

    >>> release_code("me/data", "1.0.0", "train", None)
    "ds = hfgcot.load_release('me/data', version='1.0.0', split='train')"
    """
    args = [repr(target), f"version={version!r}"]
    if split:
        args.append(f"split={split!r}")
    if config_name not in (None, "default"):
        args.append(f"config_name={config_name!r}")
    return f"ds = hfgcot.load_release({', '.join(args)})"
