"""Served models through a real OpenAI-compatible server: ``transformers serve`` on loopback.

One server for the module (the shipped toy model on 127.0.0.1, about 15-30 s to start): GCoT,
dense and region captions, grounding predictions and Ray through it, generation settings and
truncation, the frame the server sees, a server stopped mid-run and a resume, a wrong key, the
CLI, and the clear error of a server without prompt log-probs. ``tests/model/test_endpoint.py``,
``tests/model/test_endpoint_requests.py`` and ``tests/pipelines/test_served.py`` hold what needs
no server or a small fake one.
"""

from __future__ import annotations

import http.server
import json
import logging
import threading
import time
import urllib.request

import pytest
from datasets import Dataset, load_from_disk

from hfgcot.model.endpoint import EndpointError, EndpointSpec, is_endpoint_error
from hfgcot.testing.shapes import make_scenes
from hfgcot.testing.toy import score_gcot, tiny_shapes_path, vqa_rows

TEST_SEED = 3  # the held-out scenes of tests/testing/test_tiny_shapes.py
GCOT = {"batch_size": 16, "max_new_tokens": 96, "grounding_max_new_tokens": 32}
KEY_ENV = "HFGCOT_TEST_ENDPOINT_KEY"


# -- a real server ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server():
    pytest.importorskip("openai")
    pytest.importorskip("uvicorn")
    pytest.importorskip("fastapi")
    if tiny_shapes_path() is None:
        pytest.skip("toy model not shipped")
    from hfgcot.testing.serve import LocalServer

    with LocalServer(tiny_shapes_path()) as running:
        yield running


@pytest.fixture(scope="module")
def scenes_ds():
    scenes = make_scenes(30, seed=TEST_SEED)
    return scenes, Dataset.from_dict(vqa_rows(scenes, seed=TEST_SEED))


@pytest.fixture(scope="module")
def served_gcot(server, scenes_ds):
    from hfgcot import add_gcot

    _, ds = scenes_ds
    spec = EndpointSpec(server.base_url, server.model, max_concurrency=8)
    return add_gcot(ds, spec, **GCOT)


def test_gcot_through_the_server_scores_like_in_process(served_gcot, scenes_ds):
    from hfgcot import add_gcot, load_vlm

    scenes, ds = scenes_ds
    assert len(served_gcot) == len(ds) == 30
    served = score_gcot(scenes, served_gcot["extracted_keywords"], served_gcot["groundings"])
    misread = score_gcot(
        scenes, served_gcot["extracted_keywords"], served_gcot["groundings"], box_key="bbox_model"
    )
    toy = load_vlm(tiny_shapes_path(), dtype="float32", device="cpu")
    local = add_gcot(ds, toy, **GCOT)
    in_process = score_gcot(scenes, local["extracted_keywords"], local["groundings"])
    assert served["acc50"] >= 0.6, served
    assert abs(served["acc50"] - in_process["acc50"]) <= 0.1, (served, in_process)
    assert misread["acc50"] <= served["acc50"] / 3  # boxes are converted, not taken as pixels
    assert set(served_gcot["gcot_status"]) <= {"ok", "no_groundings", "no_keywords"}


def test_provenance_and_card_record_the_served_model(served_gcot, server):
    from hfgcot.publishing.card import build_card
    from hfgcot.publishing.provenance import get_provenance

    record = get_provenance(served_gcot)
    record = record[-1] if isinstance(record, list) else record
    model = record["model"]
    # served from a local folder: recorded by its folder name, never the path on this machine
    assert model["engine"] == "endpoint" and model["model_id"] == "tiny-shapes"
    assert server.model.rsplit("/", 1)[0] not in json.dumps(record)
    assert (model["family"], model["min_pixels"], model["max_pixels"]) == (
        "qwen2_5_vl",
        3136,
        28224,
    )
    card = str(build_card(served_gcot, version="1.0.0", load_code="..."))
    assert "engine (revision as declared)" in card and "`endpoint`" in card


