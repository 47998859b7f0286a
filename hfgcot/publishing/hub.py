"""Publish datasets as immutable versions: on the Hugging Face Hub, or in a local folder.

    >>> from hfgcot import publish
    >>> publish(ds, "me/my-gcot", version="1.0.0")           # Hub: tag v1.0.0    # doctest: +SKIP
    >>> load_dataset("me/my-gcot", revision="v1.0.0", split="train")                # doctest: +SKIP
    >>> publish(ds, "./releases/my-gcot", version="1.0.0")   # local: ./releases/my-gcot/v1.0.0/  # doctest: +SKIP
    >>> load_dataset("./releases/my-gcot/v1.0.0", split="train")                    # doctest: +SKIP

**Hub.** The dataset card is committed, then ``Dataset.push_to_hub`` commits the Parquet shards
(``push_to_hub`` keeps the card's text and adds the ``configs``/``dataset_info`` YAML), then the
commit ``push_to_hub`` returned is tagged ``v<version>`` with ``HfApi.create_tag``. An existing tag is
refused before anything is pushed. Transient errors (HTTP 408/429/5xx, connection errors) are
retried with exponential back-off. The tag is the last step, so a failure never leaves a tag; rerun
the same call to finish.

**Local.** ``<folder>/v<version>/`` gets the Hub's layout (``data/<split>-00000-of-0000N.parquet``
and a ``README.md`` card with the same YAML), written to a temporary folder and renamed into place,
so a version appears complete or not at all and is never overwritten.

**Which backend.** A target is a local folder when it is an ``os.PathLike``, starts with ``/``,
``.``, ``~`` or ``file://``, contains a backslash or two or more ``/``, or is an existing local
directory. Anything else must be a Hub repo id ``namespace/name`` (``name`` alone is refused as
ambiguous: write ``./name`` for a folder).

The token is passed to ``huggingface_hub`` only: it never appears in logs, cards or error messages.
"""

from __future__ import annotations

import logging
import os
import random
import re
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar

from huggingface_hub import DatasetCard, HfApi

from hfgcot.publishing.card import merge_backend_metadata
from hfgcot.publishing.local import publish_local
from hfgcot.publishing.versions import (
    PublishError,
    PublishResult,
    VersionExistsError,
    load_code_for,
    make_card,
    parse_version,
)

logger = logging.getLogger(__name__)

__all__ = [
    "PublishError",
    "PublishResult",
    "VersionExistsError",
    "check_target",
    "embed_image_paths",
    "is_local_target",
    "parse_version",
    "publish",
]

T = TypeVar("T")

TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})
_SPLIT = re.compile(r"^\w+(\.\w+)*$")
_CONFIG = re.compile(r"^[A-Za-z0-9][\w.-]*$")
_REPO_PART = re.compile(r"^[A-Za-z0-9][\w.-]*$")


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


def _local_root(target: str | os.PathLike[str]) -> Path:
    t = os.fspath(target)
    if t.startswith("file://"):
        t = t[len("file://") :]
    return Path(os.path.expanduser(t))


def _check_repo_id(repo_id: str) -> None:
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


def _check_names(split: str, config_name: str | None) -> None:
    if not _SPLIT.match(split):
        raise ValueError(f"split must match {_SPLIT.pattern}, got {split!r}")
    if config_name is not None and not _CONFIG.match(config_name):
        raise ValueError(f"config_name must match {_CONFIG.pattern}, got {config_name!r}")


# ------------------------------------------------------------------------------------------
# Retries and secrets
# ------------------------------------------------------------------------------------------


def _status_of(exc: BaseException) -> int | None:
    """The HTTP status of ``exc`` or of the exception it wraps (datasets re-raises some)."""
    seen = 0
    while exc is not None and seen < 5:
        status = getattr(getattr(exc, "response", None), "status_code", None)
        if isinstance(status, int):
            return status
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
        seen += 1
    return None


def is_transient(exc: BaseException) -> bool:
    """HTTP 408/429/5xx, connection and timeout errors; never offline mode or a 4xx."""
    from huggingface_hub.errors import OfflineModeIsEnabled

    if isinstance(exc, OfflineModeIsEnabled):
        return False
    status = _status_of(exc)
    if status is not None:
        return status in TRANSIENT_STATUS
    if isinstance(exc, ConnectionError | TimeoutError):
        return True
    try:
        import httpx2

        if isinstance(exc, httpx2.TransportError):
            return True
    except ImportError:  # pragma: no cover - older huggingface_hub
        pass
    return type(exc).__module__.split(".")[0] in {"httpx", "httpx2", "requests", "urllib3"} and any(
        word in type(exc).__name__ for word in ("Connect", "Timeout", "Network", "Protocol")
    )


