"""``publish`` to the Hub, offline: ``push_to_hub`` and ``HfApi`` are replaced by a fake that
records the calls (and fails at a chosen one); a fake Hub on loopback that answers 503 and echoes
the token checks redaction end to end. One opt-in test talks to the real Hub when ``HF_TOKEN`` is
set."""

from __future__ import annotations

import logging
import os
import time
from types import SimpleNamespace

import httpx2
import pytest
from conftest import png_bytes, random_image
from datasets import Dataset, DatasetDict, Image
from huggingface_hub import DatasetCard
from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, RepositoryNotFoundError

from hfgcot import get_provenance, load_release
from hfgcot.publishing import hub
from hfgcot.publishing.provenance import attach_provenance, dump_records, load_records
from hfgcot.publishing.release import check_target, publish
from hfgcot.publishing.targets import MissingTokenError, PublishError, VersionExistsError

TOKEN = "hf_SECRETtoken1234567890"
OID = "0123456789abcdef0123456789abcdef01234567"
CARD_OID = "fedcba9876543210fedcba9876543210fedcba98"


def http_error(status: int, message: str | None = None) -> HfHubHTTPError:
    request = httpx2.Request("POST", "https://huggingface.co/api/datasets/me/data")
    return HfHubHTTPError(
        message or f"{status} error", response=httpx2.Response(status, request=request)
    )


class FakeHub:
    """Records every call; ``fail`` maps a method name to a list of exceptions raised in turn.

    ``files`` is the repo's main branch; ``push_to_hub`` writes the data YAML into README.md like
    ``datasets`` does (keeping the card text that was there)."""

    def __init__(self, tmp: str):
        self.tmp = tmp
        self.calls: list[tuple[str, dict]] = []
        self.tags: dict[str, str] = {}
        self.files: dict[str, bytes] = {}
        self.repo_exists = True
        self.fail: dict[str, list[Exception]] = {}

    def _call(self, name: str, **kwargs):
        self.calls.append((name, kwargs))
        if self.fail.get(name):
            raise self.fail[name].pop(0)

    def names(self) -> list[str]:
        return [n for n, _ in self.calls]

    def call(self, name: str) -> dict:
        return dict(self.calls)[name]

    def card(self) -> DatasetCard:
        return DatasetCard(self.files["README.md"].decode())

    # HfApi
    def list_repo_refs(self, repo_id, *, repo_type=None, **kw):
        self._call("list_repo_refs", repo_id=repo_id, repo_type=repo_type)
        if not self.repo_exists:
            raise RepositoryNotFoundError(
                "404", response=httpx2.Response(404, request=httpx2.Request("GET", "https://x"))
            )
        tags = [SimpleNamespace(name=n, target_commit=c) for n, c in self.tags.items()]
        return SimpleNamespace(branches=[], converts=[], tags=tags, pull_requests=None)

    def create_repo(self, repo_id, **kw):
        self._call("create_repo", repo_id=repo_id, **kw)
        self.repo_exists = True

    def create_branch(self, repo_id, **kw):
        self._call("create_branch", repo_id=repo_id, **kw)

    def hf_hub_download(self, repo_id, filename, **kw):
        self._call("hf_hub_download", repo_id=repo_id, filename=filename, **kw)
        if filename not in self.files:
            raise EntryNotFoundError(f"no {filename}")
        path = os.path.join(self.tmp, filename.replace("/", "_"))
        with open(path, "wb") as f:
            f.write(self.files[filename])
        return path

    def create_commit(self, repo_id, *, operations, **kw):
        self._call(
            "create_commit", repo_id=repo_id, paths=[o.path_in_repo for o in operations], **kw
        )
        for op in operations:
            self.files[op.path_in_repo] = op.path_or_fileobj
        return SimpleNamespace(oid=CARD_OID)

    def create_tag(self, repo_id, *, tag, revision=None, repo_type=None, tag_message=None, **kw):
        self.calls.append(("create_tag", {"repo_id": repo_id, "tag": tag, "revision": revision}))
        if self.fail.get("create_tag"):
            exc = self.fail["create_tag"].pop(0)
            if getattr(exc, "tag_was_created", False):
                self.tags[tag] = revision
            raise exc
        if tag in self.tags:
            raise http_error(409, "tag exists")
        self.tags[tag] = revision

    # Dataset.push_to_hub
    def push_to_hub(self, ds, repo_id, **kwargs):
        self._call("push_to_hub", repo_id=repo_id, rows=len(ds), **kwargs)
        old = self.files.get("README.md", b"---\n---\n").decode()
        card = DatasetCard(old)
        card.data["configs"] = [{"config_name": kwargs.get("config_name", "default")}]
        self.files["README.md"] = str(card).encode()
        self.files["data/train-00000-of-00001.parquet"] = b"PAR1"
        return SimpleNamespace(oid=OID)


