"""The in-process engine: batched generation and scoring with a loaded Qwen-VL model.

Loading (once per process, cached) is :func:`hfgcot.model.spec.load_vlm`'s job; requests and
answers are the dataclasses of :mod:`hfgcot.model.requests`; batches and the out-of-memory
backoff are decided by :mod:`hfgcot.model.batching`.

    >>> vlm = load_vlm("Qwen/Qwen2.5-VL-3B-Instruct")                          # doctest: +SKIP
    >>> out = vlm.generate([Request(image, "Describe the image.")], GenerationSettings())  # doctest: +SKIP
    >>> out[0].text, out[0].frame, out[0].truncated                             # doctest: +SKIP

Rules this module keeps: left padding for batched generation, tokenization through the processor
(it returns ``mm_token_type_ids``, without which the 3-D rotary positions degrade), every
request's :class:`Frame` taken from the processor's own ``image_grid_thw``, and each distinct
image of a batch encoded once.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from hfgcot.geometry.families import Family, family_for_model_type, get_family
from hfgcot.geometry.frames import Frame
from hfgcot.model.batching import Backoff, BatchLimit, prompt_cost
from hfgcot.model.memory import budget_tokens, token_cost
from hfgcot.model.requests import ContinuationScore, Generation, GenerationSettings, Request
from hfgcot.model.revision import resolve_revision
from hfgcot.model.scoring import continuation_lengths, gather_scores

logger = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")


def _is_oom(exc: BaseException) -> bool:
    import torch

    return isinstance(exc, torch.OutOfMemoryError)


class VLM:
    """A loaded model + processor with the facts needed to interpret its boxes.

    Build it with :func:`hfgcot.load_vlm` (``spec`` is the
    :class:`~hfgcot.model.spec.ModelSpec` it was loaded from). ``family`` gives the box
    convention (from ``model_type``), ``min_pixels``/``max_pixels`` the resize limits the
    processor really uses. ``backoff`` keeps, per stage, the batch limit that fitted in memory.
    """

    def __init__(self, model: Any, processor: Any, spec: Any, device: str) -> None:
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
        self.backoff = Backoff(is_oom=_is_oom, free=self._free_memory)
        self._free_bytes: int | None = None  # free CUDA memory, measured at first use

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

    # -- memory ---------------------------------------------------------------------------

    def default_max_batch_tokens(self, batch_size: int, max_new_tokens: int) -> int | None:
        """Prompt tokens per forward pass that fit: from free CUDA memory; ``None`` elsewhere.

        The free memory is measured once, at first use (the weights are loaded by then); the
        bytes per token come from the model config (:func:`hfgcot.model.memory.token_cost`).
        """
        if not str(self.device).startswith("cuda"):
            return None
        import torch

        if self._free_bytes is None:
            free, _ = torch.cuda.mem_get_info(self.device)
            cached = torch.cuda.memory_reserved(self.device) - torch.cuda.memory_allocated(
                self.device
            )
            self._free_bytes = int(free + cached)
        cost = token_cost(self.model.config, self.model.dtype.itemsize)
        return budget_tokens(
            self._free_bytes, cost, batch_size=batch_size, max_new_tokens=max_new_tokens
        )

    def batch_limit(
        self, batch_size: int, max_batch_tokens: int | None, max_new_tokens: int = 1
    ) -> BatchLimit:
        """The limit of one call: ``batch_size`` requests and ``max_batch_tokens`` prompt tokens
        per forward pass (``None``: :meth:`default_max_batch_tokens`)."""
        if max_batch_tokens is None:
            max_batch_tokens = self.default_max_batch_tokens(max(1, batch_size), max_new_tokens)
        return BatchLimit(max(1, batch_size), max_batch_tokens)

    def reset_limits(self) -> None:
        """Forget the batch limits learned from out-of-memory errors and the measured free memory
        (for example after other work on the device started or ended)."""
        self.backoff.learned.clear()
        self._free_bytes = None

    def _free_memory(self) -> None:
        """After an out-of-memory error: drop dead tensors and the allocator's cached blocks."""
        gc.collect()
        if str(self.device).startswith("cuda"):
            import torch

            torch.cuda.empty_cache()

    def request_cost(self, request: Request) -> int:
        """Approximate prompt tokens of ``request`` (what batches and length sorting count).

        An image of unknown size counts no tokens (the processor will judge it).
        """
        return prompt_cost(
            request.prompt,
            getattr(request.image, "size", None),
            min_pixels=self.min_pixels,
            max_pixels=self.max_pixels,
            patch_size=self.patch_size,
            merge_size=get_family(self.family).merge_size,
        )

    def _batched(
        self,
        items: Sequence[T],
        costs: list[int],
        work: Callable[[list[T]], list[R]],
        failed: Callable[[T, str], R],
        limit: BatchLimit,
        key: str,
        sort: bool,
    ) -> list[R]:
        """``work`` in batches within ``limit`` (sorted by cost when ``sort``), in caller order."""
        order = sorted(range(len(items)), key=costs.__getitem__) if sort else range(len(items))
        done = self.backoff.run(
            [items[i] for i in order], [costs[i] for i in order], work, failed, limit, key
        )
        results: list[Any] = [None] * len(items)
        for i, result in zip(order, done, strict=True):
            results[i] = result
        return results

    # -- model inputs ---------------------------------------------------------------------

    def _prompt_texts(self, requests: list[Request]) -> list[str]:
        return [
            self.processor.apply_chat_template(
                r.messages(), tokenize=False, add_generation_prompt=True
            )
            for r in requests
        ]

    def _inputs(self, texts: list[str], images: list[Any]) -> tuple[Any, list[Any], list]:
        """Processor inputs (left padded), the images present, and their ``image_grid_thw``."""
        present = [im for im in images if im is not None]
        inputs = self.processor(
            text=texts, images=present or None, padding=True, return_tensors="pt"
        )
        grid = inputs["image_grid_thw"].tolist() if "image_grid_thw" in inputs else []
        return inputs, present, grid

    def _vision(self, present: list[Any], inputs: Any, grid: list[list[int]]) -> dict[str, Any]:
        """Extra model inputs that encode each distinct image once; counts the patches encoded.

        Several requests on one image (K keywords, N questions, a sentence checked with and
        without the rest) would otherwise encode it K times. Returns ``{"mm_encoder_outputs":
        ...}`` (one ``pooler_output`` entry per image placeholder, in order) and drops
        ``pixel_values`` from ``inputs``, or ``{}`` when every image is distinct.
        """
        encoded = self._encode_unique_images(present) if self.reuse_vision else None
        if encoded is None:
            self.vision_patches += int(sum(t * h * w for t, h, w in grid))
            return {}
        outputs, patches = encoded
        self.vision_patches += patches
        inputs.pop("pixel_values", None)
        return {"mm_encoder_outputs": outputs}

    def _encode_unique_images(self, images: list[Any]) -> tuple[dict[str, Any], int] | None:
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
        out = BaseModelOutputWithPooling(
            pooler_output=tuple(features.pooler_output[i] for i in order)
        )
        deepstack = getattr(features, "deepstack_features", None)
        if deepstack is not None:  # Qwen3-VL: per-layer features, one entry per image as well
            features.pooler_output = out.pooler_output
            features.deepstack_features = [tuple(layer[i] for i in order) for layer in deepstack]
            out = features
        patches = int(grid.prod(-1).sum())
        return {"image": out}, patches

    # -- generation -----------------------------------------------------------------------

    def _generate_chunk(
        self, requests: list[Request], settings: GenerationSettings
    ) -> list[Generation]:
        import torch

        images = [r.image for r in requests]
        inputs, present, grid = self._inputs(self._prompt_texts(requests), images)
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
            gen_kwargs.update(self._vision(present, inputs, grid))
            out = self.model.generate(**inputs, **gen_kwargs)
        new_tokens = out[:, inputs["input_ids"].shape[1] :]
        pad = self.processor.tokenizer.pad_token_id
        if pad is not None:
            self.generated_tokens += int((new_tokens != pad).sum())
        texts = self.processor.batch_decode(new_tokens, skip_special_tokens=True)
        cut = self._truncated(new_tokens, settings.max_new_tokens)
        return [
            Generation(text=t, frame=f, truncated=c)
            for t, f, c in zip(texts, frames, cut, strict=True)
        ]

    def _truncated(self, new_tokens: Any, max_new_tokens: int) -> list[bool]:
        """Which rows stopped at ``max_new_tokens`` without writing an end-of-sequence token."""
        import torch

        rows = int(new_tokens.shape[0])
        if new_tokens.shape[1] < max_new_tokens:  # every row ended before the budget
            return [False] * rows
        eos = self.model.generation_config.eos_token_id
        ids = [eos] if isinstance(eos, int) else list(eos or [])
        if not ids:
            return [True] * rows
        ended = torch.isin(new_tokens, torch.tensor(ids, device=new_tokens.device)).any(dim=1)
        return [not e for e in ended.tolist()]

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
        """Answer ``requests``; one :class:`Generation` per request, in the caller's order.

        A forward pass holds at most ``batch_size`` requests and ``max_batch_tokens`` prompt
        tokens (image tokens included; default: what fits in free CUDA memory, no limit on CPU);
        a request above the token limit runs alone. With ``sort_by_length`` requests are
        batched in order of prompt length, so batches carry less padding; greedy outputs do not
        depend on the batching. A batch that runs out of memory is halved and retried, and the
        limit that fitted is kept for later calls with the same ``stage``; a request that does
        not fit alone gets ``error="out_of_memory: <tokens> tokens"``. Any other failing batch
        is retried one request at a time: a bad request gets ``error`` and an empty text.
        ``truncated`` marks answers cut at ``max_new_tokens``.
        """
        settings = settings or GenerationSettings()
        limit = self.batch_limit(batch_size, max_batch_tokens, settings.max_new_tokens)
        return self._batched(
            requests,
            [self.request_cost(r) for r in requests],
            lambda chunk: self._generate_chunk(chunk, settings),
            lambda _request, error: Generation("", None, error=error),
            limit,
            stage,
            sort_by_length,
        )

    # -- scoring --------------------------------------------------------------------------

    def _score_chunk(self, items: list[tuple[Request, str, str]]) -> list[ContinuationScore]:
        import torch

        requests, continuations, prefixes = (list(x) for x in zip(*items, strict=True))
        contexts = [t + p for t, p in zip(self._prompt_texts(requests), prefixes, strict=True)]
        lengths = continuation_lengths(self.processor.tokenizer, contexts, continuations)
        texts = [c + x for c, x in zip(contexts, continuations, strict=True)]
        inputs, present, grid = self._inputs(texts, [r.image for r in requests])
        inputs = inputs.to(self.device)
        keep = max(lengths) + 1
        kwargs: dict[str, Any] = {"logits_to_keep": keep, "use_cache": False}
        with torch.inference_mode():
            kwargs.update(self._vision(present, inputs, grid))
            logits = self.model(**inputs, **kwargs).logits
            logp = torch.log_softmax(logits.float(), dim=-1)
        return gather_scores(inputs["input_ids"], logp, lengths, keep)

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
        """Teacher-forced log-probs of each continuation's tokens, from forward passes only.

        Item ``i`` is scored in the context of ``requests[i]`` (its image, or none, and its
        prompt, through the chat template with the generation prompt) followed by the assistant
        text ``prefixes[i]`` (default ``""``): the text is ``template + prefix + continuation``,
        exactly what the model saw while writing it. Batched like :meth:`generate` (left
        padding, at most ``batch_size`` items and ``max_batch_tokens`` tokens per forward pass,
        the same out-of-memory backoff, in the given order); a failing item gets ``error`` set.

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
        items = list(zip(requests, continuations, prefixes, strict=True))
        costs = [self.request_cost(r) + prompt_cost(p + c) for r, c, p in items]
        return self._batched(
            items,
            costs,
            self._score_chunk,
            lambda _item, error: ContinuationScore((), error=error),
            self.batch_limit(batch_size, max_batch_tokens),
            stage,
            sort=False,
        )

    def __repr__(self) -> str:
        return f"VLM({self.model_id!r}, family={self.family!r}, device={self.device!r})"


__all__ = ["VLM", "ContinuationScore", "Generation", "GenerationSettings", "Request"]
