"""The ``hfgcot`` command line (also ``python -m hfgcot.cli``); see docs/cli.md.

Pipelines: ``gcot``, ``dense-captions``, ``region-captions``, ``sft``, ``predict``, each with
every option of its config, model and run as a flag (:mod:`hfgcot.cli.parser`) and
``--config FILE``. Tools on saved datasets: ``evaluate``, ``draw``, ``config``, ``publish``
(and ``view`` with the HTML viewer); ``demo`` runs offline on the shipped toy model.

    hfgcot gcot --input questions.jsonl --output out/gcot --model Qwen/Qwen2.5-VL-3B-Instruct
    hfgcot config out/gcot > run.yaml
    hfgcot gcot --config run.yaml --input questions.jsonl --output out/again

Errors: a mistake of the user (a missing input, a bad value, an output in the way...) is one line
on stderr and exit status 2 (``--debug`` shows the traceback); anything else keeps its traceback
and exits 1 (:mod:`hfgcot.cli.errors` says which is which).
"""

from __future__ import annotations

import logging
import sys

from hfgcot.cli.errors import UsageError, one_line, user_errors
from hfgcot.cli.parser import Parser, add_pipeline_parsers
from hfgcot.cli.tools import add_tool_parsers

__all__ = ["UsageError", "build_parser", "main"]


def build_parser() -> Parser:
    """The ``hfgcot`` parser: the pipeline subcommands, then the tools on saved datasets."""
    from hfgcot import __version__

    parser = Parser(
        prog="hfgcot",
        description="Turn image datasets into grounded multimodal training data with Qwen-VL.",
    )
    parser.add_argument("--version", action="version", version=f"hfgcot {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_pipeline_parsers(sub)
    add_tool_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``hfgcot`` command line; return the exit status (2 for a user error)."""
    from hfgcot.cli.commands import PIPELINES
    from hfgcot.cli.run import run_pipeline_command
    from hfgcot.cli.tools import tools

    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    run = run_pipeline_command if args.command in PIPELINES else tools()[args.command][1]
    try:
        return run(args)
    except user_errors() as exc:
        if getattr(args, "debug", False):
            cause = exc.__cause__ if isinstance(exc, UsageError) else None
            if cause is None:
                raise
            raise cause from cause.__cause__  # the error the check found, not its wrapper
        print(f"hfgcot: error: {one_line(exc)} (--debug shows the traceback)", file=sys.stderr)
        return 2
