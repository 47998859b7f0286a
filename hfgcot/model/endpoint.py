"""A served model: the spec of an OpenAI-compatible endpoint and the frame its images get.

:class:`EndpointSpec` says which server and which model (vLLM, SGLang, ``transformers serve``...);
every model pipeline takes it where it takes a Hub id, and :func:`hfgcot.model.spec.get_vlm` turns
it into an :class:`~hfgcot.model.endpoint_client.EndpointVLM`, which the stages use like the
in-process model. Nothing here imports torch or an HTTP client: specs pickle small and
fingerprints need no server.

    >>> spec = EndpointSpec("http://localhost:8000/v1", "Qwen/Qwen2.5-VL-7B-Instruct",
    ...                     family="qwen2_5_vl", min_pixels=3136, max_pixels=1003520)
    >>> frame_limits(spec).factor
    28
    >>> frame_size(640, 480, frame_limits(spec))
    (644, 476)

Exact coordinates: the client resizes every image to its model frame itself (:func:`frame_size`,
the library's ``smart_resize`` with the family's factor and the pixel limits), so the server's
own resize of the image it receives is the identity whatever its settings (as long as its
limits contain ours), and the frame of every answer is known.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from hfgcot.geometry.families import Family, get_family, known_families, patch_factor
from hfgcot.geometry.frames import smart_resize
from hfgcot.model.batching import is_out_of_memory
from hfgcot.model.family import config_family
from hfgcot.model.files import processor_limits

logger = logging.getLogger(__name__)

ENDPOINT_ERROR = "endpoint_error"
"""Status reason of a row whose request still failed after the retries (server down, 5xx, 429)."""

DEFAULT_API_KEY_ENV = "OPENAI_API_KEY"
NO_KEY = "EMPTY"  # what OpenAI-compatible servers without authentication accept

# ModelSpec loading options that mean nothing for a served model (the server chose them).
_SERVER_SIDE = {"dtype": "auto", "device": None, "attn_implementation": None}


class EndpointError(RuntimeError):
    """The endpoint cannot serve this run at all (wrong key, URL or model, missing capability)."""


@dataclass(frozen=True)
class EndpointSpec:
    """An OpenAI-compatible server and the model it serves; picklable, no secret inside.

    Args:
        base_url: the server's API root, e.g. ``"http://localhost:8000/v1"``.
        model: the model name the server answers to (``--served-model-name`` of vLLM); also
            where the family and pixel limits are read from when it is a local folder or a Hub
            id in the local cache.
        revision: the revision the server runs, as you declare it (a server cannot prove it);
            recorded in the fingerprint and the card.
        api_key_env: the environment variable holding the API key (unset: no key). The key
            itself is never stored, logged or recorded.
        max_concurrency: requests in flight at once.
        timeout: seconds per request (each attempt).
        max_retries: retries with exponential backoff on connection errors, timeouts, 429, 5xx.
        family: a family of :mod:`hfgcot.geometry.families` (``"qwen2_vl"``, ``"qwen2_5_vl"``,
            ``"qwen3_vl"``); default from the model's ``config.json`` when readable (another
            ``model_type`` is refused, listing the known families).
        min_pixels, max_pixels: the frame limits; default from the model's processor config
            when readable. They must lie within the server's own limits.
        prompt_logprobs: whether the server offers vLLM's ``prompt_logprobs`` extension (the
            contrastive self-check needs it): ``None`` asks the server once when such a pipeline
            is configured, ``True`` skips that question, ``False`` refuses at once.

    Example:
        >>> EndpointSpec("http://localhost:8000/v1", "Qwen/Qwen2.5-VL-7B-Instruct").max_concurrency
        32
    """

    base_url: str
    model: str
    revision: str | None = None
    api_key_env: str = DEFAULT_API_KEY_ENV
    max_concurrency: int = 32
    timeout: float = 300.0
    max_retries: int = 4
    family: str | None = dataclasses.field(default=None, metadata={"choices": known_families})
    min_pixels: int | None = None
    max_pixels: int | None = None
    prompt_logprobs: bool | None = None

    def __post_init__(self) -> None:
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https://, got {self.base_url!r}")
        if not self.model:
            raise ValueError("model must name the served model")
        if self.max_concurrency < 1:
            raise ValueError(f"max_concurrency must be >= 1, got {self.max_concurrency}")
        if not self.timeout > 0:
            raise ValueError(f"timeout must be positive, got {self.timeout}")
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {self.max_retries}")
        if self.family is not None:
            get_family(self.family)  # UnknownFamilyError (a ValueError) listing the known ones
        lo, hi = self.min_pixels, self.max_pixels
        for name, v in (("min_pixels", lo), ("max_pixels", hi)):
            if v is not None and not v > 0:
                raise ValueError(f"{name} must be positive, got {v!r}")
        if lo is not None and hi is not None and lo > hi:
            raise ValueError(f"min_pixels ({lo}) must not exceed max_pixels ({hi})")
        if not (self.prompt_logprobs is None or isinstance(self.prompt_logprobs, bool)):
            raise ValueError(
                f"prompt_logprobs must be None or a bool, got {self.prompt_logprobs!r}"
            )

    def api_key(self) -> str:
        """The key from ``api_key_env`` (``"EMPTY"`` when unset), read when connecting."""
        return os.environ.get(self.api_key_env) or NO_KEY

    def with_load_options(self, **options: Any) -> EndpointSpec:
        """This spec with the entry points' loading options applied.

        ``revision``, ``min_pixels`` and ``max_pixels`` replace the spec's when given; options
        that only a local load can honour (``dtype``, ``device``, ``attn_implementation``,
        ``trust_remote_code``) are a ``TypeError`` unless left at their defaults.

        >>> spec = EndpointSpec("http://h:8000/v1", "m", family="qwen2_vl")
        >>> spec.with_load_options(revision="abc", dtype="auto").revision
        'abc'
        """
        wrong = sorted(
            k
            for k, v in options.items()
            if k not in ("revision", "min_pixels", "max_pixels") and v != _SERVER_SIDE.get(k, False)
        )
        if wrong:
            raise TypeError(
                f"{', '.join(wrong)} cannot apply to a served model (the server sets it)"
            )
        given = {k: v for k, v in options.items() if k in ("revision", "min_pixels", "max_pixels")}
        given = {k: v for k, v in given.items() if v is not None}
        return dataclasses.replace(self, **given) if given else self


@dataclass(frozen=True)
class FrameLimits:
    """What the model frame of an image depends on: family (its factor) and pixel limits.

    ``source`` says where the limits came from (``"spec"``, ``"processor config"``...).
    """

    family: Family
    factor: int
    min_pixels: int
    max_pixels: int
    source: str = "spec"


@functools.lru_cache(maxsize=64)
def frame_limits(spec: EndpointSpec) -> FrameLimits:
    """The family and pixel limits the client resizes images with: the spec's values first,
    else the model's config files (local folder or Hub cache).

    Raises:
        EndpointError: when the family or a limit is neither in the spec nor readable.

    >>> frame_limits(EndpointSpec("http://h/v1", "m", family="qwen3_vl",
    ...                           min_pixels=65536, max_pixels=16777216)).factor
    32
    """
    family = spec.family
    if family is None:
        family = config_family(spec.model, spec.revision, download=False)
    lo, hi = spec.min_pixels, spec.max_pixels
    source = "spec"
    if lo is None or hi is None:
        config_lo, config_hi = processor_limits(spec.model, spec.revision)
        lo = config_lo if lo is None else lo
        hi = config_hi if hi is None else hi
        source = "processor config"
    missing = [
        n for n, v in (("family", family), ("min_pixels", lo), ("max_pixels", hi)) if v is None
    ]
    if missing:
        raise EndpointError(
            f"{spec.model}: {', '.join(missing)} unknown (no readable config in a local folder or "
            f"the Hub cache); pass EndpointSpec({', '.join(f'{m}=...' for m in missing)}) with "
            "the values the server uses"
        )
    return FrameLimits(family, patch_factor(family), int(lo), int(hi), source)  # type: ignore[arg-type]


def frame_size(width: int, height: int, limits: FrameLimits) -> tuple[int, int]:
    """``(model_width, model_height)``: the image size the client sends for ``width x height``.

    ``smart_resize`` applied until it no longer changes the size (once, except for very thin
    images whose first result still exceeds ``max_pixels``), so that the server's own
    ``smart_resize`` with the same limits returns the image unchanged.

    >>> limits = FrameLimits("qwen2_5_vl", 28, 3136, 28224)
    >>> frame_size(33, 117, limits)
    (28, 112)
    """
    h, w = height, width
    for _ in range(16):
        nh, nw = smart_resize(
            h, w, factor=limits.factor, min_pixels=limits.min_pixels, max_pixels=limits.max_pixels
        )
        if (nh, nw) == (h, w):
            return w, h
        h, w = nh, nw
    raise ValueError(
        f"no stable frame for a {width}x{height} image with {limits}"
    )  # pragma: no cover


def endpoint_identity(spec: EndpointSpec) -> dict[str, Any]:
    """What identifies a served model's outputs, for fingerprints and cards (no URL, no key).

    >>> endpoint_identity(EndpointSpec("http://h/v1", "m", revision="v1", family="qwen2_vl",
    ...                                min_pixels=3136, max_pixels=1003520))["engine"]
    'endpoint'
    """
    limits = frame_limits(spec)
    return {
        "engine": "endpoint",
        "model_id": spec.model,
        "revision": spec.revision,
        "requested_revision": spec.revision,
        "revision_declared": True,
        "family": limits.family,
        "min_pixels": limits.min_pixels,
        "max_pixels": limits.max_pixels,
    }


def redact(text: str, key: str) -> str:
    """``text`` with the API ``key`` masked (nothing to mask without a key).

    >>> redact("bad key sk-123456", "sk-123456"), redact("EMPTY", "EMPTY")
    ('bad key ***', 'EMPTY')
    """
    return text if key == NO_KEY or not key else text.replace(key, "***")


_MASKED_KEYS: tuple[str, ...] = ()  # replaced, never mutated: safe to read from any thread


def mask_key_in_logs(key: str) -> None:
    """Mask ``key`` in every log record of this process from now on, the HTTP client's included.

    A server or proxy may echo the key back (in an error body or a response header), and the
    HTTP client logs response headers at DEBUG level under logger names that vary with its
    version; so the mask is applied where records are made (the log record factory, wrapped
    once), not per logger. Records are only made for enabled levels, so disabled logging costs
    nothing.
    """
    global _MASKED_KEYS
    if key == NO_KEY or not key or key in _MASKED_KEYS:
        return
    if not _MASKED_KEYS:
        make_record = logging.getLogRecordFactory()

        def masked_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = make_record(*args, **kwargs)
            try:
                message = record.getMessage()
            except Exception:  # noqa: BLE001 - a malformed record is logging's to report
                return record
            masked = message
            for secret in _MASKED_KEYS:
                masked = redact(masked, secret)
            if masked != message:
                record.msg, record.args = masked, ()
            return record

        logging.setLogRecordFactory(masked_record)
    _MASKED_KEYS = (*_MASKED_KEYS, key)


def is_endpoint_error(status: Any) -> bool:
    """Whether a row status records a failed request to an endpoint (worth a rerun).

    >>> is_endpoint_error("endpoint_error: APIConnectionError"), is_endpoint_error("ok")
    (True, False)
    """
    return f"{ENDPOINT_ERROR}:" in str(status)


def failure_note(note: str, errors: Iterable[str | None]) -> str:
    """The status ``note`` of failed requests, ending with the first failed request to a served
    model when there is one, so that its row is retried (:func:`is_endpoint_error`; a failed
    request that was not the server's fault is noted without it).

    >>> failure_note("2 answers failed", [None, "endpoint_error: APIConnectionError: down"])
    '2 answers failed (endpoint_error: APIConnectionError: down)'
    >>> failure_note("2 answers failed", ["generation_error: ValueError: bad"])
    '2 answers failed'
    """
    first = retry_error(errors)
    return f"{note} ({first[:80]})" if first else note


def retry_error(errors: Iterable[str | None]) -> str | None:
    """The first of ``errors`` that is a failed request to a served model, else ``None``.

    >>> retry_error(["generation_error: ValueError: bad", "endpoint_error: timed out"])
    'endpoint_error: timed out'
    """
    return next((e for e in errors if e and is_endpoint_error(e)), None)


def error_status(error: str, limit: int = 200) -> str:
    """The row status of a failed request: endpoint and out-of-memory errors keep their reason.

    >>> error_status("endpoint_error: timed out"), error_status("ValueError: bad")
    ('endpoint_error: timed out', 'generation_error: ValueError: bad')
    >>> error_status("out_of_memory: 20480 tokens")
    'out_of_memory: 20480 tokens'
    """
    if error.startswith(f"{ENDPOINT_ERROR}:") or is_out_of_memory(error):
        return error[:limit]
    return f"generation_error: {error[:limit]}"


__all__ = [
    "ENDPOINT_ERROR",
    "EndpointError",
    "EndpointSpec",
    "FrameLimits",
    "endpoint_identity",
    "error_status",
    "failure_note",
    "frame_limits",
    "frame_size",
    "is_endpoint_error",
    "mask_key_in_logs",
    "redact",
    "retry_error",
]
