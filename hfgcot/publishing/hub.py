"""The Hugging Face Hub backend of :func:`hfgcot.publish`: data, then card, then tag.

1. ``Dataset.push_to_hub`` commits the Parquet shards (and its ``configs``/``dataset_info``
   YAML in ``README.md``, keeping the card text that was there);
2. one commit, on top of that data commit (``parent_commit``), writes the new card (the data YAML
   merged in) and the provenance file ``provenance/<config>.json``;
3. ``HfApi.create_tag`` tags that commit ``v<version>``.

A failure at step 1 leaves the repo as it was; at step 2 the previous card stays on top of the
new data; the tag is never created before both. An existing tag is refused before anything is
pushed. Rerun the same call to finish a failed publish.

**Retries.** ``huggingface_hub`` (checked with 2.4) retries the uploads ``push_to_hub`` makes
(pre-upload, LFS/Xet transfers: HTTP 408/429/5xx, timeouts, network errors) and file downloads,
and ``datasets`` retries its own commit on a conflict, so those calls are made once here. The
metadata calls it makes once - listing tags, creating the repo or branch, the card commit and the
tag - are retried by :func:`call_with_retries` (transient errors only, exponential back-off).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any, TypeVar

from huggingface_hub import CommitOperationAdd, DatasetCard, HfApi

from hfgcot.publishing.card import card_for, merge_backend_metadata
from hfgcot.publishing.provenance import PROVENANCE_FILE, dataset_records, dump_records
from hfgcot.publishing.redact import redact
from hfgcot.publishing.targets import (
    PublishError,
    PublishResult,
    Release,
    VersionExistsError,
    load_code,
    release_code,
    tag_version,
    version_key,
)

logger = logging.getLogger(__name__)

__all__ = [
    "Retry",
    "call_with_retries",
    "check_hub_version",
    "hub_api",
    "hub_tags",
    "hub_versions",
    "is_transient",
    "publish_hub",
    "read_hub_provenance",
]

T = TypeVar("T")

TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})


def status_of(exc: BaseException) -> int | None:
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
    status = status_of(exc)
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


def retry_after(exc: BaseException) -> float | None:
    """The ``Retry-After`` header of the response ``exc`` carries, in seconds."""
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
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """``fn()``, retried up to ``retries`` times on transient errors with exponential back-off
    (``backoff * 2**attempt`` seconds plus jitter, at most 60 s; a ``Retry-After`` header wins).
    Only for calls ``huggingface_hub`` makes once (see the module doc)."""
    for attempt in range(retries + 1):
        try:
            return fn()
        except Exception as exc:
            if attempt >= retries or not is_transient(exc):
                raise
            delay = retry_after(exc) or min(60.0, backoff * 2**attempt) * (1 + random.random() / 4)
            logger.warning(
                "%s failed (%s: %s); retry %d/%d in %.1f s",
                what,
                type(exc).__name__,
                str(exc)[:300],
                attempt + 1,
                retries,
                delay,
            )
            sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


@dataclass(frozen=True)
class Retry:
    """:func:`call_with_retries` with fixed settings: ``retry(fn, "what")``."""

    retries: int = 5
    backoff: float = 2.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)

    def __call__(self, fn: Callable[[], T], what: str) -> T:
        return call_with_retries(
            fn, what=what, retries=self.retries, backoff=self.backoff, sleep=self.sleep
        )


def hub_api(token: str | None) -> HfApi:
    """The ``HfApi`` client all calls of one publish share."""
    return HfApi(token=token)


def hub_tags(api: Any, repo_id: str, retry: Retry) -> dict[str, str]:
    """``{tag name: commit}`` of a Hub dataset repo; ``{}`` when the repo does not exist."""
    from huggingface_hub.errors import RepositoryNotFoundError

    def refs() -> dict[str, str]:
        try:
            found = api.list_repo_refs(repo_id, repo_type="dataset")
        except RepositoryNotFoundError:
            return {}
        return {t.name: t.target_commit for t in found.tags}

    return retry(refs, "list tags")


def hub_versions(tags: Collection[str]) -> list[str]:
    """The versions among tag names ``v<version>``, oldest first.

    >>> hub_versions(["v1.10.0", "main-backup", "v1.2.0"])
    ['1.2.0', '1.10.0']
    """
    return sorted((v for v in map(tag_version, tags) if v), key=version_key)


def check_hub_version(api: Any, repo_id: str, tag: str, retry: Retry) -> dict[str, str]:
    """The repo's tags; :class:`VersionExistsError` when ``tag`` is one of them."""
    tags = hub_tags(api, repo_id, retry)
    if tag in tags:
        raise VersionExistsError(
            f"{repo_id} already has tag {tag}: versions are never overwritten, publish a new one"
        )
    return tags


def _push_data(release: Release, repo_id: str, **push_kwargs: Any) -> str:
    """Step 1: ``push_to_hub`` (its uploads are retried by huggingface_hub); the commit id."""
    from datasets import Dataset

    import hfgcot

    default_message = f"Publish {release.tag} with hfgcot {hfgcot.__version__}"
    push_kwargs["commit_message"] = push_kwargs.get("commit_message") or default_message
    if release.config_name is not None:
        push_kwargs["config_name"] = release.config_name
    if isinstance(release.dataset, Dataset):
        push_kwargs["split"] = release.split
    info = release.dataset.push_to_hub(repo_id, **push_kwargs)
    commit = getattr(info, "oid", None)
    if not commit:
        raise PublishError(f"push_to_hub returned no commit id for {repo_id}; no tag was created")
    return commit


