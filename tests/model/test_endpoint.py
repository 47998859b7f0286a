"""Served models without a real server: the spec, frame limits and the frame identity (pure), and
the endpoint engine against small fake OpenAI-compatible servers on loopback (``fake_openai``):
prompt log-probs as vLLM gives them (scores equal to in process, the contrastive checker end to
end, the clear error of a server without them). ``tests/model/test_endpoint_requests.py`` holds
the request bodies, retries, order, the concurrency bound and the key;
``tests/model/test_endpoint_server.py`` runs the pipelines on ``transformers serve``.
"""

from __future__ import annotations

import dataclasses

import pytest
from datasets import Dataset
from hypothesis import given
from hypothesis import strategies as st

from hfgcot.geometry.frames import FAMILIES, patch_factor, smart_resize
from hfgcot.model.endpoint import (
    EndpointError,
    EndpointSpec,
    FrameLimits,
    endpoint_identity,
    frame_limits,
    frame_size,
)
from hfgcot.testing.shapes import make_scenes
from hfgcot.testing.toy import tiny_shapes_path

TEST_SEED = 3  # the held-out scenes of tests/testing/test_tiny_shapes.py
TOY_LIMITS = (3136, 28224)  # the shipped toy's processor config
GCOT = {"batch_size": 16, "max_new_tokens": 96, "grounding_max_new_tokens": 32}
KEY_ENV = "HFGCOT_TEST_ENDPOINT_KEY"

needs_model = pytest.mark.skipif(tiny_shapes_path() is None, reason="toy model not shipped")


# -- pure: the spec, its limits and the frame ------------------------------------------------


LIMITS = [
    FrameLimits(family, patch_factor(family), lo, hi)
    for family in FAMILIES
    for lo, hi in (TOY_LIMITS, (3136, 1003520), (3136, 12845056), (65536, 16777216))
]


@given(
    st.integers(1, 4000),
    st.integers(1, 4000),
    st.sampled_from(LIMITS),
)
def test_the_server_resize_of_a_frame_sized_image_is_the_identity(width, height, limits):
    if max(width, height) / min(width, height) > 200:  # refused by smart_resize (and policy)
        return
    model_w, model_h = frame_size(width, height, limits)
    again = smart_resize(
        model_h, model_w, limits.factor, min_pixels=limits.min_pixels, max_pixels=limits.max_pixels
    )
    assert again == (model_h, model_w)
    assert model_w % limits.factor == 0 and model_h % limits.factor == 0
    # the first resize is the in-process frame except where it is not stable (very thin images)
    first = smart_resize(height, width, limits.factor, limits.min_pixels, limits.max_pixels)
    if first[0] * first[1] <= limits.max_pixels:
        assert (model_h, model_w) == first


def test_a_thin_image_gets_the_stable_frame():
    limits = FrameLimits("qwen2_5_vl", 28, 3136, 28224)
    first = smart_resize(28, 5000, 28, 3136, 28224)
    assert smart_resize(*first, 28, 3136, 28224) != first  # not stable: the server would resize
    w, h = frame_size(5000, 28, limits)
    assert smart_resize(h, w, 28, 3136, 28224) == (h, w)


@needs_model
def test_frame_limits_come_from_the_processor_config_else_the_spec():
    toy = tiny_shapes_path()
    read = frame_limits(EndpointSpec("http://127.0.0.1:9/v1", toy))
    assert (read.family, read.factor, read.min_pixels, read.max_pixels) == (
        "qwen2_5_vl",
        28,
        *TOY_LIMITS,
    )
    assert read.source == "processor config"
    given_ = frame_limits(EndpointSpec("http://127.0.0.1:9/v1", toy, max_pixels=50176))
    assert (given_.min_pixels, given_.max_pixels) == (3136, 50176)
    qwen3 = frame_limits(
        EndpointSpec("http://h/v1", "x/y", family="qwen3_vl", min_pixels=65536, max_pixels=1 << 24)
    )
    assert (qwen3.factor, qwen3.source) == (32, "spec")
    with pytest.raises(EndpointError, match="family, min_pixels, max_pixels unknown"):
        frame_limits(EndpointSpec("http://h/v1", "not/cached-anywhere"))


def test_spec_is_validated_and_takes_only_options_a_server_can_honour():
    with pytest.raises(ValueError, match="http"):
        EndpointSpec("localhost:8000", "m")
    with pytest.raises(ValueError, match="max_concurrency"):
        EndpointSpec("http://h/v1", "m", max_concurrency=0)
    with pytest.raises(ValueError, match="family"):
        EndpointSpec("http://h/v1", "m", family="llava")
    with pytest.raises(ValueError, match="must not exceed"):
        EndpointSpec("http://h/v1", "m", min_pixels=10**6, max_pixels=10**4)
    spec = EndpointSpec("http://h/v1", "m")
    assert spec.with_load_options(revision=None, dtype="auto", device=None) == spec
    assert spec.with_load_options(max_pixels=50176).max_pixels == 50176
    with pytest.raises(TypeError, match="dtype cannot apply to a served model"):
        spec.with_load_options(dtype="bfloat16")


