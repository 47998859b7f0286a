"""``hfgcot.run.ray``: the same stages on a local Ray instance give the same rows as ``add_gcot``
(the ``local_ray`` fixture is in ``tests/conftest.py``)."""

from __future__ import annotations

import time

import pytest
from conftest import png_bytes, random_image
from datasets import Dataset, Image

from hfgcot import GCoTConfig, add_gcot
from hfgcot.pipelines.gcot import gcot_stages, model_spec
from hfgcot.publishing.provenance import get_provenance
from hfgcot.run.local import undecoded
from hfgcot.testing.tiny import ScriptedVLM

pytest.importorskip("ray", reason="needs pip install 'hfgcot[ray]'")

from hfgcot.ray import (  # noqa: E402
    ROW_INDEX,
    add_gcot_ray,
    apply_stages_to_table,
    output_features,
    parquet_files,
    restore_order,
)

pytestmark = [pytest.mark.model, pytest.mark.slow]

SETTINGS = {"batch_size": 2, "max_new_tokens": 12, "grounding_max_new_tokens": 8}
COT = (
    "Step 1: The red ball is left of the blue box.\nAnswer: red ball\nKeywords: red ball, blue box"
)


def dataset(n: int = 6, bad: int | None = 3) -> Dataset:
    sizes = [(64, 48), (90, 60), (40, 70), (56, 56), (120, 40), (70, 90)]
    images = [png_bytes(random_image(*sizes[i % len(sizes)], seed=i)) for i in range(n)]
    if bad is not None:
        images[bad] = {"bytes": b"definitely not an image", "path": None}
    ds = Dataset.from_dict(
        {
            "image": images,
            "question": [f"What is in picture {i}?" for i in range(n)],
            "answer": [f"thing {i}" for i in range(n)],
            "id": list(range(100, 100 + n)),
        }
    )
    return ds.cast_column("image", Image())


def raw(ds: Dataset) -> list[dict]:
    """Rows with images as stored bytes (comparable across runs)."""
    return undecoded(ds, "image")[0].to_list()


def script(request, text: str) -> str:
    if text.startswith("Question:"):
        return COT
    return '```json\n[{"bbox_2d": [4, 6, 30, 40], "label": "x"}]\n```'


def test_table_path_equals_map_path(tiny_vlm):
    """The Arrow round trip (image structs, groundings list-of-struct) changes nothing."""
    fake = ScriptedVLM(tiny_vlm, script)
    ds = dataset()
    config = GCoTConfig(**SETTINGS)
    stages = gcot_stages(config, model_spec(fake))
    src, _ = undecoded(ds, "image")
    schema = output_features(src.features, stages).arrow_schema
    table = apply_stages_to_table(src.with_format("arrow")[:], stages, schema)
    via_table = Dataset(table).cast_column("image", Image())
    expected = add_gcot(ds, fake, config=config)
    assert via_table.features == expected.features
    assert raw(via_table) == raw(expected)
    assert expected["groundings"][0][0]["phrase"] == "red ball"  # the struct path was exercised
    assert expected["gcot_status"][3] == "undecodable_image"


def test_add_gcot_ray_equals_add_gcot(local_ray, tiny_vlm_path, tmp_path):
    ds = dataset()
    expected = add_gcot(ds, tiny_vlm_path, **SETTINGS)

    start = time.perf_counter()
    out = add_gcot_ray(
        ds,
        tiny_vlm_path,
        output_dir=tmp_path / "gcot",
        num_actors=2,
        num_cpus_per_actor=0.5,  # leaves a CPU for Ray's own read/write tasks
        config=GCoTConfig(batch_size=2),  # options given with a config apply on top of it
        max_new_tokens=SETTINGS["max_new_tokens"],
        grounding_max_new_tokens=SETTINGS["grounding_max_new_tokens"],
    )
    elapsed = time.perf_counter() - start
    print(f"add_gcot_ray on 2 actors: {elapsed:.1f} s")

    assert len(out) == len(ds)
    assert out["id"] == ds["id"]  # original order
    assert out.features == expected.features
    assert out.features["image"] == Image()
    assert ROW_INDEX not in out.column_names
    assert raw(out) == raw(expected)
    assert out["gcot_status"][3] == "undecodable_image"
    assert any(out["raw_cot_output"])  # the model ran in the actors
    assert out[0]["image"].size == (64, 48)

    record = get_provenance(out)[-1]
    assert record["pipeline"] == "gcot" and record["executor"]["num_actors"] == 2
    assert record["config"] == get_provenance(expected)[-1]["config"]
    assert record["prompts"] == get_provenance(expected)[-1]["prompts"]  # the prompts used

    files = parquet_files(str(tmp_path / "gcot"))
    assert files and all(f.endswith(".parquet") for f in files)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        add_gcot_ray(ds, tiny_vlm_path, output_dir=tmp_path / "gcot", **SETTINGS)


def test_restore_order_sorts_and_refuses_lost_rows():
    shuffled = Dataset.from_dict({"x": list("cab"), ROW_INDEX: [2, 0, 1]})
    assert restore_order(shuffled, 3).to_dict() == {"x": ["a", "b", "c"]}
    with pytest.raises(RuntimeError, match="exactly once"):
        restore_order(shuffled, 4)
    with pytest.raises(RuntimeError, match="exactly once"):
        restore_order(Dataset.from_dict({"x": list("ab"), ROW_INDEX: [0, 0]}), 2)


def test_empty_dataset_needs_no_ray(tmp_path):
    out = add_gcot_ray(dataset(0, bad=None), "unused/model", output_dir=tmp_path / "o", **SETTINGS)
    assert len(out) == 0
    assert {"gcot", "groundings", "gcot_status"} <= set(out.column_names)
    assert ROW_INDEX not in out.column_names


def test_local_run_options_are_refused(tmp_path):
    with pytest.raises(TypeError, match="options of local runs"):
        add_gcot_ray(dataset(0, bad=None), "m/m", output_dir=tmp_path / "o", num_proc=2)
    with pytest.raises(TypeError, match="unknown option"):
        add_gcot_ray(dataset(0, bad=None), "m/m", output_dir=tmp_path / "o", batchsize=2)


def test_scripted_stand_in_is_rejected(tiny_vlm, tmp_path):
    with pytest.raises(TypeError, match="load their own model"):
        add_gcot_ray(dataset(2, bad=None), ScriptedVLM(tiny_vlm, script), output_dir=tmp_path)
