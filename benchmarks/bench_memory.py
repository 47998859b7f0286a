"""Memory does not grow with the dataset: peak RSS of a GCoT run over 1,000 rows vs 100 rows.

Each run is its own process (peak RSS from ``getrusage``) on the same tiny model; rows are written
to an on-disk Arrow dataset first, so the input is memory-mapped as in real use. Images are decoded
per batch and results are streamed to Arrow cache files by ``Dataset.map``.
Last line: ``ratio: <peak RSS 1,000 rows / peak RSS 100 rows>`` (target <= 1.25).

    python benchmarks/bench_memory.py [--small 100] [--large 1000]
"""

from __future__ import annotations

import argparse
import io
import json
import resource
import subprocess
import sys
import tempfile

from _common import random_images


def child(model: str, rows: int, workdir: str) -> None:
    from datasets import Dataset, Image

    from hfgcot import add_gcot

    def gen():
        for i in range(rows):
            [img] = random_images(1, [(96 + 8 * (i % 16), 96)], seed=i)
            buf = io.BytesIO()
            img.save(buf, "PNG")
            yield {
                "image": {"bytes": buf.getvalue(), "path": None},
                "question": f"q{i}",
                "answer": "a",
            }

    ds = Dataset.from_generator(gen, cache_dir=f"{workdir}/cache").cast_column("image", Image())
    out = add_gcot(ds, model, batch_size=8, max_new_tokens=8)
    assert len(out) == rows
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"rows": rows, "peak_rss_mib": peak_kib / 1024}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=100)
    parser.add_argument("--large", type=int, default=1000)
    parser.add_argument(
        "--child", nargs=3, metavar=("MODEL", "ROWS", "WORKDIR"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]), args.child[2])
        return

    from hfgcot.testing.tiny import build_tiny_vlm

    with tempfile.TemporaryDirectory() as tmp:
        model = build_tiny_vlm(f"{tmp}/tiny")
        peaks = {}
        for rows in (args.small, args.large):
            res = subprocess.run(
                [sys.executable, __file__, "--child", model, str(rows), f"{tmp}/run{rows}"],
                capture_output=True,
                text=True,
                check=True,
                env={**__import__("os").environ, "HFGCOT_QUIET": "1"},
            )
            peaks[rows] = json.loads(res.stdout.strip().splitlines()[-1])["peak_rss_mib"]
            print(f"{rows} rows: peak RSS {peaks[rows]:.0f} MiB")
    print(f"ratio: {peaks[args.large] / peaks[args.small]:.2f}")


if __name__ == "__main__":
    main()