def test_dense_and_region_captions_end_to_end(server):
    from hfgcot import add_dense_captions, add_region_captions

    spec = EndpointSpec(server.base_url, server.model, max_concurrency=8)
    scenes = make_scenes(12, seed=4)
    dense = add_dense_captions(
        Dataset.from_dict({"image": [s.image() for s in scenes]}),
        spec,
        max_questions=2,
        batch_size=12,
        max_new_tokens=64,
    )
    assert len(dense) == 12
    labels = [{o.label for o in s.objects} for s in scenes]
    on_topic = sum(
        any(label in " ".join(c.lower().split()) for label in ls)
        for c, ls in zip(dense["final_caption"], labels, strict=True)
    )
    # the served toy names an object of its picture in 7 of these 12 (as in process); the gate
    # is 5, as in tests/testing/test_tiny_shapes.py, so a greedy decode or two that moves
    # without a bug still passes, while a broken image path (no picture seen: none) fails
    assert on_topic >= 5, dense["final_caption"]

    scenes = make_scenes(12, seed=TEST_SEED)
    ds = Dataset.from_dict(
        {
            "image": [s.image() for s in scenes],
            "bbox": [[list(o.bbox) for o in s.objects] for s in scenes],
        }
    )
    regions = add_region_captions(ds, spec, mode="crop", bbox_format="xyxy", max_new_tokens=24)
    assert len(regions) == 12
    named = [
        scene.objects[k].label in " ".join(caption.lower().split())
        for captions, scene in zip(regions["region_captions"], scenes, strict=True)
        for k, caption in enumerate(captions)
    ]
    assert len(named) == sum(len(s.objects) for s in scenes)
    assert sum(named) >= 0.8 * len(named), regions["region_captions"]


def test_grounding_predictions_match_in_process_in_original_pixels(server):
    from hfgcot import add_grounding_predictions, load_vlm
    from hfgcot.geometry.frames import iou
    from hfgcot.prompts import GROUNDING_PROMPT

    scenes = make_scenes(10, seed=TEST_SEED)
    ds = Dataset.from_dict(
        {"image": [s.image() for s in scenes], "question": [s.objects[0].label for s in scenes]}
    )
    options = {"prompt": GROUNDING_PROMPT.replace("{phrase}", "{question}"), "max_new_tokens": 28}
    spec = EndpointSpec(server.base_url, server.model, max_concurrency=8)
    served = add_grounding_predictions(ds, spec, **options)
    toy = load_vlm(tiny_shapes_path(), dtype="float32", device="cpu")
    local = add_grounding_predictions(ds, toy, **options)
    assert len(served) == 10 and served["pred_status"].count("ok") >= 8
    same = [
        bool(a and b) and iou(a, b) > 0.9
        for a, b in zip(served["pred_bbox"], local["pred_bbox"], strict=True)
    ]
    assert sum(same) >= 8, (served["pred_bbox"], local["pred_bbox"])
    hits = [
        bool(box) and iou(box, list(s.objects[0].bbox)) > 0.5
        for box, s in zip(served["pred_bbox"], scenes, strict=True)
    ]
    assert sum(hits) >= 5, served["pred_bbox"]


def test_ray_actors_use_the_endpoint(server, scenes_ds, served_gcot, tmp_path):
    ray = pytest.importorskip("ray")
    from hfgcot.ray import add_gcot_ray

    _, ds = scenes_ds
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, object_store_memory=200 * 1024**2,
                 log_to_driver=False)  # fmt: skip
    try:
        ray.data.DataContext.get_current().enable_progress_bars = False
        spec = EndpointSpec(server.base_url, server.model, max_concurrency=8)
        out = add_gcot_ray(
            ds.select(range(8)), spec, output_dir=tmp_path / "ray", num_actors=1, **GCOT
        )
    finally:
        if started:
            ray.shutdown()
    assert len(out) == 8
    assert out["gcot"] == served_gcot["gcot"][:8]


