"""Publish datasets as immutable versions, on the Hugging Face Hub or in a local folder, and load
them back with their provenance.

    >>> from hfgcot import publish, load_release
    >>> publish(ds, "me/my-gcot", version="1.0.0")           # Hub: tag v1.0.0    # doctest: +SKIP
    >>> publish(ds, "./releases/my-gcot", version="1.0.0")   # local: ./releases/my-gcot/v1.0.0/  # doctest: +SKIP
    >>> ds = load_release("./releases/my-gcot", split="train")  # the latest version  # doctest: +SKIP

The backends: :mod:`~hfgcot.publishing.hub` (data, then card, then tag) and
:mod:`~hfgcot.publishing.local` (a folder per version, written atomically); which one a target
names, and what a version looks like: :mod:`~hfgcot.publishing.targets`. Only images that decode
are embedded (:mod:`~hfgcot.publishing.embedding`), and the token in effect never appears in a
log record, warning, error or card (:mod:`~hfgcot.publishing.redact`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from hfgcot.publishing.card import card_options
from hfgcot.publishing.embedding import prepare_images
from hfgcot.publishing.hub import (
    Retry,
    check_hub_version,
    hub_api,
    hub_tags,
    hub_versions,
    publish_hub,
    read_hub_provenance,
)
from hfgcot.publishing.local import (
    check_local_version,
    local_versions,
    publish_local,
    read_local_provenance,
    version_folder,
)
from hfgcot.publishing.provenance import set_provenance
from hfgcot.publishing.redact import redacting, token_in_effect
from hfgcot.publishing.targets import (
    MissingTokenError,
    PublishResult,
    Release,
    check_names,
    check_repo_id,
    is_local_target,
    latest_version,
    local_root,
    parse_version,
)
from hfgcot.splits import as_splits

__all__ = ["check_target", "load_release", "publish"]


def _rows(dataset: Any, split: str) -> dict[str, int]:
    try:
        return {name: len(ds) for name, ds in as_splits(dataset, split).items()}
    except TypeError:
        raise TypeError(
            f"publish takes a datasets.Dataset or DatasetDict, got {type(dataset).__name__}"
        ) from None


def _check(
    target: str | os.PathLike[str], version: str, token: str | None, retry: Retry
) -> tuple[Literal["hub", "local"], list[str], Any]:
    """``(backend, versions published so far, HfApi or None)``; raises when ``version`` exists,
    the target is invalid, or the Hub has no token to write with."""
    tag = f"v{version}"
    if is_local_target(target):
        root = local_root(target)
        check_local_version(root, tag)
        return "local", local_versions(root), None
    repo_id = str(target)
    check_repo_id(repo_id)
    if token_in_effect(token) is None:
        raise MissingTokenError(
            f"publishing to the Hub ({repo_id}) needs a token: set HF_TOKEN, run "
            "`hf auth login`, or pass token=..."
        )
    api = hub_api(token)
    return "hub", hub_versions(check_hub_version(api, repo_id, tag, retry)), api


def check_target(
    target: str | os.PathLike[str],
    version: str,
    *,
    token: str | None = None,
    retries: int = 5,
    backoff: float = 2.0,
) -> tuple[Literal["hub", "local"], str]:
    """Check that ``version`` can be published to ``target``; returns ``(backend, tag)``.

    Run it before a long pipeline (the CLI does): the target is valid, the version is free
    (Hub: no tag ``v<version>``; local: no folder) and, for the Hub, a token is in effect.

    Raises:
        VersionExistsError: the version exists (a ``FileExistsError``).
        MissingTokenError: a Hub target without a token (a ``ValueError``).
        ValueError: an invalid version or target.

    Example:
        >>> check_target("./releases/my-gcot", "1.0.0")   # doctest: +SKIP
        ('local', 'v1.0.0')
    """
    clean = parse_version(version)
    with redacting(token):
        backend, _, _ = _check(target, clean, token, Retry(retries, backoff))
    return backend, f"v{clean}"


def publish(
    dataset: Any,
    repo_id: str | os.PathLike[str],
    *,
    version: str,
    private: bool = False,
    token: str | None = None,
    split: str = "train",
    config_name: str | None = None,
    card: Mapping[str, Any] | Any | str | None = None,
    branch: str | None = None,
    commit_message: str | None = None,
    max_shard_size: int | str | None = None,
    image_columns: str | Sequence[str] | None = "auto",
    drop_bad_rows: bool = False,
    retries: int = 5,
    backoff: float = 2.0,
) -> PublishResult:
    """Publish ``dataset`` as an immutable version ``v<version>`` on the Hub or in a local folder.

    Args:
        dataset: a ``Dataset`` (written as ``split``) or a ``DatasetDict`` (all its splits).
        repo_id: ``"namespace/name"`` on the Hub, or a local folder (rule in
            :mod:`~hfgcot.publishing.targets`); the local version lands in ``<folder>/v<version>/``.
        version: semver-ish, ``"1.0.0"`` (a leading ``v`` is accepted); the tag is ``v1.0.0``.
        private: create a new Hub repo as private (an existing repo keeps its visibility).
        token: Hub token; default: ``HF_TOKEN`` or the ``hf auth login`` token.
        config_name: the dataset config (default ``"default"``).
        card: ``None`` (a card with provenance is generated), a dict of overrides (``pretty_name``,
            ``license``, ``description``, ``task_categories``, ``tags``, ``language``), or a
            ``DatasetCard``/text used as is (the backend still adds the data YAML).
        branch: Hub branch to commit to (default ``main``); the tag pins the commit either way.
        image_columns: string columns of image file paths to publish as images (embedded).
            ``"auto"``: string columns named ``image``/``*_image`` holding local paths; ``None``:
            none. ``Image`` columns are always embedded.
        drop_bad_rows: leave out the rows whose image cannot be embedded (the card and the
            result count them) instead of refusing to publish.
        retries, backoff: retries of the Hub calls huggingface_hub makes once, and the first
            delay in seconds.

    Returns:
        A :class:`~hfgcot.publishing.targets.PublishResult` (``load_code`` loads this version).

    Raises:
        VersionExistsError: the tag / version folder exists (checked before anything is written).
        BadRowsError: rows whose image cannot be embedded (missing or unreadable file, no image,
            a refused path, a URL), without ``drop_bad_rows``; nothing is written.
        MissingTokenError: a Hub target and no token.
        PublishError: tagging failed after the push, or an error carried the token (redacted).
        Other errors (``HfHubHTTPError``, ``OSError``...) propagate as they are.
        In every failure no tag (Hub) or version folder (local) is left behind.

    Example:
        >>> r = publish(ds, "me/my-gcot", version="1.0.0", card={"license": "apache-2.0"})  # doctest: +SKIP
        >>> r.load_code                                                                  # doctest: +SKIP
        "ds = load_dataset('me/my-gcot', revision='v1.0.0', split='train')"
    """
    clean = parse_version(version)
    check_names(split, config_name)
    _rows(dataset, split)
    options, fixed_card = card_options(card)
    retry = Retry(retries, backoff)
    with redacting(token) as secrets:
        backend, previous, api = _check(repo_id, clean, token, retry)
        data, dropped = prepare_images(dataset, split, image_columns, drop_bad_rows=drop_bad_rows)
        release = Release(
            dataset=data,
            version=clean,
            split=split,
            config_name=config_name,
            options=options,
            fixed_card=fixed_card,
            rows=_rows(data, split),
            dropped=dropped,
            previous=previous,
        )
        if backend == "local":
            return publish_local(
                release,
                local_root(repo_id),
                os.fspath(repo_id),
                max_shard_size=max_shard_size,
                secrets=secrets,
            )
        return publish_hub(
            release,
            str(repo_id),
            api=api,
            token=token,
            private=private,
            branch=branch,
            commit_message=commit_message,
            max_shard_size=max_shard_size,
            retry=retry,
            secrets=secrets,
        )


def _choose(versions: list[str], version: str | None, where: str) -> str:
    if version is None:
        latest = latest_version(versions)
        if latest is None:
            raise FileNotFoundError(f"no published versions in {where}")
        return latest
    clean = parse_version(version)
    if clean not in versions:
        have = ", ".join(versions) or "none"
        raise FileNotFoundError(f"no version {clean} in {where} (versions: {have})")
    return clean


def load_release(
    target: str | os.PathLike[str],
    version: str | None = None,
    split: str | None = None,
    *,
    config_name: str | None = None,
    token: str | None = None,
    retries: int = 5,
    backoff: float = 2.0,
    **load_kwargs: Any,
) -> Any:
    """Load exactly one published version, with its provenance (:func:`hfgcot.get_provenance`).

    Args:
        target: a Hub repo id or a local release folder (the one given to :func:`publish`).
        version: e.g. ``"1.0.0"``; default the latest: the highest version without a
            pre-release part (``-rc.1``), else the highest pre-release.
        split: a split name (returns a ``Dataset``), or ``None`` (a ``DatasetDict``).
        config_name: the dataset config, when the release has several.
        token: Hub token for a private repo (default: the one in effect).
        retries, backoff: retries of listing the Hub repo's tags, as for :func:`publish`.
        load_kwargs: passed to ``datasets.load_dataset`` (e.g. ``cache_dir``).

    Raises:
        FileNotFoundError: no such version (the message lists those published), or none at all.
        ValueError: an invalid version or target.

    Example:
        >>> ds = load_release("./releases/my-gcot", version="1.0.0", split="train")  # doctest: +SKIP
        >>> get_provenance(ds)[-1]["pipeline"]                                       # doctest: +SKIP
        'gcot'
    """
    from datasets import load_dataset

    with redacting(token):
        if is_local_target(target):
            root = local_root(target)
            chosen = _choose(local_versions(root), version, str(target))
            folder = version_folder(root, chosen)
            data = load_dataset(str(folder), name=config_name, split=split, **load_kwargs)
            return set_provenance(data, read_local_provenance(folder, config_name))
        repo_id = str(target)
        check_repo_id(repo_id)
        api = hub_api(token)
        chosen = _choose(
            hub_versions(hub_tags(api, repo_id, Retry(retries, backoff))), version, repo_id
        )
        tag = f"v{chosen}"
        data = load_dataset(
            repo_id, name=config_name, revision=tag, split=split, token=token, **load_kwargs
        )
        records = read_hub_provenance(api, repo_id, tag, config_name or "default")
        return set_provenance(data, records)
