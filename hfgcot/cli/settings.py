"""From a config file and the flags typed to the objects a pipeline takes: config, model, run.

Precedence: the library's defaults, then ``--config FILE``, then the flags typed. Every value, from
a file or a flag, is checked by the same rules (:func:`hfgcot.cli.flags.parse_value`) and the
objects are built (and validated by the library) before any input is read or model loaded.

    >>> from hfgcot.cli.commands import PIPELINES
    >>> from hfgcot.cli.parser import command_flags
    >>> flags = command_flags(PIPELINES["gcot"])
    >>> build_config(flags, {"batch_size": 2, "allow_urls": False}).image_policy.allow_urls
    False
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
from typing import Any

from hfgcot.cli.commands import PipelineCommand
from hfgcot.cli.flags import parse_value
from hfgcot.cli.parser import FILE_ONLY_KEYS, FLAG_ONLY, RAY_PREFIX, CommandFlags

logger = logging.getLogger(__name__)

__all__ = [
    "build_config",
    "build_model",
    "build_ray",
    "build_run",
    "check_device",
    "check_model",
    "gather_values",
]

PATH_KEYS = ("input", "output")
"""Config-file keys that are neither a config field nor a model option."""


def _file_values(path: str, command: PipelineCommand, flags: CommandFlags) -> dict[str, Any]:
    """The options of a config file, checked (names, types) and converted like flags."""
    from hfgcot.config_files import check_keys, load_config_file

    raw = load_config_file(path)
    pipeline = raw.pop("pipeline", None)
    if pipeline is not None and pipeline not in (command.name, command.record):
        from hfgcot.cli.commands import command_for_record

        other = command_for_record(str(pipeline))
        fix = f": run `hfgcot {other.name} --config {path}`" if other else ""
        raise ValueError(
            f"{path} is a config of the {pipeline!r} pipeline, not {command.name}{fix}"
        )
    by_name = flags.by_name()
    for parent in FILE_ONLY_KEYS[1:]:
        nested = raw.pop(parent, None)
        if isinstance(nested, dict):  # image_policy: {allow_urls: false}, names of its fields
            nested = {k.replace("-", "_"): v for k, v in nested.items()}
            own = [n for n, f in by_name.items() if f.parent == parent]
            check_keys(nested, own, f"{path}: {parent}")
            raw.update(nested)
        elif nested is not None:
            raise ValueError(f"{path}: {parent} must be a mapping of its fields, got {nested!r}")
    flag_only = sorted(set(raw) & set(FLAG_ONLY))
    if flag_only:
        shown = ", ".join("--" + k.replace("_", "-") for k in flag_only)
        raise ValueError(
            f"{path}: {shown} is about this command, not the run: a flag only, no config key"
        )
    check_keys(raw, [*by_name, *PATH_KEYS, *FILE_ONLY_KEYS], path)
    values = {}
    for key, value in raw.items():
        if key in PATH_KEYS:
            if not isinstance(value, str):
                raise ValueError(f"{path}: {key} must be a path, got {value!r}")
            values[key] = value
        else:
            values[key] = parse_value(by_name[key], value, f"{path}: {key}")
    return values


def gather_values(
    args: argparse.Namespace, command: PipelineCommand, flags: CommandFlags
) -> dict[str, Any]:
    """The options of the run: ``--config``'s, then the flags typed on top."""
    values = _file_values(args.config, command, flags) if args.config else {}
    typed = vars(args)
    values.update({k: typed[k] for k in [*flags.by_name(), *PATH_KEYS] if k in typed})
    return values


def build_config(flags: CommandFlags, values: dict[str, Any]) -> Any:
    """The pipeline's config from the values of its fields (nested ones regrouped)."""
    own = {f.name: f for f in flags.config}
    top: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = {}
    for name, value in values.items():
        flag = own.get(name)
        if flag is not None and flag.parent:
            nested.setdefault(flag.parent, {})[name] = value
        elif flag is not None:
            top[name] = value
    defaults = {f.name: f.default for f in dataclasses.fields(flags.config_class)}
    for parent, given in nested.items():
        top[parent] = dataclasses.replace(defaults[parent], **given)
    return flags.config_class(**top)


def build_run(flags: CommandFlags, values: dict[str, Any]) -> Any:
    """The ``RunOptions`` of the run."""
    from hfgcot.run.options import RunOptions

    return RunOptions(**{f.name: values[f.name] for f in flags.run if f.name in values})


