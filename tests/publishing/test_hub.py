"""``publish`` to the Hub and ``load_release`` from it, offline: ``push_to_hub`` and ``HfApi`` are
replaced by a fake that records the calls and fails at a chosen one (``hub_fakes``). Tokens:
test_publish_private. One opt-in test talks to the real Hub when ``HF_TOKEN`` is set."""

from __future__ import annotations

import logging
import os
import time

import httpx2
import pytest
from datasets import Dataset, DatasetDict, Image
from hub_fakes import CARD_OID, OID, TOKEN, FakeHub, http_error, sample_dataset
from huggingface_hub.errors import HfHubHTTPError

from hfgcot import get_provenance, load_release
from hfgcot.publishing import hub
from hfgcot.publishing.provenance import dump_records, load_records
from hfgcot.publishing.release import check_target, publish
from hfgcot.publishing.targets import PublishError, VersionExistsError


@pytest.fixture
def ds() -> Dataset:
    return sample_dataset()


# ------------------------------------------------------------------------------------------
# Order: data, then card, then tag
# ------------------------------------------------------------------------------------------


def test_publish_pushes_data_then_card_then_tags_the_card_commit(fake_hub, ds):
    result = publish(ds, "me/data", version="1.0.0", token=TOKEN, private=True, backoff=0)
    assert fake_hub.names() == [
        "list_repo_refs",
        "create_repo",
        "push_to_hub",
        "hf_hub_download",  # the data YAML push_to_hub wrote
        "create_commit",
        "create_tag",
    ]
    push = fake_hub.call("push_to_hub")
    assert push["repo_id"] == "me/data" and push["rows"] == 3
    assert push["split"] == "train" and push["private"] is True and push["token"] == TOKEN
    assert push["revision"] is None and "v1.0.0" in push["commit_message"]
    assert fake_hub.call("hf_hub_download")["revision"] == OID
    commit = fake_hub.call("create_commit")
    assert commit["parent_commit"] == OID and commit["repo_type"] == "dataset"
    assert commit["paths"] == ["README.md", "provenance/default.json"]
    assert fake_hub.call("create_tag") == {
        "repo_id": "me/data",
        "tag": "v1.0.0",
        "revision": CARD_OID,
    }
    assert fake_hub.tokens_seen and set(fake_hub.tokens_seen) == {TOKEN}
    assert result.backend == "hub" and result.commit == CARD_OID and result.tag == "v1.0.0"
    assert result.location.endswith("/me/data/tree/v1.0.0") and result.dropped == {}
    assert "revision='v1.0.0'" in result.load_code and "'me/data'" in result.load_code
    text = fake_hub.files["README.md"].decode()
    assert TOKEN not in text
    assert "Qwen/Qwen2.5-VL-3B-Instruct" in text and "abc123" in text and "2026-11-21.1" in text
    assert "load_dataset('me/data', revision='v1.0.0', split='train')" in text
    assert "hfgcot.load_release('me/data', version='1.0.0', split='train')" in text
    card = fake_hub.card()
    assert card.data.hfgcot["version"] == "1.0.0" and card.data.license == "unknown"
    assert card.data.configs == [{"config_name": "default"}]  # push_to_hub's YAML kept
    records = load_records(fake_hub.files["provenance/default.json"])
    assert records == get_provenance(ds)


def test_failed_push_leaves_no_card_and_no_tag(fake_hub, ds):
    fake_hub.files["README.md"] = b"---\nlicense: mit\n---\n# the card of v0.9.0\n"
    fake_hub.fail = {"push_to_hub": [http_error(503)]}
    with pytest.raises(HfHubHTTPError):
        publish(ds, "me/data", version="1.0.0", backoff=0)
    assert fake_hub.names().count("push_to_hub") == 1  # huggingface_hub retried its uploads itself
    assert "create_commit" not in fake_hub.names() and fake_hub.tags == {}
    assert fake_hub.files["README.md"].endswith(b"# the card of v0.9.0\n")


def test_failed_card_commit_leaves_no_tag(fake_hub, ds):
    fake_hub.fail = {"create_commit": [http_error(412, "parent commit moved")]}
    with pytest.raises(HfHubHTTPError):
        publish(ds, "me/data", version="1.0.0", backoff=0)
    assert fake_hub.names().count("create_commit") == 1  # a client error: not retried
    assert "create_tag" not in fake_hub.names() and fake_hub.tags == {}
    assert "provenance/default.json" not in fake_hub.files


