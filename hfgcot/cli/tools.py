"""The subcommands on saved datasets: ``evaluate``, ``draw``, ``config``, ``publish``, ``demo``.

Their options come from the library functions they call (:func:`hfgcot.cli.flags.signature_flags`):
``evaluate grounding`` takes every keyword of :func:`hfgcot.evaluate_grounding`, ``draw`` every
keyword of :func:`hfgcot.demo.write_pictures`.

    >>> sorted(TOOLS)
    ['config', 'demo', 'draw', 'evaluate', 'publish']

``view`` (the HTML viewer, :data:`VIEWER`) is added when its module is installed.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hfgcot.cli.errors import checking
from hfgcot.cli.flags import add_flags, dataclass_flags, signature_flags
from hfgcot.cli.publish import add_drop_bad_rows

if TYPE_CHECKING:
    from hfgcot.cli.inputs import InputOptions

__all__ = ["TOOLS", "VIEWER", "add_tool_parsers", "print_run_config", "tools"]

_RAW = argparse.RawDescriptionHelpFormatter
_METRICS = {
    "grounding": "hfgcot.evaluation:evaluate_grounding",
    "gcot": "hfgcot.evaluation:evaluate_gcot",
}
_DRAW = "hfgcot.demo:write_pictures"
_DEMO = "hfgcot.demo:run_demo"

PUBLISH_EXAMPLE = """example:
  hfgcot publish out/gcot me/my-gcot --version 1.0.0          # Hub: tag v1.0.0
  hfgcot publish out/gcot ./releases/my-gcot --version 1.0.0  # local: ./releases/my-gcot/v1.0.0/

  The token comes from HF_TOKEN or `hf auth login`. A target is a local folder when it starts with
  '/', '.', '~' or 'file://', has two or more '/', or exists locally; else a Hub repo 'namespace/name'.
  Load it back with load_dataset("me/my-gcot", revision="v1.0.0").
