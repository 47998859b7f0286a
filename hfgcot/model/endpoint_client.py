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
redacted from every message and masked in every log record (a server may echo it back).
:meth:`~EndpointVLM.continuation_logprobs` scores text through vLLM's ``prompt_logprobs``
extension (:mod:`hfgcot.model.endpoint_logprobs`); :func:`require_prompt_logprobs` is the
configuration-time check of pipelines that need it.
"""

from __future__ import annotations

import base64
import functools
import io
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from hfgcot.geometry.frames import Frame
from hfgcot.model import endpoint_logprobs as scoring
from hfgcot.model.endpoint import (
    ENDPOINT_ERROR,
    EndpointError,
    EndpointSpec,
    endpoint_identity,
    frame_limits,
    frame_size,
    mask_key_in_logs,
    redact,
)
from hfgcot.model.scoring import continuation_lengths
from hfgcot.model.vlm import (
    ContinuationScore,
    Generation,
    GenerationSettings,
    Request,
)

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
    :meth:`continuation_logprobs` and :meth:`identity`. At most ``spec.max_concurrency``
    requests of one client are in flight, whichever threads send them.
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
        self._slots = threading.BoundedSemaphore(spec.max_concurrency)
        self._template: scoring.LocalTemplate | None = None
        self._scores_text = False

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
        return redact(text, self.spec.api_key())

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

    def _create(self, **request: Any) -> tuple[Any, str | None]:
        """One chat completion: ``(response, None)``, or ``(None, error)`` once retries are spent.

        A refused key or an unknown model raises :class:`EndpointError` (no row can succeed).
        """
        openai = _openai()
        try:
            with self._slots:
                response = self.client.chat.completions.create(model=self.spec.model, **request)
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
            return None, message
        except openai.APIError as exc:  # rejected request (400, 422...): its own error
            message = f"{type(exc).__name__}: {self._redact(str(exc))[:200]}"
            logger.warning("request rejected: %s", message)
            return None, message
        usage = getattr(response, "usage", None)
        with self._lock:
            self.requests_sent += 1
            if usage is not None:
                self.prompt_tokens += int(usage.prompt_tokens or 0)
                self.generated_tokens += int(usage.completion_tokens or 0)
        return response, None

    def _map(self, fn: Any, items: list[Any]) -> list[Any]:
        """``[fn(item) for item in items]`` on up to ``max_concurrency`` threads, in order."""
        if not items:
            return []
        workers = min(self.spec.max_concurrency, len(items))
        with ThreadPoolExecutor(workers, thread_name_prefix="hfgcot-endpoint") as pool:
            return list(pool.map(fn, items))

    def _one(self, request: Request, settings: GenerationSettings) -> Generation:
        frame = None if request.image is None else self.frame(request.image)
        response, error = self._create(
            messages=self._messages(request, frame),
            max_tokens=settings.max_new_tokens,
            seed=settings.seed,
            **self._sampling(settings),
        )
        if error is not None:
            return Generation("", None, error=error)
        choice = response.choices[0]
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
        return self._map(lambda r: self._one(r, settings), list(requests))

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
        """Teacher-forced log-probs of each continuation's tokens, from the server's prompt log-probs.

        The same scores as :meth:`hfgcot.model.vlm.VLM.continuation_logprobs` (item ``i``:
        ``continuations[i]`` after the chat template of ``requests[i]`` and the assistant text
        ``prefixes[i]``), through vLLM's ``prompt_logprobs`` extension: one request per item,
        at most ``max_concurrency`` in flight, results in order (``batch_size`` is ignored). A
        failed request, or an answer whose prompt tokens are not the local template's, gives
        that item an ``error``.

        Raises:
            EndpointError: the server does not score text (asked once per client,
                :meth:`check_prompt_logprobs`) or the model's processor is not readable here.
        """
        prefixes = [""] * len(requests) if prefixes is None else list(prefixes)
        if not len(requests) == len(continuations) == len(prefixes):
            raise ValueError("requests, continuations and prefixes must have the same length")
        self.check_prompt_logprobs()
        return self._score(list(requests), list(continuations), prefixes)

    def _local_template(self) -> scoring.LocalTemplate:
        if self._template is None:
            self._template = scoring.load_template(self.spec)
        return self._template

    def _score(
        self, requests: list[Request], continuations: list[str], prefixes: list[str]
    ) -> list[ContinuationScore]:
        template = self._local_template()  # tokenized here, not on the request threads
        contexts = [template.prompt_text(r) + p for r, p in zip(requests, prefixes, strict=True)]
        lengths = continuation_lengths(template.processor.tokenizer, contexts, continuations)
        expected = [template.token_ids(c + x) for c, x in zip(contexts, continuations, strict=True)]
        items = list(zip(requests, prefixes, continuations, expected, lengths, strict=True))
        placeholder = template.image_token_id
        return self._map(lambda item: self._score_one(*item, placeholder), items)

    def _score_one(
        self,
        request: Request,
        prefix: str,
        continuation: str,
        expected: list[int],
        length: int,
        placeholder: int | None,
    ) -> ContinuationScore:
        """One scoring request; ``expected``: the local tokens of the whole scored text."""
        if length == 0:
            return ContinuationScore(())
        frame = None if request.image is None else self.frame(request.image)
        response, error = self._create(
            messages=scoring.scoring_messages(
                self._messages(request, frame), prefix + continuation
            ),
            max_tokens=1,
            temperature=0.0,
            extra_body=scoring.SCORING_BODY,
        )
        if error is not None:
            return ContinuationScore((), error=error)
        answer = getattr(response, "model_extra", None) or {}
        return scoring.read_scores(answer, expected, length, placeholder)

    def check_prompt_logprobs(self) -> None:
        """Make sure the server scores text (vLLM's ``prompt_logprobs``); once per client.

        ``spec.prompt_logprobs=False`` refuses at once; ``None`` sends one short text-only
        scoring request and checks its answer; ``True`` trusts the spec. Either way the model's
        processor must be readable here (:func:`~hfgcot.model.endpoint_logprobs.load_template`).

        Raises:
            EndpointError: with what to do instead.
        """
        if self._scores_text:
            return
        scoring.refuse_if_declared_off(self.spec)
        self._local_template()
        if self.spec.prompt_logprobs is None:
            (probe,) = self._score([Request(None, "Say OK.")], ["OK."], [""])
            if probe.error:
                raise scoring.no_prompt_logprobs(self.spec, self._redact(probe.error))
        self._scores_text = True

    def __repr__(self) -> str:
        return (
            f"EndpointVLM({self.spec.model!r}, family={self.family!r}, url={self.spec.base_url!r})"
        )


def require_prompt_logprobs(model: Any) -> None:
    """At configuration, before any row: raise unless ``model`` can score text.

    In-process models always can. A served model (an :class:`EndpointSpec`) is refused at once
    when declared without prompt log-probs, else its server is asked once per spec and process
    (:meth:`EndpointVLM.check_prompt_logprobs`).

    >>> require_prompt_logprobs("Qwen/Qwen2.5-VL-3B-Instruct")  # in process: nothing to ask
    >>> require_prompt_logprobs(EndpointSpec("http://h/v1", "m", prompt_logprobs=False))
    Traceback (most recent call last):
    ...
    hfgcot.model.endpoint.EndpointError: scoring text (the contrastive self-check) needs prompt \
log-probs, which http://h/v1 does not give (EndpointSpec(prompt_logprobs=False)): serve the model \
with vLLM (its prompt_logprobs extension), use checker="yesno", or load the model in process
    """
    if isinstance(model, EndpointSpec):
        scoring.refuse_if_declared_off(model)
        _checked(model)


@functools.lru_cache(maxsize=16)
def _checked(spec: EndpointSpec) -> bool:
    connect(spec).check_prompt_logprobs()  # raises, and so is not cached, when refused
    return True


def connect(spec: EndpointSpec) -> EndpointVLM:
    """A client for ``spec``, after one check that the server answers and accepts the key.

    Raises:
        EndpointError: the server cannot be reached, refuses the key, or the frame limits are
            unknown. A server that lists models but not ``spec.model`` is a warning (some
            servers load models on demand).
    """
    openai = _openai()
    mask_key_in_logs(spec.api_key())
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


__all__ = ["EndpointVLM", "connect", "image_data_url", "require_prompt_logprobs"]
