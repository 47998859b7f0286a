"""``publish`` to the Hub, offline: ``push_to_hub`` and ``HfApi`` are replaced by fakes and the calls
are asserted. One opt-in test talks to the real Hub when ``HF_TOKEN`` is set."""

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

from hfgcot.publishing import hub
from hfgcot.publishing.hub import PublishError, VersionExistsError, check_target, publish
from hfgcot.publishing.provenance import attach_provenance

TOKEN = "hf_SECRETtoken1234567890"
OID = "0123456789abcdef0123456789abcdef01234567"


def http_error(status: int, message: str | None = None) -> HfHubHTTPError:
    request = httpx2.Request("POST", "https://huggingface.co/api/datasets/me/data")
    return HfHubHTTPError(
        message or f"{status} error", response=httpx2.Response(status, request=request)
    )


class FakeHub:
    """Records every call; ``fail`` maps a method name to a list of exceptions raised in turn."""

    def __init__(self, tags=None, readme: str | None = None, repo_exists: bool = True):
        self.calls: list[tuple[str, dict]] = []
        self.tags: dict[str, str] = dict(tags or {})
        self.readme = readme
        self.repo_exists = repo_exists
        self.fail: dict[str, list[Exception]] = {}
        self.uploaded: dict[str, bytes] = {}
        self.push_oid = OID

    def _call(self, name: str, **kwargs):
        self.calls.append((name, kwargs))
        if self.fail.get(name):
            raise self.fail[name].pop(0)

    def names(self) -> list[str]:
        return [n for n, _ in self.calls]

    # HfApi
    def list_repo_refs(self, repo_id, *, repo_type=None, **kw):
        self._call("list_repo_refs", repo_id=repo_id, repo_type=repo_type)
        if not self.repo_exists:
            raise RepositoryNotFoundError(
                "404", response=httpx2.Response(404, request=httpx2.Request("GET", "https://x"))
            )
        tags = [
            SimpleNamespace(name=n, ref=f"refs/tags/{n}", target_commit=c)
            for n, c in self.tags.items()
        ]
        return SimpleNamespace(branches=[], converts=[], tags=tags, pull_requests=None)

    def create_repo(self, repo_id, **kw):
        self._call("create_repo", repo_id=repo_id, **kw)
        self.repo_exists = True

    def create_branch(self, repo_id, **kw):
        self._call("create_branch", repo_id=repo_id, **kw)

    def hf_hub_download(self, repo_id, filename, **kw):
        self._call("hf_hub_download", repo_id=repo_id, filename=filename, **kw)
        if self.readme is None:
            raise EntryNotFoundError("no README.md")
        path = os.path.join(self.tmp, "README_remote.md")
        with open(path, "w") as f:
            f.write(self.readme)
        return path

    def upload_file(self, *, path_or_fileobj, path_in_repo, repo_id, **kw):
        self._call("upload_file", path_in_repo=path_in_repo, repo_id=repo_id, **kw)
        self.uploaded[path_in_repo] = path_or_fileobj

    def create_tag(self, repo_id, *, tag, revision=None, repo_type=None, tag_message=None, **kw):
        self.calls.append(
            (
                "create_tag",
                {"repo_id": repo_id, "tag": tag, "revision": revision, "repo_type": repo_type},
            )
        )
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
        return SimpleNamespace(
            oid=self.push_oid, commit_url=f"https://huggingface.co/{repo_id}/commit/{self.push_oid}"
        )


@pytest.fixture
def fake(monkeypatch, tmp_path):
    hubfake = FakeHub()
    hubfake.tmp = str(tmp_path)
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


def test_publish_pushes_then_tags_the_pushed_commit(fake, ds):
    result = publish(ds, "me/data", version="1.0.0", token=TOKEN, private=True, backoff=0)
    names = fake.names()
    assert names[0] == "list_repo_refs"
    assert names.index("upload_file") < names.index("push_to_hub") < names.index("create_tag")
    assert names[-1] == "create_tag"
    push = dict(fake.calls)["push_to_hub"]
    assert push["repo_id"] == "me/data" and push["rows"] == 3
    assert push["split"] == "train" and push["private"] is True and push["token"] == TOKEN
    assert push["revision"] is None and "v1.0.0" in push["commit_message"]
    tag = dict(fake.calls)["create_tag"]
    assert tag == {"repo_id": "me/data", "tag": "v1.0.0", "revision": OID, "repo_type": "dataset"}
    assert fake.tokens_seen and set(fake.tokens_seen) == {TOKEN}
    assert result.backend == "hub" and result.commit == OID and result.tag == "v1.0.0"
    assert result.location.endswith("/me/data/tree/v1.0.0")
    assert "revision='v1.0.0'" in result.load_code and "'me/data'" in result.load_code
    card = fake.uploaded["README.md"].decode()
    assert TOKEN not in card
    assert "Qwen/Qwen2.5-VL-3B-Instruct" in card and "abc123" in card and "2026-11-21.1" in card
    assert "load_dataset('me/data', revision='v1.0.0', split='train')" in card
    parsed = DatasetCard(card)
    assert parsed.data.hfgcot["version"] == "1.0.0" and parsed.data.license == "unknown"


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
    calls = dict(fake.calls)
    assert calls["create_branch"]["branch"] == "dev"
    assert (
        calls["push_to_hub"]["config_name"] == "gcot" and calls["push_to_hub"]["revision"] == "dev"
    )
    assert calls["upload_file"]["revision"] == "dev"
    assert calls["create_tag"]["tag"] == "v2.1.0"
    card = DatasetCard(fake.uploaded["README.md"].decode())
    assert card.data.license == "apache-2.0" and card.data.pretty_name == "My GCoT"
    assert "name='gcot'" in card.text


