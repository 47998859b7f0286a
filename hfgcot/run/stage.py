"""What an executor needs of a stage: the :class:`StageLike` protocol.

The executors (:mod:`hfgcot.run.local`, :mod:`hfgcot.run.ray`) run any object shaped like this;
:class:`hfgcot.pipelines.base.Stage` is the one implementation hfgcot ships. Executors never
import a pipeline: pipelines build stages and hand them over.

    >>> from hfgcot.pipelines.base import Stage
    >>> isinstance(Stage(), StageLike)
    True
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from datasets import Features

__all__ = ["StageLike"]


@runtime_checkable
class StageLike(Protocol):
    """A batched ``Dataset.map`` function with a name, typed output columns and a fingerprint."""

    name: str
    status_column: str | None

    def __call__(self, batch: dict[str, list], rank: int | None = None) -> dict[str, list]:
        """Output columns of one batch (dict of equal-length lists, rows in order)."""
        ...

    def features(self) -> Features:
        """The Arrow features of the columns the stage writes."""
        ...

    def new_fingerprint(self, dataset_fingerprint: str) -> str:
        """The fingerprint of the stage's output on a dataset with this fingerprint."""
        ...

    def prepare(self, rank: int | None = None) -> Any:
        """Load what the stage needs before its first batch (e.g. the model on ``rank``)."""
        ...

    @property
    def fingerprint(self) -> str:
        """Deterministic across processes for the same stage fields, prompts and model."""
        ...
