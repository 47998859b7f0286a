"""Little overhead: the share of stage wall time spent outside the model's ``generate``.

Runs the reasoning stage of ``add_gcot`` at batch 8 on the tiny model and times every
``model.generate`` call; the rest (image decode, chat templates, the processor, parsing, Arrow
writes) is overhead. The tiny model makes generation cheap, so this is a worst case for the share.
Last line: ``overhead: <percent>`` (target <= 15%).

    python benchmarks/bench_overhead.py [--rows 64]
"""

from __future__ import annotations

import argparse
import tempfile
import time

from _common import qa_rows, random_images

from hfgcot.model.spec import get_vlm
from hfgcot.pipelines.gcot import GCoTConfig, gcot_stages, model_spec
from hfgcot.run.local import apply_stage, undecoded
from hfgcot.testing.tiny import build_tiny_vlm


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        path = build_tiny_vlm(f"{tmp}/tiny")
        config = GCoTConfig(batch_size=args.batch_size, max_new_tokens=args.max_new_tokens)
        stage = gcot_stages(config, model_spec(path))[0]
        vlm = get_vlm(stage.model)
        ds, _ = undecoded(qa_rows(random_images(args.rows, [(160, 120), (224, 224)])), "image")
        apply_stage(ds.select(range(2)), stage, batch_size=2)  # warm-up

        spent = [0.0]
        generate = vlm.model.generate

        def timed(*a, **k):
            t = time.perf_counter()
            try:
                return generate(*a, **k)
            finally:
                spent[0] += time.perf_counter() - t

        vlm.model.generate = timed
        t0 = time.perf_counter()
        apply_stage(ds, stage, batch_size=args.batch_size)
        total = time.perf_counter() - t0

    print(f"rows: {args.rows}  batch: {args.batch_size}  max_new_tokens: {args.max_new_tokens}")
    print(f"stage wall time: {total:.2f} s   inside generate: {spent[0]:.2f} s")
    print(f"overhead: {100 * (total - spent[0]) / total:.1f}%")


if __name__ == "__main__":
    main()
