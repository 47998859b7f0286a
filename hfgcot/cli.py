"""Command line: ``hfgcot gcot``, ``hfgcot dense-captions``, ``hfgcot region-captions``,
``hfgcot demo``, ``hfgcot publish``.

hfgcot gcot --input questions.jsonl --output out/gcot --model Qwen/Qwen2.5-VL-3B-Instruct
hfgcot publish out/gcot me/my-gcot --version 1.0.0
hfgcot demo
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from hfgcot.geometry.families import known_families

GCOT_EXAMPLE = """example:
  hfgcot gcot --input data/questions.jsonl --output out/gcot \\
      --model Qwen/Qwen2.5-VL-3B-Instruct --batch-size 16 --max-pixels 1003520

  --input takes a folder written by Dataset.save_to_disk, a .jsonl file (one row per line, image
  paths relative to the file) or a Hub dataset id. The output folder loads back with
  datasets.load_from_disk(<output>). Add --push-to-hub me/my-gcot --version 1.0.0 to also publish
  it (see `hfgcot publish --help`).
"""


def _add_model_args(p: argparse.ArgumentParser, default: str | None) -> None:
    p.add_argument("--model", default=default, help="Hub id or local folder (default: %(default)s)")
    p.add_argument("--revision", default=None, help="model revision (branch, tag or commit)")
    p.add_argument("--batch-size", type=int, default=8, help="requests per generate call")
    p.add_argument("--max-new-tokens", type=int, default=512)
    p.add_argument("--min-pixels", type=int, default=None, help="processor min_pixels")
    p.add_argument("--max-pixels", type=int, default=None, help="processor max_pixels")
    p.add_argument("--device", default=None, help="e.g. cuda:0 or cpu (default: GPU if any)")
    p.add_argument("--num-proc", type=int, default=None, help="map worker processes (one per GPU)")
    p.add_argument("--dtype", default=None, help="model dtype, e.g. bfloat16 (default: auto)")
    p.add_argument(
        "--trust-remote-code", action="store_true", help="allow code from the model repository"
    )
    p.add_argument(
        "--checkpoint-dir",
        default=None,
        help="folder for resumable shards: a rerun of the same command skips finished shards",
    )
    p.add_argument("--shard-size", type=int, default=None, help="rows per checkpoint shard")
    p.add_argument(
        "--sort-window", type=int, default=None, help="sort rows by image size within windows"
    )
    p.add_argument(
        "--endpoint",
        default=None,
        metavar="URL",
        help="an OpenAI-compatible server (vLLM, SGLang, transformers serve), e.g. "
        "http://localhost:8000/v1; --model then names the served model",
    )
    p.add_argument(
        "--max-concurrency", type=int, default=32, help="requests in flight (with --endpoint)"
    )
    p.add_argument(
        "--api-key-env",
        default=None,
        help="environment variable holding the server's API key (with --endpoint)",
    )
    p.add_argument(
        "--family",
        default=None,
        choices=known_families(),
        help="model family of the served model when its config cannot be read (with --endpoint)",
    )
    p.add_argument("--debug", action="store_true", help="show the traceback of an error")


PUBLISH_EXAMPLE = """example:
  hfgcot publish out/gcot me/my-gcot --version 1.0.0          # Hub: tag v1.0.0
  hfgcot publish out/gcot ./releases/my-gcot --version 1.0.0  # local: ./releases/my-gcot/v1.0.0/

  The token comes from HF_TOKEN or `hf auth login`. A target is a local folder when it starts with
  '/', '.', '~' or 'file://', has two or more '/', or exists locally; else a Hub repo 'namespace/name'.
  Load it back with load_dataset("me/my-gcot", revision="v1.0.0").
