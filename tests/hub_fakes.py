"""The fake Hub the publishing tests share: ``HfApi`` and ``push_to_hub`` replaced by one object
that records the calls and fails at a chosen one (the ``fake_hub`` fixture of conftest installs
it)."""

from __future__ import annotations

import os
from types import SimpleNamespace

import httpx2
from conftest import png_bytes, random_image
from datasets import Dataset, DatasetDict, Image
from huggingface_hub import DatasetCard
from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, RepositoryNotFoundError

from hfgcot.publishing import hub
from hfgcot.publishing.provenance import attach_provenance

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


def install_fake(monkeypatch, tmp_path) -> FakeHub:
    """Replace ``HfApi`` and ``push_to_hub`` by one :class:`FakeHub`; set a token in effect."""
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


def sample_dataset() -> Dataset:
    """Three image rows with a GCoT provenance record."""
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
