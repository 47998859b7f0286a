"""Run configs as files: ``hfgcot <pipeline> --config run.yaml`` (YAML or JSON).

A config file is a mapping of option names (the pipeline's config fields, its run options and the
model's loading options, as the library takes them) to values; ``-`` and ``_`` are the same in
names. A text value written ``@path`` is read from that file (``@@`` keeps a literal ``@``), so a
long prompt can live in a file of its own.

    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "run.yaml"
    >>> _ = f.write_text("batch-size: 4\\nbox_space: normalized\\n")
    >>> load_config_file(f)
    {'batch_size': 4, 'box_space': 'normalized'}
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = ["check_keys", "load_config_file", "read_text_value"]


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
        raise ValueError(
            f"config file {path}: not valid {path.suffix[1:] or 'JSON'}: {exc}"
        ) from None
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
