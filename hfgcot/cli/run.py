"""Running a pipeline subcommand: options -> checks -> input -> pipeline (here or on Ray) -> save.

Everything a user can get wrong is checked before the input is read or a model loaded, inside
:func:`hfgcot.cli.errors.checking` (a bad value there is a one-line error): the options (types,
choices, the library's own validation), the input, the model (a folder, or on the Hub), the
output folder, the publishing target. What the run raises after that is a bug, except the
library's user-facing errors (a missing column...).

    >>> main(["gcot", "--input", "q.jsonl", "--output", "out", "--batch-size", "4"])  # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import logging
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from hfgcot.cli.commands import PIPELINES, PipelineCommand
from hfgcot.cli.errors import checking
from hfgcot.cli.inputs import InputOptions
from hfgcot.cli.outputs import check_output, embed_images, save_dataset
from hfgcot.cli.parser import command_flags
from hfgcot.cli.publish import check_publish_args, publish_if_requested
from hfgcot.cli.settings import (
    build_config,
    build_model,
    build_ray,
    build_run,
    check_model,
    gather_values,
)

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


@dataclass(frozen=True)
class _Plan:
    """A checked command: what to read, run and where to save it."""

    command: PipelineCommand
    source: str
    output: str
    inputs: InputOptions
    config: Any
    run: Any
    model: Any = None  # a ModelSpec or EndpointSpec; for sft, the processor (or None)
    ray_address: str | None = None
    ray: dict[str, Any] | None = None


def _sft_processor(name: str | None, config: Any) -> Any:
    """``--processor``, checked (a folder or Hub id, of the configured family), then loaded."""
    if not name:
        return None
    from transformers import AutoProcessor

    from hfgcot.pipelines.grounding_sft import sft_stage

    check_model(name, None, ("preprocessor_config.json", "config.json"), "processor")
    limits = {"min_pixels": config.min_pixels, "max_pixels": config.max_pixels}
    processor = AutoProcessor.from_pretrained(
        name, **{k: v for k, v in limits.items() if v is not None}
    )
    sft_stage(config, processor)  # a processor of another family is refused here
    return processor


def _run_on_ray(plan: _Plan, ds: Any) -> Any:
    """The pipeline's Ray entry point (Ray started here with ``local``, else connected to)."""
    import ray

    started = not ray.is_initialized()
    if started:
        ray.init(address=None if plan.ray_address == "local" else plan.ray_address)
    entry = plan.command.resolve(str(plan.command.ray))
    options = dict(plan.ray or {})
    try:
        with contextlib.ExitStack() as stack:
            folder = options.pop("output_dir", None) or stack.enter_context(
                tempfile.TemporaryDirectory()
            )
            out = entry(ds, plan.model, config=plan.config, output_dir=folder, **options)
            return out.flatten_indices()  # a copy in the cache: the parquet folder may go
    finally:
        if started:
            ray.shutdown()


def _execute(plan: _Plan, ds: Any) -> Any:
    entry = plan.command.resolve(plan.command.entry)
    if not plan.command.uses_model:
        return entry(ds, plan.config, processor=plan.model, run=plan.run)
    if plan.ray_address is not None:
        return _run_on_ray(plan, ds)
    return entry(ds, plan.model, config=plan.config, run=plan.run)


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


def _plan(args: argparse.Namespace) -> _Plan:
    """Every check of the command, before the input is read or a model loaded."""
    command = PIPELINES[args.command]
    flags = command_flags(command)
    values = gather_values(args, command, flags)
    source, output = _required(values, "input"), _required(values, "output")
    inputs = InputOptions.of(values)
    config, run = build_config(flags, values), build_run(flags, values)
    address, ray = build_ray(flags, values) if command.uses_model else (None, None)
    check_publish_args(args)
    inputs.check(source)
    check_output(source, output, args.overwrite)
    if address is not None and importlib.util.find_spec("ray") is None:
        raise ValueError("--ray-address needs Ray: pip install 'hfgcot[ray]'")
    if command.uses_model:
        model = build_model(flags, values)
    else:
        model = _sft_processor(values.get("processor"), config)
    return _Plan(command, source, output, inputs, config, run, model, address, ray)


def _with_input_options(out: Any, plan: _Plan) -> Any:
    """``out`` with the input options in its run config, so a rerun reads the same rows."""
    from hfgcot import get_provenance
    from hfgcot.publishing.provenance import set_provenance

    records = get_provenance(out)
    if not records or not isinstance(records[-1].get("run_config"), dict):
        return out
    records[-1]["run_config"].update(plan.inputs.record(plan.source))
    return set_provenance(out, records)


def run_pipeline_command(args: argparse.Namespace) -> int:
    """Run the pipeline of ``args.command``: check everything, load, run, save, report, publish."""
    with checking():
        plan = _plan(args)
    ds = plan.inputs.load(plan.source, plan.config.image_column)
    with _counting_shards() as counter:
        out = _with_input_options(_execute(plan, ds), plan)
    if plan.inputs.embed(plan.source):
        out = embed_images(out, [plan.config.image_column])
    save_dataset(out, plan.output, args.overwrite)
    _report(out, plan.output, counter, plan.run)
    publish_if_requested(args, out)
    return 0
