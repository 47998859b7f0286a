"""One vision-encoder pass per distinct image: the grounding stage with and without reuse.

The grounding stage asks K keywords about each image. Without reuse the vision encoder runs once
per request (K times per image); with reuse it runs once per distinct image of a batch and its
output is passed to ``generate(mm_encoder_outputs=...)``. The tiny model here has a vision tower
that is a large share of prefill work, as in Qwen2.5-VL-3B. Outputs are checked identical.
Last line: ``ratio: <throughput with reuse / without>``.

    python benchmarks/bench_vision_reuse.py [--rows 8] [--keywords 6]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from _common import keyword_rows, random_images

from hfgcot.model.spec import get_vlm
from hfgcot.pipelines.gcot import GCoTConfig, gcot_stages, model_spec
from hfgcot.run.local import apply_stage, undecoded
from hfgcot.testing.tiny import build_tiny_vlm


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=8)
    parser.add_argument("--keywords", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=12)
    parser.add_argument("--max-new-tokens", type=int, default=8)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        # vision tower heavier than the text model, like Qwen2.5-VL-3B's share of prefill
        path = build_tiny_vlm(os.path.join(tmp, "tiny"), vision_hidden=256, hidden_size=64)
        config = GCoTConfig(
            batch_size=args.batch_size, grounding_max_new_tokens=args.max_new_tokens
        )
        stage = gcot_stages(config, model_spec(path))[2]
        vlm = get_vlm(stage.model)
        ds, _ = undecoded(keyword_rows(random_images(args.rows), args.keywords), "image")
        apply_stage(ds.select(range(1)), stage, batch_size=1)  # warm-up

        results = {}
        for reuse in (False, True):
            vlm.reuse_vision, vlm.vision_patches = reuse, 0
            t0 = time.perf_counter()
            out = apply_stage(ds, stage, batch_size=args.rows)  # one map batch: all rows
            results[reuse] = (time.perf_counter() - t0, vlm.vision_patches, out["groundings"])

    unique_patches = args.rows * (224 // 14) ** 2
    (t_plain, p_plain, g_plain), (t_reuse, p_reuse, g_reuse) = results[False], results[True]
    print(
        f"rows: {args.rows}  keywords per row: {args.keywords}  requests: {args.rows * args.keywords}"
    )
    print(f"identical groundings: {g_plain == g_reuse}")
    print(f"vision patches without reuse: {p_plain}")
    print(f"vision patches with reuse:    {p_reuse}  (unique images' patches: {unique_patches})")
    print(f"without reuse: {t_plain:.2f} s   with reuse: {t_reuse:.2f} s")
    print(f"ratio: {t_plain / t_reuse:.2f}")


if __name__ == "__main__":
    main()