def test_existing_readme_keeps_data_yaml_of_other_configs(fake, ds):
    fake.readme = (
        "---\nlicense: mit\nconfigs:\n- config_name: other\n  data_files:\n  - split: train\n"
        "    path: other/train-*\n---\n# old card\n"
    )
    publish(ds, "me/data", version="1.0.1", backoff=0)
    card = DatasetCard(fake.uploaded["README.md"].decode())
    assert card.data.configs == [
        {"config_name": "other", "data_files": [{"split": "train", "path": "other/train-*"}]}
    ]
    assert "# old card" not in card.text


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
    assert dict(fake.calls)["create_repo"]["private"] is True
    assert result.commit == OID
    assert check_target("me/other", "1.0.0") == ("hub", "v1.0.0")


def test_transient_errors_are_retried(fake, ds, caplog):
    fake.fail = {
        "list_repo_refs": [httpx2.ConnectError("connection reset")],
        "push_to_hub": [http_error(503), http_error(429, f"rate limited for token {TOKEN}")],
    }
    with caplog.at_level(logging.WARNING, logger="hfgcot.publishing.hub"):
        result = publish(ds, "me/data", version="1.0.0", token=TOKEN, backoff=0)
    assert fake.names().count("list_repo_refs") == 2
    assert fake.names().count("push_to_hub") == 3
    assert fake.tags == {"v1.0.0": OID} and result.commit == OID
    assert "retry" in caplog.text and TOKEN not in caplog.text


@pytest.mark.parametrize("status", [400, 401, 403, 404, 412])
def test_client_errors_are_not_retried_and_leave_no_tag(fake, ds, status):
    fake.fail = {"push_to_hub": [http_error(status)]}
    with pytest.raises(HfHubHTTPError):
        publish(ds, "me/data", version="1.0.0", backoff=0)
    assert fake.names().count("push_to_hub") == 1
    assert "create_tag" not in fake.names() and fake.tags == {}


def test_persistent_failure_leaves_no_tag(fake, ds):
    fake.fail = {"push_to_hub": [http_error(500) for _ in range(10)]}
    with pytest.raises(HfHubHTTPError):
        publish(ds, "me/data", version="1.0.0", retries=2, backoff=0)
    assert fake.names().count("push_to_hub") == 3
    assert "create_tag" not in fake.names() and fake.tags == {}


def test_offline_mode_is_not_retried(fake, ds):
    from huggingface_hub.errors import OfflineModeIsEnabled

    fake.fail = {"list_repo_refs": [OfflineModeIsEnabled("offline")]}
    with pytest.raises(OfflineModeIsEnabled):
        publish(ds, "me/data", version="1.0.0", backoff=0)
    assert fake.names() == ["list_repo_refs"]


def test_tag_failure_is_reported_and_leaves_no_tag(fake, ds):
    fake.fail = {"create_tag": [http_error(400)]}
    with pytest.raises(PublishError, match=OID) as info:
        publish(ds, "me/data", version="1.0.0", backoff=0)
    assert "no tag was created" in str(info.value) and fake.tags == {}


def test_tag_retry_after_a_lost_success_is_accepted(fake, ds):
    lost = http_error(503)
    lost.tag_was_created = True  # the server created the tag, the answer was lost
    fake.fail = {"create_tag": [lost]}
    result = publish(ds, "me/data", version="1.0.0", backoff=0)
    assert fake.names().count("create_tag") == 2 and fake.tags == {"v1.0.0": OID}
    assert result.commit == OID


def test_tag_taken_meanwhile_is_a_version_conflict(fake, ds):
    race = http_error(409)
    fake.fail = {"create_tag": [race]}
    fake_tags = fake.tags

    def refs_after_race(*a, **k):
        if "create_tag" in fake.names():  # another publisher tagged between our check and our tag
            fake_tags["v1.0.0"] = "e" * 40
        return FakeHub.list_repo_refs(fake, *a, **k)

    fake.list_repo_refs = refs_after_race
    with pytest.raises(VersionExistsError, match="someone else"):
        publish(ds, "me/data", version="1.0.0", backoff=0)


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
    push = dict(fake.calls)["push_to_hub"]
    assert push["splits"] == ["train", "test"] and "split" not in push
    card = DatasetCard(fake.uploaded["README.md"].decode())
    assert card.data.hfgcot["rows"] == {"train": 3, "test": 1}


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
    assert hub._retry_after(limited) == 7.0
    assert hub.is_transient(TimeoutError()) and not hub.is_transient(ValueError("x"))


@pytest.mark.skipif(
    not os.environ.get("HF_TOKEN"), reason="set HF_TOKEN to publish to the real Hub"
)
def test_real_hub_roundtrip(monkeypatch, ds):  # pragma: no cover - needs network and a token
    import datasets.config
    import huggingface_hub.constants
    from datasets import load_dataset
    from huggingface_hub import HfApi

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    api = HfApi()
    repo = os.environ.get("HFGCOT_TEST_REPO") or f"{api.whoami()['name']}/hfgcot-ci-test"
    version = f"0.0.{int(time.time())}"
    result = publish(ds, repo, version=version, private=True)
    tags = {t.name: t.target_commit for t in api.list_repo_refs(repo, repo_type="dataset").tags}
    assert tags[result.tag] == result.commit
    back = load_dataset(repo, revision=result.tag, split="train")
    assert back["question"] == ds["question"] and back[0]["image"].size == (40, 30)
    with pytest.raises(VersionExistsError):
        publish(ds, repo, version=version)
