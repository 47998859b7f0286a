"""examples/train_grounding.py: the loss on a fixed small batch falls (collator and labels right)."""

from __future__ import annotations

import importlib.util
import math
import subprocess
import sys
import time
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "examples" / "train_grounding.py"

pytestmark = [pytest.mark.model, pytest.mark.slow]


def load_script():
    spec = importlib.util.spec_from_file_location("train_grounding", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


@pytest.fixture
def one_thread():
    """Two shared CPU cores: one torch thread is faster than two fighting for them."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_help_shows_a_full_example():
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--help"], capture_output=True, text=True, check=True
    )
    assert "examples:" in out.stdout
    assert "--model Qwen/Qwen2.5-VL-3B-Instruct" in out.stdout and "--lora" in out.stdout
    assert "default: embedded tiny model" in out.stdout


def test_loss_on_a_fixed_batch_halves_and_the_model_learns_the_boxes(
    tiny_vlm_path, tmp_path, one_thread
):
    module = load_script()
    start = time.perf_counter()
    result = module.main(
        [
            "--model",
            tiny_vlm_path,
            "--synthetic-rows",
            "4",  # 4 rows, batch of 4: every step sees the same fixed batch
            "--batch-size",
            "4",
            "--max-steps",
            "50",
            "--lr",
            "1e-2",
            "--output-dir",
            str(tmp_path / "run"),
            "--eval-rows",
            "4",
            "--threads",
            "1",
        ]
    )
    elapsed = time.perf_counter() - start
    losses = result["losses"]
    assert len(losses) == 50 and all(math.isfinite(v) for v in losses)
    assert min(losses[-5:]) <= 0.5 * losses[0], losses
    assert result["trained_rows"] == 4
    # Overfitted on 4 rows, the model writes their boxes back; mapped to original pixels they hit.
    metrics = result["metrics"]
    assert metrics["n"] == 4 and metrics["acc@0.5"] >= 0.75, (metrics["example"], losses)
    assert (tmp_path / "run" / "config.json").exists()
    print(f"train + eval: {elapsed:.1f}s, loss {losses[0]:.3f} -> {losses[-1]:.3f}")


def test_lora_flag(tiny_vlm_path, tmp_path, one_thread):
    pytest.importorskip("peft")
    module = load_script()
    result = module.main(
        [
            "--model",
            tiny_vlm_path,
            "--lora",
            "--lora-r",
            "4",
            "--max-steps",
            "3",
            "--lr",
            "1e-2",
            "--output-dir",
            str(tmp_path / "lora"),
        ]
    )
    assert len(result["losses"]) == 3
    assert (tmp_path / "lora" / "adapter" / "adapter_config.json").exists()


def test_synthetic_dataset_is_deterministic():
    module = load_script()
    a, b = module.synthetic_dataset(3, seed=1), module.synthetic_dataset(3, seed=1)
    assert a["bbox"] == b["bbox"] and a["question"] == b["question"]
    assert len({img.size for img in a["image"]}) == 3  # different image sizes in one batch
