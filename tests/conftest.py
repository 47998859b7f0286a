"""Shared fixtures: everything offline, one tiny Qwen2.5-VL built per test session."""

from __future__ import annotations

import atexit
import io
import os
import shutil
import tempfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Parsers re-raise what their never-raise safety net would absorb (hfgcot.parsing.guard).
os.environ.setdefault("HFGCOT_STRICT_PARSING", "1")
# Map caches of datasets read from files go to a folder of this test session, not ~/.cache.
if "HFGCOT_CACHE" not in os.environ:
    os.environ["HFGCOT_CACHE"] = tempfile.mkdtemp(prefix="hfgcot-test-cache-")
    atexit.register(shutil.rmtree, os.environ["HFGCOT_CACHE"], ignore_errors=True)

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402
from PIL import Image  # noqa: E402

# CI: the same examples on every run (no flaky reds from a new random draw) and no per-example
# deadline on a shared 2-core machine. Locally hypothesis keeps exploring new examples.
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture(scope="session")
def tiny_vlm_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A tiny random Qwen2.5-VL saved to a folder (built once per session, offline)."""
    from hfgcot.testing.tiny import build_tiny_vlm

    return build_tiny_vlm(tmp_path_factory.mktemp("models") / "tiny-qwen2_5_vl", seed=0)


@pytest.fixture(scope="session")
def tiny_vlm(tiny_vlm_path: str):
    """The tiny model loaded through the public path (cached per process by ``load_vlm``)."""
    from hfgcot import load_vlm

    return load_vlm(tiny_vlm_path)


@pytest.fixture(scope="module")
def local_ray():
    """A small local Ray instance (2 CPUs, 200 MB object store), shut down after the module."""
    ray = pytest.importorskip("ray", reason="needs pip install 'hfgcot[ray]'")

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    started = not ray.is_initialized()
    if started:
        ray.init(
            num_cpus=2,
            include_dashboard=False,
            object_store_memory=200 * 1024**2,
            log_to_driver=False,
        )
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield ray
    if started:
        ray.shutdown()


def random_image(width: int, height: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8))


def png_bytes(image: Image.Image) -> dict:
    """A datasets ``Image`` storage dict holding ``image`` as PNG."""
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return {"bytes": buf.getvalue(), "path": None}


@pytest.fixture
def fake_hub(monkeypatch: pytest.MonkeyPatch, tmp_path):
    """A fake Hub (``tests/hub_fakes.py``): ``HfApi`` and ``push_to_hub`` replaced by one object
    that records the calls; a token is in effect."""
    from hub_fakes import install_fake

    return install_fake(monkeypatch, tmp_path)
