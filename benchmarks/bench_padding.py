"""Less padding: requests batched in order of prompt length vs in dataset order.

On rows with mixed image sizes, the reasoning stage of ``add_gcot`` runs twice on one tiny model:
``generate(sort_by_length=False)`` (batches in dataset order) and the default length-sorted
batching (results restored to the caller's order; identical texts, checked). Prints the share of
padded prompt positions in each and, last, ``ratio: <throughput sorted / unsorted>``.

    python benchmarks/bench_padding.py [--rows 48] [--batch-size 8]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from functools import partialmethod

from _common import qa_rows, random_images

from hfgcot.model.spec import get_vlm
from hfgcot.model.vlm import VLM
from hfgcot.pipelines.gcot import GCoTConfig, gcot_stages, model_spec
from hfgcot.run.local import apply_stage, undecoded
from hfgcot.testing.tiny import build_tiny_vlm

SIZES = [(64, 64), (448, 448), (120, 300), (300, 80), (224, 224), (56, 400), (400, 400), (90, 90)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=48)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=16)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        path = build_tiny_vlm(f"{tmp}/tiny", max_pixels=448 * 448)
        config = GCoTConfig(batch_size=args.batch_size, max_new_tokens=args.max_new_tokens)
        stage = gcot_stages(config, model_spec(path))[0]
        vlm = get_vlm(stage.model)
        ds, _ = undecoded(qa_rows(random_images(args.rows, SIZES)), "image")
        apply_stage(ds.select(range(2)), stage, batch_size=2)  # warm-up
        results = {}
        original = VLM.generate
        for sort in (False, True):
            VLM.generate = partialmethod(original, sort_by_length=sort)
            vlm.prompt_tokens = vlm.padding_tokens = 0
            t0 = time.perf_counter()
            # one map batch holds all rows, so the stage's generate sees them together
            out = apply_stage(ds, stage, batch_size=args.rows)["raw_cot_output"]
            elapsed = time.perf_counter() - t0
            results[sort] = (elapsed, vlm.padding_tokens / vlm.prompt_tokens, out)
        VLM.generate = original

    (t_plain, pad_plain, out_plain), (t_sort, pad_sort, out_sort) = results[False], results[True]
    print(f"rows: {args.rows}  generate batch: {args.batch_size}  image sizes: {len(SIZES)} kinds")
    print(f"identical texts: {out_plain == out_sort}")
    print(f"padded share of prompt positions, dataset order: {pad_plain:.1%}")
    print(f"padded share of prompt positions, length-sorted: {pad_sort:.1%}")
    print(f"unsorted: {t_plain:.2f} s   sorted: {t_sort:.2f} s")
    print(f"ratio: {t_plain / t_sort:.2f}")


if __name__ == "__main__":
    main()
