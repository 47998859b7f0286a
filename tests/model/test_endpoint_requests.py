"""The endpoint engine's requests against small fake OpenAI-compatible servers on loopback
(``fake_openai``): what each request body holds, which failures are retried and how often,
request order, the concurrency bound, and the API key in no output.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import threading
import traceback

import pytest
from datasets import Dataset

from hfgcot.model.endpoint import EndpointError, EndpointSpec, is_endpoint_error
from hfgcot.testing.shapes import make_scenes

pytest.importorskip("openai")

TEST_SEED = 3
KEY_ENV = "HFGCOT_TEST_ENDPOINT_KEY"
TEXT_SPEC = {"family": "qwen2_5_vl", "min_pixels": 3136, "max_pixels": 28224}


# -- the request body ---------------------------------------------------------------------------


def image_parts(body: dict) -> list[dict]:
    return [p for m in body["messages"] if isinstance(m["content"], list) for p in m["content"]]


def test_request_bodies_carry_the_settings_and_the_frame_sized_image_as_a_data_url():
    from fake_openai import FakeServer, echo_responder
    from PIL import Image

    from hfgcot.model.spec import get_vlm
    from hfgcot.model.vlm import GenerationSettings, Request

    with FakeServer(echo_responder(0)) as server:
        vlm = get_vlm(EndpointSpec(server.base_url, "toy", **TEXT_SPEC))
        image = Image.new("RGB", (300, 200), "red")
        (greedy,) = vlm.generate([Request(image, "Describe.")], GenerationSettings(7, seed=5))
        sampled = GenerationSettings(9, do_sample=True, temperature=0.3, top_p=0.8, seed=11)
        vlm.generate([Request(None, "Hi.", "Be brief.")], sampled)
    first, second = server.bodies
    settings = {k: v for k, v in first.items() if k != "messages"}
    assert settings == {"model": "toy", "max_tokens": 7, "seed": 5, "temperature": 0.0,
                        "top_p": 1.0}  # fmt: skip  # greedy
    image_part, text_part = image_parts(first)
    assert text_part == {"type": "text", "text": "Describe."}
    prefix, data = image_part["image_url"]["url"].split(",", 1)
    assert prefix == "data:image/png;base64"
    sent = Image.open(io.BytesIO(base64.b64decode(data)))
    assert sent.size == (greedy.frame.model_width, greedy.frame.model_height) != image.size
    assert sent.convert("RGB").getpixel((0, 0)) == (255, 0, 0)
    settings = {k: v for k, v in second.items() if k != "messages"}
    assert settings == {"model": "toy", "max_tokens": 9, "seed": 11, "temperature": 0.3,
                        "top_p": 0.8}  # fmt: skip  # sampled
    assert second["messages"][0] == {"role": "system", "content": "Be brief."}
    assert image_parts(second) == [{"type": "text", "text": "Hi."}]  # text only: no image


@pytest.mark.parametrize(("status", "retried"), [(429, True), (500, True), (503, True),
                                                 (400, False), (422, False)])  # fmt: skip
def test_429_and_5xx_are_retried_max_retries_times_and_a_rejected_request_is_not(status, retried):
    from fake_openai import FakeServer, failing_responder

    from hfgcot.model.spec import get_vlm
    from hfgcot.model.vlm import GenerationSettings, Request

    with FakeServer(failing_responder(status)) as server:
        vlm = get_vlm(EndpointSpec(server.base_url, "toy", max_retries=2, **TEXT_SPEC))
        (out,) = vlm.generate([Request(None, "x")], GenerationSettings(3))
    assert server.requests == (3 if retried else 1)
    assert out.text == "" and is_endpoint_error(out.error) == retried, out.error


# -- order, concurrency, the key ----------------------------------------------------------------


def test_results_keep_request_order_and_max_concurrency_bounds_requests_in_flight():
    from fake_openai import FakeServer, echo_responder

    from hfgcot.model.spec import get_vlm
    from hfgcot.model.vlm import Request

    with FakeServer(echo_responder(max_delay=0.03, seed=1)) as server:
        vlm = get_vlm(EndpointSpec(server.base_url, "toy", max_concurrency=3, **TEXT_SPEC))
        prompts = [[f"request {k}-{i}" for i in range(24)] for k in range(2)]
        results: dict[int, list[str]] = {}

        def run(k: int) -> None:  # two callers share the client and its bound
            results[k] = [g.text for g in vlm.generate([Request(None, p) for p in prompts[k]])]

        callers = [threading.Thread(target=run, args=(k,)) for k in range(2)]
        for t in callers:
            t.start()
        for t in callers:
            t.join()
    assert results == {0: prompts[0], 1: prompts[1]}
    assert server.requests == 48
    assert 2 <= server.max_in_flight <= 3, server.max_in_flight


@pytest.mark.parametrize("status", [500, 400, 401])
def test_the_api_key_appears_in_no_log_status_exception_card_or_provenance(
    status, monkeypatch, caplog
):
    from fake_openai import FakeServer, failing_responder

    from hfgcot import add_gcot
    from hfgcot.publishing.card import build_card
    from hfgcot.publishing.provenance import get_provenance
    from hfgcot.testing.toy import vqa_rows

    key = f"sk-test-{status}-5f1c9a7e"
    monkeypatch.setenv(KEY_ENV, key)
    caplog.set_level(logging.DEBUG)  # the HTTP client's own records too (response headers)
    ds = Dataset.from_dict(vqa_rows(make_scenes(2, seed=TEST_SEED), seed=TEST_SEED))
    with FakeServer(failing_responder(status)) as server:
        spec = EndpointSpec(server.base_url, "toy", api_key_env=KEY_ENV, max_retries=1, **TEXT_SPEC)
        if status == 401:
            with pytest.raises(EndpointError, match="refused the API key") as err:
                add_gcot(ds, spec, max_new_tokens=8)
            texts = ["".join(traceback.format_exception(err.value)), repr(err.value.args)]
        else:
            out = add_gcot(ds, spec, max_new_tokens=8)
            kind = "endpoint_error: InternalServerError" if status == 500 else "generation_error"
            assert all(s.startswith(kind) for s in out["gcot_status"]), out["gcot_status"]
            assert all("***" in s for s in out["gcot_status"])  # the echoed key, masked
            texts = [
                json.dumps(out.to_dict(), default=str),
                json.dumps(get_provenance(out), default=str),
                str(build_card(out, version="1.0.0", load_code="...")),
            ]
    assert "Bearer ***" in caplog.text  # the echoed key reached the logs, masked
    assert not any(key in t for t in [caplog.text, *texts])
