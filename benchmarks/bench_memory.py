"""Memory: it does not grow with the dataset, and decompression bombs cost nothing.

1. Peak RSS of a GCoT run over 1,000 rows vs 100 rows.
2. Peak RSS of a GCoT run over 4 decompression-bomb-range images: 10,000 x 10,000 PNGs of about
   300 KB each (100 M pixels: above PIL's 89,478,485-pixel limit, below twice it, where PIL itself
   only warns; decoded, one would take 300 MB as RGB). ``max_image_pixels`` refuses them from
   the header, so the run must stay under 1 GiB (the figure without the check: about 2.3 GB for
   one row).

Each run is its own process (peak RSS: ``VmHWM`` of ``/proc/self/status``) on the same tiny model; rows are written
to an on-disk Arrow dataset first, so the input is memory-mapped as in real use. Images are decoded
per batch and results are streamed to Arrow cache files by ``Dataset.map``.
Lines: ``bombs: <peak RSS MiB> MiB over 4 images of 10000x10000 (<statuses>); limit 1024 MiB``,
then last ``ratio: <peak RSS 1,000 rows / peak RSS 100 rows>`` (target <= 1.25).

    python benchmarks/bench_memory.py [--small 100] [--large 1000]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import subprocess
import sys
import tempfile

from _common import random_images

BOMB_SIDE = 10_000
BOMB_ROWS = 4
LIMIT_MIB = 1024


def _png(image) -> dict:
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return {"bytes": buf.getvalue(), "path": None}


def child(model: str, rows: int, workdir: str, bombs: str | None = None) -> None:
    from datasets import Dataset, Image

    from hfgcot import add_gcot

    def gen():
        for i in range(rows):
            if bombs:
                image = {"bytes": open(bombs, "rb").read(), "path": None}  # noqa: SIM115
            else:
                [img] = random_images(1, [(96 + 8 * (i % 16), 96)], seed=i)
                image = _png(img)
            yield {"image": image, "question": f"q{i}", "answer": "a"}

    ds = Dataset.from_generator(gen, cache_dir=f"{workdir}/cache").cast_column("image", Image())
    out = add_gcot(ds, model, batch_size=8, max_new_tokens=8)
    assert len(out) == rows
    peak_kib = peak_rss_kib()
    statuses = sorted(set(out["gcot_status"]))
    print(json.dumps({"rows": rows, "peak_rss_mib": peak_kib / 1024, "statuses": statuses}))


def peak_rss_kib() -> int:
    """Peak RSS of this process in KiB: ``VmHWM`` on Linux. ``getrusage``'s ``ru_maxrss`` would
    include the peak of the parent's memory this process was forked from (Linux keeps it across
    ``exec``), and the parent holds torch and a model."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def bomb_file(folder: str) -> str:
    """A 10000x10000 single-colour PNG (about 300 KB), written once."""
    from PIL import Image

    path = os.path.join(folder, "bomb.png")
    Image.new("RGB", (BOMB_SIDE, BOMB_SIDE), (200, 30, 30)).save(path, "PNG")
    return path


def run_child(model: str, rows: int, workdir: str, *extra: str) -> dict:
    res = subprocess.run(
        [sys.executable, __file__, "--child", model, str(rows), workdir, *extra],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "HFGCOT_QUIET": "1", "HFGCOT_CACHE": f"{workdir}/hfgcot-cache"},
    )
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=100)
    parser.add_argument("--large", type=int, default=1000)
    parser.add_argument("--child", nargs="+", metavar="ARG", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        model, rows, workdir, *bombs = args.child
        child(model, int(rows), workdir, bombs[0] if bombs else None)
        return

    from hfgcot.testing.tiny import build_tiny_vlm

    with tempfile.TemporaryDirectory() as tmp:
        model = build_tiny_vlm(f"{tmp}/tiny")
        bombs = run_child(model, BOMB_ROWS, f"{tmp}/bombs", bomb_file(tmp))
        peaks = {}
        for rows in (args.small, args.large):
            peaks[rows] = run_child(model, rows, f"{tmp}/run{rows}")["peak_rss_mib"]
            print(f"{rows} rows: peak RSS {peaks[rows]:.0f} MiB")
    print(
        f"bombs: {bombs['peak_rss_mib']:.0f} MiB over {BOMB_ROWS} images of "
        f"{BOMB_SIDE}x{BOMB_SIDE} ({', '.join(bombs['statuses'])}); limit {LIMIT_MIB} MiB"
    )
    print(f"ratio: {peaks[args.large] / peaks[args.small]:.2f}")
    if bombs["peak_rss_mib"] > LIMIT_MIB or set(bombs["statuses"]) != {"decompression_bomb"}:
        raise SystemExit(f"bombs: over the {LIMIT_MIB} MiB limit or not all refused")


if __name__ == "__main__":
    main()
