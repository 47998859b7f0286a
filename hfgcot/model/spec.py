"""Which model, and one loaded copy of it per process.

:class:`ModelSpec` says how to load a model (everything that changes its outputs, nothing heavy,
so stages pickle small); :func:`load_vlm` / :func:`get_vlm` load it once per process and device
and cache it; :func:`spec_fingerprint_data` is what a spec contributes to stage fingerprints,
with the revision resolved to a commit (or, for a local folder, a digest of its files).

    >>> vlm = load_vlm("Qwen/Qwen2.5-VL-3B-Instruct", max_pixels=1003520)  # doctest: +SKIP
    >>> get_vlm(vlm.spec) is vlm                                             # doctest: +SKIP
    True

Loading rules: ``dtype="auto"``, ``sdpa`` unless flash-attn is importable on
CUDA, no ``trust_remote_code`` unless asked, the processor's pixel limits from the spec.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from dataclasses import asdict, dataclass
from typing import Any, Literal

from hfgcot.errors import validate_choices
from hfgcot.geometry.families import Family
from hfgcot.model.endpoint import EndpointError, EndpointSpec, endpoint_identity, frame_limits
from hfgcot.model.endpoint_client import connect
from hfgcot.model.family import config_family
from hfgcot.model.revision import resolve_revision
from hfgcot.model.vlm import VLM

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "Qwen/Qwen2.5-VL-3B-Instruct"

Dtype = Literal["auto", "bfloat16", "float16", "float32"]
"""The dtypes a model loads in: ``"auto"`` is the checkpoint's own."""


@dataclass(frozen=True)
class ModelSpec:
    """How to load a model: everything that changes its outputs, and nothing heavy (picklable).

    Attributes:
        model: Hub id or local folder of a Qwen-VL model.
        revision: branch, tag or commit on the Hub (recorded resolved to a commit).
        dtype: "auto" (the checkpoint's dtype), "bfloat16", "float16" or "float32".
        device: "cuda:0", "cpu"...; default: the first GPU, else the CPU.
        attn_implementation: default flash_attention_2 when flash-attn imports on CUDA, else sdpa.
        min_pixels, max_pixels: the processor's resize limits (boxes depend on them); default:
            the model's processor config.
        trust_remote_code: allow code from the model repository to run.
    """

    model: str = DEFAULT_MODEL
    revision: str | None = None
    dtype: Dtype = "auto"
    device: str | None = None
    attn_implementation: str | None = None
    min_pixels: int | None = None
    max_pixels: int | None = None
    trust_remote_code: bool = False

    def __post_init__(self) -> None:
        validate_choices(self)
        lo, hi = self.min_pixels, self.max_pixels
        for name, v in (("min_pixels", lo), ("max_pixels", hi)):
            if v is not None and not v > 0:
                raise ValueError(f"{name} must be positive, got {v!r}")
        if lo is not None and hi is not None and lo > hi:
            raise ValueError(f"min_pixels ({lo}) must not exceed max_pixels ({hi})")


def default_attn_implementation(device: str) -> str:
    """``flash_attention_2`` on CUDA when flash-attn is importable, else ``sdpa``.

    >>> default_attn_implementation("cpu")
    'sdpa'
    """
    if device.startswith("cuda") and importlib.util.find_spec("flash_attn") is not None:
        return "flash_attention_2"
    return "sdpa"


def _default_device(rank: int | None) -> str:
    import torch

    if torch.cuda.is_available():
        return f"cuda:{(rank or 0) % torch.cuda.device_count()}"
    return "cpu"


_CACHE: dict[tuple[ModelSpec, str], VLM] = {}


def looks_like_path(model: str) -> bool:
    """Whether ``model`` is written as a filesystem path rather than a Hub id (``owner/name``).

    Example:
        >>> looks_like_path("./my-model"), looks_like_path("Qwen/Qwen2.5-VL-3B-Instruct")
        (True, False)
    """
    return model.startswith(("/", ".", "~")) or "\\" in model or model.count("/") > 1


def _check_local(model: str) -> None:
    """A value that looks like a path but is no folder gets a clear error, not a Hub-id error."""
    if looks_like_path(model) and not os.path.isdir(os.path.expanduser(model)):
        raise FileNotFoundError(f"model folder not found: {model}")


def _key(spec: ModelSpec, device: str) -> tuple[ModelSpec, str]:
    return (spec, device)


def register_vlm(vlm: Any) -> ModelSpec:
    """Make an already loaded VLM (or a stand-in with ``spec``) the one stages of this process use."""
    _CACHE[_key(vlm.spec, vlm.spec.device or "auto")] = vlm
    return vlm.spec


def get_vlm(spec: ModelSpec | EndpointSpec, rank: int | None = None) -> VLM:
    """The per-process cached model for ``spec`` (loaded on first use; device from ``rank``).

    An :class:`~hfgcot.model.endpoint.EndpointSpec` gives the endpoint engine instead (a client,
    no weights, no device): :func:`hfgcot.model.endpoint_client.connect`.
    """
    if isinstance(spec, EndpointSpec):
        return _get_endpoint(spec)
    for device in (spec.device or "auto", _default_device(rank) if spec.device is None else None):
        if device is not None and _key(spec, device) in _CACHE:
            return _CACHE[_key(spec, device)]
    device = spec.device or _default_device(rank)
    vlm = _load(spec, device)
    _CACHE[_key(spec, device)] = vlm
    return vlm


def loaded_vlm(spec: Any) -> VLM | None:
    """The model this process already loaded (or registered) for ``spec``; never loads one."""
    for (cached, _device), vlm in list(_CACHE.items()):
        if cached == spec:
            return vlm
    return None