def _redact(text: str, token: str | None) -> str:
    return text.replace(token, "***") if token else text


def _retry_after(exc: BaseException) -> float | None:
    headers = getattr(getattr(exc, "response", None), "headers", None) or {}
    try:
        return float(headers.get("retry-after")) if headers.get("retry-after") else None
    except (TypeError, ValueError):
        return None


def call_with_retries(
    fn: Callable[[], T],
    *,
    what: str,
    retries: int = 5,
    backoff: float = 2.0,
    token: str | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """``fn()``, retried up to ``retries`` times on transient errors with exponential back-off
    (``backoff * 2**attempt`` seconds plus jitter, at most 60 s; a ``Retry-After`` header wins)."""
    for attempt in range(retries + 1):
        try:
            return fn()
        except Exception as exc:
            if attempt >= retries or not is_transient(exc):
                raise
            delay = _retry_after(exc) or min(60.0, backoff * 2**attempt) * (1 + random.random() / 4)
            logger.warning(
                "%s failed (%s: %s); retry %d/%d in %.1f s",
                what,
                type(exc).__name__,
                _redact(str(exc), token)[:300],
                attempt + 1,
                retries,
                delay,
            )
            sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


# ------------------------------------------------------------------------------------------
# Publishing
# ------------------------------------------------------------------------------------------


def _rows(dataset: Any, split: str) -> dict[str, int]:
    from datasets import Dataset, DatasetDict

    if isinstance(dataset, Dataset):
        return {split: len(dataset)}
    if isinstance(dataset, DatasetDict):
        return {name: len(ds) for name, ds in dataset.items()}
    raise TypeError(
        f"publish takes a datasets.Dataset or DatasetDict, got {type(dataset).__name__}"
    )


def _card_options(card: Any) -> tuple[Mapping[str, Any] | None, DatasetCard | None]:
    if card is None or isinstance(card, Mapping):
        return card, None
    if isinstance(card, DatasetCard):
        return None, DatasetCard(str(card))
    if isinstance(card, str):
        return None, DatasetCard(card)
    raise TypeError("card must be None, a dict of card options, a DatasetCard or its text")


def check_target(
    target: str | os.PathLike[str],
    version: str,
    *,
    token: str | None = None,
    retries: int = 5,
    backoff: float = 2.0,
) -> tuple[Literal["hub", "local"], str]:
    """Validate ``target`` and ``version`` and make sure the version does not exist yet.

    Run it before a long pipeline (the CLI does) to fail early. Returns ``(backend, tag)``.
    Raises :class:`VersionExistsError` or ``ValueError``.
    """
    tag = "v" + parse_version(version)
    if is_local_target(target):
        path = _local_root(target) / tag
        if path.exists():
            raise VersionExistsError(f"{path} exists: versions are never overwritten")
        return "local", tag
    repo_id = str(target)
    _check_repo_id(repo_id)
    api = HfApi(token=token)
    tags = call_with_retries(
        lambda: _hub_tags(api, repo_id),
        what="list tags",
        retries=retries,
        backoff=backoff,
        token=token,
    )
    if tag in tags:
        raise VersionExistsError(
            f"{repo_id} already has tag {tag}: versions are never overwritten, publish a new one"
        )
    return "hub", tag


def publish(
    dataset: Any,
    repo_id: str | os.PathLike[str],
    *,
    version: str,
    private: bool = False,
    token: str | None = None,
    split: str = "train",
    config_name: str | None = None,
    card: Mapping[str, Any] | DatasetCard | str | None = None,
    branch: str | None = None,
    commit_message: str | None = None,
    max_shard_size: int | str | None = None,
    image_columns: str | Sequence[str] | None = "auto",
    retries: int = 5,
    backoff: float = 2.0,
) -> PublishResult:
    """Publish ``dataset`` as an immutable version ``v<version>`` on the Hub or in a local folder.

    Args:
        dataset: a ``Dataset`` (written as ``split``) or a ``DatasetDict`` (all its splits).
        repo_id: ``"namespace/name"`` on the Hub, or a local folder (see the module doc for the
            rule); the local version lands in ``<folder>/v<version>/``.
        version: semver-ish, ``"1.0.0"`` (a leading ``v`` is accepted); the tag is ``v1.0.0``.
        private: create a new Hub repo as private (an existing repo keeps its visibility).
        token: Hub token; default: ``HF_TOKEN`` or the ``hf auth login`` token.
        config_name: the dataset config (default ``"default"``).
        card: ``None`` (a card with provenance is generated), a dict of overrides (``pretty_name``,
            ``license``, ``description``, ``task_categories``, ``tags``, ``language``), or a
            ``DatasetCard``/text used as is (the backend still adds the data YAML).
        branch: Hub branch to commit to (default ``main``); the tag pins the commit either way.
        image_columns: string columns of image file paths to publish as images (the files are
            embedded in the Parquet shards, paths on your disk would be useless to others).
            ``"auto"``: string columns named ``image``/``*_image`` whose first values are existing
            files; ``None``: none.
        retries, backoff: retries of transient Hub errors and the first delay in seconds.

    Returns:
        A :class:`PublishResult` (``load_code`` loads exactly this version).

    Raises:
        VersionExistsError: the tag / version folder exists (checked before anything is written).
        PublishError: tagging failed after the push, or an error carried the token (redacted).
        Other errors (``HfHubHTTPError`` after the retries, ``OSError``...) propagate as they are.
        In every failure no tag (Hub) or version folder (local) is left behind.

    Example:
        >>> r = publish(ds, "me/my-gcot", version="1.0.0", card={"license": "apache-2.0"})  # doctest: +SKIP
        >>> r.load_code                                                                  # doctest: +SKIP
        "ds = load_dataset('me/my-gcot', revision='v1.0.0', split='train')"
    """
    clean = parse_version(version)
    _check_names(split, config_name)
    rows = _rows(dataset, split)
    options, fixed_card = _card_options(card)
    dataset = embed_image_paths(dataset, image_columns)
    if is_local_target(repo_id):
        return publish_local(
            dataset,
            _local_root(repo_id),
            clean,
            os.fspath(repo_id),
            rows,
            split,
            config_name,
            options,
            fixed_card,
            max_shard_size,
        )
    repo = str(repo_id)
    _check_repo_id(repo)
    try:
        return _publish_hub(
            dataset,
            repo,
            clean,
            rows,
            split,
            config_name,
            options,
            fixed_card,
            private=private,
            token=token,
            branch=branch,
            commit_message=commit_message,
            max_shard_size=max_shard_size,
            retries=retries,
            backoff=backoff,
        )
    except Exception as exc:
        if token and token in _chain_text(exc):  # never let a token reach a traceback or a log
            cls = type(exc) if isinstance(exc, PublishError) else PublishError
            raise cls(_redact(f"{type(exc).__name__}: {exc}", token)) from None
        raise


def _chain_text(exc: BaseException | None) -> str:
    parts, seen = [], 0
    while exc is not None and seen < 10:
        parts.append(f"{exc!s} {exc.args!r}")
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return "\n".join(parts)


def _path_column(ds: Any, column: str) -> bool:
    """A string column whose first (up to 5) non-empty values are existing local files."""
    values = [v for v in ds.select(range(min(len(ds), 50)))[column] if v][:5]
    return bool(values) and all(isinstance(v, str) and os.path.isfile(v) for v in values)


def embed_image_paths(dataset: Any, image_columns: str | Sequence[str] | None = "auto") -> Any:
    """Cast string columns of image paths to the ``Image`` feature so publishing embeds the files.

    ``"auto"`` picks string columns named ``image`` or ending in ``_image`` whose first values are
    existing files; a name or list of names casts those columns; ``None`` changes nothing.
    """
    from datasets import Dataset, DatasetDict, Image, Value

    if image_columns is None:
        return dataset
    if isinstance(dataset, DatasetDict):
        return DatasetDict({k: embed_image_paths(v, image_columns) for k, v in dataset.items()})
    if not isinstance(dataset, Dataset):
        return dataset
    strings = [c for c, f in dataset.features.items() if f == Value("string")]
    if image_columns == "auto":
        chosen = [
            c
            for c in strings
            if (c == "image" or c.endswith("_image")) and _path_column(dataset, c)
        ]
    else:
        chosen = [image_columns] if isinstance(image_columns, str) else list(image_columns)
        missing = [c for c in chosen if c not in strings and c not in dataset.column_names]
        if missing:
            raise KeyError(f"image column(s) {missing} not in the dataset")
        chosen = [c for c in chosen if c in strings]
    for column in chosen:
        logger.info("publishing column %r (image paths) as images, files embedded", column)
        dataset = dataset.cast_column(column, Image())
    return dataset


def _hub_tags(api: Any, repo_id: str) -> dict[str, str]:
    """``{tag name: commit}`` of a Hub dataset repo; ``{}`` when the repo does not exist."""
    from huggingface_hub.errors import RepositoryNotFoundError

    try:
        refs = api.list_repo_refs(repo_id, repo_type="dataset")
    except RepositoryNotFoundError:
        return {}
    return {t.name: t.target_commit for t in refs.tags}


def _remote_card(api: Any, repo_id: str, branch: str | None) -> DatasetCard | None:
    from huggingface_hub.errors import EntryNotFoundError, RevisionNotFoundError

    try:
        path = api.hf_hub_download(repo_id, "README.md", repo_type="dataset", revision=branch)
    except (EntryNotFoundError, RevisionNotFoundError):
        return None
    return DatasetCard.load(path)


def _publish_hub(
    dataset: Any,
    repo_id: str,
    version: str,
    rows: dict[str, int],
    split: str,
    config_name: str | None,
    options: Mapping[str, Any] | None,
    fixed_card: DatasetCard | None,
    *,
    private: bool,
    token: str | None,
    branch: str | None,
    commit_message: str | None,
    max_shard_size: int | str | None,
    retries: int,
    backoff: float,
) -> PublishResult:
    import hfgcot

    tag = f"v{version}"
    api = HfApi(token=token)

    def retry(fn: Callable[[], T], what: str) -> T:
        return call_with_retries(fn, what=what, retries=retries, backoff=backoff, token=token)

    # 1. refuse an existing version before writing anything
    if tag in retry(lambda: _hub_tags(api, repo_id), "list tags"):
        raise VersionExistsError(
            f"{repo_id} already has tag {tag}: versions are never overwritten, publish a new one"
        )
    load_code = load_code_for(repo_id, tag, split if len(rows) == 1 else None, config_name)
    card = make_card(dataset, version, load_code, split, config_name, options, fixed_card, repo_id)

    # 2. the card (keeping the data YAML of configs pushed before), then the data
    retry(
        lambda: api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True),
        "create repo",
    )
    if branch:
        retry(
            lambda: api.create_branch(repo_id, branch=branch, repo_type="dataset", exist_ok=True),
            "create branch",
        )
    card = merge_backend_metadata(
        card, retry(lambda: _remote_card(api, repo_id, branch), "read card")
    )
    retry(
        lambda: api.upload_file(
            path_or_fileobj=str(card).encode("utf-8"),
            path_in_repo="README.md",
            repo_id=repo_id,
            repo_type="dataset",
            revision=branch,
            commit_message=f"Dataset card for {tag} (hfgcot {hfgcot.__version__})",
        ),
        "upload card",
    )
    push_kwargs: dict[str, Any] = {
        "commit_message": commit_message or f"Publish {tag} with hfgcot {hfgcot.__version__}",
        "private": private,
        "token": token,
        "revision": branch,
        "max_shard_size": max_shard_size,
    }
    if config_name is not None:
        push_kwargs["config_name"] = config_name
    if len(rows) == 1 and split in rows and not hasattr(dataset, "keys"):
        push_kwargs["split"] = split
    info = retry(lambda: dataset.push_to_hub(repo_id, **push_kwargs), "push_to_hub")
    commit = getattr(info, "oid", None)
    if not commit:
        raise PublishError(f"push_to_hub returned no commit id for {repo_id}; no tag was created")

    # 3. the tag, last: a failure above never leaves one
    _create_tag(api, repo_id, tag, commit, rows, retry)
    url = f"https://huggingface.co/datasets/{repo_id}/tree/{tag}"
    logger.info("published %s rows to %s as %s (commit %s)", rows, repo_id, tag, commit)
    return PublishResult("hub", repo_id, version, tag, url, commit, rows, card, load_code)


def _create_tag(
    api: Any, repo_id: str, tag: str, commit: str, rows: dict[str, int], retry: Callable
) -> None:
    import hfgcot

    message = f"hfgcot {hfgcot.__version__}: " + ", ".join(f"{s} {n} rows" for s, n in rows.items())
    try:
        retry(
            lambda: api.create_tag(
                repo_id, tag=tag, tag_message=message, revision=commit, repo_type="dataset"
            ),
            "create tag",
        )
    except Exception as exc:
        if _status_of(exc) == 409:  # exists: ours (a retried call that had succeeded) or a race
            try:
                existing = retry(lambda: _hub_tags(api, repo_id), "list tags").get(tag)
            except Exception:  # noqa: BLE001 - report the original conflict below
                existing = None
            if existing == commit:
                return
            raise VersionExistsError(
                f"{repo_id}: tag {tag} was created by someone else meanwhile (commit {existing}); "
                f"this data is commit {commit}, untagged"
            ) from exc
        raise PublishError(
            f"{repo_id}: the data was pushed as commit {commit} but creating tag {tag} failed "
            f"({type(exc).__name__}); no tag was created. Rerun publish with the same version."
        ) from exc
