"""Nothing private leaves the machine through publishing: no token (given, from ``HF_TOKEN`` or
the stored login) in a log record, warning, error, card or provenance record - checked against a
fake Hub on loopback that answers 503 and echoes the Authorization header - and no local model
path or endpoint URL in provenance. (Files outside a ``.jsonl``'s folder: test_publish_local.)"""

from __future__ import annotations

import json
import logging

import pytest
from datasets import Dataset
from hub_fakes import TOKEN, http_error, sample_dataset

from hfgcot import load_release
from hfgcot.publishing.release import check_target, publish
from hfgcot.publishing.targets import MissingTokenError, PublishError


@pytest.fixture
def ds() -> Dataset:
    return sample_dataset()


def test_missing_token_is_refused_before_any_call(fake_hub, ds, monkeypatch, tmp_path):
    import huggingface_hub.constants

    monkeypatch.delenv("HF_TOKEN")
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))
    with pytest.raises(MissingTokenError, match="HF_TOKEN"):
        check_target("me/data", "1.0.0")
    with pytest.raises(MissingTokenError, match="hf auth login"):
        publish(ds, "me/data", version="1.0.0")
    assert fake_hub.calls == []
    assert check_target(tmp_path / "rel", "1.0.0") == ("local", "v1.0.0")  # no token needed
    assert check_target("me/data", "1.0.0", token=TOKEN) == ("hub", "v1.0.0")


def test_token_never_appears_in_errors(fake_hub, ds):
    fake_hub.fail = {"push_to_hub": [http_error(403, f"bad credentials: Bearer {TOKEN}")]}
    with pytest.raises(PublishError) as info:
        publish(ds, "me/data", version="1.0.0", token=TOKEN, backoff=0)
    assert TOKEN not in str(info.value) and "***" in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_redacting_covers_any_logger_warnings_and_the_error(caplog, monkeypatch):
    import warnings

    from hfgcot.publishing.redact import redacting

    monkeypatch.setenv("HF_TOKEN", "hf_fromTheEnvironment42")
    factory = logging.getLogRecordFactory()  # e.g. ray's, once ray was imported
    with caplog.at_level(logging.INFO), warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        with pytest.raises(PublishError) as info, redacting(TOKEN):
            logging.getLogger("some.library").info("sent %s", TOKEN)
            logging.getLogger("hfgcot").warning("env hf_fromTheEnvironment42")
            try:
                raise RuntimeError(f"header Bearer {TOKEN}")
            except RuntimeError:
                logging.getLogger("x").exception("failed")
            warnings.warn(f"careful with {TOKEN}", UserWarning, stacklevel=1)
            raise KeyError(f"no such token {TOKEN}")
        logging.getLogger("some.library").info("after: %s", TOKEN)  # no longer redacted
    text = caplog.text
    assert "sent ***" in text and "env ***" in text and "Bearer ***" in text
    assert text.count(TOKEN) == 1 and "after: " + TOKEN in text
    assert [str(w.message) for w in shown] == ["careful with ***"]
    assert str(info.value) == "KeyError: 'no such token ***'" and info.value.__cause__ is None
    assert logging.getLogRecordFactory() is factory  # restored


# ------------------------------------------------------------------------------------------
# A fake Hub on loopback that answers 503 and echoes the token
# ------------------------------------------------------------------------------------------


@pytest.fixture
def echo_hub(monkeypatch):
    """``HF_ENDPOINT`` pointed at a loopback server answering 503 with the Authorization header
    in its error. ``huggingface_hub`` reads ``HF_ENDPOINT`` at import: the constants are patched."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    import datasets.config
    import huggingface_hub.constants

    seen: list[str] = []

    class Echo(BaseHTTPRequestHandler):
        def _answer(self):
            auth = self.headers.get("Authorization", "")
            seen.append(auth)
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            body = json.dumps({"error": f"overloaded, retry later (you sent {auth})"}).encode()
            self.send_response(503)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_HEAD = _answer

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setenv("HF_ENDPOINT", url)
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", url)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(datasets.config, "HF_ENDPOINT", url)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    yield seen
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("source", ["argument", "HF_TOKEN", "stored login"])
def test_no_token_in_logs_warnings_or_errors(echo_hub, ds, source, monkeypatch, tmp_path, caplog):
    import traceback
    import warnings

    import huggingface_hub.constants

    secret = f"hf_echoed{source.replace(' ', '')}Token123456"
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    token_file = tmp_path / "token"
    monkeypatch.setattr(huggingface_hub.constants, "HF_TOKEN_PATH", str(token_file))
    if source == "HF_TOKEN":
        monkeypatch.setenv("HF_TOKEN", secret)
    elif source == "stored login":
        token_file.write_text(secret)
    token = secret if source == "argument" else None
    calls = [
        lambda: publish(ds, "me/data", version="1.0.0", token=token, retries=2, backoff=0),
        lambda: check_target("me/data", "1.0.0", token=token, retries=1, backoff=0),
        lambda: load_release("me/data", token=token, retries=1, backoff=0),
    ]
    texts = []
    with caplog.at_level(logging.DEBUG), warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        for call in calls:
            with pytest.raises(Exception) as info:  # noqa: PT011 - any error, but no token in it
                call()
            texts.append("".join(traceback.format_exception(info.value)))
            assert "***" in str(info.value)  # the echo was there, redacted
    assert any(secret in auth for auth in echo_hub)  # the server did receive the token
    assert len(texts) == 3 and all(secret not in text for text in texts)
    assert secret not in caplog.text and "retry" in caplog.text
    assert all(secret not in str(w.message) for w in shown)


def test_records_name_local_models_by_folder_and_hide_endpoint_urls(tmp_path, monkeypatch):
    from dataclasses import dataclass

    from hfgcot.model.endpoint import EndpointSpec
    from hfgcot.model.spec import ModelSpec
    from hfgcot.publishing.provenance import pipeline_provenance

    folder = tmp_path / "private" / "my-finetune"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text('{"model_type": "qwen2_5_vl"}')

    @dataclass(frozen=True)
    class Stage:
        model: object
        name: str = "stage"

    for spec in [
        ModelSpec(str(folder) + "/"),
        EndpointSpec("http://10.1.2.3:8000/v1", str(folder), min_pixels=3136, max_pixels=9999),
    ]:
        record = pipeline_provenance(
            "demo", Dataset.from_dict({"x": [1, 2]}), spec=spec, stages=[Stage(spec)]
        )
        text = json.dumps(record)
        assert record["model"]["model_id"] == "my-finetune", record["model"]
        assert str(tmp_path) not in text and "10.1.2.3" not in text
        assert record["stages"][0]["config"]["model"]["model"] == "my-finetune"
    assert record["model"]["family"] == "qwen2_5_vl"
    monkeypatch.setenv("HF_TOKEN", "hf_inTheEnvironment1234")
    record = pipeline_provenance(
        "demo", Dataset.from_dict({"x": [1, 2]}), extra={"oops": "hf_inTheEnvironment1234"}
    )
    assert record["oops"] == "***"