def model_family(model: ModelSpec | EndpointSpec) -> Family | None:
    """The family of a model, without loading it: a loaded (registered) model's own, a served
    model's (:func:`~hfgcot.model.endpoint.frame_limits`), else from its ``config.json``;
    ``None`` when that cannot be read (the model could not load either; nothing is refused).

    Raises:
        hfgcot.geometry.families.UnknownFamilyError: (a ``ValueError``) for a model outside the
            known families, listing them.
        FileNotFoundError: for a local path that is not a folder.

    Example:
        >>> model_family(ModelSpec("Qwen/Qwen3-VL-4B-Instruct"))   # doctest: +SKIP
        'qwen3_vl'
    """
    if isinstance(model, EndpointSpec):
        try:
            return frame_limits(model).family
        except EndpointError:  # raised again, with its advice, when the client connects
            return None
    loaded = loaded_vlm(model)
    if loaded is not None:
        return loaded.family
    _check_local(model.model)
    return config_family(model.model, model.revision)


def _get_endpoint(spec: EndpointSpec) -> Any:
    key = (spec, "endpoint")
    if key not in _CACHE:
        _CACHE[key] = connect(spec)  # type: ignore[index]
    return _CACHE[key]  # type: ignore[index]


def _load(spec: ModelSpec, device: str) -> VLM:
    _check_local(spec.model)
    config_family(spec.model, spec.revision)  # another model type: refused before any weight loads
    from transformers import AutoModelForImageTextToText, AutoProcessor

    attn = spec.attn_implementation or default_attn_implementation(device)
    logger.info("loading %s (revision=%s) on %s with %s", spec.model, spec.revision, device, attn)
    proc_kwargs: dict[str, Any] = {}
    if spec.min_pixels is not None:
        proc_kwargs["min_pixels"] = spec.min_pixels
    if spec.max_pixels is not None:
        proc_kwargs["max_pixels"] = spec.max_pixels
    processor = AutoProcessor.from_pretrained(
        spec.model, revision=spec.revision, trust_remote_code=spec.trust_remote_code, **proc_kwargs
    )
    model = AutoModelForImageTextToText.from_pretrained(
        spec.model,
        revision=spec.revision,
        dtype=spec.dtype,
        attn_implementation=attn,
        trust_remote_code=spec.trust_remote_code,
    )
    model.to(device).eval()
    return VLM(model, processor, spec, device)


def load_vlm(
    model: str | os.PathLike[str] = DEFAULT_MODEL,
    *,
    revision: str | None = None,
    dtype: Dtype = "auto",
    device: str | None = None,
    attn_implementation: str | None = None,
    min_pixels: int | None = None,
    max_pixels: int | None = None,
    trust_remote_code: bool = False,
) -> VLM:
    """Load (once per process) a Qwen-VL model and its processor.

    Args:
        model: Hub id or local folder.
        revision: branch, tag or commit on the Hub; recorded with the data.
        dtype: ``"auto"`` (the checkpoint's dtype), or e.g. ``"bfloat16"``.
        device: ``"cuda:0"``, ``"cpu"``...; default: the first GPU, else the CPU.
        attn_implementation: default ``flash_attention_2`` when flash-attn imports on CUDA, else ``sdpa``.
        min_pixels, max_pixels: the processor's resize limits (boxes depend on them).

    Example:
        >>> vlm = load_vlm("Qwen/Qwen2.5-VL-3B-Instruct", max_pixels=1003520)  # doctest: +SKIP
    """
    spec = ModelSpec(
        model=os.fspath(model),
        revision=revision,
        dtype=dtype,
        device=device,
        attn_implementation=attn_implementation,
        min_pixels=min_pixels,
        max_pixels=max_pixels,
        trust_remote_code=trust_remote_code,
    )
    return get_vlm(spec)


def model_spec(model: Any, **load_kwargs: Any) -> ModelSpec:
    """A :class:`ModelSpec` for a name/path, or the spec of an already loaded VLM (registered).

    An :class:`~hfgcot.model.endpoint.EndpointSpec` is returned with the loading options that
    apply to a served model (:meth:`~hfgcot.model.endpoint.EndpointSpec.with_load_options`).
    """
    if isinstance(model, EndpointSpec):
        return model.with_load_options(**load_kwargs)  # type: ignore[return-value]
    if isinstance(model, str | os.PathLike):
        return ModelSpec(model=os.fspath(model), **load_kwargs)
    if hasattr(model, "spec") and hasattr(model, "generate"):
        return register_vlm(model)
    raise TypeError(f"model must be a Hub id, a path or a loaded VLM, got {type(model).__name__}")


def spec_fingerprint_data(spec: ModelSpec | EndpointSpec) -> dict[str, Any]:
    """The parts of a spec that change outputs (not the device), with the resolved revision.

    A served model gives :func:`~hfgcot.model.endpoint.endpoint_identity` (engine, model name,
    declared revision, family, frame limits; not the URL).
    """
    if isinstance(spec, EndpointSpec):
        return endpoint_identity(spec)
    data = asdict(spec)
    data.pop("device")
    data["resolved_revision"] = resolve_revision(spec.model, spec.revision)
    return data


__all__ = [
    "DEFAULT_MODEL",
    "ModelSpec",
    "default_attn_implementation",
    "get_vlm",
    "load_vlm",
    "loaded_vlm",
    "model_family",
    "model_spec",
    "register_vlm",
    "spec_fingerprint_data",
]
