"""``add_gcot`` end to end: columns, coordinates, bad rows, image inputs, cache reuse."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap

import pytest
from conftest import png_bytes, random_image
from datasets import Dataset, Image, load_from_disk
from PIL import Image as PILImage

from hfgcot import GCoTConfig, add_gcot
from hfgcot.geometry.frames import Frame
from hfgcot.testing.tiny import ScriptedVLM

pytestmark = pytest.mark.model

COT = (
    "Step 1: The red ball lies left of the blue box.\n"
    "Step 2: The ball is red.\n"
    "Answer: red ball\n"
    "Keywords: red, ball, blue box, blue box"
)
MODEL_BOX = [10, 20, 100, 150]


def script(request, text: str) -> str:
    if text.startswith("Question:"):
        return COT
    if '"ball"' in text:  # a keyword with no box at all
        return "I cannot find it."
    return f'```json\n[{{"bbox_2d": {MODEL_BOX}, "label": "x"}}, {{"bbox_2d": [5, 5, 5, 9]}}]\n```'


def dataset(images, questions=None, answers=None) -> Dataset:
    n = len(images)
    ds = Dataset.from_dict(
        {
            "image": images,
            "question": questions or ["What is left of the box?"] * n,
            "answer": answers or ["a red ball"] * n,
        }
    )
    return ds.cast_column("image", Image())


def test_gcot_columns_and_pixel_boxes(tiny_vlm):
    sizes = [(300, 200), (64, 64), (1000, 90)]
    ds = dataset([png_bytes(random_image(w, h, seed=i)) for i, (w, h) in enumerate(sizes)])
    fake = ScriptedVLM(tiny_vlm, script)
    out = add_gcot(ds, fake, batch_size=2)
    assert len(out) == 3
    assert out.features["image"] == Image()
    for (w, h), row in zip(sizes, out, strict=True):
        assert row["gcot_status"] == "ok"
        assert row["raw_cot_output"] == COT
        assert row["extracted_keywords"] == ["red ball", "blue box"]
        assert "Keywords" not in row["cleaned_cot"]
        frame = Frame.for_image(
            w, h, min_pixels=tiny_vlm.min_pixels, max_pixels=tiny_vlm.max_pixels
        )
        expected = frame.box_to_pixels(MODEL_BOX, "qwen2_5_vl")
        # one box per phrase: the zero-area box is dropped, the keyword "ball" alone was merged
        assert [g["phrase"] for g in row["groundings"]] == ["red ball", "blue box"]
        for g in row["groundings"]:
            assert g["bbox"] == pytest.approx(expected)
            assert g["bbox_model"] == [float(v) for v in MODEL_BOX]
            assert 0 <= g["bbox"][0] <= g["bbox"][2] <= w and 0 <= g["bbox"][1] <= g["bbox"][3] <= h
        box_text = "[" + ", ".join(str(round(v)) for v in expected) + "]"
        assert f"red ball {box_text} lies" in row["gcot"]
        assert f"blue box {box_text}." in row["gcot"]
        assert row["gcot"].endswith("Answer: red ball")  # never inside the answer part


def test_grounding_asks_each_keyword_once_per_row(tiny_vlm):
    fake = ScriptedVLM(tiny_vlm, script)
    add_gcot(dataset([png_bytes(random_image(80, 80))]), fake)
    grounding_calls = [c for c in fake.calls if c.startswith("Locate")]
    assert len(grounding_calls) == 2  # "red ball" and "blue box"; the duplicate asked once


def test_box_spaces(tiny_vlm):
    ds = dataset([png_bytes(random_image(300, 200))])
    fake = ScriptedVLM(tiny_vlm, script)
    model = add_gcot(ds, fake, box_space="model")[0]["gcot"]
    assert "red ball [10, 20, 100, 150]" in model
    norm = add_gcot(ds, fake, box_space="normalized")[0]
    b = norm["groundings"][0]["bbox"]
    assert (
        f"red ball [{b[0] / 300:.3f}, {b[1] / 200:.3f}, {b[2] / 300:.3f}, {b[3] / 200:.3f}]"
        in (norm["gcot"])
    )
    with pytest.raises(ValueError, match="box_space"):
        GCoTConfig(box_space="percent")


def _truncated_jpeg() -> dict:
    buf = io.BytesIO()
    random_image(200, 200).save(buf, "JPEG")
    return {"bytes": buf.getvalue()[:600], "path": None}


def test_bad_rows_keep_a_status_and_their_place(tiny_vlm, tmp_path):
    images = [
        png_bytes(random_image(120, 90, seed=1)),
        {"bytes": b"not an image at all", "path": None},
        _truncated_jpeg(),
        png_bytes(random_image(10, 10)),
        png_bytes(random_image(28, 5700)),
        {"bytes": None, "path": str(tmp_path / "missing.png")},
        png_bytes(random_image(90, 90, seed=2)),
        png_bytes(random_image(90, 90, seed=3)),
    ]
    questions = ["q1", "q2", "q3", "q4", "q5", "q6", "", None]
    ds = dataset(images, questions=questions)
    out = add_gcot(ds, ScriptedVLM(tiny_vlm, script), batch_size=3)
    statuses = out["gcot_status"]
    assert len(out) == len(ds)
    assert out["question"] == questions  # same rows, same order
    assert statuses[0] == "ok"
    assert statuses[1] == "undecodable_image"
    assert statuses[2] == "truncated_image"
    assert statuses[3] == "image_too_small: 10x10"
    assert statuses[4].startswith("aspect_ratio_too_large")
    assert statuses[5] == "file_not_found: missing.png"
    assert statuses[6] == statuses[7] == "empty_question"
    for row in out.remove_columns("image").select(range(1, 8)):
        assert row["groundings"] == [] and row["gcot"] == ""


def test_random_tiny_model_end_to_end(tiny_vlm):
    """The real (random) model writes nonsense: rows get statuses, nothing crashes."""
    ds = dataset([png_bytes(random_image(100 + 10 * i, 80, seed=i)) for i in range(4)])
    out = add_gcot(ds, tiny_vlm, batch_size=4, max_new_tokens=16)
    assert len(out) == 4
    assert all(isinstance(t, str) and t for t in out["raw_cot_output"])
    # 16 tokens of nonsense: cut before any end-of-sequence token, so reported (not no_keywords)
    assert set(out["gcot_status"]) <= {"ok", "no_groundings", "truncated_output: gcot_reasoning"}


def test_image_column_as_paths_and_modes(tiny_vlm, tmp_path):
    paths = []
    for i, mode in enumerate(["RGBA", "LA", "L", "CMYK", "P"]):
        img = random_image(70, 50, seed=i).convert(mode)
        p = tmp_path / f"img_{i}.{'jpg' if mode == 'CMYK' else 'png'}"
        img.save(p)
        paths.append(str(p))
    exif_img = PILImage.new("RGB", (120, 60))
    exif = PILImage.Exif()
    exif[0x0112] = 6  # rotate 90: viewers show 60x120
    exif_img.save(tmp_path / "rot.jpg", exif=exif)
    paths.append(str(tmp_path / "rot.jpg"))
    ds = Dataset.from_dict({"image": paths, "question": ["q"] * 6, "answer": ["a"] * 6})
    out = add_gcot(ds, ScriptedVLM(tiny_vlm, script))
    assert out["gcot_status"] == ["ok"] * 6
    rotated = out[5]["groundings"][0]["bbox"]
    frame = Frame.for_image(60, 120, min_pixels=tiny_vlm.min_pixels, max_pixels=tiny_vlm.max_pixels)
    assert rotated == pytest.approx(frame.box_to_pixels(MODEL_BOX, "qwen2_5_vl"))


def test_missing_column_is_a_clear_error(tiny_vlm):
    ds = Dataset.from_dict({"image": [png_bytes(random_image(40, 40))], "question": ["q"]})
    with pytest.raises(KeyError, match="answer"):
        add_gcot(ds, tiny_vlm)


def test_fingerprints_are_deterministic(tiny_vlm_path):
    from hfgcot.pipelines.gcot import gcot_stages, model_spec

    a = [s.fingerprint for s in gcot_stages(GCoTConfig(), model_spec(tiny_vlm_path))]
    b = [s.fingerprint for s in gcot_stages(GCoTConfig(), model_spec(tiny_vlm_path))]
    c = [s.fingerprint for s in gcot_stages(GCoTConfig(seed=1), model_spec(tiny_vlm_path))]
    assert a == b and len(set(a)) == 4
    assert a[0] != c[0] and a[1] == c[1]  # the seed changes generation stages only


RERUN = textwrap.dedent(
    """
    import json, sys
    from datasets import load_from_disk
    from hfgcot import add_gcot
    from hfgcot.model.vlm import VLM
    if sys.argv[3] == "forbid":
        def boom(*a, **k):
            raise AssertionError("generate called although the cache should be reused")
        VLM.generate = boom
    ds = load_from_disk(sys.argv[1])
    out = add_gcot(ds, sys.argv[2], max_new_tokens=8, batch_size=2)
    print(json.dumps(out.remove_columns("image").to_list()))
    """
)


@pytest.mark.slow
def test_rerun_from_another_process_reuses_the_cache(tiny_vlm_path, tmp_path):
    saved = tmp_path / "input"
    dataset([png_bytes(random_image(60 + i, 60, seed=i)) for i in range(3)]).save_to_disk(saved)
    script_file = tmp_path / "rerun.py"
    script_file.write_text(RERUN)

    def run(mode: str) -> list:
        res = subprocess.run(
            [sys.executable, str(script_file), str(saved), tiny_vlm_path, mode],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert res.returncode == 0, res.stderr[-3000:]
        return json.loads(res.stdout.strip().splitlines()[-1])

    first = run("allow")
    second = run("forbid")
    assert first == second and len(first) == 3
    assert len(load_from_disk(saved)) == 3


def test_joint_grounding_maps_labels_back(tiny_vlm):
    def joint_script(request, text: str) -> str:
        if text.startswith("Question:"):
            return COT
        assert text.startswith("Locate each of these objects")
        return (
            '[{"bbox_2d": [10, 20, 100, 150], "label": "The red balls"},'
            ' {"bbox_2d": [30, 30, 60, 60], "label": "Blue Box"},'
            ' {"bbox_2d": [1, 1, 9, 9], "label": "a dragon"}]'
        )

    fake = ScriptedVLM(tiny_vlm, joint_script)
    out = add_gcot(dataset([png_bytes(random_image(300, 200))] * 2), fake, grounding="joint")
    assert len([c for c in fake.calls if c.startswith("Locate")]) == 2  # one per image
    for row in out:
        assert [g["phrase"] for g in row["groundings"]] == ["red ball", "blue box"]
        assert row["groundings"][1]["bbox_model"] == [30.0, 30.0, 60.0, 60.0]
    with pytest.raises(ValueError, match="grounding"):
        GCoTConfig(grounding="both")


def test_sort_window_keeps_row_order_and_results(tiny_vlm):
    sizes = [(300, 60), (40, 40), (200, 200), (60, 300), (90, 50), (40, 120), (250, 100)]
    ds = dataset([png_bytes(random_image(w, h, seed=i)) for i, (w, h) in enumerate(sizes)])
    ds = ds.add_column("idx", list(range(len(sizes))))
    plain = add_gcot(ds, tiny_vlm, batch_size=2, max_new_tokens=6)
    sorted_ = add_gcot(ds, tiny_vlm, batch_size=2, max_new_tokens=6, sort_window=4)
    assert sorted_["idx"] == list(range(len(sizes)))
    assert sorted_.remove_columns("image").to_list() == plain.remove_columns("image").to_list()


def test_progress_bars_per_stage_and_quiet_mode(tiny_vlm, capsys, monkeypatch):
    ds = dataset([png_bytes(random_image(60, 60))])
    fake = ScriptedVLM(tiny_vlm, script)
    add_gcot(ds, fake)
    err = capsys.readouterr().err
    assert "hfgcot gcot_reasoning" in err and "hfgcot gcot_grounding" in err
    monkeypatch.setenv("HFGCOT_QUIET", "1")
    add_gcot(ds, fake)
    assert "hfgcot gcot_" not in capsys.readouterr().err


def chained(stages, start: str = "input") -> list[str]:
    """The dataset fingerprint after each stage, as ``Dataset.map`` chains them."""
    out = []
    for stage in stages:
        start = stage.new_fingerprint(start)
        out.append(start)
    return out


def test_a_prompt_changes_its_stage_and_those_after_it_only():
    from hfgcot.pipelines.gcot import gcot_stages, model_spec

    spec = model_spec("org/model")
    base = chained(gcot_stages(GCoTConfig(), spec))
    grounding = chained(gcot_stages(GCoTConfig(grounding_prompt="Find {phrase}."), spec))
    assert grounding[:2] == base[:2] and grounding[2] != base[2] and grounding[3] != base[3]
    reasoning = chained(gcot_stages(GCoTConfig(reasoning_prompt="{question}? {answer}."), spec))
    assert all(r != b for r, b in zip(reasoning, base, strict=True))
    joint = gcot_stages(
        GCoTConfig(grounding="joint", joint_grounding_prompt="All: {phrases}"), spec
    )
    assert chained(joint)[:2] == base[:2]
    system = chained(gcot_stages(GCoTConfig(system_prompt="Be brief."), spec))
    assert system[1] != base[1] and system[0] != base[0]


def test_a_stage_version_is_part_of_its_fingerprint(monkeypatch):
    from hfgcot.pipelines.gcot import GroundingStage, gcot_stages, model_spec

    spec = model_spec("org/model")
    base = [s.fingerprint for s in gcot_stages(GCoTConfig(), spec)]
    monkeypatch.setattr(GroundingStage, "version", "999")
    bumped = [s.fingerprint for s in gcot_stages(GCoTConfig(), spec)]
    assert bumped[2] != base[2] and bumped[:2] == base[:2] and bumped[3] == base[3]


def test_other_pipelines_prompts_never_enter_gcot_fingerprints(monkeypatch):
    from hfgcot import prompts
    from hfgcot.pipelines.dense_captions import DenseCaptionConfig, dense_caption_stages
    from hfgcot.pipelines.gcot import gcot_stages, model_spec
    from hfgcot.pipelines.region_captions import RegionCaptionConfig, region_caption_stages

    spec = model_spec("org/model")
    gcot = [s.fingerprint for s in gcot_stages(GCoTConfig(), spec)]
    dense = [s.fingerprint for s in dense_caption_stages(DenseCaptionConfig(), spec)]
    for name in ("REGION_CROP_PROMPT", "DENSE_CAPTION_PROMPT", "GROUNDING_SFT_PROMPT"):
        monkeypatch.setattr(prompts, name, "changed")
    assert [s.fingerprint for s in gcot_stages(GCoTConfig(), spec)] == gcot
    region = region_caption_stages(RegionCaptionConfig(mode="crop", crop_prompt="Crop!"), spec)
    default_region = region_caption_stages(RegionCaptionConfig(mode="crop"), spec)
    assert region[0].fingerprint != default_region[0].fingerprint
    assert [s.fingerprint for s in dense_caption_stages(DenseCaptionConfig(), spec)] == dense
    fused = dense_caption_stages(DenseCaptionConfig(fuse_prompt="{sentences} + {details}"), spec)
    assert [s.fingerprint for s in fused][:6] == dense[:6] and fused[6].fingerprint != dense[6]


def test_normalized_boxes_use_the_size_recorded_by_stage_one(tiny_vlm):
    from hfgcot.images import ImagePolicy
    from hfgcot.pipelines.gcot import InjectStage

    # a 20x20 image that only the pipeline's own policy accepts: stage 4 must not re-read it
    ds = dataset([png_bytes(random_image(20, 20))])
    fake = ScriptedVLM(tiny_vlm, script)
    out = add_gcot(ds, fake, box_space="normalized", image_policy=ImagePolicy(min_side=1))[0]
    assert out["gcot_status"] == "ok" and out["image_size"] == [20, 20]
    b = out["groundings"][0]["bbox"]
    assert f"red ball [{b[0] / 20:.3f}, {b[1] / 20:.3f}" in out["gcot"]
    stage = InjectStage(box_space="normalized")
    groundings = [[{"phrase": "cat", "bbox": [0.0, 0.0, 50.0, 25.0], "bbox_model": [0, 0, 5, 5]}]]
    batch = {"cleaned_cot": ["A cat."], "groundings": groundings, "gcot_status": ["ok"]}
    assert stage({**batch, "image_size": [[100, 50]]}) == {
        "gcot": ["A cat [0.000, 0.000, 0.500, 0.500]."],
        "gcot_status": ["ok"],
    }
    missing = stage({**batch, "image_size": [[]]})
    assert missing == {"gcot": ["A cat."], "gcot_status": ["missing_image_size"]}


def test_output_columns_in_the_input_are_refused_unless_asked(tiny_vlm):
    fake = ScriptedVLM(tiny_vlm, script)
    ds = dataset([png_bytes(random_image(64, 64))]).add_column("gcot", ["the user's own"])
    with pytest.raises(ValueError, match=r"\['gcot'\].*overwrite_columns=True"):
        add_gcot(ds, fake)
    out = add_gcot(ds, fake, overwrite_columns=True)
    assert out[0]["gcot"] != "the user's own" and out[0]["gcot_status"] == "ok"
    again = add_gcot(out, fake, box_space="model")  # rerunning on its own output is allowed
    assert "[10, 20, 100, 150]" in again[0]["gcot"]
