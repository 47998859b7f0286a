"""What every stage shares: a frozen config, a deterministic fingerprint, a per-row status.

A stage is a small callable ``stage(batch, rank=None) -> dict of lists`` used as a batched
``Dataset.map`` function. It holds no model: model stages hold a :class:`~hfgcot.model.spec.ModelSpec` and
get the model from the per-process cache (:func:`hfgcot.model.spec.get_vlm`), so ``datasets`` never has to
hash or pickle weights, and ``num_proc`` workers each load their own copy once.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from typing import Any, ClassVar, Literal

from datasets import Features

import hfgcot
from hfgcot import prompts
from hfgcot.images import ImagePolicy
from hfgcot.model.endpoint import EndpointSpec
from hfgcot.model.spec import ModelSpec, get_vlm, spec_fingerprint_data
from hfgcot.model.vlm import VLM, GenerationSettings

OK = "ok"


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def cell_text(value: Any) -> str:
    """A text cell as stripped text; lists (e.g. TextVQA answers) give their first non-empty item.

    >>> cell_text(["", " red "]), cell_text(None), cell_text(3)
    ('red', '', '3')
    """
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return next((str(v).strip() for v in value if v is not None and str(v).strip()), "")
    return str(value).strip()


def validate_choices(config: Any) -> None:
    """Raise ``ValueError`` for a dataclass field whose value is not one of its ``Literal`` choices.

    >>> @dataclasses.dataclass
    ... class C:
    ...     mode: Literal["a", "b"] = "a"
    >>> validate_choices(C(mode="c"))
    Traceback (most recent call last):
    ...
    ValueError: mode must be one of ('a', 'b'), got 'c'
    """
    hints = typing.get_type_hints(type(config))
    for f in dataclasses.fields(config):
        hint = hints.get(f.name)
        if typing.get_origin(hint) is Literal:
            choices = typing.get_args(hint)
            value = getattr(config, f.name)
            if value not in choices:
                raise ValueError(f"{f.name} must be one of {choices}, got {value!r}")


def stable_hash(data: Any) -> str:
    """A process-independent hash of JSON-able data (dataclasses allowed)."""
    from datasets.fingerprint import Hasher

    return Hasher.hash(json.dumps(_jsonable(data), sort_keys=True, default=str))


class PipelineConfig:
    """Methods shared by the pipeline configs (``GCoTConfig``, ``DenseCaptionConfig``...).

    A subclass is a frozen dataclass with the fields ``max_new_tokens``, ``do_sample``,
    ``temperature``, ``top_p``, ``seed``, ``min_image_side`` and ``max_aspect_ratio`` (and
    optionally ``cache_implementation``).
    """

    def generation(self, max_new_tokens: int | None = None) -> GenerationSettings:
        """The generation settings of the config (``max_new_tokens`` overrides its budget)."""
        return GenerationSettings(
            max_new_tokens=max_new_tokens or self.max_new_tokens,  # type: ignore[attr-defined]
            do_sample=self.do_sample,  # type: ignore[attr-defined]
            temperature=self.temperature,  # type: ignore[attr-defined]
            top_p=self.top_p,  # type: ignore[attr-defined]
            seed=self.seed,  # type: ignore[attr-defined]
            cache_implementation=getattr(self, "cache_implementation", None),
        )

    @property
    def image_policy(self) -> ImagePolicy:
        return ImagePolicy(
            min_side=self.min_image_side,  # type: ignore[attr-defined]
            max_aspect_ratio=self.max_aspect_ratio,  # type: ignore[attr-defined]
        )


@dataclasses.dataclass(frozen=True)
class Stage:
    """Base class: subclasses are frozen dataclasses and implement ``__call__`` and ``features``."""

    name: ClassVar[str] = "stage"
    status_column: ClassVar[str | None] = None

    def __post_init__(self) -> None:
        validate_choices(self)

    def __call__(self, batch: dict[str, list], rank: int | None = None) -> dict[str, list]:
        raise NotImplementedError

    def features(self) -> Features:
        """The Arrow features of the columns this stage writes."""
        raise NotImplementedError

    def fingerprint_data(self) -> dict[str, Any]:
        data = {
            "stage": self.name,
            "config": _jsonable(self),
            "prompts": prompts.prompt_fingerprint_data(),
            "hfgcot": hfgcot.__version__,
        }
        spec = getattr(self, "model", None)
        if isinstance(spec, ModelSpec | EndpointSpec):
            data["model"] = spec_fingerprint_data(spec)
        return data

    @property
    def fingerprint(self) -> str:
        """Deterministic across processes: same config, prompts, model, version -> same hash."""
        return stable_hash(self.fingerprint_data())

    def new_fingerprint(self, dataset_fingerprint: str) -> str:
        """The ``new_fingerprint`` for ``Dataset.map``: input fingerprint + this stage."""
        return stable_hash([dataset_fingerprint, self.fingerprint])


@dataclasses.dataclass(frozen=True)
class ModelStage(Stage):
    """A stage that runs the VLM: a model spec, generation settings and a request batch size."""

    model: ModelSpec = ModelSpec()
    generation: GenerationSettings = GenerationSettings()
    batch_size: int = 8

    def vlm(self, rank: int | None = None) -> VLM:
        return get_vlm(self.model, rank)