@pytest.fixture
def fake(monkeypatch, tmp_path):
    hubfake = FakeHub(str(tmp_path))
    tokens_seen = []

    def make_api(token=None, **kw):
        tokens_seen.append(token)
        return hubfake

    monkeypatch.setattr(hub, "HfApi", make_api)
    monkeypatch.setattr(
        Dataset, "push_to_hub", lambda self, repo_id, **kw: hubfake.push_to_hub(self, repo_id, **kw)
    )
    monkeypatch.setattr(
        DatasetDict,
        "push_to_hub",
        lambda self, repo_id, **kw: hubfake.push_to_hub(
            self["train"], repo_id, splits=list(self), **kw
        ),
    )
    monkeypatch.setenv("HF_TOKEN", "hf_environmentToken0000")
    hubfake.tokens_seen = tokens_seen
    return hubfake


@pytest.fixture
def ds() -> Dataset:
    data = Dataset.from_dict(
        {
            "image": [png_bytes(random_image(40, 30, seed=i)) for i in range(3)],
            "question": ["What is it?", "Where?", "Why?"],
            "gcot": ["Step 1: a cat [1, 2, 3, 4].", "b", "c"],
            "gcot_status": ["ok", "ok", "no_keywords"],
        }
    ).cast_column("image", Image())
    record = {
        "pipeline": "gcot",
        "hfgcot_version": "0.1.0",
        "model": {
            "model_id": "Qwen/Qwen2.5-VL-3B-Instruct",
            "revision": "abc123",
            "family": "qwen2_5_vl",
            "min_pixels": 3136,
            "max_pixels": 1003520,
        },
        "prompts": {"version": "2026-11-21.1"},
        "status": {"ok": 2, "no_keywords": 1},
        "status_column": "gcot_status",
    }
    return attach_provenance(data, record)


# ------------------------------------------------------------------------------------------
# Order: data, then card, then tag
# ------------------------------------------------------------------------------------------


def test_publish_pushes_data_then_card_then_tags_the_card_commit(fake, ds):
    result = publish(ds, "me/data", version="1.0.0", token=TOKEN, private=True, backoff=0)
    assert fake.names() == [
        "list_repo_refs",
        "create_repo",
        "push_to_hub",
        "hf_hub_download",  # the data YAML push_to_hub wrote
        "create_commit",
        "create_tag",
    ]
    push = fake.call("push_to_hub")
    assert push["repo_id"] == "me/data" and push["rows"] == 3
    assert push["split"] == "train" and push["private"] is True and push["token"] == TOKEN
    assert push["revision"] is None and "v1.0.0" in push["commit_message"]
    assert fake.call("hf_hub_download")["revision"] == OID
    commit = fake.call("create_commit")
    assert commit["parent_commit"] == OID and commit["repo_type"] == "dataset"
    assert commit["paths"] == ["README.md", "provenance/default.json"]
    assert fake.call("create_tag") == {"repo_id": "me/data", "tag": "v1.0.0", "revision": CARD_OID}
    assert fake.tokens_seen and set(fake.tokens_seen) == {TOKEN}
    assert result.backend == "hub" and result.commit == CARD_OID and result.tag == "v1.0.0"
    assert result.location.endswith("/me/data/tree/v1.0.0") and result.dropped == {}
    assert "revision='v1.0.0'" in result.load_code and "'me/data'" in result.load_code
    text = fake.files["README.md"].decode()
    assert TOKEN not in text
    assert "Qwen/Qwen2.5-VL-3B-Instruct" in text and "abc123" in text and "2026-11-21.1" in text
    assert "load_dataset('me/data', revision='v1.0.0', split='train')" in text
    assert "hfgcot.load_release('me/data', version='1.0.0', split='train')" in text
    card = fake.card()
    assert card.data.hfgcot["version"] == "1.0.0" and card.data.license == "unknown"
    assert card.data.configs == [{"config_name": "default"}]  # push_to_hub's YAML kept
    records = load_records(fake.files["provenance/default.json"])
    assert records == get_provenance(ds)


