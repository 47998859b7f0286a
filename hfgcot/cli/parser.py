"""The argument parser: pipeline subcommands with flags generated from the library's dataclasses.

Each pipeline subcommand has, in this order of groups: input and output (``InputOptions``
fields), the pipeline's config fields (:mod:`hfgcot.cli.flags`), the model (``ModelSpec`` fields),
a served model (``EndpointSpec`` fields, ``base_url`` as ``--endpoint``), the run options
(``RunOptions``), Ray (``--ray-address`` and the ``RayOptions`` fields as ``--ray-<field>``), and
publishing. No default is set on the parsed namespace for a generated option: a value absent
there comes from ``--config``, else from the library. The options that are flags only (about this
command, not the run: :data:`FLAG_ONLY`) are refused in a config file with that said.

    >>> parser = Parser(prog="hfgcot")
    >>> add_pipeline_parsers(parser.add_subparsers(dest="command"))
    >>> sorted(parser.parse_args(["gcot", "--batch-size", "4"]).__dict__)[:3]
    ['batch_size', 'command', 'config']
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from hfgcot.cli.commands import PIPELINES, PipelineCommand
from hfgcot.cli.flags import Flag, add_flags, dataclass_flags
from hfgcot.cli.publish import add_publish_args

__all__ = [
    "FILE_ONLY_KEYS",
    "FLAG_ONLY",
    "RAY_PREFIX",
    "CommandFlags",
    "Parser",
    "add_pipeline_parsers",
    "command_flags",
    "model_flags",
]

FILE_ONLY_KEYS = ("pipeline", "image_policy")
"""Config-file keys that are not flags: the pipeline the file is for, a nested mapping."""

FLAG_ONLY = ("config", "overwrite", "debug", "push_to_hub", "version", "private", "drop_bad_rows")
"""Flags that are no config-file key: about this command (which file, replace the output, show
tracebacks, publish the result), not about the rows of the run."""

RAY_PREFIX = "ray_"
"""``RayOptions.num_actors`` is ``--ray-num-actors`` (config-file key ``ray_num_actors``)."""

RAY_ADDRESS = Flag(
    "ray_address",
    str | None,
    None,
    "Run on Ray through the pipeline's Ray entry point (hfgcot.ray): 'auto' (a running "
    "cluster), 'local' (start one here) or ray://host:port.",
)
PROCESSOR = Flag(
    "processor",
    str | None,
    None,
    "Read the resize limits from this model's processor (Hub id or folder).",
)

_ENDPOINT = "endpoint"  # EndpointSpec.base_url on the command line


class Parser(argparse.ArgumentParser):
    """``argparse`` whose usage errors are one line (exit status 2), not usage + error."""

    def error(self, message: str) -> Any:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")

    def parse_args(self, args: Any = None, namespace: Any = None) -> Any:  # type: ignore[override]
        """As argparse, but an unrecognised argument points at its subcommand's ``--help``."""
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            words = [getattr(parsed, k, None) for k in ("command", "metrics")]
            prog = " ".join([self.prog, *(str(w) for w in words if w)])
            self.exit(
                2,
                f"{self.prog}: error: unrecognized arguments: {' '.join(extras)} "
                f"(see {prog} --help)\n",
            )
        return parsed


RAY_ALIASES = {"ray_num_actors": "--ray-actors", "ray_num_gpus_per_actor": "--ray-gpus-per-actor"}
"""Short spellings of the most used Ray flags (the names of the first CLI, kept working)."""


def ray_flags() -> list[Flag]:
    """``--ray-address``, then every field of ``RayOptions`` as ``--ray-<field>``
    (``output_dir`` optional: a temporary folder by default)."""
    from hfgcot.run.options import RayOptions

    flags = [RAY_ADDRESS]
    for flag in dataclass_flags(RayOptions, prefix=RAY_PREFIX):
        if flag.name in RAY_ALIASES:
            flag = dataclasses.replace(flag, aliases=(RAY_ALIASES[flag.name],))
        if flag.name == RAY_PREFIX + "output_dir":
            text = flag.help.rstrip(".") + " (default: a temporary folder, removed after the run)."
            flag = dataclasses.replace(flag, hint=str | None, help=text)
        flags.append(flag)
    return flags