def test_metadata_calls_are_retried_once_each_layer(fake_hub, ds, caplog):
    fake_hub.fail = {
        "list_repo_refs": [httpx2.ConnectError("connection reset")],
        "create_commit": [http_error(503), http_error(429, f"rate limited for token {TOKEN}")],
    }
    with caplog.at_level(logging.WARNING, logger="hfgcot.publishing.hub"):
        result = publish(ds, "me/data", version="1.0.0", token=TOKEN, backoff=0)
    assert fake_hub.names().count("list_repo_refs") == 2
    assert fake_hub.names().count("create_commit") == 3
    assert fake_hub.names().count("push_to_hub") == 1
    assert fake_hub.tags == {"v1.0.0": CARD_OID} and result.commit == CARD_OID
    assert "retry" in caplog.text and TOKEN not in caplog.text and "***" in caplog.text


@pytest.mark.parametrize("status", [400, 401, 403, 404, 412])
def test_client_errors_are_not_retried_and_leave_no_tag(fake_hub, ds, status):
    fake_hub.fail = {"create_repo": [http_error(status)]}
    with pytest.raises(HfHubHTTPError):
        publish(ds, "me/data", version="1.0.0", backoff=0)
    assert fake_hub.names().count("create_repo") == 1
    assert "push_to_hub" not in fake_hub.names() and fake_hub.tags == {}


def test_persistent_failure_leaves_no_tag(fake_hub, ds):
    fake_hub.fail = {"create_commit": [http_error(500) for _ in range(10)]}
    with pytest.raises(HfHubHTTPError):
        publish(ds, "me/data", version="1.0.0", retries=2, backoff=0)
    assert fake_hub.names().count("create_commit") == 3
    assert "create_tag" not in fake_hub.names() and fake_hub.tags == {}


def test_offline_mode_is_not_retried(fake_hub, ds):
    from huggingface_hub.errors import OfflineModeIsEnabled

    fake_hub.fail = {"list_repo_refs": [OfflineModeIsEnabled("offline")]}
    with pytest.raises(OfflineModeIsEnabled):
        publish(ds, "me/data", version="1.0.0", backoff=0)
    assert fake_hub.names() == ["list_repo_refs"]


def test_tag_failure_is_reported_and_leaves_no_tag(fake_hub, ds):
    fake_hub.fail = {"create_tag": [http_error(400)]}
    with pytest.raises(PublishError, match=CARD_OID) as info:
        publish(ds, "me/data", version="1.0.0", backoff=0)
    assert "no tag was created" in str(info.value) and fake_hub.tags == {}


def test_tag_retry_after_a_lost_success_is_accepted(fake_hub, ds):
    lost = http_error(503)
    lost.tag_was_created = True  # the server created the tag, the answer was lost
    fake_hub.fail = {"create_tag": [lost]}
    result = publish(ds, "me/data", version="1.0.0", backoff=0)
    assert fake_hub.names().count("create_tag") == 2 and fake_hub.tags == {"v1.0.0": CARD_OID}
    assert result.commit == CARD_OID


def test_tag_taken_meanwhile_is_a_version_conflict(fake_hub, ds):
    fake_hub.fail = {"create_tag": [http_error(409)]}

    def refs_after_race(*a, **k):
        if (
            "create_tag" in fake_hub.names()
        ):  # another publisher tagged between our check and our tag
            fake_hub.tags["v1.0.0"] = "e" * 40
        return FakeHub.list_repo_refs(fake_hub, *a, **k)

    fake_hub.list_repo_refs = refs_after_race
    with pytest.raises(VersionExistsError, match="someone else"):
        publish(ds, "me/data", version="1.0.0", backoff=0)


# ------------------------------------------------------------------------------------------
# Targets, versions, cards
# ------------------------------------------------------------------------------------------


def test_config_name_branch_and_card_options(fake_hub, ds):
    publish(
        ds,
        "me/data",
        version="v2.1.0",
        config_name="gcot",
        branch="dev",
        card={"license": "apache-2.0", "pretty_name": "My GCoT"},
        backoff=0,
    )
    assert fake_hub.call("create_branch")["branch"] == "dev"
    push = fake_hub.call("push_to_hub")
    assert push["config_name"] == "gcot" and push["revision"] == "dev"
    assert fake_hub.call("create_commit")["revision"] == "dev"
    assert fake_hub.call("create_commit")["paths"] == ["README.md", "provenance/gcot.json"]
    assert fake_hub.call("create_tag")["tag"] == "v2.1.0"
    card = fake_hub.card()
    assert card.data.license == "apache-2.0" and card.data.pretty_name == "My GCoT"
    assert "name='gcot'" in card.text


