"""Runs that survive: resume after SIGKILL, several ranks, shard bookkeeping."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import textwrap

import pytest
from conftest import png_bytes, random_image
from datasets import Dataset, Features, Image, Value

from hfgcot import GCoTConfig, RunOptions, add_gcot
from hfgcot.pipelines.base import Stage
from hfgcot.pipelines.gcot import gcot_stages, model_spec
from hfgcot.run.local import run_pipeline
from hfgcot.run.resume import shard_ranges

CHILD = textwrap.dedent(
    """
    import json, os, signal, sys
    from pathlib import Path
    from datasets import load_from_disk
    from hfgcot import add_gcot
    from hfgcot.model.vlm import VLM

    data, model, ckpt, mode = sys.argv[1:5]
    original = VLM.generate
    calls = {"requests": 0}

    def counting(self, requests, *args, **kwargs):
        if mode == "crash" and any(Path(ckpt).rglob("_SUCCESS")):
            os.kill(os.getpid(), signal.SIGKILL)  # dies mid-run, after the first shard
        calls["requests"] += len(requests)
        return original(self, requests, *args, **kwargs)

    VLM.generate = counting
    out = add_gcot(
        load_from_disk(data), model, max_new_tokens=8, batch_size=2,
        checkpoint_dir=ckpt if ckpt != "-" else None, shard_size=3,
    )
    print(json.dumps({"calls": calls["requests"], "rows": out.remove_columns("image").to_list()}))
    """
)


def _dataset(n: int) -> Dataset:
    ds = Dataset.from_dict(
        {
            "image": [png_bytes(random_image(50 + 7 * i, 60, seed=i)) for i in range(n)],
            "question": [f"question {i}" for i in range(n)],
            "answer": ["an answer"] * n,
        }
    )
    return ds.cast_column("image", Image())


def _run(script, data, model, ckpt, mode):
    return subprocess.run(
        [sys.executable, str(script), str(data), model, str(ckpt), mode],
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.model
@pytest.mark.slow
def test_resume_after_sigkill_matches_uninterrupted_run(tiny_vlm_path, tmp_path):
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    ds = _dataset(8)
    ds.save_to_disk(tmp_path / "data_a")
    ds.save_to_disk(tmp_path / "data_b")
    ckpt = tmp_path / "ckpt"

    crashed = _run(script, tmp_path / "data_a", tiny_vlm_path, ckpt, "crash")
    assert crashed.returncode == -9, crashed.stderr[-2000:]  # SIGKILL
    assert len(list(ckpt.rglob("_SUCCESS"))) == 1

    resumed = _run(script, tmp_path / "data_a", tiny_vlm_path, ckpt, "count")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    full = _run(script, tmp_path / "data_b", tiny_vlm_path, "-", "count")
    assert full.returncode == 0, full.stderr[-2000:]

    resumed_out = json.loads(resumed.stdout.strip().splitlines()[-1])
    full_out = json.loads(full.stdout.strip().splitlines()[-1])
    assert resumed_out["rows"] == full_out["rows"]
    assert [r["question"] for r in resumed_out["rows"]] == [f"question {i}" for i in range(8)]
    # the first shard (3 rows, one reasoning request each) was not recomputed
    assert full_out["calls"] >= 8
    assert resumed_out["calls"] == full_out["calls"] - 3
    assert len(list(ckpt.rglob("_SUCCESS"))) == 3


@pytest.mark.model
def test_checkpointed_run_in_process_reuses_shards(tiny_vlm, tmp_path):
    ds = _dataset(5)
    first = add_gcot(ds, tiny_vlm, max_new_tokens=6, checkpoint_dir=tmp_path, shard_size=2)
    calls = []
    original = tiny_vlm.generate
    tiny_vlm.generate = lambda *a, **k: calls.append(1) or original(*a, **k)
    try:
        second = add_gcot(ds, tiny_vlm, max_new_tokens=6, checkpoint_dir=tmp_path, shard_size=2)
    finally:
        del tiny_vlm.generate
    assert calls == []
    assert second.remove_columns("image").to_list() == first.remove_columns("image").to_list()
    assert second.features["image"] == Image()


@dataclasses.dataclass(frozen=True)
class RankProbe(Stage):
    """Writes the map rank and the process id that ran each row (pickled to ``spawn`` workers)."""

    name = "rank_probe"

    def features(self) -> Features:
        return Features({"probe_rank": Value("int64"), "probe_pid": Value("int64")})

    def process(self, batch, rank=None):
        n = len(next(iter(batch.values())))
        return {"probe_rank": [-1 if rank is None else rank] * n, "probe_pid": [os.getpid()] * n}


@pytest.mark.model
@pytest.mark.slow
def test_two_ranks_equal_one_rank(tiny_vlm_path):
    ds = _dataset(6)
    one = add_gcot(ds, tiny_vlm_path, max_new_tokens=8, batch_size=2)
    two = add_gcot(ds, tiny_vlm_path, max_new_tokens=8, batch_size=2, num_proc=2)
    assert two.remove_columns("image").to_list() == one.remove_columns("image").to_list()
    # the same driver really ran two worker processes, ranks 0 and 1 (not this process)
    stages = [*gcot_stages(GCoTConfig(max_new_tokens=8), model_spec(tiny_vlm_path)), RankProbe()]
    probed = run_pipeline(ds, stages, batch_size=2, run=RunOptions(num_proc=2))
    assert sorted(set(probed["probe_rank"])) == [0, 1]
    pids = set(probed["probe_pid"])
    assert len(pids) == 2 and os.getpid() not in pids
    rows = probed.remove_columns(["image", "probe_rank", "probe_pid"]).to_list()
    assert rows == one.remove_columns("image").to_list()


def test_shard_ranges():
    assert shard_ranges(0, 3) == []
    assert shard_ranges(7, 3) == [(0, 3), (3, 6), (6, 7)]
    with pytest.raises(ValueError):
        shard_ranges(3, 0)


# --------------------------------------------------------------------------------------------
# Checkpoint files: atomic writes, stale leftovers, one process at a time (no model needed)
# --------------------------------------------------------------------------------------------


class Killed(BaseException):
    """Stands for a SIGKILL at one moment of a checkpoint write."""


def _doubled(part: Dataset) -> Dataset:
    return part.map(lambda row: {"y": row["x"] * 2})


def _resumable(data, ckpt, **kwargs):
    from hfgcot.run.resume import run_resumable

    return run_resumable(data, _doubled, checkpoint_dir=ckpt, shard_size=2, fingerprint="f" * 40)


def _rows(n=5):
    return Dataset.from_dict({"x": list(range(n))})


@pytest.mark.parametrize("kill_at", range(1, 9))
def test_a_kill_at_any_rename_resumes(tmp_path, monkeypatch, kill_at):
    """Every file (manifest, each shard, each marker) goes through a rename; die before any one."""
    import os

    from hfgcot.run import resume

    real_replace = os.replace
    calls = {"n": 0}

    def dying_replace(src, dst):
        calls["n"] += 1
        if calls["n"] == kill_at:
            raise Killed
        real_replace(src, dst)

    monkeypatch.setattr(resume.os, "replace", dying_replace)
    with pytest.raises(Killed):
        _resumable(_rows(), tmp_path)
    monkeypatch.setattr(resume.os, "replace", real_replace)
    out = _resumable(_rows(), tmp_path)
    assert out["y"] == [0, 2, 4, 6, 8]
    run = tmp_path / ("f" * 32)
    assert not list(run.glob(".tmp-*")), "stale temporary files are removed by the next run"
    assert json.loads((run / "manifest.json").read_text())["num_rows"] == 5


def test_a_kill_inside_a_shard_save_and_a_torn_manifest_resume(tmp_path, monkeypatch):
    real_save = Dataset.save_to_disk

    def dying_save(self, path, *args, **kwargs):
        real_save(self, path, *args, **kwargs)
        raise Killed  # the shard's files are written, its rename never happens

    monkeypatch.setattr(Dataset, "save_to_disk", dying_save)
    with pytest.raises(Killed):
        _resumable(_rows(), tmp_path)
    monkeypatch.setattr(Dataset, "save_to_disk", real_save)
    run = tmp_path / ("f" * 32)
    assert list(run.glob(".tmp-*"))
    (run / "manifest.json").write_text('{"num_rows": 5, "shar')  # torn by an older version
    assert _resumable(_rows(), tmp_path)["y"] == [0, 2, 4, 6, 8]
    assert not list(run.glob(".tmp-*"))


def test_a_second_process_on_the_same_checkpoint_fails_naming_the_holder(tmp_path):
    run = tmp_path / ("f" * 32)
    run.mkdir()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from filelock import FileLock; "
            f"lock = FileLock({str(run / '.lock')!r}); lock.acquire(); "
            f"open({str(run / '.lock-owner')!r}, 'w').write('pid 4242 on testhost'); "
            "print('held', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(
            RuntimeError, match="in use by another process \\(pid 4242 on testhost\\)"
        ):
            _resumable(_rows(), tmp_path)
    finally:
        holder.kill()
        holder.wait()
    assert _resumable(_rows(), tmp_path)["y"] == [0, 2, 4, 6, 8]  # free again