def test_generation_settings_reach_the_server_and_length_stops_are_truncations(server):
    from hfgcot.model.spec import get_vlm
    from hfgcot.model.vlm import GenerationSettings, Request

    (scene,) = make_scenes(1, seed=TEST_SEED)
    vlm = get_vlm(EndpointSpec(server.base_url, server.model, max_concurrency=4))
    system = "You are a careful annotator."
    kinds = [  # every kind of request the stages send: with an image or not, own system turn
        Request(scene.image(), "Describe the image."),
        Request(None, "Describe the image."),
        Request(scene.image(), "What shapes are there?", system),
        Request(None, "Name one shape.", system),
    ]
    short = vlm.generate(kinds, GenerationSettings(max_new_tokens=3))
    assert [(g.truncated, g.error) for g in short] == [(True, None)] * 4  # finish "length"
    assert [g.frame is not None for g in short] == [True, False, True, False]
    assert short[0].frame == vlm.frames([scene.image()])[0]
    again = vlm.generate(kinds, GenerationSettings(max_new_tokens=3))
    assert [g.text for g in again] == [g.text for g in short]  # greedy, in request order
    full = vlm.generate(kinds, GenerationSettings(max_new_tokens=160))
    assert not all(g.truncated for g in full)  # finish "stop": not a truncation
    assert all(g.text.startswith(s.text) for g, s in zip(full, short, strict=True))


def test_transformers_serve_has_no_prompt_logprobs_and_the_contrastive_checker_says_so_first(
    server,
):
    from hfgcot import add_dense_captions
    from hfgcot.model.spec import get_vlm
    from hfgcot.model.vlm import Request

    ds = Dataset.from_dict({"image": [s.image() for s in make_scenes(2, seed=4)]})
    spec = EndpointSpec(server.base_url, server.model)
    before = server.log().count("POST /v1/chat/completions")
    with pytest.raises(EndpointError, match=r"needs prompt log-probs.*422"):
        add_dense_captions(ds, spec, checker="contrastive")
    assert server.log().count("POST /v1/chat/completions") == before + 1  # the question only
    with pytest.raises(EndpointError, match="needs prompt log-probs"):
        get_vlm(spec).continuation_logprobs([Request(None, "Hi")], ["Hello."])


@pytest.mark.parametrize("max_pixels", [None, 12544])
def test_the_server_sees_the_frame_the_client_reports(server, max_pixels):
    """The server's image token count is the reported frame's, also when the client's limits
    are tighter than the server's (then only the client's resize makes the frame known)."""
    from hfgcot.model.spec import get_vlm
    from hfgcot.model.vlm import GenerationSettings, Request

    spec = EndpointSpec(server.base_url, server.model, max_pixels=max_pixels)
    vlm = get_vlm(spec)
    settings = GenerationSettings(max_new_tokens=1)
    for scene in make_scenes(4, seed=TEST_SEED):
        before = vlm.prompt_tokens
        (text_only,) = vlm.generate([Request(None, "Describe the image.")], settings)
        between = vlm.prompt_tokens
        (with_image,) = vlm.generate([Request(scene.image(), "Describe the image.")], settings)
        frame = with_image.frame
        assert frame is not None and frame.model_width * frame.model_height <= vlm.max_pixels
        image_tokens = frame.model_width * frame.model_height // 28**2
        # + vision start/end markers around the image placeholder tokens
        assert vlm.prompt_tokens - between - (between - before) == image_tokens + 2


def _stop_after(server, requests: int) -> threading.Thread:
    """Stop ``server`` once it has answered ``requests`` chat requests (from its access log)."""

    def watch() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if server.log().count("POST /v1/chat/completions") >= requests:
                server.stop()
                return
            time.sleep(0.02)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_server_stopped_mid_run_gives_endpoint_errors_and_a_resume_completes(
    server, scenes_ds, served_gcot, tmp_path
):
    from hfgcot import add_gcot

    _, ds = scenes_ds
    ds.save_to_disk(str(tmp_path / "input"))
    on_disk = load_from_disk(str(tmp_path / "input"))  # map writes cache files for it
    spec = EndpointSpec(server.base_url, server.model, max_concurrency=4, max_retries=1,
                        timeout=30)  # fmt: skip
    run = {**GCOT, "checkpoint_dir": str(tmp_path / "ckpt"), "shard_size": 10}
    already = server.log().count("POST /v1/chat/completions")
    watcher = _stop_after(server, already + 14)
    broken = add_gcot(on_disk, spec, **run)
    watcher.join()
    assert len(broken) == 30
    statuses = broken["gcot_status"]
    failed = [s for s in statuses if is_endpoint_error(s)]
    assert failed and all(s.startswith("endpoint_error: APIConnectionError") for s in failed)
    assert len(failed) < 30  # the first shard's reasoning was answered
    server.start()
    resumed = add_gcot(on_disk, spec, **run)
    assert len(resumed) == 30 and not any(is_endpoint_error(s) for s in resumed["gcot_status"])
    assert resumed["gcot"] == served_gcot["gcot"]
    assert resumed["groundings"] == served_gcot["groundings"]