"""


def add_publish_args(p: argparse.ArgumentParser) -> None:
    """``--push-to-hub REPO --version V [--private]`` for a pipeline subcommand.

    Use with :func:`check_publish_args` (before the pipeline runs) and :func:`publish_if_requested`
    (after it saved its output).
    """
    p.add_argument(
        "--push-to-hub",
        metavar="REPO",
        default=None,
        help="also publish the result: a Hub repo 'namespace/name' or a local folder ('./dir')",
    )
    p.add_argument("--version", default=None, help="dataset version for --push-to-hub, e.g. 1.0.0")
    p.add_argument("--private", action="store_true", help="create a new Hub repo as private")


def check_publish_args(args: argparse.Namespace) -> None:
    """Fail before a long run: ``--version`` present and valid, the version not yet published."""
    if getattr(args, "push_to_hub", None) is None:
        if getattr(args, "version", None) is not None:
            raise SystemExit("hfgcot: error: --version is only used with --push-to-hub")
        return
    if not args.version:
        raise SystemExit("hfgcot: error: --push-to-hub needs --version (e.g. --version 1.0.0)")
    from hfgcot.publishing.release import check_target

    try:
        check_target(args.push_to_hub, args.version)
    except (ValueError, FileExistsError) as exc:
        raise SystemExit(f"hfgcot: error: {exc}") from None


def publish_if_requested(args: argparse.Namespace, dataset: object) -> None:
    """Publish ``dataset`` when ``--push-to-hub`` was given; prints where and how to load it."""
    if getattr(args, "push_to_hub", None) is None:
        return
    from hfgcot.publishing.release import publish

    result = publish(
        dataset, args.push_to_hub, version=args.version, private=getattr(args, "private", False)
    )
    print(f"published {result.tag} -> {result.location}")
    print(f"load it:  {result.load_code}")


DENSE_EXAMPLE = """example:
  hfgcot dense-captions --input images.jsonl --output out/dense \\
      --model Qwen/Qwen2.5-VL-3B-Instruct --checker contrastive --threshold 0.2 \\
      --max-questions 5 --batch-size 8 --max-pixels 1003520

  --input takes a folder written by Dataset.save_to_disk, a .jsonl file (image paths relative to
  the file) or a Hub dataset id; only the image column is needed. The output loads back with
  datasets.load_from_disk(<output>); see the final_caption and dense_caption_status columns.
"""

REGION_EXAMPLE = """example:
  hfgcot region-captions --input regions.jsonl --output out/regions \\
      --model Qwen/Qwen2.5-VL-3B-Instruct --bbox-column bbox --bbox-format xywh \\
      --max-boxes 10 --mode marked

  Each row needs an image and a list of boxes ([x, y, w, h] pixels by default, or
  --bbox-format xyxy). --mode marked draws numbered boxes and asks once per image (answer: text);
  --mode crop asks once per region on its crop (answer: list). Skipped boxes are named in
  region_caption_status.
