"""benchmarks/bench_gpu.py stays runnable: its arguments, its report, and a tiny CPU run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture
def bench(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))
    import bench_gpu

    return bench_gpu


def test_arguments(bench):
    args = bench.parse_args(["--batch-sizes", "8,32", "--out", "x.md", "--no-static"])
    assert (args.batch_sizes, args.out, args.no_static, args.tiny) == ([8, 32], "x.md", True, False)
    tiny = bench.parse_args(["--tiny"])
    assert tiny.batch_sizes == [2, 4] and tiny.max_new_tokens == 4 and tiny.rows == 4
    assert [key for key, _ in bench.HBM if key in "NVIDIA H100 PCIe"][0] == "H100 PCIe"


def test_report_writes_markdown_and_json(monkeypatch, tmp_path, capsys):
    monkeypatch.syspath_prepend(str(BENCH))
    from _report import Report

    report = Report("bench", {"device": "test"})
    report.add("speed", {"batch": 8, "tokens/s": 1234.5})
    report.add("speed", {"batch": 16, "error": "a | b"})
    report.note("speed", "a note")
    md, js = report.write(tmp_path / "out" / "r.md")
    text = md.read_text()
    assert "| batch | tokens/s | error |" in text
    assert "| 8 | 1,234 |  |" in text and "| 16 |  | a / b |" in text
    assert "a note" in text and "- device: test" in text
    data = json.loads(js.read_text())
    assert data["sections"]["speed"][0] == {"batch": 8, "tokens/s": 1234.5}
    assert "batch: 8  tokens/s: 1,234" in capsys.readouterr().out


@pytest.mark.model
def test_tiny_cpu_run(tmp_path):
    out = tmp_path / "bench.md"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HFGCOT_QUIET": "1"}
    env["PYTHONPATH"] = os.pathsep.join([str(BENCH.parent), *filter(None, [env.get("PYTHONPATH")])])
    run = subprocess.run(
        [sys.executable, str(BENCH / "bench_gpu.py"), "--tiny", "--out", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    data = json.loads(out.with_suffix(".json").read_text())
    sections = data["sections"]
    assert {"stages", "decode", "max_batch_tokens", "stages (static cache)"} <= set(sections)
    assert [r["stage"] for r in sections["stages"]] == ["reasoning", "grounding"] * 2
    assert all("error" not in r for r in sections["stages"] + sections["stages (static cache)"])
    [cut] = sections["max_batch_tokens"]
    assert cut["forward passes"] > 1  # 8 mixed images cut by the token limit
    many, alone = sections["backoff (simulated on CPU)"]
    assert many["learned limit"].startswith("2 requests") and many["rows in/out"] == "4/4"
    assert alone["out_of_memory rows"] == 1 and alone["rows in/out"] == "1/1"
    assert "## decode" in out.read_text()
