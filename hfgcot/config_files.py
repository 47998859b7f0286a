"""Run configs as files: ``hfgcot <pipeline> --config run.yaml`` (YAML or JSON).

A config file is a flat mapping of option names to values: the fields of the pipeline's config
(the fields of a nested config such as ``image_policy`` by their own names, or as a mapping under
``image_policy``), the model's options (``model``, ``revision``, ``dtype``...), the run options,
and ``input``/``output``; ``-`` and ``_`` are the same in names. A text value written ``@path``
is read from that file (``@@`` keeps a literal ``@``), so a long prompt can live in a file of its
own.

Every pipeline records the config of its run (:func:`run_config`: the same flat names, the model
revision resolved, no local path) in the dataset's provenance, and ``hfgcot config <dataset>``
prints it as such a file (:func:`dump_run_config`), so a run can be repeated from its card.

    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "run.yaml"
    >>> _ = f.write_text("batch-size: 4\\nbox_space: normalized\\n")
    >>> load_config_file(f)
    {'batch_size': 4, 'box_space': 'normalized'}
"""

from __future__ import annotations

import dataclasses
import difflib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "LOCAL_REVISION",
    "check_keys",
    "dump_run_config",
    "flatten_config",
    "load_config_file",
    "read_text_value",
    "run_config",
]

LOCAL_REVISION = "local:"
"""Prefix of the revision recorded for a local model folder (a digest of its files)."""


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML (``.yaml``/``.yml``) or JSON config file into a flat mapping.

    Raises ``ValueError`` naming the file for anything that is not a mapping of names to values.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"config file {path}: cannot read it ({exc.strerror or exc})") from None
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except Exception as exc:  # noqa: BLE001 - yaml and json raise their own error types
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        kind = "YAML" if path.suffix.lower() in (".yaml", ".yml") else "JSON"
        raise ValueError(f"config file {path}: not valid {kind}: {first}") from None
    if data is None:
        return {}
    if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
        raise ValueError(f"config file {path}: expected a mapping of option names to values")
    return {k.replace("-", "_"): v for k, v in data.items()}


def check_keys(keys: Iterable[str], valid: Iterable[str], where: str) -> None:
    """Raise ``ValueError`` for the first key not in ``valid``, naming the nearest valid one.

    >>> check_keys(["batch_sise"], ["batch_size", "seed"], "run.yaml")
    Traceback (most recent call last):
    ...
    ValueError: run.yaml: unknown option 'batch_sise' (did you mean 'batch_size'?)
    """
    valid = sorted(set(valid))
    for key in keys:
        if key not in valid:
            near = difflib.get_close_matches(key, valid, n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else f"; valid: {', '.join(valid)}"
            raise ValueError(f"{where}: unknown option {key!r}{hint}")


def read_text_value(text: str) -> str:
    """A text option as given, or the contents of a file when written ``@path``.

    ``@@`` at the start keeps a literal ``@``.

    >>> read_text_value("@@home"), read_text_value("plain")
    ('@home', 'plain')
    """
    if text.startswith("@@"):
        return text[1:]
    if text.startswith("@") and len(text) > 1:
        path = Path(text[1:]).expanduser()
        try:
            return path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ValueError(f"cannot read {path}: {exc.strerror or exc}") from None
    return text


def flatten_config(config: Any) -> dict[str, Any]:
    """The fields of a config dataclass by name, the fields of nested dataclasses in its place.

    >>> from hfgcot.images import ImagePolicy
    >>> @dataclasses.dataclass
    ... class C:
    ...     batch_size: int = 8
    ...     image_policy: ImagePolicy = ImagePolicy(allow_urls=False)
    >>> flat = flatten_config(C())
    >>> flat["batch_size"], flat["allow_urls"], "image_policy" in flat
    (8, False, False)
    """
    out: dict[str, Any] = {}
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            out.update(flatten_config(value))
        else:
            out[f.name] = value
    return out


def run_config(
    pipeline: str, config: Any, model_options: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The config of a pipeline run, flat, as ``hfgcot <pipeline> --config`` reads it.

    ``pipeline`` first, then the model's options (as
    :func:`hfgcot.publishing.provenance.run_model_options` records them: no local path, the
    revision resolved), then every field of ``config`` (:func:`flatten_config`). Run options
    (workers, checkpoints, row order) change no row and are not part of it; neither are the
    input and output paths.

    >>> from hfgcot import GCoTConfig
    >>> cfg = run_config("gcot", GCoTConfig(batch_size=2), {"model": "org/m"})
    >>> list(cfg)[:3], cfg["batch_size"], cfg["min_side"]
    (['pipeline', 'model', 'image_column'], 2, 28)
    """
    return {"pipeline": pipeline, **(model_options or {}), **flatten_config(config)}


def dump_run_config(config: Mapping[str, Any], header: str = "") -> str:
    """A run config as YAML text (keys in their order, long texts as blocks), ``header`` as
    ``#`` comment lines above it.

    >>> print(dump_run_config({"pipeline": "gcot", "batch_size": 2}, "a run"), end="")
    # a run
    pipeline: gcot
    batch_size: 2
    """
    import yaml

    class _Dumper(yaml.SafeDumper):
        pass

    def text(dumper: yaml.SafeDumper, value: str) -> Any:
        style = "|" if "\n" in value else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    _Dumper.add_representer(str, text)
    body = yaml.dump(dict(config), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
    comments = "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines())
    return comments + body