"""


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _add_input_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--input", help="saved dataset folder, .jsonl file or Hub id (or in --config)")
    p.add_argument("--output", help="folder to save the result (save_to_disk; or in --config)")
    p.add_argument("--split", default="train", help="split, for Hub datasets")
    p.add_argument("--limit", type=_non_negative, default=None, help="only the first N rows")
    p.add_argument("--image-column", default="image")
    p.add_argument(
        "--image-root",
        default=None,
        help="folder the .jsonl image paths are read in and must stay inside "
        "(default: the .jsonl's folder)",
    )
    p.add_argument(
        "--overwrite", action="store_true", help="replace an output folder that is not empty"
    )
    p.add_argument(
        "--config",
        default=None,
        metavar="FILE",
        help="YAML or JSON file of options (the same names as the library's, plus model, "
        "input, output); flags given on the command line win; '@file.txt' reads a text value",
    )


def _add_caption_parsers(sub: Any, default_model: str) -> None:
    """The ``dense-captions`` and ``region-captions`` subcommands."""
    dc = sub.add_parser(
        "dense-captions",
        help="add ScaleCap-style dense captions",
        description="Caption -> sentences -> visual self-check -> object questions -> answers -> "
        "self-check -> one fused caption.",
        epilog=DENSE_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_input_args(dc)
    dc.add_argument("--checker", choices=["yesno", "contrastive"], default="yesno")
    dc.add_argument(
        "--threshold", type=float, default=0.0, help="contrastive: keep sentences above this"
    )
    dc.add_argument("--max-questions", type=int, default=5, help="objects asked about per image")
    _add_model_args(dc, default_model)
    add_publish_args(dc)

    rc = sub.add_parser(
        "region-captions",
        help="caption given boxes of each image",
        description="Validate boxes, draw them numbered on a copy of the image, describe each region.",
        epilog=REGION_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_input_args(rc)
    rc.add_argument("--bbox-column", default="bbox")
    rc.add_argument("--bbox-format", choices=["xywh", "xyxy"], default="xywh")
    rc.add_argument("--max-boxes", type=int, default=10)
    rc.add_argument("--mode", choices=["marked", "crop"], default="marked")
    _add_model_args(rc, default_model)
    add_publish_args(rc)


def build_parser() -> argparse.ArgumentParser:
    from hfgcot import __version__
    from hfgcot.model.spec import DEFAULT_MODEL

    parser = argparse.ArgumentParser(
        prog="hfgcot",
        description="Turn image datasets into grounded multimodal training data with Qwen-VL.",
    )
    parser.add_argument("--version", action="version", version=f"hfgcot {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    g = sub.add_parser(
        "gcot",
        help="add Grounded Chain-of-Thought columns",
        description="Reasoning + keywords -> per-keyword boxes -> boxes injected into the reasoning.",
        epilog=GCOT_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_input_args(g)
    g.add_argument("--question-column", default="question")
    g.add_argument("--answer-column", default="answer")
    g.add_argument("--box-space", choices=["pixels", "model", "normalized"], default="pixels")
    _add_model_args(g, DEFAULT_MODEL)
    add_publish_args(g)

    pub = sub.add_parser(
        "publish",
        help="publish a saved dataset as a version on the Hub or in a local folder",
        description="Push a dataset saved with save_to_disk, with a dataset card carrying its "
        "provenance, and tag it v<version>. Versions are never overwritten.",
        epilog=PUBLISH_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    pub.add_argument("dataset", help="folder written by Dataset.save_to_disk")
    pub.add_argument("repo_id", help="Hub repo 'namespace/name' or a local folder")
    pub.add_argument("--version", required=True, help="e.g. 1.0.0 (tag v1.0.0)")
    pub.add_argument("--private", action="store_true", help="create a new Hub repo as private")
    pub.add_argument("--split", default="train", help="split name (default: %(default)s)")
    pub.add_argument("--config-name", default=None, help="dataset config name (default: default)")
    pub.add_argument("--license", default=None, help="license for the card, e.g. apache-2.0")
    pub.add_argument("--pretty-name", default=None, help="title of the dataset card")
    pub.add_argument("--debug", action="store_true", help="show the traceback of an error")

    _add_caption_parsers(sub, DEFAULT_MODEL)

    _add_sft_parser(sub)

    from hfgcot.viz.viewer import add_view_parser

    add_view_parser(sub)

    d = sub.add_parser(
        "demo",
        help="run GCoT on the shipped example data with the shipped toy model (offline)",
        description="Runs GCoT with the shipped toy model (hfgcot/data/tiny-shapes; a random tiny "
        "model if it is missing) on the example dataset and writes the dataset and pictures of "
        "its boxes.",
    )
    d.add_argument("--output", default="outputs/demo", help="output folder (default: %(default)s)")
    d.add_argument("--model", default=None, help="another model to use instead of the toy one")
    d.add_argument("--max-new-tokens", type=int, default=64)
    return parser


def _load(args: argparse.Namespace) -> Any:
    from hfgcot.io import load_input

    return load_input(
        args.input,
        image_column=args.image_column,
        split=args.split,
        limit=args.limit,
        image_root=getattr(args, "image_root", None),
    )


def _save_and_report(args: argparse.Namespace, out: Any, status_column: str) -> None:
    from hfgcot.run.local import status_summary

    out.save_to_disk(args.output)
    print(f"{len(out)} rows -> {args.output}")
    print(f"status: {status_summary(out, status_column)}")


# Flags of every model subcommand that are library options under the same name.
_SHARED_OPTIONS = (
    "image_column",
    "batch_size",
    "max_new_tokens",
    "revision",
    "min_pixels",
    "max_pixels",
    "device",
    "num_proc",
    "dtype",
    "trust_remote_code",
    "checkpoint_dir",
    "shard_size",
    "sort_window",
)
_RUN_FIELDS = ("model", "input", "output", "endpoint")


def _file_options(args: argparse.Namespace) -> dict[str, Any]:
    """The options of ``--config`` (text values written ``@file`` read from their file)."""
    if not getattr(args, "config", None):
        return {}
    from hfgcot.config_files import load_config_file, read_text_value

    values = load_config_file(args.config)
    return {k: read_text_value(v) if isinstance(v, str) else v for k, v in values.items()}


def _check_output(args: argparse.Namespace) -> None:
    """Refuse an output equal to the input, or an existing non-empty folder without --overwrite."""
    from pathlib import Path

    out = Path(args.output).expanduser().resolve()
    if Path(args.input).expanduser().resolve() == out:
        raise ValueError(f"--output {args.output} is the input: write the result to another folder")
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not args.overwrite:
        raise FileExistsError(
            f"output {args.output} exists and is not empty: choose another folder or pass --overwrite"
        )


# Loading options that only an in-process model has.
_IN_PROCESS_ONLY = ("device", "dtype", "trust_remote_code", "attn_implementation")


def _endpoint_model(args: argparse.Namespace, options: dict[str, Any]) -> Any:
    """The :class:`~hfgcot.model.endpoint.EndpointSpec` of ``--endpoint`` (takes the frame
    limits and revision out of ``options``); in-process loading options are refused."""
    from hfgcot.model.endpoint import EndpointSpec

    stray = [name for name in _IN_PROCESS_ONLY if name in options]
    if stray:
        raise ValueError(f"--endpoint runs no model here: drop {', '.join(stray)}")
    extra = {"api_key_env": args.api_key_env} if args.api_key_env else {}
    return EndpointSpec(
        args.endpoint,
        args.model,
        revision=options.pop("revision", None),
        min_pixels=options.pop("min_pixels", None),
        max_pixels=options.pop("max_pixels", None),
        max_concurrency=args.max_concurrency,
        family=args.family,
        **extra,
    )


def _run_model_command(
    args: argparse.Namespace, pipeline: Any, status_column: str, **command_options: Any
) -> int:
    """Merge ``--config`` and flags (flags given win), load the input, run, save, publish."""
    explicit = getattr(args, "explicit", set())
    options = _file_options(args)
    for name in _RUN_FIELDS:
        if name in options and name not in explicit:
            setattr(args, name, options.pop(name))
        else:
            options.pop(name, None)
    for name in ("input", "output"):
        if not getattr(args, name, None):
            raise ValueError(f"--{name} is required (or '{name}:' in the --config file)")
    flags = {name: getattr(args, name) for name in _SHARED_OPTIONS} | command_options
    for name, value in flags.items():
        given = name in explicit or (name not in options and value not in (None, False))
        if given:
            options[name] = value
    check_publish_args(args)
    _check_output(args)
    model = _endpoint_model(args, options) if getattr(args, "endpoint", None) else args.model
    out = pipeline(_load(args), model, **options)
    _save_and_report(args, out, status_column)
    publish_if_requested(args, out)
    return 0


def _cmd_gcot(args: argparse.Namespace) -> int:
    from hfgcot.pipelines.gcot import STATUS, add_gcot

    return _run_model_command(
        args,
        add_gcot,
        STATUS,
        question_column=args.question_column,
        answer_column=args.answer_column,
        box_space=args.box_space,
    )


def _cmd_publish(args: argparse.Namespace) -> int:
    from datasets import load_from_disk

    from hfgcot.publishing.release import publish

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
    )
    print(f"published {result.tag} ({result.rows}) -> {result.location}")
    print(f"load it:  {result.load_code}")
    return 0


def _cmd_dense_captions(args: argparse.Namespace) -> int:
    from hfgcot.pipelines.dense_captions import STATUS, add_dense_captions

    return _run_model_command(
        args,
        add_dense_captions,
        STATUS,
        checker=args.checker,
        threshold=args.threshold,
        max_questions=args.max_questions,
    )


def _cmd_region_captions(args: argparse.Namespace) -> int:
    from hfgcot.pipelines.region_captions import STATUS, add_region_captions

    return _run_model_command(
        args,
        add_region_captions,
        STATUS,
        bbox_column=args.bbox_column,
        bbox_format=args.bbox_format,
        max_boxes=args.max_boxes,
        mode=args.mode,
    )


def _cmd_demo(args: argparse.Namespace) -> int:
    from hfgcot.demo import run_demo

    result = run_demo(args.output, model=args.model, max_new_tokens=args.max_new_tokens)
    print(f"model:    {result.model}")
    print(f"dataset:  {result.dataset_dir}  (datasets.load_from_disk)")
    print(f"pictures: {result.pictures_dir}  (grid.png, index.html)")
    print(f"status:   {result.summary}")
    return 0


SFT_EXAMPLE = """example:
  hfgcot sft --input data/textvqa_boxes --output out/sft --bbox-format xywh \\
      --model-family qwen2_5_vl --max-pixels 1003520

  Writes grounding SFT chat rows (messages, gt_bbox, gt_bbox_model, sft_frame, sft_status). No
  model runs. Pass the min/max pixels of the processor you will train with (or --processor
  <model id> to read them from it): Qwen2.5-VL boxes are pixels of the resized image. Train on
  the rows with sft_status == "ok" using hfgcot.GroundingCollator (examples/train_grounding.py).