"""


def _resolve(target: str) -> Callable[..., Any]:
    from hfgcot.cli.commands import PipelineCommand

    return PipelineCommand.resolve(target)


def _add_source(p: argparse.ArgumentParser, what: str) -> None:
    from hfgcot.cli.inputs import InputOptions

    p.add_argument("dataset", help=f"{what}: saved dataset folder, .jsonl file or Hub id")
    add_flags(p, dataclass_flags(InputOptions, skip=("image_root", "embed_images")))
    p.add_argument("--overwrite", action="store_true", help="replace an existing --output")
    p.add_argument("--debug", action="store_true", help="show the traceback of an error")


def _source(args: argparse.Namespace) -> InputOptions:
    """The input options typed, checked with the input (call it inside ``checking()``)."""
    from hfgcot.cli.inputs import InputOptions

    inputs = InputOptions.of(vars(args))
    inputs.check(args.dataset)
    return inputs


def _typed(args: argparse.Namespace, func: Callable[..., Any], skip: tuple[str, ...]) -> dict:
    names = [f.name for f in signature_flags(func, skip=skip)]
    return {k: v for k, v in vars(args).items() if k in names}


def _new_file(path: str, overwrite: bool) -> Path:
    """A file to write at the end, checked now: none there yet, or ``--overwrite``."""
    out = Path(path)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{path} exists: choose another file or pass --overwrite")
    return out


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def _cmd_evaluate(args: argparse.Namespace) -> int:
    func = _resolve(_METRICS[args.metrics])
    with checking():
        inputs = _source(args)
        output = _new_file(args.output, args.overwrite) if args.output else None
    metrics = func(inputs.load(args.dataset), **_typed(args, func, ("dataset",)))
    text = json.dumps(metrics, indent=2)
    print(text)
    if output is not None:
        _write(output, text + "\n")
    return 0


def _add_evaluate(sub: Any) -> None:
    p = sub.add_parser(
        "evaluate",
        help="grounding or GCoT metrics of a saved dataset, as JSON",
        description="Print the metrics as JSON (and write them with --output).",
    )
    kinds = p.add_subparsers(dest="metrics", required=True, metavar="METRICS")
    for name, target in _METRICS.items():
        func = _resolve(target)
        k = kinds.add_parser(
            name,
            help=(func.__doc__ or "").strip().splitlines()[0],
            description=(func.__doc__ or "").strip().split("\n\n")[0],
        )
        _add_source(k, "the dataset to score")
        k.add_argument("--output", metavar="FILE", help="also write the metrics to this JSON file")
        add_flags(
            k.add_argument_group(f"options of hfgcot.{func.__name__}"),
            signature_flags(func, skip=("dataset",)),
        )


def _cmd_draw(args: argparse.Namespace) -> int:
    from hfgcot.cli.outputs import check_output

    func = _resolve(_DRAW)
    with checking():
        inputs = _source(args)
        check_output(args.dataset, args.output, args.overwrite)
    ds = inputs.load(args.dataset)
    grid_path, index_path = func(ds, args.output, **_typed(args, func, ("rows", "folder")))
    print(f"{len(ds)} rows -> {grid_path}, {index_path} (and row_NNN.png)")
    return 0


def _add_draw(sub: Any) -> None:
    func = _resolve(_DRAW)
    p = sub.add_parser(
        "draw",
        help="pictures of a saved dataset: grid PNG and HTML page, as the demo writes them",
        description=(func.__doc__ or "").split("\n\n")[1],
        epilog="example:\n  hfgcot draw out/gcot --output out/pictures --limit 12\n"
        "  hfgcot draw out/regions --output out/pic --image-column image_with_bbox "
        "--text-column answer --groundings-column none --status-column region_caption_status\n",
        formatter_class=_RAW,
    )
    _add_source(p, "the dataset to draw")
    p.add_argument("--output", required=True, metavar="DIR", help="folder for the pictures")
    add_flags(
        p.add_argument_group("options of hfgcot.demo.write_pictures"),
        signature_flags(func, skip=("rows", "folder")),
    )


def _run_configs(args: argparse.Namespace) -> list[dict[str, Any]]:
    """The provenance records of a saved dataset or a release that carry a run config."""
    from hfgcot import get_provenance

    if (Path(args.dataset) / "dataset_info.json").exists():
        from datasets import load_from_disk

        data = load_from_disk(args.dataset)
    else:
        from hfgcot import load_release

        data = load_release(args.dataset, args.version)
    splits = [data] if hasattr(data, "info") else list(data.values())
    records = [r for ds in splits for r in get_provenance(ds)]
    return [r for r in records if isinstance(r.get("run_config"), dict)]


def print_run_config(record: dict[str, Any]) -> str:
    """A record's run config as YAML, with a header saying how to run it again."""
    from hfgcot.cli.commands import command_for_record
    from hfgcot.config_files import dump_run_config

    config = record["run_config"]
    command = command_for_record(str(config.get("pipeline")))
    name = command.name if command else config.get("pipeline")
    header = (
        f"run config of a {config.get('pipeline')} run ({record.get('created_at')}, hfgcot "
        f"{record.get('hfgcot_version')}); run it again with\n"
        f"  hfgcot {name} --config <this file> --input <the same input> --output <folder>"
    )
    if str(config.get("revision", "")).startswith("local:"):
        header += f"\nand --model <the folder of {config.get('model')}> (a local model)"
    return dump_run_config(config, header)


def _cmd_config(args: argparse.Namespace) -> int:
    from hfgcot.model.spec import looks_like_path

    with checking():
        if looks_like_path(args.dataset) and not Path(args.dataset).expanduser().exists():
            raise FileNotFoundError(
                f"{args.dataset} does not exist: give a saved dataset folder "
                "or a release (Hub repo or folder)"
            )
        output = _new_file(args.output, args.overwrite) if args.output else None
    records = _run_configs(args)
    with checking():
        if not records:
            raise ValueError(
                f"{args.dataset} records no run config (no hfgcot pipeline made it, or one "
                "older than run configs)"
            )
        if not 1 <= args.record <= len(records) and args.record != -1:
            raise ValueError(
                f"--record must be 1..{len(records)} (or -1, the last), got {args.record}"
            )
    text = print_run_config(records[args.record - 1 if args.record > 0 else -1])
    print(text, end="")
    if output is not None:
        _write(output, text)
    return 0


def _add_config(sub: Any) -> None:
    p = sub.add_parser(
        "config",
        help="print the run config of a saved dataset or release (YAML for --config)",
        description="Print the config a pipeline run recorded in the dataset's provenance, as a "
        "file for `hfgcot <pipeline> --config`: the same options give the same rows.",
        epilog="example:\n  hfgcot config out/gcot > run.yaml\n"
        "  hfgcot gcot --config run.yaml --input data/q.jsonl --output out/again\n"
        "  hfgcot config me/my-gcot --version 1.0.0     # a release (Hub or local folder)\n",
        formatter_class=_RAW,
    )
    p.add_argument("dataset", help="saved dataset folder, or a release (Hub repo or folder)")
    p.add_argument("--version", help="the release's version (default: the latest)")
    p.add_argument(
        "--record", type=int, default=-1, help="which run, 1 = the first (default: last)"
    )
    p.add_argument("--output", metavar="FILE", help="also write the YAML to this file")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --output")
    p.add_argument("--debug", action="store_true", help="show the traceback of an error")


