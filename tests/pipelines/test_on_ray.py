"""``hfgcot.pipelines.on_ray``: every model pipeline on a local Ray instance gives the rows of its
local run (GCoT's own test is in ``tests/run/test_ray.py``)."""

from __future__ import annotations

import inspect

import pytest
from conftest import png_bytes, random_image
from datasets import Dataset, DatasetDict, Image

from hfgcot import (
    add_dense_captions,
    add_grounding_predictions,
    add_region_captions,
    get_provenance,
    to_grounding_sft,
)
from hfgcot.testing.tiny import ScriptedVLM

pytest.importorskip("ray", reason="needs pip install 'hfgcot[ray]'")

from hfgcot.ray import (  # noqa: E402
    ROW_INDEX,
    RayOptions,
    add_dense_captions_ray,
    add_gcot_ray,
    add_grounding_predictions_ray,
    add_region_captions_ray,
    parquet_files,
)

pytestmark = [pytest.mark.model, pytest.mark.slow]

RAY = {"num_actors": 1, "num_cpus_per_actor": 0.5}  # leaves a CPU for Ray's read/write tasks


def images(sizes: list[tuple[int, int]], bad: int | None = None) -> list[dict]:
    cells = [png_bytes(random_image(w, h, seed=i)) for i, (w, h) in enumerate(sizes)]
    if bad is not None:
        cells[bad] = {"bytes": b"not an image", "path": None}
    return cells


def raw(ds: Dataset) -> list[dict]:
    """Rows with every image column as its stored bytes (comparable across runs)."""
    for name, feature in ds.features.items():
        if isinstance(feature, Image):
            ds = ds.cast_column(name, Image(decode=False))
    return ds.to_list()


def assert_same_run(out: Dataset, expected: Dataset, status: str, output_dir) -> None:
    """The Ray run's rows, features, order and record are the local run's; its parquet is in
    ``output_dir``."""
    assert parquet_files(str(output_dir))  # the actors wrote it
    assert out.features == expected.features
    assert ROW_INDEX not in out.column_names
    assert raw(out) == raw(expected)
    assert out[status] == expected[status]
    record, local = get_provenance(out)[-1], get_provenance(expected)[-1]
    assert record["executor"]["name"] == "ray" and "run" not in record
    for key in ("pipeline", "config", "prompts", "status", "summary"):
        assert record[key] == local[key], key


def test_dense_captions_on_ray_equal_the_local_run(local_ray, tiny_vlm_path, tmp_path):
    ds = Dataset.from_dict({"image": images([(64, 48), (40, 70), (56, 56)], bad=1)})
    ds = ds.cast_column("image", Image())
    settings = {"checker": "contrastive", "threshold": -1e9, "max_questions": 1}
    settings |= {"max_new_tokens": 6, "batch_size": 2}
    expected = add_dense_captions(ds, tiny_vlm_path, **settings)
    out = add_dense_captions_ray(ds, tiny_vlm_path, output_dir=tmp_path / "d", **RAY, **settings)
    assert_same_run(out, expected, "dense_caption_status", tmp_path / "d")
    assert out["dense_caption_status"][1] == "undecodable_image"
    assert any(out["golden_sentences"])  # the model ran in the actor, up to the self-check


def test_region_captions_on_ray_equal_the_local_run(local_ray, tiny_vlm_path, tmp_path):
    boxes = [[[4, 4, 20, 20], [300, 4, 5, 5]], [[10, 10, 30, 20]], [[1, 1, 5, 5]]]
    ds = Dataset.from_dict({"image": images([(64, 48), (90, 60), (40, 40)], bad=2), "bbox": boxes})
    ds = ds.cast_column("image", Image())
    settings = {"max_new_tokens": 6, "batch_size": 2}
    expected = add_region_captions(ds, tiny_vlm_path, **settings)
    out = add_region_captions_ray(ds, tiny_vlm_path, output_dir=tmp_path / "r", **RAY, **settings)
    assert_same_run(out, expected, "region_caption_status", tmp_path / "r")
    assert out.features["image_with_bbox"] == Image()  # the marked images came back as images
    assert out[0]["image_with_bbox"].size == (64, 48)
    assert "(after boxes_skipped: skipped 1 of 2 boxes" in out["region_caption_status"][0]


def test_grounding_predictions_on_ray_equal_the_local_run(local_ray, tiny_vlm_path, tmp_path):
    """A ``DatasetDict`` of grounding SFT rows (the user turn asked) and plain question rows."""
    sft = to_grounding_sft(
        Dataset.from_dict(
            {
                "image": images([(64, 48), (50, 50)]),
                "question": ["the red ball", "the box"],
                "bbox": [[2, 2, 20, 20], [500, 500, 10, 10]],  # the second is outside
            }
        ).cast_column("image", Image()),
        bbox_format="xywh",
    )
    plain = Dataset.from_dict({"image": images([(60, 40)]), "question": ["the circle"]})
    splits = DatasetDict({"sft": sft, "plain": plain.cast_column("image", Image())})
    expected = add_grounding_predictions(splits, tiny_vlm_path, max_new_tokens=8)
    out = add_grounding_predictions_ray(
        splits, tiny_vlm_path, output_dir=tmp_path / "p", **RAY, max_new_tokens=8
    )
    assert isinstance(out, DatasetDict) and list(out) == ["sft", "plain"]
    for split in out:
        assert_same_run(out[split], expected[split], "pred_status", tmp_path / "p" / split)
    assert out["sft"]["pred_status"][1] == sft["sft_status"][1] != "ok"  # skipped, status kept
    assert get_provenance(out["plain"])[-1]["executor"]["output_dir"] == "plain"  # no path


def test_every_entry_point_has_add_gcot_rays_signature_and_refuses_what_ray_cannot_do(
    tiny_vlm, tmp_path
):
    """Checks before any Ray work (no Ray instance needed)."""
    empty = Dataset.from_dict({"image": [], "bbox": []})
    for entry in (add_dense_captions_ray, add_region_captions_ray, add_grounding_predictions_ray):
        assert inspect.signature(entry) == inspect.signature(add_gcot_ray)
        with pytest.raises(TypeError, match="options of local runs"):
            entry(empty, "m/m", output_dir=tmp_path, checkpoint_dir=tmp_path / "c")
        with pytest.raises(TypeError, match="load their own model"):
            entry(empty, ScriptedVLM(tiny_vlm, lambda request, text: ""), output_dir=tmp_path)
    with pytest.raises(TypeError, match="run must be a RunOptions, got RayOptions"):
        to_grounding_sft(empty, run=RayOptions(tmp_path))
