"""The argument parser: pipeline subcommands with flags generated from the library's dataclasses.

Each pipeline subcommand has, in this order of groups: input and output, the pipeline's config
fields (:mod:`hfgcot.cli.flags`), the model (``ModelSpec`` fields), a served model
(``EndpointSpec`` fields, ``base_url`` as ``--endpoint``), the run options (``RunOptions``), Ray,
and publishing. No default is set on the parsed namespace for a generated option: a value
absent there comes from ``--config``, else from the library.

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
    "CommandFlags",
    "Parser",
    "add_pipeline_parsers",
    "command_flags",
    "model_flags",
]

FILE_ONLY_KEYS = ("pipeline", "image_policy")
"""Config-file keys that are not flags: the pipeline the file is for, a nested mapping."""

_ENDPOINT = "endpoint"  # EndpointSpec.base_url on the command line


class Parser(argparse.ArgumentParser):
    """``argparse`` whose usage errors are one line (exit status 2), not usage + error."""

    def error(self, message: str) -> Any:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


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
    """The generated flags of a pipeline subcommand: its config's, the model's, the run's."""

    config_class: type
    config: list[Flag]
    model: list[Flag]
    served: list[Flag]
    run: list[Flag]

    def by_name(self) -> dict[str, Flag]:
        """Every flag by its name (the config-file key)."""
        return {f.name: f for f in (*self.config, *self.model, *self.served, *self.run)}

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
        titles |= {
            "model (hfgcot.model.spec.ModelSpec)": self.model,
            "served model (with --endpoint; hfgcot.EndpointSpec)": self.served,
            "run options (hfgcot.RunOptions; they change no row)": self.run,
        }
        return {title: flags for title, flags in titles.items() if flags}


def command_flags(command: PipelineCommand) -> CommandFlags:
    """The generated flags of a pipeline subcommand (a name used twice is a ``RuntimeError``)."""
    from hfgcot.run.options import RunOptions

    config = command.config_class()
    local, served = model_flags() if command.uses_model else ([], [])
    flags = CommandFlags(
        config, dataclass_flags(config, text_file=True), local, served, dataclass_flags(RunOptions)
    )
    names = [f.name for group in flags.groups().values() for f in group]
    clashes = sorted({n for n in names if names.count(n) > 1})
    if clashes:  # two dataclasses with a field of the same name: a bug, caught by the tests
        raise RuntimeError(f"{command.name}: options named twice: {clashes}")
    return flags


def _add_input_output(p: argparse.ArgumentParser) -> None:
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
    g.add_argument("--split", default="train", help="split, for Hub datasets (default: train)")
    g.add_argument("--limit", type=_non_negative, metavar="N", help="only the first N rows")
    g.add_argument(
        "--image-root",
        metavar="DIR",
        help="folder the .jsonl image paths are read in and must stay inside "
        "(default: the .jsonl's folder)",
    )
    g.add_argument(
        "--embed-images",
        action=argparse.BooleanOptionalAction,
        help="store the image files in the saved dataset, so the folder can be moved "
        "(default: on for a .jsonl input, whose images are paths)",
    )
    g.add_argument("--overwrite", action="store_true", help="replace an output folder not empty")
    g.add_argument("--debug", action="store_true", help="show the traceback of an error")


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _add_ray(p: argparse.ArgumentParser, command: PipelineCommand) -> None:
    g = p.add_argument_group(f"Ray (runs {str(command.ray).replace(':', '.')})")
    g.add_argument(
        "--ray-address",
        metavar="ADDRESS",
        help="run on Ray: 'auto' (a running cluster), 'local' (start one here) or ray://host:port",
    )
    g.add_argument(
        "--ray-actors", type=int, default=1, metavar="N", help="actors, one model each (default: 1)"
    )
    g.add_argument(
        "--ray-gpus-per-actor",
        type=float,
        default=0.0,
        metavar="X",
        help="GPUs per actor (default: 0)",
    )
    g.add_argument(
        "--ray-output-dir",
        metavar="DIR",
        help="where actors write parquet (every node must reach it; default: a temporary folder, "
        "removed after the run)",
    )


def _add_pipeline(sub: Any, command: PipelineCommand) -> None:
    p = sub.add_parser(
        command.name,
        help=command.summary,
        description=command.description,
        epilog=command.example,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_input_output(p)
    for title, flags in command_flags(command).groups().items():
        add_flags(p.add_argument_group(title), flags)
    if command.uses_model:
        _add_ray(p, command)
    else:
        p.add_argument(
            "--processor",
            metavar="MODEL",
            help="read the resize limits from this model's processor (Hub id or folder)",
        )
    add_publish_args(p)


def add_pipeline_parsers(sub: Any) -> None:
    """Add every pipeline subcommand (:data:`~hfgcot.cli.commands.PIPELINES`) to ``sub``."""
    for command in PIPELINES.values():
        _add_pipeline(sub, command)