"""


def _add_sft_parser(sub: Any) -> None:
    """The ``sft`` subcommand (grounding SFT rows, :func:`hfgcot.to_grounding_sft`)."""
    s = sub.add_parser(
        "sft",
        help="turn image + question + box rows into grounding SFT chat rows (no model)",
        description='Assistant turn {"bbox_2d": [x1, y1, x2, y2]} in the coordinate frame of '
        "the model family to train; bad rows get a status.",
        epilog=SFT_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    s.add_argument("--input", required=True, help="saved dataset folder, .jsonl file or Hub id")
    s.add_argument("--output", required=True, help="folder to save the result (save_to_disk)")
    s.add_argument("--split", default="train", help="split, for Hub datasets")
    s.add_argument("--limit", type=int, default=None, help="only the first N rows")
    s.add_argument("--image-column", default="image")
    s.add_argument("--text-column", default="question")
    s.add_argument("--bbox-column", default="bbox")
    s.add_argument("--bbox-format", choices=["xywh", "xyxy"], default="xywh")
    s.add_argument("--model-family", choices=known_families(), default="qwen2_5_vl")
    s.add_argument("--min-pixels", type=int, default=None, help="training processor min_pixels")
    s.add_argument("--max-pixels", type=int, default=None, help="training processor max_pixels")
    s.add_argument("--processor", default=None, help="read the resize limits from this model")
    s.add_argument("--num-proc", type=int, default=None, help="map worker processes")


def _cmd_sft(args: argparse.Namespace) -> int:
    from hfgcot.pipelines.grounding_sft import STATUS, to_grounding_sft

    processor = None
    if args.processor:
        from transformers import AutoProcessor

        limits = {"min_pixels": args.min_pixels, "max_pixels": args.max_pixels}
        processor = AutoProcessor.from_pretrained(
            args.processor, **{k: v for k, v in limits.items() if v is not None}
        )
    out = to_grounding_sft(
        _load(args),
        image_column=args.image_column,
        text_column=args.text_column,
        bbox_column=args.bbox_column,
        bbox_format=args.bbox_format,
        model_family=args.model_family,
        min_pixels=args.min_pixels,
        max_pixels=args.max_pixels,
        processor=processor,
        num_proc=args.num_proc,
    )
    _save_and_report(args, out, STATUS)
    return 0


def _cmd_view(args: argparse.Namespace) -> int:
    from hfgcot.viz.viewer import run_view

    return run_view(args)


def _explicit(argv: list[str] | None) -> set[str]:
    """The destinations of the flags really typed (parsed again with every default suppressed)."""
    parser = build_parser()
    for action in parser._actions:
        for sub in getattr(action, "choices", None) or {}:
            sub_parser = action.choices[sub]
            if isinstance(sub_parser, argparse.ArgumentParser):
                for a in sub_parser._actions:
                    a.default = argparse.SUPPRESS
    return set(vars(parser.parse_args(argv))) - {"command"}


# Errors that mean the user asked for something that cannot be done: one line, exit status 2.
_USER_ERRORS: tuple[type[BaseException], ...] = (
    ValueError,
    TypeError,
    KeyError,
    FileNotFoundError,
    FileExistsError,
)


def main(argv: list[str] | None = None) -> int:
    """Run the ``hfgcot`` command line; return the exit status (2 for a user error)."""
    args = build_parser().parse_args(argv)
    args.explicit = _explicit(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    commands = {
        "gcot": _cmd_gcot,
        "demo": _cmd_demo,
        "publish": _cmd_publish,
        "dense-captions": _cmd_dense_captions,
        "region-captions": _cmd_region_captions,
        "sft": _cmd_sft,
        "view": _cmd_view,
    }
    from hfgcot.model.endpoint import EndpointError

    try:
        return commands[args.command](args)
    except (*_USER_ERRORS, EndpointError) as exc:
        if getattr(args, "debug", False):
            raise
        text = str(exc.args[0] if isinstance(exc, KeyError) and exc.args else exc)
        first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
        print(f"hfgcot: error: {first} (--debug shows the traceback)", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
