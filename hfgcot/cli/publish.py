"""Publishing from a pipeline subcommand: ``--push-to-hub REPO --version V`` checked before the
run, the saved result published after it (:func:`hfgcot.publish`).

    >>> import argparse
    >>> check_publish_args(argparse.Namespace(push_to_hub=None, version=None))
"""

from __future__ import annotations

import argparse
from typing import Any

__all__ = [
    "add_drop_bad_rows",
    "add_publish_args",
    "check_publish_args",
    "print_published",
    "publish_if_requested",
]


def add_publish_args(p: argparse.ArgumentParser) -> None:
    """``--push-to-hub REPO --version V [--private]``: publish the result after saving it."""
    g = p.add_argument_group("publish the result")
    g.add_argument(
        "--push-to-hub",
        metavar="REPO",
        help="a Hub repo 'namespace/name' or a local folder ('./dir')",
    )
    g.add_argument("--version", help="dataset version for --push-to-hub, e.g. 1.0.0")
    g.add_argument("--private", action="store_true", help="create a new Hub repo as private")
    add_drop_bad_rows(g)


def add_drop_bad_rows(p: Any) -> None:
    """``--drop-bad-rows``: publish without the rows whose image cannot be embedded."""
    p.add_argument(
        "--drop-bad-rows",
        action="store_true",
        help="leave out rows whose image cannot be embedded (missing, undecodable, outside the "
        "input folder) instead of refusing to publish; the card records how many",
    )


def check_publish_args(args: argparse.Namespace) -> None:
    """Fail before a long run: ``--version`` present and valid, the version not yet published."""
    if args.push_to_hub is None:
        if args.version is not None:
            raise ValueError("--version is only used with --push-to-hub")
        return
    if not args.version:
        raise ValueError("--push-to-hub needs --version (e.g. --version 1.0.0)")
    from hfgcot.publishing.release import check_target

    check_target(args.push_to_hub, args.version)


def publish_if_requested(args: argparse.Namespace, dataset: Any) -> None:
    """Publish ``dataset`` when ``--push-to-hub`` was given; prints where and how to load it."""
    if args.push_to_hub is None:
        return
    from hfgcot import publish

    result = publish(
        dataset,
        args.push_to_hub,
        version=args.version,
        private=args.private,
        drop_bad_rows=args.drop_bad_rows,
    )
    print_published(result)


def print_published(result: Any) -> None:
    """Where a :class:`hfgcot.PublishResult` went and how to load it."""
    print(f"published {result.tag} ({result.rows}) -> {result.location}")
    print(f"load it:  {result.load_code}")