def test_card_keeps_the_data_yaml_of_other_configs(fake_hub, ds):
    fake_hub.files["README.md"] = (
        b"---\nlicense: mit\nconfigs:\n- config_name: other\n  data_files:\n  - split: train\n"
        b"    path: other/train-*\n---\n# old card\n"
    )
    publish(ds, "me/data", version="1.0.1", backoff=0)
    card = fake_hub.card()
    assert card.data.configs == [{"config_name": "default"}]  # what the data commit wrote
    assert "# old card" not in card.text


def test_card_lists_the_versions_before_it(fake_hub, ds):
    fake_hub.tags = {
        "v1.0.0": "a" * 40,
        "v1.10.0": "b" * 40,
        "v1.2.0": "c" * 40,
        "nightly": "d" * 40,
    }
    publish(ds, "me/data", version="2.0.0", backoff=0)
    card = fake_hub.card()
    assert card.data.hfgcot["previous_versions"] == ["1.0.0", "1.2.0", "1.10.0"]
    assert "`v1.0.0`, `v1.2.0`, `v1.10.0`" in card.text


def test_existing_tag_is_refused_before_anything_is_pushed(fake_hub, ds):
    fake_hub.tags = {"v1.0.0": "f" * 40}
    with pytest.raises(VersionExistsError, match="v1.0.0"):
        publish(ds, "me/data", version="1.0.0", backoff=0)
    assert fake_hub.names() == ["list_repo_refs"]
    with pytest.raises(VersionExistsError):
        check_target("me/data", "1.0.0")


def test_new_repo_is_created(fake_hub, ds):
    fake_hub.repo_exists = False
    result = publish(ds, "me/new", version="0.1.0", private=True, backoff=0)
    assert fake_hub.call("create_repo")["private"] is True
    assert result.commit == CARD_OID
    assert check_target("me/other", "1.0.0") == ("hub", "v1.0.0")


def test_datasetdict_pushes_all_splits(fake_hub, ds):
    publish(
        DatasetDict({"train": ds, "test": ds.select([0])}), "me/data", version="1.0.0", backoff=0
    )
    push = fake_hub.call("push_to_hub")
    assert push["splits"] == ["train", "test"] and "split" not in push
    assert fake_hub.card().data.hfgcot["rows"] == {"train": 3, "test": 1}


def test_bad_images_are_refused_before_any_write(fake_hub, ds):
    bad = ds.cast_column("image", Image(decode=False))
    bad = Dataset.from_dict(
        {**bad.to_dict(), "image": [*bad["image"][:2], {"bytes": b"#!secret", "path": None}]},
        features=bad.features,
    ).cast_column("image", Image())
    with pytest.raises(ValueError, match=r"1 of 3 rows .*train row 2 image: undecodable_image"):
        publish(bad, "me/data", version="1.0.0", backoff=0)
    assert "push_to_hub" not in fake_hub.names() and "create_repo" not in fake_hub.names()
    result = publish(bad, "me/data", version="1.0.0", drop_bad_rows=True, backoff=0)
    assert fake_hub.call("push_to_hub")["rows"] == 2 and result.dropped == {"train": 1}
    card = fake_hub.card()
    assert card.data.hfgcot["dropped_rows"] == {"train": 1}
    assert "1 rows whose image could not be embedded (undecodable_image 1" in card.text


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
def test_invalid_version_or_repo_fails_before_any_call(fake_hub, ds, target, version):
    with pytest.raises(ValueError):
        publish(ds, target, version=version, backoff=0)
    assert fake_hub.calls == []


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


def test_load_release_picks_the_latest_version_and_its_provenance(fake_hub, ds, monkeypatch):
    import datasets

    fake_hub.tags = {"v1.0.0": "a" * 40, "v1.1.0": "b" * 40, "v2.0.0-rc.1": "c" * 40}
    fake_hub.files["provenance/default.json"] = dump_records(get_provenance(ds)).encode()
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
    assert fake_hub.call("hf_hub_download")["revision"] == "v1.1.0"
    load_release("me/data", version="2.0.0-rc.1", split="train")
    assert loaded[-1][1]["revision"] == "v2.0.0-rc.1"
    with pytest.raises(FileNotFoundError, match="versions: 1.0.0, 1.1.0, 2.0.0-rc.1"):
        load_release("me/data", version="3.0.0")


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