def test_failed_push_leaves_no_card_and_no_tag(fake, ds):
    fake.files["README.md"] = b"---\nlicense: mit\n---\n# the card of v0.9.0\n"
    fake.fail = {"push_to_hub": [http_error(503)]}
    with pytest.raises(HfHubHTTPError):
        publish(ds, "me/data", version="1.0.0", backoff=0)
    assert fake.names().count("push_to_hub") == 1  # huggingface_hub retried its uploads itself
    assert "create_commit" not in fake.names() and fake.tags == {}
    assert fake.files["README.md"].endswith(b"# the card of v0.9.0\n")


def test_failed_card_commit_leaves_no_tag(fake, ds):
    fake.fail = {"create_commit": [http_error(412, "parent commit moved")]}
    with pytest.raises(HfHubHTTPError):
        publish(ds, "me/data", version="1.0.0", backoff=0)
    assert fake.names().count("create_commit") == 1  # a client error: not retried
    assert "create_tag" not in fake.names() and fake.tags == {}
    assert "provenance/default.json" not in fake.files


def test_metadata_calls_are_retried_once_each_layer(fake, ds, caplog):
    fake.fail = {
        "list_repo_refs": [httpx2.ConnectError("connection reset")],
        "create_commit": [http_error(503), http_error(429, f"rate limited for token {TOKEN}")],
    }
    with caplog.at_level(logging.WARNING, logger="hfgcot.publishing.hub"):
        result = publish(ds, "me/data", version="1.0.0", token=TOKEN, backoff=0)
    assert fake.names().count("list_repo_refs") == 2
    assert fake.names().count("create_commit") == 3
    assert fake.names().count("push_to_hub") == 1
    assert fake.tags == {"v1.0.0": CARD_OID} and result.commit == CARD_OID
    assert "retry" in caplog.text and TOKEN not in caplog.text and "***" in caplog.text


@pytest.mark.parametrize("status", [400, 401, 403, 404, 412])
def test_client_errors_are_not_retried_and_leave_no_tag(fake, ds, status):
    fake.fail = {"create_repo": [http_error(status)]}
    with pytest.raises(HfHubHTTPError):
        publish(ds, "me/data", version="1.0.0", backoff=0)
    assert fake.names().count("create_repo") == 1
    assert "push_to_hub" not in fake.names() and fake.tags == {}


def test_persistent_failure_leaves_no_tag(fake, ds):
    fake.fail = {"create_commit": [http_error(500) for _ in range(10)]}
    with pytest.raises(HfHubHTTPError):
        publish(ds, "me/data", version="1.0.0", retries=2, backoff=0)
    assert fake.names().count("create_commit") == 3
    assert "create_tag" not in fake.names() and fake.tags == {}


def test_offline_mode_is_not_retried(fake, ds):
    from huggingface_hub.errors import OfflineModeIsEnabled

    fake.fail = {"list_repo_refs": [OfflineModeIsEnabled("offline")]}
    with pytest.raises(OfflineModeIsEnabled):
        publish(ds, "me/data", version="1.0.0", backoff=0)
    assert fake.names() == ["list_repo_refs"]


def test_tag_failure_is_reported_and_leaves_no_tag(fake, ds):
    fake.fail = {"create_tag": [http_error(400)]}
    with pytest.raises(PublishError, match=CARD_OID) as info:
        publish(ds, "me/data", version="1.0.0", backoff=0)
    assert "no tag was created" in str(info.value) and fake.tags == {}


def test_tag_retry_after_a_lost_success_is_accepted(fake, ds):
    lost = http_error(503)
    lost.tag_was_created = True  # the server created the tag, the answer was lost
    fake.fail = {"create_tag": [lost]}
    result = publish(ds, "me/data", version="1.0.0", backoff=0)
    assert fake.names().count("create_tag") == 2 and fake.tags == {"v1.0.0": CARD_OID}
    assert result.commit == CARD_OID


def test_tag_taken_meanwhile_is_a_version_conflict(fake, ds):
    fake.fail = {"create_tag": [http_error(409)]}

    def refs_after_race(*a, **k):
        if "create_tag" in fake.names():  # another publisher tagged between our check and our tag
            fake.tags["v1.0.0"] = "e" * 40
        return FakeHub.list_repo_refs(fake, *a, **k)

    fake.list_repo_refs = refs_after_race
    with pytest.raises(VersionExistsError, match="someone else"):
        publish(ds, "me/data", version="1.0.0", backoff=0)


# ------------------------------------------------------------------------------------------
# Targets, versions, cards
# ------------------------------------------------------------------------------------------


