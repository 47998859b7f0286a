"""What every stage shares: frozen fields, a deterministic fingerprint, a per-row status.

Configs and how entry points read their options live in :mod:`hfgcot.pipelines.config`.

A stage is a small callable ``stage(batch, rank=None) -> dict of lists`` used as a batched
``Dataset.map`` function. It holds no model: model stages hold a :class:`~hfgcot.model.spec.ModelSpec` and
get the model from the per-process cache (:func:`hfgcot.model.spec.get_vlm`), so ``datasets`` never has to
hash or pickle weights, and ``num_proc`` workers each load their own copy once.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from datasets import Features

import hfgcot
from hfgcot.fingerprint import jsonable, stable_hash
from hfgcot.geometry.families import get_family
from hfgcot.model.endpoint import EndpointSpec
from hfgcot.model.spec import (
    ModelSpec,
    get_vlm,
    spec_fingerprint_data,
)
from hfgcot.model.vlm import VLM, Generation, GenerationSettings, Request
from hfgcot.pipelines.config import validate_choices
from hfgcot.status import cap


@dataclasses.dataclass(frozen=True)
class Stage:
    """Base class: subclasses are frozen dataclasses and implement ``process`` and ``features``.

    ``version`` is bumped whenever what the stage writes changes; it, the stage's own fields
    (its prompts included) and its model make the stage's fingerprint, and nothing else does.
    Calling a stage runs :meth:`process` and caps every status it writes
    (:func:`hfgcot.status.cap`): the one place row statuses are finished.
    """

    name: ClassVar[str] = "stage"
    version: ClassVar[str] = "1"
    status_column: ClassVar[str | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__call__" in cls.__dict__:
            raise TypeError(
                f"{cls.__name__} defines __call__: implement process(batch, rank) instead "
                "(Stage.__call__ caps the statuses it writes)"
            )

    def __post_init__(self) -> None:
        validate_choices(self)

    def __call__(self, batch: dict[str, list], rank: int | None = None) -> dict[str, list]:
        """The ``Dataset.map`` function: :meth:`process`, with its statuses capped."""
        out = self.process(batch, rank)
        column = self.status_column
        if column and column in out:
            out[column] = [s if s is None else cap(s) for s in out[column]]
        return out

    def process(self, batch: dict[str, list], rank: int | None = None) -> dict[str, list]:
        """The output columns of one batch (``dict`` of equal-length lists, rows in order)."""
        raise NotImplementedError

    def prepare(self, rank: int | None = None) -> None:
        """Load what the stage needs before its first batch (nothing; model stages: the model)."""

    def features(self) -> Features:
        """The Arrow features of the columns this stage writes."""
        raise NotImplementedError

    def fingerprint_data(self) -> dict[str, Any]:
        """What the fingerprint hashes: name, version, the stage's fields, model, library.

        A served model enters only by its identity (:func:`~hfgcot.model.spec.spec_fingerprint_data`):
        how the server is reached (URL, concurrency, timeout, retries, key variable) changes no
        output, so it changes no fingerprint.
        """
        config = jsonable(self)
        data = {
            "stage": self.name,
            "version": self.version,
            "config": config,
            "hfgcot": hfgcot.__version__,
        }
        spec = getattr(self, "model", None)
        if isinstance(spec, ModelSpec | EndpointSpec):
            data["model"] = spec_fingerprint_data(spec)
        if isinstance(spec, EndpointSpec):
            config.pop("model")
        return data

    @property
    def fingerprint(self) -> str:
        """Deterministic across processes: same fields, prompts, model, version -> same hash."""
        return stable_hash(self.fingerprint_data())

    def new_fingerprint(self, dataset_fingerprint: str) -> str:
        """The ``new_fingerprint`` for ``Dataset.map``: input fingerprint + this stage."""
        return stable_hash([dataset_fingerprint, self.fingerprint])


@dataclasses.dataclass(frozen=True)
class ModelStage(Stage):
    """A stage that runs the VLM: a model spec, generation settings, batch limits, a system turn."""

    model: ModelSpec = ModelSpec()
    generation: GenerationSettings = GenerationSettings()
    batch_size: int = 8
    max_batch_tokens: int | None = None
    system_prompt: str | None = None

    def vlm(self, rank: int | None = None) -> VLM:
        return get_vlm(self.model, rank)

    def prepare(self, rank: int | None = None) -> None:
        """Load the model of ``rank`` now (a broken model fails here, not on the first batch)."""
        self.vlm(rank)

    def family_prompt(self, kind: str, template: str | None, rank: int | None = None) -> str:
        """``template``, or when it is ``None`` the model family's default for prompt ``kind``
        (the entry points fill these in before building stages; this covers stages built by
        hand)."""
        return (
            template if template is not None else getattr(get_family(self.vlm(rank).family), kind)
        )

    def generate(
        self, requests: list[Request], rank: int | None = None, *, batch_size: int | None = None
    ) -> list[Generation]:
        """This stage's requests through its model: its settings, batch limits and name."""
        return self.vlm(rank).generate(
            requests,
            self.generation,
            batch_size=batch_size or self.batch_size,
            max_batch_tokens=self.max_batch_tokens,
            stage=self.name,
        )

    def request(self, image: Any, prompt: str) -> Request:
        """A request with this stage's system turn (``None``: the chat template's default)."""
        return Request(image, prompt, self.system_prompt)
