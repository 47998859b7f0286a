"""GCoT generation stage in process (static batches) vs through an OpenAI-compatible endpoint.

The reasoning stage of ``add_gcot`` (one generated answer per row) on the same rows and the same
model, greedy: once with the in-process ``transformers`` engine (``--batch-size``, default 8), once
through a server (``--concurrency`` requests in flight, default 8; its map batches hold
``max(--batch-size, --concurrency)`` rows, the pipelines' rule, so that many can be in flight
at once). By default the server is
``transformers serve`` with the shipped toy model on 127.0.0.1 (CPU); ``--base-url`` points at a
running server instead (vLLM, SGLang). Prints both rates (rows/s, generated tokens/s), how many
texts agree, and last ``ratio: <endpoint tokens/s / in-process tokens/s>``.

    python benchmarks/bench_endpoint.py [--rows 48] [--batch-size 8] [--concurrency 8]

On a GPU against vLLM (the figures go into benchmarks/README.md)::

    vllm serve Qwen/Qwen2.5-VL-3B-Instruct --port 8000 --gpu-memory-utilization 0.5 \\
        --mm-processor-kwargs '{"min_pixels": 3136, "max_pixels": 1003520}'
    python benchmarks/bench_endpoint.py --base-url http://127.0.0.1:8000/v1 \\
        --model Qwen/Qwen2.5-VL-3B-Instruct --max-pixels 1003520 --device cuda:0 \\
        --rows 512 --batch-size 16 --concurrency 64 --max-new-tokens 256
"""

from __future__ import annotations

import argparse
import time

import _common  # noqa: F401 - offline settings
from datasets import Dataset

from hfgcot.model.endpoint import EndpointSpec
from hfgcot.model.spec import ModelSpec, get_vlm
from hfgcot.pipelines.gcot import GCoTConfig, gcot_stages
from hfgcot.pipelines.runner import map_batch_size
from hfgcot.run.local import apply_stage, undecoded
from hfgcot.testing.shapes import make_scenes
from hfgcot.testing.toy import tiny_shapes_path, vqa_rows


def run_stage(ds: Dataset, spec, batch_size: int, max_new_tokens: int) -> tuple[list, float, int]:
    """Texts, seconds and generated tokens of the reasoning stage on ``ds``."""
    config = GCoTConfig(batch_size=batch_size, max_new_tokens=max_new_tokens)
    stage = gcot_stages(config, spec)[0]
    vlm = get_vlm(stage.model)
    batch_size = map_batch_size(batch_size, spec)  # a served model: max_concurrency at least
    rows, _ = undecoded(ds, "image")
    apply_stage(rows.select(range(min(4, len(rows)))), stage, batch_size=batch_size)  # warm-up
    before = vlm.generated_tokens
    t0 = time.perf_counter()
    out = apply_stage(rows, stage, batch_size=batch_size)
    seconds = time.perf_counter() - t0
    return out["raw_cot_output"], seconds, vlm.generated_tokens - before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=48)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=96)
    parser.add_argument("--base-url", default=None, help="a running server (default: start one)")
    parser.add_argument("--model", default=None, help="model (default: the shipped toy)")
    parser.add_argument("--max-pixels", type=int, default=None)
    parser.add_argument("--device", default="cpu", help="in-process device (and local server)")
    parser.add_argument(
        "--continuous-batching", action="store_true", help="local server: --continuous-batching"
    )
    args = parser.parse_args()

    model = args.model or tiny_shapes_path()
    scenes = make_scenes(args.rows, seed=2)
    ds = Dataset.from_dict(vqa_rows(scenes, seed=2))
    local = ModelSpec(model, device=args.device, max_pixels=args.max_pixels)
    texts, seconds, tokens = run_stage(ds, local, args.batch_size, args.max_new_tokens)
    print(f"in process (batch {args.batch_size}): {args.rows / seconds:.2f} rows/s, "
          f"{tokens / seconds:.1f} generated tokens/s ({seconds:.1f} s)")  # fmt: skip

    server = None
    base_url = args.base_url
    if base_url is None:
        from hfgcot.testing.serve import LocalServer

        extra = ("--continuous-batching",) if args.continuous_batching else ()
        server = LocalServer(model, device=args.device, extra_args=extra).start()
        base_url = server.base_url
    try:
        spec = EndpointSpec(
            base_url, model, max_concurrency=args.concurrency, max_pixels=args.max_pixels
        )
        served, s_seconds, s_tokens = run_stage(ds, spec, args.batch_size, args.max_new_tokens)
    finally:
        if server is not None:
            server.stop()
    print(f"endpoint (concurrency {args.concurrency}): {args.rows / s_seconds:.2f} rows/s, "
          f"{s_tokens / s_seconds:.1f} generated tokens/s ({s_seconds:.1f} s)")  # fmt: skip
    same = sum(a == b for a, b in zip(texts, served, strict=True))
    print(f"identical texts: {same}/{args.rows}")
    print(f"ratio: {(s_tokens / s_seconds) / (tokens / seconds):.2f}")


if __name__ == "__main__":
    main()
