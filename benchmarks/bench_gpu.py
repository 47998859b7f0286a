"""GPU throughput of the GCoT stages with a random-weight model of the real Qwen2.5-VL-3B shape.

No download: the model is built from the Qwen2.5-VL-3B configuration (text 36 layers x 2048,
vision 32 layers x 1280) with random bf16 weights directly on the GPU, and the tokenizer is the
tiny offline one (its ids lie inside the real vocabulary). Random weights write arbitrary tokens,
so ``min_new_tokens`` = ``max_new_tokens`` makes every request decode the full budget; throughput
then reflects the real model's cost per token. Reports images/s and generated tokens/s for the
reasoning and grounding stages, and the decode limit expected from memory bandwidth.

On a machine without CUDA it says so and exits 0.

    python benchmarks/bench_gpu.py [--rows 64] [--batch-size 16] [--static-cache]
"""

from __future__ import annotations

import argparse
import sys
import time

from _common import keyword_rows, qa_rows, random_images

# Peak HBM bandwidth by device name, bytes/s (datasheet figures).
HBM = {"H100": 3.35e12, "H200": 4.8e12, "A100": 2.0e12, "L40S": 0.864e12}


def qwen25vl_3b_config(tokenizer):
    from transformers import Qwen2_5_VLConfig

    from hfgcot.testing.tiny import SPECIAL_TOKENS

    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    return Qwen2_5_VLConfig(
        text_config={
            "vocab_size": 151936,
            "hidden_size": 2048,
            "intermediate_size": 11008,
            "num_hidden_layers": 36,
            "num_attention_heads": 16,
            "num_key_value_heads": 2,
            "max_position_embeddings": 128000,
            "rope_parameters": {
                "rope_type": "default",
                "rope_theta": 1e6,
                "mrope_section": [16, 24, 24],
            },
            "eos_token_id": ids["<|im_end|>"],
            "pad_token_id": ids["<|endoftext|>"],
            "tie_word_embeddings": True,
        },
        vision_config={
            "depth": 32,
            "hidden_size": 1280,
            "intermediate_size": 3420,
            "num_heads": 16,
            "out_hidden_size": 2048,
            "fullatt_block_indexes": [7, 15, 23, 31],
            "window_size": 112,
        },
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=True,
    )


def build_vlm(max_pixels: int, device: str = "cuda"):
    import torch
    from transformers import (
        Qwen2_5_VLForConditionalGeneration,
        Qwen2_5_VLProcessor,
        Qwen2VLImageProcessor,
        Qwen2VLVideoProcessor,
    )

    from hfgcot.model.spec import ModelSpec, _default_attn, register_vlm
    from hfgcot.model.vlm import VLM
    from hfgcot.testing.tiny import CHAT_TEMPLATE, build_tiny_tokenizer

    tokenizer = build_tiny_tokenizer()
    config = qwen25vl_3b_config(tokenizer)
    config._attn_implementation = _default_attn(device)
    torch.set_default_dtype(torch.bfloat16)
    with torch.device(device):
        model = Qwen2_5_VLForConditionalGeneration(config).eval()
    torch.set_default_dtype(torch.float32)
    processor = Qwen2_5_VLProcessor(
        image_processor=Qwen2VLImageProcessor(min_pixels=3136, max_pixels=max_pixels),
        tokenizer=tokenizer,
        video_processor=Qwen2VLVideoProcessor(),
        chat_template=CHAT_TEMPLATE,
    )
    spec = ModelSpec(model="random-weights:Qwen2.5-VL-3B-config", dtype="bfloat16", device=device)
    vlm = VLM(model, processor, spec, device)
    register_vlm(vlm)
    return vlm, sum(p.numel() for p in model.parameters())


def run_stage(vlm, stage, ds, batch_size: int) -> tuple[float, int]:
    import torch

    from hfgcot.run.local import apply_stage

    vlm.generated_tokens = 0
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    apply_stage(ds, stage, batch_size=batch_size)
    torch.cuda.synchronize()
    return time.perf_counter() - t0, vlm.generated_tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--keywords", type=int, default=4)
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--max-pixels", type=int, default=448 * 448)
    parser.add_argument("--static-cache", action="store_true", help='cache_implementation="static"')
    args = parser.parse_args()

    import torch

    if not torch.cuda.is_available():
        print("bench_gpu needs a CUDA GPU; none found here, nothing measured.")
        sys.exit(0)

    from hfgcot.model.vlm import GenerationSettings
    from hfgcot.pipelines.gcot import GCoTConfig, gcot_stages
    from hfgcot.run.local import undecoded

    vlm, params = build_vlm(args.max_pixels)
    cache = "static" if args.static_cache else None
    config = GCoTConfig(batch_size=args.batch_size, max_new_tokens=args.max_new_tokens)
    reasoning, _, grounding, _ = gcot_stages(config, vlm.spec)
    # full-length decoding for every request: random weights would stop at random places
    import dataclasses

    def fixed(settings: GenerationSettings) -> GenerationSettings:
        return dataclasses.replace(settings, cache_implementation=cache)

    original = vlm.model.generate
    vlm.model.generate = lambda *a, **k: original(*a, min_new_tokens=k["max_new_tokens"], **k)
    reasoning = dataclasses.replace(reasoning, generation=fixed(reasoning.generation))
    grounding = dataclasses.replace(grounding, generation=fixed(grounding.generation))

    images = random_images(args.rows, [(448, 448), (640, 480), (320, 480)])
    qa, _ = undecoded(qa_rows(images), "image")
    kw, _ = undecoded(keyword_rows(images, args.keywords), "image")
    run_stage(vlm, reasoning, qa.select(range(min(4, args.rows))), args.batch_size)  # warm-up

    name = torch.cuda.get_device_name()
    print(
        f"device: {name}   params: {params / 1e9:.2f} B   attention: {vlm.model.config._attn_implementation}"
    )
    for label, stage, ds in (("reasoning", reasoning, qa), ("grounding", grounding, kw)):
        seconds, tokens = run_stage(vlm, stage, ds, args.batch_size)
        print(
            f"{label:10s} rows: {len(ds)}  {len(ds) / seconds:.2f} images/s  "
            f"{tokens / seconds:.0f} generated tokens/s  ({seconds:.1f} s)"
        )
    bandwidth = next((bw for key, bw in HBM.items() if key in name), None)
    if bandwidth:
        steps = bandwidth / (2 * params)  # bf16 weights read once per decode step
        print(
            f"decode limit from HBM ({bandwidth / 1e12:.2f} TB/s / {2 * params / 1e9:.1f} GB of weights):"
        )
        for b in (1, 8, args.batch_size, 64):
            print(
                f"  batch {b:3d}: <= {steps:.0f} steps/s = {steps * b:.0f} tokens/s (until compute-bound)"
            )
    print(f"peak GPU memory: {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB")


if __name__ == "__main__":
    main()