def _remote_card(api: Any, repo_id: str, revision: str) -> DatasetCard | None:
    from huggingface_hub.errors import EntryNotFoundError, RevisionNotFoundError

    try:
        path = api.hf_hub_download(repo_id, "README.md", repo_type="dataset", revision=revision)
    except (EntryNotFoundError, RevisionNotFoundError):
        return None
    return DatasetCard.load(path)


def _commit_card(
    api: Any,
    repo_id: str,
    release: Release,
    card: DatasetCard,
    data_commit: str,
    *,
    branch: str | None,
    retry: Retry,
    secrets: Collection[str],
) -> tuple[DatasetCard, str]:
    """Step 2: the card (with the data YAML of ``data_commit``) and the provenance file, in one
    commit on top of the data commit; returns the card written and the commit id."""
    import hfgcot

    card = merge_backend_metadata(card, _remote_card(api, repo_id, data_commit))
    provenance = redact(dump_records(dataset_records(release.dataset)), secrets)
    operations = [
        CommitOperationAdd(path_in_repo="README.md", path_or_fileobj=str(card).encode()),
        CommitOperationAdd(
            path_in_repo=PROVENANCE_FILE.format(config=release.config),
            path_or_fileobj=provenance.encode(),
        ),
    ]
    info = retry(
        lambda: api.create_commit(
            repo_id,
            operations=operations,
            commit_message=f"Dataset card for {release.tag} (hfgcot {hfgcot.__version__})",
            repo_type="dataset",
            revision=branch,
            parent_commit=data_commit,
        ),
        "commit card",
    )
    commit = getattr(info, "oid", None)
    if not commit:
        raise PublishError(f"the card commit returned no id for {repo_id}; no tag was created")
    return card, commit


def _create_tag(api: Any, repo_id: str, release: Release, commit: str, retry: Retry) -> None:
    """Step 3: tag ``commit``; a tag that a lost answer already created is accepted."""
    import hfgcot

    tag = release.tag
    rows = ", ".join(f"{s} {n} rows" for s, n in release.rows.items())
    message = f"hfgcot {hfgcot.__version__}: {rows}"
    try:
        retry(
            lambda: api.create_tag(
                repo_id, tag=tag, tag_message=message, revision=commit, repo_type="dataset"
            ),
            "create tag",
        )
    except Exception as exc:
        if status_of(exc) == 409:  # exists: ours (a retried call that had succeeded) or a race
            try:
                existing = hub_tags(api, repo_id, retry).get(tag)
            except Exception:  # noqa: BLE001 - report the original conflict below
                existing = None
            if existing == commit:
                return
            raise VersionExistsError(
                f"{repo_id}: tag {tag} was created by someone else meanwhile (commit {existing}); "
                f"this data is commit {commit}, untagged"
            ) from exc
        raise PublishError(
            f"{repo_id}: the data and card were pushed as commit {commit} but creating tag {tag} "
            f"failed ({type(exc).__name__}); no tag was created. Rerun publish with the same "
            "version."
        ) from exc


def publish_hub(
    release: Release,
    repo_id: str,
    *,
    api: Any,
    token: str | None,
    private: bool,
    branch: str | None,
    commit_message: str | None,
    max_shard_size: int | str | None,
    retry: Retry,
    secrets: Collection[str] = (),
) -> PublishResult:
    """Create the repo (and branch), then data, card and tag (module doc); called by
    :func:`hfgcot.publish` after :func:`check_hub_version`."""
    split = release.split if len(release.rows) == 1 else None
    card = card_for(
        release,
        load_code(repo_id, release.tag, split, release.config_name),
        target=repo_id,
        release_call=release_code(repo_id, release.version, split, release.config_name),
        secrets=secrets,
    )
    retry(
        lambda: api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True),
        "create repo",
    )
    if branch:
        retry(
            lambda: api.create_branch(repo_id, branch=branch, repo_type="dataset", exist_ok=True),
            "create branch",
        )
    data_commit = _push_data(
        release,
        repo_id,
        commit_message=commit_message,
        private=private,
        token=token,
        revision=branch,
        max_shard_size=max_shard_size,
    )
    card, commit = _commit_card(
        api, repo_id, release, card, data_commit, branch=branch, retry=retry, secrets=secrets
    )
    _create_tag(api, repo_id, release, commit, retry)
    url = f"https://huggingface.co/datasets/{repo_id}/tree/{release.tag}"
    logger.info(
        "published %s rows to %s as %s (commit %s)", release.rows, repo_id, release.tag, commit
    )
    return PublishResult(
        backend="hub",
        target=repo_id,
        version=release.version,
        tag=release.tag,
        location=url,
        commit=commit,
        rows=release.rows,
        card=card,
        load_code=load_code(repo_id, release.tag, split, release.config_name),
        dropped=release.dropped_rows,
    )


def read_hub_provenance(api: Any, repo_id: str, tag: str, config: str) -> list[dict[str, Any]]:
    """The provenance records of one Hub release (``[]`` for a release without the file)."""
    from huggingface_hub.errors import EntryNotFoundError

    from hfgcot.publishing.provenance import load_records

    name = PROVENANCE_FILE.format(config=config)
    try:
        path = api.hf_hub_download(repo_id, name, repo_type="dataset", revision=tag)
    except EntryNotFoundError:
        logger.warning("%s@%s has no %s: no provenance records", repo_id, tag, name)
        return []
    with open(path, encoding="utf-8") as handle:
        return load_records(handle.read())
