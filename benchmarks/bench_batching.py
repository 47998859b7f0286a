"""Batched generation vs a one-request-at-a-time ``generate`` loop, on one tiny model, in one run.

Measures the reasoning (generation) stage of ``add_gcot`` as a ``Dataset.map`` with batch 8 against
the plain loop of the transformers tutorial (chat template -> processor -> generate -> decode, one
request at a time) on the same rows, the same model and the same greedy settings. Both produce the
same texts (checked). Last line: ``ratio: <batched throughput / one-by-one throughput>``.

    python benchmarks/bench_batching.py [--rows 32] [--batch-size 8] [--max-new-tokens 32]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import torch
from _common import qa_rows, random_images

from hfgcot import prompts
from hfgcot.model.spec import get_vlm
from hfgcot.model.vlm import Request
from hfgcot.pipelines.gcot import GCoTConfig, gcot_stages, model_spec
from hfgcot.run.local import apply_stage, undecoded
from hfgcot.testing.tiny import build_tiny_vlm

SIZES = [(160, 60 + 20 * i) for i in range(9)]


def one_by_one(vlm, ds, max_new_tokens: int) -> list[str]:
    """The tutorial loop: one request, one processor call, one generate."""
    out = []
    for row in ds:
        messages = Request(row["image"], prompts.gcot_prompt(row["question"], row["answer"]))
        text = vlm.processor.apply_chat_template(
            messages.messages(), tokenize=False, add_generation_prompt=True
        )
        inputs = vlm.processor(text=[text], images=[row["image"]], return_tensors="pt")
        with torch.inference_mode():
            ids = vlm.model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
        out.append(vlm.processor.batch_decode(ids[:, inputs["input_ids"].shape[1] :], True)[0])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        path = build_tiny_vlm(os.path.join(tmp, "tiny"))
        ds = qa_rows(random_images(args.rows, SIZES))
        config = GCoTConfig(batch_size=args.batch_size, max_new_tokens=args.max_new_tokens)
        stage = gcot_stages(config, model_spec(path))[0]
        vlm = get_vlm(stage.model)
        one_by_one(vlm, ds.select(range(2)), 4)  # warm-up
        t0 = time.perf_counter()
        stored, _ = undecoded(ds, "image")  # as add_gcot runs it: images decoded by the stage
        batched = apply_stage(stored, stage, batch_size=args.batch_size)["raw_cot_output"]
        t_batched = time.perf_counter() - t0
        t0 = time.perf_counter()
        single = one_by_one(vlm, ds, args.max_new_tokens)
        t_single = time.perf_counter() - t0

    same = sum(a == b for a, b in zip(batched, single, strict=True))
    print(f"rows: {args.rows}  batch: {args.batch_size}  max_new_tokens: {args.max_new_tokens}")
    print(f"identical texts: {same}/{args.rows}")
    print(f"batched:    {t_batched:.2f} s  ({args.rows / t_batched:.1f} rows/s)")
    print(f"one-by-one: {t_single:.2f} s  ({args.rows / t_single:.1f} rows/s)")
    print(f"ratio: {t_single / t_batched:.2f}")


if __name__ == "__main__":
    main()
