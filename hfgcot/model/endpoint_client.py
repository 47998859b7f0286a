"""The endpoint engine: the in-process VLM's interface over an OpenAI-compatible server.

:func:`connect` (what :func:`hfgcot.model.spec.get_vlm` calls for an
:class:`~hfgcot.model.endpoint.EndpointSpec`) checks the server and the key once and returns an
:class:`EndpointVLM`; its :meth:`~EndpointVLM.generate` sends chat requests concurrently (at most
``max_concurrency`` in flight) with the ``openai`` client (retries with backoff on connection
errors, timeouts, 429 and 5xx) and returns one :class:`~hfgcot.model.vlm.Generation` per request,
in order.

    >>> vlm = connect(EndpointSpec("http://localhost:8000/v1", "Qwen/Qwen2.5-VL-7B-Instruct"))  # doctest: +SKIP
    >>> vlm.generate([Request(image, "Describe the image.")])[0].frame               # doctest: +SKIP

A request that still fails gets ``error="endpoint_error: ..."`` (its row's status); a rejected key
or an unknown model raises one :class:`~hfgcot.model.endpoint.EndpointError` instead. The key is
redacted from every message.
"""

from __future__ import annotations

import base64
import io
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from hfgcot.geometry.frames import Frame
from hfgcot.model.endpoint import (
    ENDPOINT_ERROR,
    EndpointError,
    EndpointSpec,
    endpoint_identity,
    frame_limits,
    frame_size,
    require_prompt_logprobs,
)
from hfgcot.model.vlm import ContinuationScore, Generation, GenerationSettings, Request

logger = logging.getLogger(__name__)


def _openai() -> Any:
    try:
        import openai
    except ImportError as err:  # pragma: no cover - depends on the install
        raise ImportError(
            "served models need the openai client: pip install 'hfgcot[serve]'"
        ) from err
    return openai


def image_data_url(image: Any) -> str:
    """A PNG data URL of ``image`` (lossless: the server decodes exactly these pixels).

    >>> from PIL import Image
    >>> image_data_url(Image.new("RGB", (2, 2))).startswith("data:image/png;base64,")
    True
    """
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