def test_config_name_branch_and_card_options(fake, ds):
    publish(
        ds,
        "me/data",
        version="v2.1.0",
        config_name="gcot",
        branch="dev",
        card={"license": "apache-2.0", "pretty_name": "My GCoT"},
        backoff=0,
    )
    assert fake.call("create_branch")["branch"] == "dev"
    push = fake.call("push_to_hub")
    assert push["config_name"] == "gcot" and push["revision"] == "dev"
    assert fake.call("create_commit")["revision"] == "dev"
    assert fake.call("create_commit")["paths"] == ["README.md", "provenance/gcot.json"]
    assert fake.call("create_tag")["tag"] == "v2.1.0"
    card = fake.card()
    assert card.data.license == "apache-2.0" and card.data.pretty_name == "My GCoT"
    assert "name='gcot'" in card.text


def test_card_keeps_the_data_yaml_of_other_configs(fake, ds):
    fake.files["README.md"] = (
        b"---\nlicense: mit\nconfigs:\n- config_name: other\n  data_files:\n  - split: train\n"
        b"    path: other/train-*\n---\n# old card\n"
    )
    publish(ds, "me/data", version="1.0.1", backoff=0)
    card = fake.card()
    assert card.data.configs == [{"config_name": "default"}]  # what the data commit wrote
    assert "# old card" not in card.text


def test_card_lists_the_versions_before_it(fake, ds):
    fake.tags = {"v1.0.0": "a" * 40, "v1.10.0": "b" * 40, "v1.2.0": "c" * 40, "nightly": "d" * 40}
    publish(ds, "me/data", version="2.0.0", backoff=0)
    card = fake.card()
    assert card.data.hfgcot["previous_versions"] == ["1.0.0", "1.2.0", "1.10.0"]
    assert "`v1.0.0`, `v1.2.0`, `v1.10.0`" in card.text


def test_existing_tag_is_refused_before_anything_is_pushed(fake, ds):
    fake.tags = {"v1.0.0": "f" * 40}
    with pytest.raises(VersionExistsError, match="v1.0.0"):
        publish(ds, "me/data", version="1.0.0", backoff=0)
    assert fake.names() == ["list_repo_refs"]
    with pytest.raises(VersionExistsError):
        check_target("me/data", "1.0.0")


def test_new_repo_is_created(fake, ds):
    fake.repo_exists = False
    result = publish(ds, "me/new", version="0.1.0", private=True, backoff=0)
    assert fake.call("create_repo")["private"] is True
    assert result.commit == CARD_OID
    assert check_target("me/other", "1.0.0") == ("hub", "v1.0.0")


def test_missing_token_is_refused_before_any_call(fake, ds, monkeypatch, tmp_path):
    import huggingface_hub.constants

    monkeypatch.delenv("HF_TOKEN")
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))
    with pytest.raises(MissingTokenError, match="HF_TOKEN"):
        check_target("me/data", "1.0.0")
    with pytest.raises(MissingTokenError, match="hf auth login"):
        publish(ds, "me/data", version="1.0.0")
    assert fake.calls == []
    assert check_target(tmp_path / "rel", "1.0.0") == ("local", "v1.0.0")  # no token needed
    assert check_target("me/data", "1.0.0", token=TOKEN) == ("hub", "v1.0.0")


def test_token_never_appears_in_errors(fake, ds):
    fake.fail = {"push_to_hub": [http_error(403, f"bad credentials: Bearer {TOKEN}")]}
    with pytest.raises(PublishError) as info:
        publish(ds, "me/data", version="1.0.0", token=TOKEN, backoff=0)
    assert TOKEN not in str(info.value) and "***" in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_datasetdict_pushes_all_splits(fake, ds):
    publish(
        DatasetDict({"train": ds, "test": ds.select([0])}), "me/data", version="1.0.0", backoff=0
    )
    push = fake.call("push_to_hub")
    assert push["splits"] == ["train", "test"] and "split" not in push
    assert fake.card().data.hfgcot["rows"] == {"train": 3, "test": 1}


def test_bad_images_are_refused_before_any_write(fake, ds):
    bad = ds.cast_column("image", Image(decode=False))
    bad = Dataset.from_dict(
        {**bad.to_dict(), "image": [*bad["image"][:2], {"bytes": b"#!secret", "path": None}]},
        features=bad.features,
    ).cast_column("image", Image())
    with pytest.raises(ValueError, match=r"1 of 3 rows .*train row 2 image: undecodable_image"):
        publish(bad, "me/data", version="1.0.0", backoff=0)
    assert "push_to_hub" not in fake.names() and "create_repo" not in fake.names()
    result = publish(bad, "me/data", version="1.0.0", drop_bad_rows=True, backoff=0)
    assert fake.call("push_to_hub")["rows"] == 2 and result.dropped == {"train": 1}
    card = fake.card()
    assert card.data.hfgcot["dropped_rows"] == {"train": 1}
    assert "1 rows whose image could not be embedded (undecodable_image 1" in card.text


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


