"""Shared set-up for the benchmark scripts: offline tiny models and synthetic rows."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
from datasets import Dataset  # noqa: E402
from PIL import Image  # noqa: E402


def random_images(n: int, sizes: list[tuple[int, int]] | None = None, seed: int = 0) -> list:
    """``n`` noise images; ``sizes`` (cycled) as (width, height), default 224x224."""
    rng = np.random.default_rng(seed)
    sizes = sizes or [(224, 224)]
    out = []
    for i in range(n):
        w, h = sizes[i % len(sizes)]
        out.append(Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)))
    return out


def qa_rows(images: list) -> Dataset:
    """Rows for the GCoT pipeline: image, question, answer."""
    n = len(images)
    return Dataset.from_dict(
        {
            "image": images,
            "question": [f"What is in region {i}?" for i in range(n)],
            "answer": ["a shape"] * n,
        }
    )


def keyword_rows(images: list, k: int) -> Dataset:
    """Rows ready for the grounding stage: ``k`` keywords each, status ok."""
    n = len(images)
    return Dataset.from_dict(
        {
            "image": images,
            "extracted_keywords": [[f"object {j}" for j in range(k)] for _ in range(n)],
            "gcot_status": ["ok"] * n,
        }
    )