def test_fingerprint_records_engine_model_revision_family_and_limits():
    from hfgcot.model.spec import spec_fingerprint_data
    from hfgcot.pipelines.gcot import GCoTConfig, gcot_stages

    spec = EndpointSpec("http://h/v1", "org/m", revision="r1", family="qwen2_vl", min_pixels=3136,
                        max_pixels=1003520)  # fmt: skip
    data = spec_fingerprint_data(spec)
    assert data == endpoint_identity(spec)
    assert (data["engine"], data["model_id"], data["revision"]) == ("endpoint", "org/m", "r1")
    assert (data["family"], data["min_pixels"], data["max_pixels"]) == ("qwen2_vl", 3136, 1003520)
    other = dataclasses.replace(spec, revision="r2")
    for a, b in zip(gcot_stages(GCoTConfig(), spec), gcot_stages(GCoTConfig(), other), strict=True):
        if hasattr(a, "model"):  # model stages: the declared revision is in their fingerprint
            assert a.fingerprint_data()["model"] == spec_fingerprint_data(a.model)
            assert a.fingerprint != b.fingerprint
        else:
            assert a.fingerprint == b.fingerprint


def test_contrastive_checker_on_a_server_declared_without_prompt_logprobs_fails_at_once():
    from hfgcot import add_dense_captions

    ds = Dataset.from_dict({"image": [None]})
    spec = EndpointSpec("http://127.0.0.1:9/v1", "m", family="qwen2_5_vl", min_pixels=3136,
                        max_pixels=28224, prompt_logprobs=False)  # fmt: skip  # port 9: never sent
    with pytest.raises(EndpointError, match=r"needs prompt log-probs.*prompt_logprobs=False"):
        add_dense_captions(ds, spec, checker="contrastive")
    with pytest.raises(ValueError, match="prompt_logprobs"):
        EndpointSpec("http://h/v1", "m", prompt_logprobs=1)  # type: ignore[arg-type]


# -- prompt log-probs as vLLM answers them ------------------------------------------------------

PAD = 99  # the image placeholder token in the pure tests


@given(st.lists(st.integers(1, 50), min_size=2, max_size=30), st.data())
def test_read_scores_takes_the_last_tokens_own_logprobs_and_checks_the_whole_prompt(ids, data):
    from hfgcot.model.endpoint_logprobs import read_scores

    # the image placeholder goes before ids[at] (never first: a chat template starts with text)
    at = data.draw(st.integers(1, len(ids) - 1))
    expected = [*ids[:at], PAD, *ids[at:]]
    served = [*ids[:at], *[PAD] * data.draw(st.integers(1, 6)), *ids[at:]]  # expanded
    length = data.draw(st.integers(1, len(ids) - at))
    own = data.draw(st.lists(st.floats(-30, -0.01), min_size=len(served), max_size=len(served)))
    entries: list = [None]
    for t in range(1, len(served)):
        entry = {str(served[t]): {"logprob": own[t], "rank": 1}}
        if data.draw(st.booleans()):  # a likelier token is the top-1: the prompt's ranks lower
            entry = {
                "777": {"logprob": -0.001, "rank": 1},
                str(served[t]): {"logprob": own[t], "rank": 4},
            }
        entries.append(entry)
    with_ids = data.draw(st.booleans())
    payload = {"prompt_logprobs": entries, **({"prompt_token_ids": served} if with_ids else {})}
    score = read_scores(payload, expected, length, PAD)
    assert score.error is None
    assert score.logprobs == tuple(own[-length:])
    assert score.token_ids == tuple(expected[-length:])
    # any other token at a known position: the prompt is not the template's, no score
    j = data.draw(st.integers(1, len(served) - 1))
    wrong = list(served)
    wrong[j] = served[j] + 1 if served[j] != PAD - 1 else 1
    entries[j] = {str(wrong[j]): {"logprob": -1.0, "rank": 1}}
    payload = {"prompt_logprobs": entries, **({"prompt_token_ids": wrong} if with_ids else {})}
    assert read_scores(payload, expected, length, PAD).error.startswith("prompt_logprobs:")


def test_read_scores_without_prompt_logprobs_is_an_error_not_a_score():
    from hfgcot.model.endpoint_logprobs import read_scores

    assert "lacks vLLM's extension" in read_scores({"choices": []}, [1, 2], 1, None).error
    short = {"prompt_logprobs": [None, {"2": {"logprob": -1.0, "rank": 1}}]}
    assert read_scores(short, [1, 2], 2, None).error  # cannot score the first token


