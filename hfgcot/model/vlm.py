"""Model I/O: batched generation and scoring with a loaded Qwen-VL model.

Loading (once per process, cached) is :mod:`hfgcot.model.spec`' job: :func:`~hfgcot.model.spec.load_vlm`.

    >>> vlm = load_vlm("Qwen/Qwen2.5-VL-3B-Instruct")                          # doctest: +SKIP
    >>> out = vlm.generate([Request(image, "Describe the image.")], GenerationSettings())  # doctest: +SKIP
    >>> out[0].text, out[0].frame                                              # doctest: +SKIP

Rules this module keeps (see DESIGN.md): left padding for batched generation, tokenization through
the processor (it returns ``mm_token_type_ids``), and every request's :class:`Frame` taken from the
processor's own ``image_grid_thw``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from hfgcot.geometry.families import Family, family_for_model_type, get_family
from hfgcot.geometry.frames import Frame
from hfgcot.model.spec import ModelSpec, resolve_revision

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class GenerationSettings:
    """Explicit generation settings; all of them enter stage fingerprints.

    Example:
        >>> GenerationSettings(max_new_tokens=64).do_sample
        False
    """

    max_new_tokens: int = 512
    do_sample: bool = False
    temperature: float = 0.7
    top_p: float = 0.9
    seed: int = 0
    cache_implementation: str | None = None  # e.g. "static": compiled decode step on CUDA

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.do_sample and not (self.temperature > 0 and 0 < self.top_p <= 1):
            raise ValueError("sampling needs temperature > 0 and 0 < top_p <= 1")


@dataclass
class Request:
    """One generation request: an image (or None for text only) and a user prompt."""

    image: Any
    prompt: str
    system: str | None = None

    def messages(self) -> list[dict[str, Any]]:
        content: list[dict[str, Any]] = []
        if self.image is not None:
            content.append({"type": "image"})
        content.append({"type": "text", "text": self.prompt})
        messages: list[dict[str, Any]] = []
        if self.system is not None:
            messages.append({"role": "system", "content": [{"type": "text", "text": self.system}]})
        messages.append({"role": "user", "content": content})
        return messages

    def prompt_text(self) -> str:
        return self.prompt


@dataclass(frozen=True)
class Generation:
    """The answer to one request, with the frame its image was seen in (None without image).

    ``truncated``: the engine stopped at the token budget (a server's ``finish_reason="length"``).
    """

    text: str
    frame: Frame | None
    error: str | None = None
    truncated: bool = False


@dataclass(frozen=True)
class ContinuationScore:
    """Teacher-forced natural-log probabilities of a continuation's tokens, in order.

    ``token_ids`` are the continuation's tokens as they appear in the tokenized context +
    continuation (see :meth:`VLM.continuation_logprobs`); ``error`` is set (and both are empty)
    when the forward pass failed.
    """

    logprobs: tuple[float, ...]
    token_ids: tuple[int, ...] = ()
    error: str | None = None

    @property
    def mean(self) -> float:
        """Mean log-prob per token (``nan`` when there are no tokens)."""
        return sum(self.logprobs) / len(self.logprobs) if self.logprobs else float("nan")


def continuation_lengths(
    tokenizer: Any, contexts: list[str], continuations: list[str]
) -> list[int]:
    """How many trailing tokens of ``context + continuation`` belong to the continuation.

    The longest common token prefix of ``context`` and ``context + continuation`` is the
    context; the rest is the continuation. Where BPE merges a token across the boundary, that
    token counts as continuation (it is what the model has to write). Placeholders such as
    ``<|image_pad|>`` are single special tokens here; the processor expands them before the
    assistant turn only, so the count of trailing tokens is the same after expansion. The one
    rule of both engines (:meth:`VLM.continuation_logprobs` and the endpoint's).

    >>> chars = lambda texts, **kw: {"input_ids": [[ord(c) for c in t] for t in texts]}
    >>> continuation_lengths(chars, ["ab"], ["cd"])
    [2]
    """
    full = tokenizer(
        [c + x for c, x in zip(contexts, continuations, strict=True)], add_special_tokens=False
    )
    head = tokenizer(contexts, add_special_tokens=False)
    lengths = []
    for a, b in zip(head["input_ids"], full["input_ids"], strict=True):
        common = 0
        while common < min(len(a), len(b)) and a[common] == b[common]:
            common += 1
        lengths.append(len(b) - common)
    return lengths


class VLM:
    """A loaded model + processor with the facts needed to interpret its boxes.

    Build it with :func:`load_vlm`. ``family`` gives the box convention (from ``model_type``),
    ``min_pixels``/``max_pixels`` the resize limits the processor really uses.
    """

    def __init__(self, model: Any, processor: Any, spec: ModelSpec, device: str) -> None:
        self.model = model
        self.processor = processor
        self.spec = spec
        self.device = device
        self.family: Family = family_for_model_type(model.config.model_type)
        self.revision = resolve_revision(spec.model, spec.revision)
        processor.tokenizer.padding_side = "left"
        self.vision_patches = 0  # vision-encoder patches processed, for benchmarks
        self.prompt_tokens = 0  # prompt positions fed to generate (padding included)
        self.padding_tokens = 0  # of which padding
        self.generated_tokens = 0  # new tokens written (padding after EOS excluded)
        # Encode each distinct image of a batch once and reuse it for every request on it.
        self.reuse_vision = True

    @property
    def model_id(self) -> str:
        return self.spec.model

    @property
    def patch_size(self) -> int:
        return int(self.processor.image_processor.patch_size)

    @property
    def min_pixels(self) -> int:
        return int(self.processor.image_processor.size["shortest_edge"])

    @property
    def max_pixels(self) -> int:
        return int(self.processor.image_processor.size["longest_edge"])

    def identity(self) -> dict[str, Any]:
        """What identifies this model's outputs: for fingerprints and dataset cards."""
        return {
            "model_id": self.model_id,
            "revision": self.revision,
            "family": self.family,
            "dtype": str(self.spec.dtype),
            "min_pixels": self.min_pixels,
            "max_pixels": self.max_pixels,
        }

    def frames(self, images: list[Any]) -> list[Frame | None]:
        """The frame each image is seen in, from the image processor's ``image_grid_thw``."""
        present = [im for im in images if im is not None]
        if not present:
            return [None] * len(images)
        grid = self.processor.image_processor(images=present, return_tensors="pt")["image_grid_thw"]
        return self._frames_from_grid(images, grid.tolist())

    def _frames_from_grid(self, images: list[Any], grid: list[list[int]]) -> list[Frame | None]:
        it = iter(grid)
        return [
            None
            if im is None
            else Frame.from_grid_thw(im.width, im.height, next(it), patch_size=self.patch_size)
            for im in images
        ]

    def _prompt_texts(self, requests: list[Request]) -> list[str]:
        return [
            self.processor.apply_chat_template(
                r.messages(), tokenize=False, add_generation_prompt=True
            )
            for r in requests
        ]

    def _encode_unique_images(
        self, images: list[Any], inputs: Any
    ) -> tuple[dict[str, Any], int] | None:
        """Run the vision encoder once per distinct image object of a batch.

        Several requests on one image (K keywords, N questions) would otherwise encode it K
        times. Returns ``mm_encoder_outputs`` for ``generate`` (one ``pooler_output`` entry per
        image placeholder, in order) and the number of patches encoded, or ``None`` when every
        image is distinct (then plain ``pixel_values`` are as cheap).
        """
        from transformers.modeling_outputs import BaseModelOutputWithPooling

        unique: dict[int, int] = {}
        order = [unique.setdefault(id(im), len(unique)) for im in images]
        if len(unique) == len(images):
            return None
        firsts = {idx: im for im, idx in zip(images, order, strict=True)}
        distinct = [firsts[i] for i in range(len(unique))]
        pixels = self.processor.image_processor(images=distinct, return_tensors="pt")
        grid = pixels["image_grid_thw"].to(self.device)
        features = self.model.get_image_features(
            pixels["pixel_values"].to(self.device), grid, return_dict=True
        )
        per_placeholder = tuple(features.pooler_output[i] for i in order)
        patches = int(grid.prod(-1).sum())
        inputs.pop("pixel_values", None)
        return {"image": BaseModelOutputWithPooling(pooler_output=per_placeholder)}, patches

    def _generate_chunk(
        self, requests: list[Request], settings: GenerationSettings
    ) -> list[Generation]:
        import torch

        images = [r.image for r in requests]
        present = [im for im in images if im is not None]
        inputs = self.processor(
            text=self._prompt_texts(requests),
            images=present or None,
            padding=True,
            return_tensors="pt",
        )
        grid = inputs["image_grid_thw"].tolist() if "image_grid_thw" in inputs else []
        frames = self._frames_from_grid(images, grid)
        mask = inputs["attention_mask"]
        self.prompt_tokens += int(mask.numel())
        self.padding_tokens += int(mask.numel() - mask.sum())
        inputs = inputs.to(self.device)
        gen_kwargs: dict[str, Any] = {
            "max_new_tokens": settings.max_new_tokens,
            "do_sample": settings.do_sample,
        }
        if settings.do_sample:
            gen_kwargs.update(temperature=settings.temperature, top_p=settings.top_p, top_k=None)
            torch.manual_seed(settings.seed)
        else:
            gen_kwargs.update(temperature=None, top_p=None, top_k=None)
        if settings.cache_implementation:
            gen_kwargs["cache_implementation"] = settings.cache_implementation
        with torch.inference_mode():
            encoded = self._encode_unique_images(present, inputs) if self.reuse_vision else None
            if encoded is not None:
                gen_kwargs["mm_encoder_outputs"], patches = encoded
            else:
                patches = int(sum(t * h * w for t, h, w in grid))
            self.vision_patches += patches
            out = self.model.generate(**inputs, **gen_kwargs)
        new_tokens = out[:, inputs["input_ids"].shape[1] :]
        pad = self.processor.tokenizer.pad_token_id
        if pad is not None:
            self.generated_tokens += int((new_tokens != pad).sum())
        texts = self.processor.batch_decode(new_tokens, skip_special_tokens=True)
        return [Generation(text=t, frame=f) for t, f in zip(texts, frames, strict=True)]

    def _cost(self, request: Request) -> int:
        """Approximate prompt length in tokens (image tokens from the resize rule + text)."""
        text = len(request.prompt) // 3
        if request.image is None:
            return text
        w, h = request.image.size
        factor = get_family(self.family).factor
        try:
            frame = Frame.for_image(
                w, h, min_pixels=self.min_pixels, max_pixels=self.max_pixels, factor=factor
            )
        except ValueError:
            return text
        return text + frame.model_width * frame.model_height // factor**2

    def generate(
        self,
        requests: list[Request],
        settings: GenerationSettings | None = None,
        *,
        batch_size: int = 8,
        sort_by_length: bool = True,
    ) -> list[Generation]:
        """Answer ``requests`` in batches of ``batch_size``; one result per request, in order.

        With ``sort_by_length`` requests are batched in order of prompt length (image tokens +
        text) so that batches carry less padding; results come back in the caller's order, and
        greedy outputs do not depend on the batching. A batch that fails is retried one request at
        a time, so one bad request only costs itself: its :class:`Generation` carries ``error``
        and an empty text.
        """
        settings = settings or GenerationSettings()
        if not (sort_by_length and len(requests) > batch_size):
            return self._generate_batches(requests, settings, batch_size)
        order = sorted(range(len(requests)), key=lambda i: self._cost(requests[i]))
        done = self._generate_batches([requests[i] for i in order], settings, batch_size)
        results: list[Generation] = [done[0]] * len(requests)
        for i, generation in zip(order, done, strict=True):
            results[i] = generation
        return results

    def _generate_batches(
        self, requests: list[Request], settings: GenerationSettings, batch_size: int
    ) -> list[Generation]:
        results: list[Generation] = []
        for start in range(0, len(requests), max(1, batch_size)):
            chunk = requests[start : start + batch_size]
            try:
                results.extend(self._generate_chunk(chunk, settings))
            except Exception as exc:  # noqa: BLE001 - isolate the failing request below
                if len(chunk) == 1:
                    logger.warning("generation failed: %s", exc)
                    results.append(Generation("", None, error=f"{type(exc).__name__}: {exc}"))
                else:
                    results.extend(self._generate_batches(chunk, settings, 1))
        return results

    def _score_chunk(
        self, requests: list[Request], continuations: list[str], prefixes: list[str]
    ) -> list[ContinuationScore]:
        import torch

        contexts = [t + p for t, p in zip(self._prompt_texts(requests), prefixes, strict=True)]
        lengths = continuation_lengths(self.processor.tokenizer, contexts, continuations)
        present = [r.image for r in requests if r.image is not None]
        inputs = self.processor(
            text=[c + x for c, x in zip(contexts, continuations, strict=True)],
            images=present or None,
            padding=True,
            return_tensors="pt",
        )
        grid = inputs["image_grid_thw"].tolist() if "image_grid_thw" in inputs else []
        inputs = inputs.to(self.device)
        keep = max(lengths) + 1
        kwargs: dict[str, Any] = {"logits_to_keep": keep, "use_cache": False}
        with torch.inference_mode():
            # Sentences of one caption share their image object: encode it once.
            encoded = self._encode_unique_images(present, inputs) if self.reuse_vision else None
            if encoded is not None:
                kwargs["mm_encoder_outputs"], patches = encoded
            else:
                patches = int(sum(t * h * w for t, h, w in grid))
            self.vision_patches += patches
            logits = self.model(**inputs, **kwargs).logits
            logp = torch.log_softmax(logits.float(), dim=-1)
        ids = inputs["input_ids"]
        width = ids.shape[1]
        out = []
        for b, n in enumerate(lengths):
            if n == 0:
                out.append(ContinuationScore(()))
                continue
            # Left padding: every row ends at ``width - 1``. Kept logits cover positions
            # ``width - keep .. width - 1``; the token at position t is predicted at t - 1.
            targets = ids[b, width - n :]
            rows = logp[b, keep - n - 1 : keep - 1]
            lp = rows.gather(-1, targets[:, None]).squeeze(-1)
            out.append(ContinuationScore(tuple(lp.tolist()), tuple(targets.tolist())))
        return out

    def continuation_logprobs(
        self,
        requests: list[Request],
        continuations: list[str],
        prefixes: list[str] | None = None,
        *,
        batch_size: int = 8,
    ) -> list[ContinuationScore]:
        """Teacher-forced log-probs of each continuation's tokens, from forward passes only.

        Item ``i`` is scored in the context of ``requests[i]`` (its image, or none, and its
        prompt, through the chat template with the generation prompt) followed by the assistant
        text ``prefixes[i]`` (default ``""``): the text is ``template + prefix + continuation``,
        exactly what the model saw while writing it. Batched (left padding, the processor's
        ``mm_token_type_ids``), ``batch_size`` items per forward pass; a failing batch is retried
        one item at a time and a failing item gets ``error`` set.

        Example:
            >>> caption = "A red ball. A blue box."
            >>> scores = vlm.continuation_logprobs(                                # doctest: +SKIP
            ...     [Request(image, "Describe."), Request(None, "Describe.")],
            ...     ["A blue box."] * 2, prefixes=["A red ball. "] * 2)
            >>> scores[0].mean - scores[1].mean        # how much the image helps   # doctest: +SKIP
        """
        prefixes = [""] * len(requests) if prefixes is None else list(prefixes)
        if not len(requests) == len(continuations) == len(prefixes):
            raise ValueError("requests, continuations and prefixes must have the same length")
        results: list[ContinuationScore] = []
        step = max(1, batch_size)
        for start in range(0, len(requests), step):
            chunk = slice(start, start + step)
            try:
                results.extend(
                    self._score_chunk(requests[chunk], continuations[chunk], prefixes[chunk])
                )
            except Exception as exc:  # noqa: BLE001 - isolate the failing item below
                if step == 1:
                    logger.warning("scoring failed: %s", exc)
                    results.append(ContinuationScore((), error=f"{type(exc).__name__}: {exc}"))
                else:
                    results.extend(
                        self.continuation_logprobs(
                            requests[chunk], continuations[chunk], prefixes[chunk], batch_size=1
                        )
                    )
        return results

    def __repr__(self) -> str:
        return f"VLM({self.model_id!r}, family={self.family!r}, device={self.device!r})"


__all__ = [
    "ContinuationScore",
    "Generation",
    "GenerationSettings",
    "Request",
    "VLM",
    "continuation_lengths",
]