class _AuthProxy(http.server.ThreadingHTTPServer):
    """Loopback proxy in front of the server: 401 (echoing the Authorization header, as a careless
    server might) unless the bearer key is right."""

    def __init__(self, upstream: str, key: str) -> None:
        self.upstream, self.key = upstream, key
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _forward(self, body: bytes | None) -> None:
                auth = self.headers.get("Authorization", "")
                if auth != f"Bearer {proxy.key}":
                    payload = json.dumps({"error": {"message": f"bad key in {auth!r}"}}).encode()
                    self.send_response(401)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                req = urllib.request.Request(
                    proxy.upstream + self.path[len("/v1") :],
                    data=body,
                    headers={"Content-Type": "application/json"},
                    method=self.command,
                )
                with urllib.request.urlopen(req, timeout=60) as r:
                    data = r.read()
                    self.send_response(r.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                self._forward(None)

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                self._forward(self.rfile.read(int(self.headers.get("Content-Length", 0))))

        super().__init__(("127.0.0.1", 0), Handler)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


@pytest.fixture
def auth_proxy(server):
    proxy = _AuthProxy(server.base_url, "right-key-4f2a9c")
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    yield proxy
    proxy.shutdown()
    proxy.server_close()


def test_wrong_key_is_one_clear_error_and_no_key_reaches_any_output(
    auth_proxy, scenes_ds, monkeypatch, caplog
):
    from hfgcot import add_gcot
    from hfgcot.publishing.card import build_card
    from hfgcot.publishing.provenance import get_provenance

    _, ds = scenes_ds
    ds = ds.select(range(3))
    spec = EndpointSpec(auth_proxy.base_url, tiny_shapes_path(), api_key_env=KEY_ENV)
    wrong = "wrong-key-77b1e0"
    monkeypatch.setenv(KEY_ENV, wrong)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(EndpointError) as err:
        add_gcot(ds, spec, **GCOT)
    message = str(err.value)
    assert "refused the API key" in message and KEY_ENV in message
    assert wrong not in message and wrong not in caplog.text
    assert wrong not in "".join(str(a) for a in err.value.args)

    right = auth_proxy.key
    monkeypatch.setenv(KEY_ENV, right)
    out = add_gcot(ds, spec, **GCOT)
    assert len(out) == 3 and "ok" in out["gcot_status"]
    texts = [
        caplog.text,
        json.dumps(get_provenance(out), default=str),
        str(build_card(out, version="1.0.0", load_code="...")),
        json.dumps(out.to_dict(), default=str),
    ]
    assert not any(right in t or wrong in t for t in texts)


def test_cli_endpoint_flag_runs_a_pipeline_on_the_server(server, tmp_path, capsys):
    from datasets import load_from_disk

    from hfgcot.cli import main
    from hfgcot.testing.shapes import make_scene

    rows = []
    for i in range(2):
        make_scene(seed=100 + i).image().save(tmp_path / f"s{i}.png")
        rows.append({"image": f"s{i}.png", "question": "What shapes are there?", "answer": "x"})
    data = tmp_path / "rows.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows))
    out = tmp_path / "out"
    argv = ["gcot", "--input", str(data), "--output", str(out), "--endpoint", server.base_url]
    argv += ["--model", server.model, "--max-new-tokens", "48", "--max-concurrency", "2"]
    assert main(argv) == 0
    ds = load_from_disk(str(out))
    assert len(ds) == 2 and all(not s.startswith("endpoint_error") for s in ds["gcot_status"])
    # in-process loading options make no sense for a server: one clear line, exit status 2
    capsys.readouterr()
    assert main([*argv[:4], str(tmp_path / "o2"), *argv[5:], "--dtype", "bfloat16"]) == 2
    assert "--endpoint runs no model here: drop dtype" in capsys.readouterr().err
