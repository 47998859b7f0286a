"""Running a pipeline subcommand: options -> checks -> input -> pipeline (here or on Ray) -> save.

Everything a user can get wrong is checked before the input is read or a model loaded: the
options (types, choices, the library's own validation), the model (a folder, or on the Hub), the
output folder, the publishing target.

    >>> main(["gcot", "--input", "q.jsonl", "--output", "out", "--batch-size", "4"])  # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import tempfile
from collections.abc import Iterator
from typing import Any

from hfgcot.cli.commands import PIPELINES, PipelineCommand
from hfgcot.cli.outputs import (
    check_input,
    check_output,
    embed_images,
    is_jsonl,
    save_dataset,
)
from hfgcot.cli.parser import command_flags
from hfgcot.cli.publish import check_publish_args, publish_if_requested
from hfgcot.cli.settings import build_config, build_model, build_run, gather_values

__all__ = ["run_pipeline_command"]


class _ShardCount(logging.Handler):
    """Counts the checkpoint shards a run reused (the records of :mod:`hfgcot.run.resume`)."""

    def __init__(self) -> None:
        super().__init__()
        self.reused = self.total = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.reused += getattr(record, "shards_reused", 0)
        self.total += getattr(record, "shards_total", 0)


@contextlib.contextmanager
def _counting_shards() -> Iterator[_ShardCount]:
    log = logging.getLogger("hfgcot.run.resume")
    counter, level = _ShardCount(), log.level
    log.addHandler(counter)
    log.setLevel(logging.INFO)
    try:
        yield counter
    finally:
        log.removeHandler(counter)
        log.setLevel(level)


def _sft_processor(args: argparse.Namespace, config: Any) -> Any:
    if not args.processor:
        return None
    from transformers import AutoProcessor

    limits = {"min_pixels": config.min_pixels, "max_pixels": config.max_pixels}
    return AutoProcessor.from_pretrained(
        args.processor, **{k: v for k, v in limits.items() if v is not None}
    )


def _check_ray_args(args: argparse.Namespace, run: Any) -> None:
    from hfgcot.run.options import RunOptions

    if args.ray_address is None:
        extra = args.ray_actors != 1 or args.ray_gpus_per_actor or args.ray_output_dir
        if extra:
            raise ValueError(
                "--ray-actors, --ray-gpus-per-actor, --ray-output-dir need --ray-address"
            )
        return
    if run != RunOptions():
        raise ValueError(
            "--num-proc, --checkpoint-dir, --shard-size and --sort-window are for runs on this "
            "machine: drop them with --ray-address"
        )


def _run_on_ray(
    args: argparse.Namespace, command: PipelineCommand, ds: Any, model: Any, config: Any
) -> Any:
    """The pipeline's Ray entry point (Ray started here with ``local``, else connected to)."""
    try:
        import ray
    except ImportError:
        raise ValueError("--ray-address needs Ray: pip install 'hfgcot[ray]'") from None

    started = not ray.is_initialized()
    if started:
        ray.init(address=None if args.ray_address == "local" else args.ray_address)
    entry = command.resolve(command.ray)
    try:
        with contextlib.ExitStack() as stack:
            folder = args.ray_output_dir or stack.enter_context(tempfile.TemporaryDirectory())
            out = entry(
                ds,
                model,
                config=config,
                output_dir=folder,
                num_actors=args.ray_actors,
                num_gpus_per_actor=args.ray_gpus_per_actor,
            )
            return out.flatten_indices()  # a copy in the cache: the parquet folder may go
    finally:
        if started:
            ray.shutdown()


def _execute(
    args: argparse.Namespace, command: PipelineCommand, ds: Any, model: Any, config: Any, run: Any
) -> Any:
    entry = command.resolve(command.entry)
    if not command.uses_model:
        return entry(ds, config, processor=_sft_processor(args, config), run=run)
    if args.ray_address is not None:
        return _run_on_ray(args, command, ds, model, config)
    return entry(ds, model, config=config, run=run)


def _report(out: Any, output: str, counter: _ShardCount, run: Any) -> None:
    """Rows saved, their statuses (from the provenance record the pipeline wrote), shards reused."""
    from hfgcot import get_provenance

    records = get_provenance(out)
    print(f"{len(out)} rows -> {output}")
    if records and records[-1].get("status") is not None:
        print(f"status: {records[-1]['status']}")
    if run.checkpoint_dir is not None:
        print(
            f"checkpoint: reused {counter.reused} of {counter.total} shards ({run.checkpoint_dir})"
        )


def _required(values: dict[str, Any], name: str) -> str:
    if not values.get(name):
        raise ValueError(f"--{name} is required (or '{name}:' in the --config file)")
    return str(values[name])


def run_pipeline_command(args: argparse.Namespace) -> int:
    """Run the pipeline of ``args.command``: check everything, load, run, save, report, publish."""
    from hfgcot.io import load_input

    command = PIPELINES[args.command]
    flags = command_flags(command)
    values = gather_values(args, command, flags)
    source, output = _required(values, "input"), _required(values, "output")
    config, run = build_config(flags, values), build_run(flags, values)
    if command.uses_model:
        _check_ray_args(args, run)
    check_publish_args(args)
    check_input(source)
    check_output(source, output, args.overwrite)
    model = build_model(flags, values) if command.uses_model else None
    ds = load_input(
        source,
        image_column=config.image_column,
        split=args.split,
        limit=args.limit,
        image_root=args.image_root,
    )
    with _counting_shards() as counter:
        out = _execute(args, command, ds, model, config, run)
    embed = args.embed_images if args.embed_images is not None else is_jsonl(source)
    if embed:
        out = embed_images(out, [config.image_column])
    save_dataset(out, output, args.overwrite)
    _report(out, output, counter, run)
    publish_if_requested(args, out)
    return 0