@pytest.mark.parametrize(
    ("target", "version"),
    [
        ("me/data", "1"),
        ("me/data", "latest"),
        ("me/data", "1.0.0.0"),
        ("data", "1.0.0"),
        ("me/da ta", "1.0.0"),
        ("me/data--x", "1.0.0"),
    ],
)
def test_invalid_version_or_repo_fails_before_any_call(fake, ds, target, version):
    with pytest.raises(ValueError):
        publish(ds, target, version=version, backoff=0)
    assert fake.calls == []


def test_retry_helper_backoff_and_retry_after():
    delays = []
    attempts = iter([http_error(503), http_error(502), "done"])

    def fn():
        item = next(attempts)
        if isinstance(item, Exception):
            raise item
        return item

    assert hub.call_with_retries(fn, what="x", backoff=1.0, sleep=delays.append) == "done"
    assert len(delays) == 2 and 1.0 <= delays[0] <= 1.25 and 2.0 <= delays[1] <= 2.5
    request = httpx2.Request("GET", "https://huggingface.co")
    limited = HfHubHTTPError(
        "429", response=httpx2.Response(429, headers={"retry-after": "7"}, request=request)
    )
    assert hub.retry_after(limited) == 7.0
    assert hub.is_transient(TimeoutError()) and not hub.is_transient(ValueError("x"))


# ------------------------------------------------------------------------------------------
# load_release from the Hub
# ------------------------------------------------------------------------------------------


def test_load_release_picks_the_latest_version_and_its_provenance(fake, ds, monkeypatch):
    import datasets

    fake.tags = {"v1.0.0": "a" * 40, "v1.1.0": "b" * 40, "v2.0.0-rc.1": "c" * 40}
    fake.files["provenance/default.json"] = dump_records(get_provenance(ds)).encode()
    loaded = []

    def fake_load(path, **kwargs):
        loaded.append((path, kwargs))
        return ds.select([0])

    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    back = load_release("me/data", split="train")
    assert loaded == [
        ("me/data", {"name": None, "revision": "v1.1.0", "split": "train", "token": None})
    ]
    assert get_provenance(back) == get_provenance(ds) and len(back) == 1
    assert fake.call("hf_hub_download")["revision"] == "v1.1.0"
    load_release("me/data", version="2.0.0-rc.1", split="train")
    assert loaded[-1][1]["revision"] == "v2.0.0-rc.1"
    with pytest.raises(FileNotFoundError, match="versions: 1.0.0, 1.1.0, 2.0.0-rc.1"):
        load_release("me/data", version="3.0.0")


# ------------------------------------------------------------------------------------------
# A fake Hub on loopback that answers 503 and echoes the token
# ------------------------------------------------------------------------------------------


@pytest.fixture
def echo_hub(monkeypatch):
    """``HF_ENDPOINT`` pointed at a loopback server answering 503 with the Authorization header
    in its error. ``huggingface_hub`` reads ``HF_ENDPOINT`` at import: the constants are patched."""
    import json
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


@pytest.mark.skipif(
    not os.environ.get("HF_TOKEN"), reason="set HF_TOKEN to publish to the real Hub"
)
def test_real_hub_roundtrip(monkeypatch, ds):  # pragma: no cover - needs network and a token
    import datasets.config
    import huggingface_hub.constants
    from huggingface_hub import HfApi

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    api = HfApi()
    repo = os.environ.get("HFGCOT_TEST_REPO") or f"{api.whoami()['name']}/hfgcot-ci-test"
    version = f"0.0.{int(time.time())}"
    result = publish(ds, repo, version=version, private=True)
    tags = {t.name: t.target_commit for t in api.list_repo_refs(repo, repo_type="dataset").tags}
    assert tags[result.tag] == result.commit
    back = load_release(repo, version=version, split="train")
    assert back["question"] == ds["question"] and back[0]["image"].size == (40, 30)
    assert get_provenance(back) == get_provenance(ds)
    with pytest.raises(VersionExistsError):
        publish(ds, repo, version=version)