@pytest.fixture(scope="module")
def toy_vllm():
    if tiny_shapes_path() is None:
        pytest.skip("toy model not shipped")
    pytest.importorskip("openai")
    from fake_openai import ToyVLLM

    return ToyVLLM(tiny_shapes_path())


@pytest.fixture(scope="module")
def toy_local():
    from hfgcot import load_vlm

    return load_vlm(tiny_shapes_path(), dtype="float32", device="cpu")


def frame_sized_scenes(n: int, seed: int) -> list:
    """Scene images already at their model frame: no resize anywhere, the same pixels in both
    engines (otherwise the client's resize and the processor's differ by rounding)."""
    limits = FrameLimits("qwen2_5_vl", 28, *TOY_LIMITS)
    images = [s.image() for s in make_scenes(n, seed=seed)]
    return [im.resize(frame_size(im.width, im.height, limits), resample=3) for im in images]


@pytest.mark.parametrize("token_ids", [True, False], ids=["prompt_token_ids", "ids_from_ranks"])
def test_endpoint_scores_equal_in_process_scores(toy_vllm, toy_local, token_ids):
    from fake_openai import FakeServer

    from hfgcot.model.endpoint_logprobs import SCORING_BODY
    from hfgcot.model.spec import get_vlm
    from hfgcot.model.vlm import Request

    image, other = frame_sized_scenes(2, seed=TEST_SEED)
    requests = [
        Request(image, "Describe the image."),
        Request(None, "Describe the image."),
        Request(other, "What is in the image?", "You are terse."),
        Request(image, "Describe the image."),
        Request(other, "Describe the image."),
    ]
    continuations = ["A red circle.", "A red circle.", " two blue squares", "Yes.", ""]
    prefixes = ["There are shapes. ", "", "Here:", "", "No."]
    with FakeServer(toy_vllm.variant(token_ids=token_ids), model=tiny_shapes_path()) as server:
        served = get_vlm(EndpointSpec(server.base_url, tiny_shapes_path(), max_concurrency=3))
        scores = served.continuation_logprobs(requests, continuations, prefixes)
    local = toy_local.continuation_logprobs(requests, continuations, prefixes)
    assert [s.error for s in scores] == [None] * 5
    for a, b in zip(scores, local, strict=True):
        assert a.token_ids == b.token_ids
        assert a.logprobs == pytest.approx(b.logprobs, abs=1e-4)
    assert scores[-1].logprobs == ()  # an empty continuation costs no request
    assert len(server.bodies) == 1 + 4  # the probe, then one request per scored item
    assert all(b[k] == v for b in server.bodies for k, v in SCORING_BODY.items())


def test_contrastive_checker_end_to_end_through_a_vllm_like_server(toy_vllm, toy_local):
    from fake_openai import FakeServer

    from hfgcot import add_dense_captions

    ds = Dataset.from_dict({"image": frame_sized_scenes(4, seed=4)})
    options = {"checker": "contrastive", "threshold": -0.5, "max_questions": 1, "batch_size": 8,
               "max_new_tokens": 48}  # fmt: skip
    with FakeServer(toy_vllm, model=tiny_shapes_path()) as server:
        spec = EndpointSpec(server.base_url, tiny_shapes_path(), max_concurrency=4)
        served = add_dense_captions(ds, spec, **options)
    local = add_dense_captions(ds, toy_local, **options)
    assert len(served) == 4
    assert served["init_caption"] == local["init_caption"]
    for a, b in zip(served["sentence_scores"], local["sentence_scores"], strict=True):
        assert a == pytest.approx(b, abs=1e-4) and None not in a
    assert served["golden_sentences"] == local["golden_sentences"]
    assert served["final_details"] == local["final_details"]
    assert (
        any(served["golden_sentences"])
        and served["dense_caption_status"] == local["dense_caption_status"]
    )


def test_a_server_without_prompt_logprobs_is_refused_at_configuration_before_any_row(toy_vllm):
    from fake_openai import FakeServer

    from hfgcot import add_dense_captions
    from hfgcot.model.spec import get_vlm
    from hfgcot.model.vlm import Request

    plain = toy_vllm.variant(extension=False)  # the same model, deaf to vLLM's extension fields
    ds = Dataset.from_dict({"image": frame_sized_scenes(2, seed=4)})
    with FakeServer(plain, model=tiny_shapes_path()) as server:
        spec = EndpointSpec(server.base_url, tiny_shapes_path())
        with pytest.raises(EndpointError, match=r"needs prompt log-probs.*vLLM's extension"):
            add_dense_captions(ds, spec, checker="contrastive")
        assert server.requests == 1  # the one question, no row
        trusted = get_vlm(EndpointSpec(server.base_url, tiny_shapes_path(), prompt_logprobs=True))
        (score,) = trusted.continuation_logprobs([Request(None, "Hi")], ["Hello."])
    assert score.logprobs == () and score.error.startswith("prompt_logprobs:")  # never made up