def _cmd_publish(args: argparse.Namespace) -> int:
    from datasets import load_from_disk

    from hfgcot import publish
    from hfgcot.cli.publish import print_published
    from hfgcot.publishing.release import check_target

    with checking():
        folder = Path(args.dataset).expanduser()
        if not any(
            (folder / name).is_file() for name in ("dataset_info.json", "dataset_dict.json")
        ):
            raise FileNotFoundError(
                f"{args.dataset} is not a saved dataset folder (written by Dataset.save_to_disk)"
            )
        check_target(args.repo_id, args.version)

    card = {
        k: v for k, v in {"license": args.license, "pretty_name": args.pretty_name}.items() if v
    }
    result = publish(
        load_from_disk(args.dataset),
        args.repo_id,
        version=args.version,
        private=args.private,
        split=args.split,
        config_name=args.config_name,
        card=card or None,
        drop_bad_rows=args.drop_bad_rows,
    )
    print_published(result)
    return 0


def _add_publish(sub: Any) -> None:
    p = sub.add_parser(
        "publish",
        help="publish a saved dataset as a version on the Hub or in a local folder",
        description="Push a dataset saved with save_to_disk, with a dataset card carrying its "
        "provenance, and tag it v<version>. Versions are never overwritten.",
        epilog=PUBLISH_EXAMPLE,
        formatter_class=_RAW,
    )
    p.add_argument("dataset", help="folder written by Dataset.save_to_disk")
    p.add_argument("repo_id", help="Hub repo 'namespace/name' or a local folder")
    p.add_argument("--version", required=True, help="e.g. 1.0.0 (tag v1.0.0)")
    p.add_argument("--private", action="store_true", help="create a new Hub repo as private")
    p.add_argument("--split", default="train", help="split name (default: %(default)s)")
    p.add_argument("--config-name", default=None, help="dataset config name (default: default)")
    p.add_argument("--license", default=None, help="license for the card, e.g. apache-2.0")
    p.add_argument("--pretty-name", default=None, help="title of the dataset card")
    add_drop_bad_rows(p)
    p.add_argument("--debug", action="store_true", help="show the traceback of an error")


def _cmd_demo(args: argparse.Namespace) -> int:
    run_demo = _resolve(_DEMO)
    result = run_demo(**_typed(args, run_demo, ()))
    print(f"model:    {result.model}")
    print(f"dataset:  {result.dataset_dir}  (datasets.load_from_disk)")
    print(f"pictures: {result.pictures_dir}  (grid.png, index.html)")
    print(f"status:   {result.summary}")
    return 0


def _add_demo(sub: Any) -> None:
    d = sub.add_parser(
        "demo",
        help="run GCoT on the shipped example data with the shipped toy model (offline)",
        description="Runs GCoT with the shipped toy model (hfgcot/data/tiny-shapes; a random tiny "
        "model if it is missing) on the example dataset and writes the dataset and pictures of "
        "its boxes.",
    )
    add_flags(d, signature_flags(_resolve(_DEMO)))
    d.add_argument("--debug", action="store_true", help="show the traceback of an error")


TOOLS: dict[str, tuple[Callable[[Any], None], Callable[[argparse.Namespace], int]]] = {
    "evaluate": (_add_evaluate, _cmd_evaluate),
    "draw": (_add_draw, _cmd_draw),
    "config": (_add_config, _cmd_config),
    "publish": (_add_publish, _cmd_publish),
    "demo": (_add_demo, _cmd_demo),
}
"""Subcommand -> (add its parser, run it)."""


VIEWER = "hfgcot.viz.viewer"
"""The HTML viewer's module: when it is installed, ``hfgcot view`` is its ``add_view_parser``
and ``run_view`` (imported only then; see docs/viewer.md)."""


def _viewer() -> dict[str, tuple[Callable[[Any], None], Callable[[argparse.Namespace], int]]]:
    import importlib.util

    if importlib.util.find_spec(VIEWER) is None:
        return {}
    return {"view": (_resolve(f"{VIEWER}:add_view_parser"), _resolve(f"{VIEWER}:run_view"))}


def tools() -> dict[str, tuple[Callable[[Any], None], Callable[[argparse.Namespace], int]]]:
    """Every tool subcommand: :data:`TOOLS`, and ``view`` when the viewer is installed."""
    return {**TOOLS, **_viewer()}


def add_tool_parsers(sub: Any) -> None:
    """Add every tool subcommand to the ``hfgcot`` subparsers."""
    for add, _ in tools().values():
        add(sub)
