"""The pipelines on a served model (``EndpointSpec``) against small fake OpenAI-compatible
servers on loopback (``fake_openai``): requests in flight through a pipeline, a dense-caption run
resumed after a server failure, and stage fingerprints that ignore how the server is reached.
``tests/model/test_endpoint_server.py`` runs the pipelines on a real ``transformers serve``.
"""

from __future__ import annotations

import pytest
from datasets import Dataset

from hfgcot.model.endpoint import EndpointSpec
from hfgcot.testing.shapes import make_scenes
from hfgcot.testing.toy import vqa_rows

pytest.importorskip("openai")

TEXT_SPEC = {"family": "qwen2_5_vl", "min_pixels": 3136, "max_pixels": 28224}


def test_a_pipeline_keeps_max_concurrency_requests_in_flight_whatever_its_batch_size():
    """Each map batch waits for its slowest request, so a map batch of ``batch_size`` rows would
    cap the requests in flight at ``batch_size``: for a served model it holds at least
    ``max_concurrency`` rows."""
    from fake_openai import FakeServer, echo_responder, gate_responder

    from hfgcot import add_gcot

    ds = Dataset.from_dict(vqa_rows(make_scenes(12, seed=5), seed=5))
    with FakeServer(echo_responder(0)) as server:
        server.responder = gate_responder(server, 12, echo_responder(0))
        spec = EndpointSpec(server.base_url, "toy", max_concurrency=12, **TEXT_SPEC)
        out = add_gcot(ds, spec, batch_size=2, max_new_tokens=8)
    assert len(out) == 12
    assert server.max_in_flight == 12  # the reasoning stage's 12 requests, all at once


# -- dense captions: a failed request past stage 1 is retried by a rerun ------------------------

CAPTION = "A red circle is on the left. A blue square is on the right."
DETAIL = "It is bright red."


def dense_kind(body: dict) -> str:
    """Which request of the dense-caption pipeline ``body`` is."""
    from fake_openai import user_text

    text = user_text(body)
    if text.startswith("Here is a sentence about this image"):
        return "detail check" if DETAIL in text else f"check {text.split(chr(10))[1]}"
    if text.startswith("Here is a description of an image"):
        return "questions"
    if text == "Describe this image in detail.":
        return "caption"
    return "fusion" if text.startswith("Below is a verified description") else "answer"


def dense_responder(down: set[str]):
    """The dense-caption pipeline's answers; a request whose kind is in ``down`` gets a 503."""
    from fake_openai import completion

    answers = {
        "caption": CAPTION,
        "questions": "1. the red circle",
        "answer": DETAIL,
        "fusion": "A bright red circle is on the left. A blue square is on the right.",
    }

    def respond(body: dict, headers: object) -> tuple[int, dict, dict]:
        kind = dense_kind(body)
        if kind in down:
            return 503, {"error": {"message": "overloaded"}}, {}
        return 200, completion(body, answers.get(kind, "Yes."), "stop", 1, 1), {}

    return respond


@pytest.mark.parametrize(
    "fails",
    ["questions", "answer", 'check "A blue square is on the right."', "detail check", "fusion"],
)
def test_dense_captions_rerun_completes_after_a_server_failure_past_the_first_stage(
    fails, tmp_path
):
    from fake_openai import FakeServer

    from hfgcot import add_dense_captions
    from hfgcot.model.endpoint import is_endpoint_error

    ds = Dataset.from_dict({"image": [s.image() for s in make_scenes(3, seed=5)]})
    down: set[str] = set()
    with FakeServer(dense_responder(down)) as server:
        spec = EndpointSpec(server.base_url, "toy", max_retries=0, **TEXT_SPEC)
        healthy = add_dense_captions(ds, spec, max_new_tokens=32)  # (no checkpoint: reference)
        down.add(fails)
        run = {"max_new_tokens": 32, "checkpoint_dir": str(tmp_path / "ckpt")}
        broken = add_dense_captions(ds, spec, **run)
        assert all(is_endpoint_error(s) for s in broken["dense_caption_status"]), broken[
            "dense_caption_status"
        ]
        down.clear()
        before = server.requests
        resumed = add_dense_captions(ds, spec, **run)
        assert server.requests > before
    assert resumed.to_dict() == healthy.to_dict()
    assert resumed["dense_caption_status"] == ["ok"] * 3


# -- fingerprints: the served model's identity, not how it is reached ---------------------------

SPEC = EndpointSpec("http://h:8000/v1", "org/m", revision="r1", **TEXT_SPEC)


def all_stages(spec: EndpointSpec) -> list:
    from hfgcot.pipelines.dense_captions import DenseCaptionConfig, dense_caption_stages
    from hfgcot.pipelines.gcot import GCoTConfig, gcot_stages
    from hfgcot.pipelines.grounding_predictions import (
        GroundingPredictionConfig,
        prediction_stage,
    )
    from hfgcot.pipelines.region_captions import RegionCaptionConfig, region_caption_stages

    return [
        *gcot_stages(GCoTConfig(), spec),
        *dense_caption_stages(DenseCaptionConfig(), spec),
        *region_caption_stages(RegionCaptionConfig(), spec),
        prediction_stage(GroundingPredictionConfig(), spec),
    ]


@pytest.mark.parametrize(
    "change",
    [
        {"base_url": "https://other:9000/v1"},
        {"max_concurrency": 4},
        {"timeout": 30.0},
        {"max_retries": 0},
        {"api_key_env": "OTHER_KEY"},
        {"prompt_logprobs": True},
    ],
    ids=lambda c: next(iter(c)),
)
def test_how_the_server_is_reached_changes_no_stage_fingerprint(change):
    import dataclasses

    before = [s.fingerprint for s in all_stages(SPEC)]
    assert [s.fingerprint for s in all_stages(dataclasses.replace(SPEC, **change))] == before


@pytest.mark.parametrize(
    "change",
    [
        {"model": "org/other"},
        {"revision": "r2"},
        {"family": "qwen2_vl"},
        {"min_pixels": 6272},
        {"max_pixels": 50176},
    ],
    ids=lambda c: next(iter(c)),
)
def test_what_the_server_runs_changes_every_model_stage_fingerprint(change):
    import dataclasses

    stages = all_stages(SPEC)
    for a, b in zip(stages, all_stages(dataclasses.replace(SPEC, **change)), strict=True):
        assert (a.fingerprint != b.fingerprint) == hasattr(a, "model"), a.name
