"""hfgcot.fingerprint: the one JSON form of configs and records, and its stable hash."""

from __future__ import annotations

import dataclasses
from pathlib import Path, PurePosixPath

import pytest

from hfgcot.fingerprint import jsonable, stable_hash


@dataclasses.dataclass(frozen=True)
class Inner:
    path: Path = Path("models/m")
    tags: frozenset[str] = frozenset({"b", "a", "c"})


@dataclasses.dataclass(frozen=True)
class Outer:
    inner: Inner = Inner()
    sizes: tuple[int, ...] = (1, 2)
    mapping: dict = dataclasses.field(default_factory=lambda: {1: "x"})


def test_jsonable_gives_plain_json_data():
    assert jsonable(Outer()) == {
        "inner": {"path": "models/m", "tags": ["a", "b", "c"]},
        "sizes": [1, 2],
        "mapping": {"1": "x"},
    }
    assert jsonable([None, True, 3, 2.5, "s"]) == [None, True, 3, 2.5, "s"]
    assert jsonable(Outer) == str(Outer)  # a class is no dataclass instance
    assert jsonable(object.__new__(type("Odd", (), {"__str__": lambda self: "odd"}))) == "odd"


def test_stable_hash_ignores_key_and_set_order_but_not_values():
    assert stable_hash({"a": 1, "b": 2}) == stable_hash({"b": 2, "a": 1})
    assert stable_hash(frozenset({"x", "y", "z"})) == stable_hash(["x", "y", "z"])
    assert stable_hash(Inner()) == stable_hash(Inner(path=PurePosixPath("models/m")))
    assert stable_hash({"a": 1}) != stable_hash({"a": 2})


def test_stage_fingerprints_and_provenance_records_use_the_same_json():
    from datasets import Dataset

    from hfgcot.model.spec import ModelSpec
    from hfgcot.pipelines.gcot import GCoTConfig, gcot_stages
    from hfgcot.publishing.provenance import pipeline_provenance

    config = GCoTConfig()
    stages = gcot_stages(config, ModelSpec("org/m"))
    ds = Dataset.from_dict({"x": [1]})
    record = pipeline_provenance("gcot", ds, config=config, spec=stages[0].model, stages=stages)
    assert [s["config"] for s in record["stages"]] == [
        s.fingerprint_data()["config"] for s in stages
    ]


def test_entry_points_taking_splits_refuse_other_values():
    from hfgcot import to_grounding_sft

    with pytest.raises(TypeError, match="Dataset or DatasetDict, got list"):
        to_grounding_sft([{"image": None, "question": "q", "bbox": [1, 2, 3, 4]}])