def model_flags() -> tuple[list[Flag], list[Flag]]:
    """``(flags of an in-process model, flags only a served model has)``.

    The fields of ``ModelSpec``, then those of ``EndpointSpec`` it lacks (``base_url`` is
    ``--endpoint``); shared fields (``model``, ``revision``, pixel limits) appear once.
    """
    from hfgcot.model.endpoint import EndpointSpec
    from hfgcot.model.spec import ModelSpec

    local = dataclass_flags(ModelSpec)
    names = {f.name for f in local}
    served = []
    for flag in dataclass_flags(EndpointSpec, skip=names):
        if flag.name == "base_url":
            text = flag.help + " With it, --model names the served model."
            flag = dataclasses.replace(flag, name=_ENDPOINT, hint=str | None, help=text)
        served.append(flag)
    return local, served


@dataclasses.dataclass(frozen=True)
class CommandFlags:
    """The generated flags of a pipeline subcommand: the input's, its config's, the model's (or
    the processor's, for ``sft``), the run's and Ray's."""

    config_class: type
    inputs: list[Flag]
    config: list[Flag]
    model: list[Flag]
    served: list[Flag]
    run: list[Flag]
    ray: list[Flag]

    def all(self) -> list[Flag]:
        """Every flag, in ``--help`` order."""
        return [*self.inputs, *self.config, *self.model, *self.served, *self.run, *self.ray]

    def by_name(self) -> dict[str, Flag]:
        """Every flag by its name (the config-file key)."""
        return {f.name: f for f in self.all()}

    def groups(self) -> dict[str, list[Flag]]:
        """The flags by ``--help`` section title (empty sections left out)."""
        titles: dict[str, list[Flag]] = {f"options ({self.config_class.__name__})": []}
        for flag in self.config:  # a nested config's fields get a section of their own
            title = (
                f"{flag.parent} (nested: these flags, or '{flag.parent}:' as a mapping in a "
                "config file)"
                if flag.parent
                else f"options ({self.config_class.__name__})"
            )
            titles.setdefault(title, []).append(flag)
        model = "model (hfgcot.model.spec.ModelSpec)" if self.served else "processor"
        titles |= {
            model: self.model,
            "served model (with --endpoint; hfgcot.EndpointSpec)": self.served,
            "run options (hfgcot.RunOptions; they change no row)": self.run,
            "Ray (--ray-address, then hfgcot.ray.RayOptions as --ray-<field>; they change no "
            "row)": self.ray,
        }
        return {title: flags for title, flags in titles.items() if flags}


def command_flags(command: PipelineCommand) -> CommandFlags:
    """The generated flags of a pipeline subcommand (a name used twice is a ``RuntimeError``)."""
    from hfgcot.cli.inputs import InputOptions
    from hfgcot.run.options import RunOptions

    config = command.config_class()
    local, served = model_flags() if command.uses_model else ([PROCESSOR], [])
    flags = CommandFlags(
        config,
        dataclass_flags(InputOptions),
        dataclass_flags(config, text_file=True),
        local,
        served,
        dataclass_flags(RunOptions),
        ray_flags() if command.uses_model else [],
    )
    names = [f.name for f in flags.all()]
    clashes = sorted({n for n in names if names.count(n) > 1})
    if clashes:  # two dataclasses with a field of the same name: a bug, caught by the tests
        raise RuntimeError(f"{command.name}: options named twice: {clashes}")
    return flags


def _add_input_output(p: argparse.ArgumentParser, inputs: list[Flag]) -> None:
    g = p.add_argument_group("input and output")
    suppress = {"default": argparse.SUPPRESS}
    g.add_argument(
        "--input", metavar="PATH", help="saved dataset folder, .jsonl file or Hub id", **suppress
    )
    g.add_argument(
        "--output", metavar="DIR", help="folder to save the result in (save_to_disk)", **suppress
    )
    g.add_argument(
        "--config",
        metavar="FILE",
        help="YAML or JSON file of options (the names of these flags, plus input and output); "
        "a flag typed wins over the file; '@file.txt' reads a text value from a file",
    )
    add_flags(g, inputs)
    g.add_argument("--overwrite", action="store_true", help="replace an output folder not empty")
    g.add_argument("--debug", action="store_true", help="show the traceback of an error")


def _add_pipeline(sub: Any, command: PipelineCommand) -> None:
    p = sub.add_parser(
        command.name,
        help=command.summary,
        description=command.description,
        epilog=command.example,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    flags = command_flags(command)
    _add_input_output(p, flags.inputs)
    for title, group in flags.groups().items():
        add_flags(p.add_argument_group(title), group)
    add_publish_args(p)


def add_pipeline_parsers(sub: Any) -> None:
    """Add every pipeline subcommand (:data:`~hfgcot.cli.commands.PIPELINES`) to ``sub``."""
    for command in PIPELINES.values():
        _add_pipeline(sub, command)
