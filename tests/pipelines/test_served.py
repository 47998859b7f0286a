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