class EndpointVLM:
    """A served model with the facts needed to interpret its boxes; build it with :func:`connect`.

    Same interface as :class:`~hfgcot.model.vlm.VLM` for the stages: ``spec``, ``family``,
    ``min_pixels``/``max_pixels``, :meth:`frames`, :meth:`generate`,
    :meth:`continuation_logprobs` and :meth:`identity`.
    """

    def __init__(self, spec: EndpointSpec, client: Any) -> None:
        self.spec = spec
        self.client = client
        self.limits = frame_limits(spec)
        self.family = self.limits.family
        self.revision = spec.revision
        self.device = "endpoint"
        self.prompt_tokens = 0  # as the server counts them (usage)
        self.generated_tokens = 0
        self.requests_sent = 0
        self._lock = threading.Lock()

    @property
    def model_id(self) -> str:
        return self.spec.model

    @property
    def min_pixels(self) -> int:
        return self.limits.min_pixels

    @property
    def max_pixels(self) -> int:
        return self.limits.max_pixels

    def identity(self) -> dict[str, Any]:
        """What identifies this model's outputs: for fingerprints and dataset cards."""
        return endpoint_identity(self.spec)

    def frame(self, image: Any) -> Frame:
        """The frame ``image`` is sent in (the client resizes it to exactly this size)."""
        model_w, model_h = frame_size(image.width, image.height, self.limits)
        return Frame(image.width, image.height, model_w, model_h)

    def frames(self, images: list[Any]) -> list[Frame | None]:
        """The frame each image is seen in (``None`` for no image)."""
        return [None if im is None else self.frame(im) for im in images]

    def _redact(self, text: str) -> str:
        key = self.spec.api_key()
        return text.replace(key, "***") if len(key) >= 4 else text

    def _messages(self, request: Request, frame: Frame | None) -> list[dict[str, Any]]:
        content: list[dict[str, Any]] = []
        if frame is not None:
            image = request.image.convert("RGB")
            if image.size != (frame.model_width, frame.model_height):
                image = image.resize((frame.model_width, frame.model_height), resample=3)
            content.append({"type": "image_url", "image_url": {"url": image_data_url(image)}})
        content.append({"type": "text", "text": request.prompt})
        messages: list[dict[str, Any]] = []
        if request.system is not None:
            messages.append({"role": "system", "content": request.system})
        messages.append({"role": "user", "content": content})
        return messages

    def _sampling(self, settings: GenerationSettings) -> dict[str, Any]:
        if settings.do_sample:
            return {"temperature": settings.temperature, "top_p": settings.top_p}
        return {"temperature": 0.0, "top_p": 1.0}

    def _one(self, request: Request, settings: GenerationSettings) -> Generation:
        openai = _openai()
        frame = None if request.image is None else self.frame(request.image)
        try:
            response = self.client.chat.completions.create(
                model=self.spec.model,
                messages=self._messages(request, frame),
                max_tokens=settings.max_new_tokens,
                seed=settings.seed,
                **self._sampling(settings),
            )
        except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
            raise EndpointError(
                f"{self.spec.base_url} refused the API key from ${self.spec.api_key_env} "
                f"({exc.status_code}): {self._redact(str(exc))[:300]}"
            ) from None
        except openai.NotFoundError as exc:
            raise EndpointError(
                f"{self.spec.base_url} has no model {self.spec.model!r} (404): "
                f"{self._redact(str(exc))[:300]}"
            ) from None
        except (
            openai.APIConnectionError,
            openai.RateLimitError,
            openai.InternalServerError,
        ) as exc:
            message = f"{ENDPOINT_ERROR}: {type(exc).__name__}: {self._redact(str(exc))[:200]}"
            logger.warning("request failed after %d retries: %s", self.spec.max_retries, message)
            return Generation("", None, error=message)
        except openai.APIError as exc:  # rejected request (400, 422...): its own error
            message = f"{type(exc).__name__}: {self._redact(str(exc))[:200]}"
            logger.warning("request rejected: %s", message)
            return Generation("", None, error=message)
        choice = response.choices[0]
        usage = getattr(response, "usage", None)
        with self._lock:
            self.requests_sent += 1
            if usage is not None:
                self.prompt_tokens += int(usage.prompt_tokens or 0)
                self.generated_tokens += int(usage.completion_tokens or 0)
        text = choice.message.content or ""
        return Generation(text, frame, truncated=choice.finish_reason == "length")

    def generate(
        self,
        requests: list[Request],
        settings: GenerationSettings | None = None,
        *,
        batch_size: int = 8,
        max_batch_tokens: int | None = None,
        sort_by_length: bool = True,
        stage: str = "generate",
    ) -> list[Generation]:
        """Answer ``requests`` with at most ``max_concurrency`` in flight; results in order.

        Greedy is ``temperature=0``; ``max_new_tokens``, ``top_p`` and ``seed`` are passed as
        ``max_tokens``, ``top_p`` and ``seed``; ``finish_reason == "length"`` sets
        ``truncated``. ``batch_size``, ``max_batch_tokens``, ``sort_by_length`` and ``stage``
        are the in-process engine's (the server batches by itself) and are ignored.
        """
        settings = settings or GenerationSettings()
        if not requests:
            return []
        workers = min(self.spec.max_concurrency, len(requests))
        with ThreadPoolExecutor(workers, thread_name_prefix="hfgcot-endpoint") as pool:
            return list(pool.map(lambda r: self._one(r, settings), requests))

    def continuation_logprobs(
        self,
        requests: list[Request],
        continuations: list[str],
        prefixes: list[str] | None = None,
        *,
        batch_size: int = 8,
        max_batch_tokens: int | None = None,
        stage: str = "score",
    ) -> list[ContinuationScore]:
        """Not available for served models (no prompt log-probs through the OpenAI API).

        Raises:
            EndpointError: always; pipelines check it when configured
                (:func:`~hfgcot.model.endpoint.require_prompt_logprobs`), before any request.
        """
        require_prompt_logprobs(self.spec, "continuation_logprobs")
        return []  # pragma: no cover - require_prompt_logprobs raised

    def __repr__(self) -> str:
        return (
            f"EndpointVLM({self.spec.model!r}, family={self.family!r}, url={self.spec.base_url!r})"
        )


def connect(spec: EndpointSpec) -> EndpointVLM:
    """A client for ``spec``, after one check that the server answers and accepts the key.

    Raises:
        EndpointError: the server cannot be reached, refuses the key, or the frame limits are
            unknown. A server that lists models but not ``spec.model`` is a warning (some
            servers load models on demand).
    """
    openai = _openai()
    client = openai.OpenAI(
        base_url=spec.base_url,
        api_key=spec.api_key(),
        timeout=spec.timeout,
        max_retries=spec.max_retries,
    )
    vlm = EndpointVLM(spec, client)
    try:
        served = [m.id for m in client.models.list()]
    except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
        raise EndpointError(
            f"{spec.base_url} refused the API key from ${spec.api_key_env} ({exc.status_code}); "
            f"set {spec.api_key_env} to the server's key"
        ) from None
    except openai.APIError as exc:
        raise EndpointError(
            f"cannot use the endpoint {spec.base_url}: {type(exc).__name__}: "
            f"{vlm._redact(str(exc))[:300]}"
        ) from None
    if served and spec.model not in served:
        logger.warning("%s lists %s, not %r", spec.base_url, served[:5], spec.model)
    logger.info(
        "endpoint %s: %s (%s, frame limits %d..%d from the %s)",
        spec.base_url,
        spec.model,
        vlm.family,
        vlm.min_pixels,
        vlm.max_pixels,
        vlm.limits.source,
    )
    return vlm


__all__ = ["EndpointVLM", "connect", "image_data_url"]
