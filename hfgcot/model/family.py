"""The family of a model from its ``config.json``, without loading it.

One rule for every way a model arrives (in-process load, served endpoint, provenance): its
``model_type`` names a row of the family table (:mod:`hfgcot.geometry.families`), and a model whose
``model_type`` is not there is refused with the list of known families.

>>> import json, pathlib, tempfile
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> _ = (folder / "config.json").write_text(json.dumps({"model_type": "qwen3_vl_moe"}))
>>> config_family(str(folder), None)
'qwen3_vl'
"""

from __future__ import annotations

from hfgcot.geometry.families import Family, family_for_model_type
from hfgcot.model.files import read_model_json

__all__ = ["config_family"]


def config_family(model: str, revision: str | None, *, download: bool = True) -> Family | None:
    """The family of ``model`` (local folder or Hub id) from its ``config.json``.

    ``None`` when no ``config.json`` with a ``model_type`` can be read (``download=False``: only
    a local folder or the Hub cache is looked at).

    Raises:
        hfgcot.geometry.families.UnknownFamilyError: (a ``ValueError``) when the ``model_type``
            is not a known family; the message names the model and lists the known families.
    """
    config = read_model_json(model, "config.json", revision, download=download) or {}
    model_type = config.get("model_type")
    if not isinstance(model_type, str):
        return None
    try:
        return family_for_model_type(model_type)
    except ValueError as err:
        raise type(err)(f"{model}: {err}") from None
