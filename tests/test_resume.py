"""Runs that survive: resume after SIGKILL, several ranks, shard bookkeeping."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
from conftest import png_bytes, random_image
from datasets import Dataset, Image

from hfgcot import add_gcot
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


@pytest.mark.model
@pytest.mark.slow
def test_two_ranks_equal_one_rank(tiny_vlm_path):
    ds = _dataset(6)
    one = add_gcot(ds, tiny_vlm_path, max_new_tokens=8, batch_size=2)
    two = add_gcot(ds, tiny_vlm_path, max_new_tokens=8, batch_size=2, num_proc=2)
    assert two.remove_columns("image").to_list() == one.remove_columns("image").to_list()


def test_shard_ranges():
    assert shard_ranges(0, 3) == []
    assert shard_ranges(7, 3) == [(0, 3), (3, 6), (6, 7)]
    with pytest.raises(ValueError):
        shard_ranges(3, 0)