def build_ray(flags: CommandFlags, values: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    """``(--ray-address, the RayOptions fields given)``; a Ray option without the address, or a
    local run option with it, is an error."""
    given = {f.name: values[f.name] for f in flags.ray if f.name in values}
    address = given.pop("ray_address", None)
    if address is None:
        if given:
            shown = ", ".join("--" + k.replace("_", "-") for k in sorted(given))
            raise ValueError(f"{shown} need --ray-address")
        return None, {}
    local = sorted(f.option for f in flags.run if f.name in values)
    if local:
        raise ValueError(
            f"{', '.join(local)} are for runs on this machine: drop them with --ray-address"
        )
    return address, {k.removeprefix(RAY_PREFIX): v for k, v in given.items()}


def _local_revision(values: dict[str, Any]) -> None:
    """A ``local:<digest>`` revision (a run config of a local model folder) names no Hub
    revision: the folder must be given (``--model``); one whose files differ is warned about."""
    from hfgcot.config_files import LOCAL_REVISION
    from hfgcot.model.spec import resolve_revision

    revision = values.get("revision")
    if not isinstance(revision, str) or not revision.startswith(LOCAL_REVISION):
        return
    model = str(values.get("model", ""))
    if not os.path.isdir(os.path.expanduser(model)):
        raise ValueError(
            f"the run used a local model folder {model!r} (revision {revision}): "
            "give that folder with --model"
        )
    now = resolve_revision(os.path.expanduser(model), None)
    if now != revision:
        logger.warning(
            "model folder %s is not the one the run used (%s, was %s)", model, now, revision
        )
    values["revision"] = None


def check_model(
    model: str,
    revision: str | None,
    files: tuple[str, ...] = ("config.json",),
    what: str = "model",
) -> None:
    """Fail early, in one line, for a model that is neither a folder with one of ``files`` nor
    on the Hub (or in the local Hub cache when offline), before the input is read."""
    from hfgcot.model.files import read_model_json
    from hfgcot.model.spec import looks_like_path

    folder = os.path.expanduser(model)
    if os.path.isdir(folder):
        if not any(os.path.isfile(os.path.join(folder, name)) for name in files):
            raise FileNotFoundError(f"not a {what} folder: no {' or '.join(files)} in {model}")
        return
    if looks_like_path(model):
        raise FileNotFoundError(f"{what} folder not found: {model}")
    if all(read_model_json(model, name, revision, download=True) is None for name in files):
        from huggingface_hub import constants

        why = " (HF_HUB_OFFLINE is set and it is not in the local cache)"
        raise ValueError(
            f"{what} {model!r} is neither a local folder nor reachable on the Hub"
            f"{why if constants.HF_HUB_OFFLINE else ''}: give a {what} folder or a Hub id you "
            "can download (check the spelling, the network and your token)"
        )


def check_device(device: str | None) -> None:
    """A CUDA device this machine does not have is an error before any model loads.

    >>> check_device("cpu"), check_device(None)
    (None, None)
    """
    if not device or not device.startswith("cuda"):
        return
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    index = device.partition(":")[2]
    if count == 0:
        raise ValueError(f"--device {device}: no CUDA GPU here; use --device cpu (or leave it out)")
    if index and (not index.isdigit() or int(index) >= count):
        raise ValueError(
            f"--device {device}: this machine has {count} CUDA GPU(s), cuda:0..cuda:{count - 1}"
        )


def build_model(flags: CommandFlags, values: dict[str, Any]) -> Any:
    """A ``ModelSpec``, or an ``EndpointSpec`` with ``--endpoint`` (in-process loading options
    refused with it, served-model options refused without it)."""
    from hfgcot.model.endpoint import EndpointSpec
    from hfgcot.model.spec import DEFAULT_MODEL, ModelSpec

    _local_revision(values)
    local = {f.name for f in flags.model}
    served = {f.name for f in flags.served}
    given = {k: v for k, v in values.items() if k in local | served}
    given.setdefault("model", DEFAULT_MODEL)
    endpoint = given.pop("endpoint", None)
    if endpoint:
        shared = {f.name for f in dataclasses.fields(EndpointSpec)}
        stray = sorted(k for k in given if k not in shared)
        if stray:
            raise ValueError(f"--endpoint runs no model here: drop {', '.join(stray)}")
        return _served(EndpointSpec(base_url=endpoint, **given))
    stray = sorted(k for k in given if k not in local)
    if stray:
        shown = ", ".join("--" + k.replace("_", "-") for k in stray)
        raise ValueError(f"{shown} only apply to a served model: add --endpoint URL")
    spec = ModelSpec(**given)
    check_device(spec.device)
    check_model(spec.model, spec.revision)
    return spec


def _served(spec: Any) -> Any:
    """``spec`` once the client knows how to resize for it (the model family and pixel limits,
    from the flags or the model's config files); else the flags that give them are named."""
    from hfgcot.model.endpoint import EndpointError, frame_limits

    try:
        frame_limits(spec)
    except EndpointError:
        names = ("family", "min_pixels", "max_pixels")
        shown = "/".join("--" + n.replace("_", "-") for n in names if getattr(spec, n) is None)
        raise ValueError(
            f"{spec.model}: the model family or pixel limits of the served model are unknown "
            f"(no readable config in a local folder or the Hub cache): give {shown} with the "
            "values the server uses"
        ) from None
    return spec
