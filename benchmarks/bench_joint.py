"""Joint grounding (one request per image for all keywords) vs one request per keyword.

The grounding stage of ``add_gcot`` runs in both modes on the same rows and tiny model. Random
weights write arbitrary tokens, so every request decodes its full budget: ``--tokens-per-box``
per keyword request, and that times the number of keywords for a joint request (one box per
keyword), which is what real answers cost. Prints requests and throughput for both modes.
Last line: ``ratio: <joint throughput / per-keyword throughput>``.

Accuracy is not measured here: keep ``grounding="per_keyword"`` (the default) until the joint mode
is shown to be as accurate on real data (``benchmarks/eval_tiny_shapes.py`` style).

    python benchmarks/bench_joint.py [--rows 8] [--keywords 6]
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time

from _common import keyword_rows, random_images

from hfgcot.model.spec import get_vlm
from hfgcot.pipelines.gcot import GCoTConfig, gcot_stages, model_spec
from hfgcot.run.local import apply_stage, undecoded
from hfgcot.testing.tiny import build_tiny_vlm


class RequestCounter:
    """Counts the requests that reach ``vlm.generate``."""

    def __init__(self, vlm) -> None:
        self.requests = 0
        generate = vlm.generate

        def counting(requests, *args, **kwargs):
            self.requests += len(requests)
            return generate(requests, *args, **kwargs)

        vlm.generate = counting


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=8)
    parser.add_argument("--keywords", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--tokens-per-box", type=int, default=24)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        path = build_tiny_vlm(f"{tmp}/tiny")
        vlm = get_vlm(model_spec(path))
        original = vlm.model.generate
        vlm.model.generate = lambda *a, **k: original(*a, min_new_tokens=k["max_new_tokens"], **k)
        counter = RequestCounter(vlm)
        ds, _ = undecoded(keyword_rows(random_images(args.rows), args.keywords), "image")
        results = {}
        for mode, budget in (
            ("per_keyword", args.tokens_per_box),
            ("joint", args.tokens_per_box * args.keywords),
        ):
            config = GCoTConfig(
                batch_size=args.batch_size, grounding=mode, grounding_max_new_tokens=budget
            )
            stage = gcot_stages(config, model_spec(path))[2]
            apply_stage(ds.select(range(1)), dataclasses.replace(stage), batch_size=1)  # warm-up
            requests_before = counter.requests
            t0 = time.perf_counter()
            apply_stage(ds, stage, batch_size=args.rows)
            results[mode] = (time.perf_counter() - t0, counter.requests - requests_before)

    for mode, (seconds, requests) in results.items():
        print(
            f"{mode:12s} requests: {requests:4d}  {args.rows / seconds:.2f} images/s ({seconds:.2f} s)"
        )
    print(f"ratio: {results['per_keyword'][0] / results['joint'][0]:.2f}")


if __name__ == "__main__":
    main()
