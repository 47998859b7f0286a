"""GPU figures of the engine, with random weights in the real Qwen2.5-VL-3B shape: one script.

No download: the model is built from the Qwen2.5-VL-3B configuration (text 36 layers x 2048,
vision 32 layers x 1280) with random bf16 weights directly on the GPU, attention ``sdpa`` (or
flash-attention 2 where installed); the tokenizer is the tiny offline one (its ids lie inside the
real vocabulary). Random weights write arbitrary tokens, so every request is made to decode its
full budget (``min_new_tokens = max_new_tokens``): throughput then reflects the real model's cost
per token. Sections, in this order (a section that would pass ``--budget-s`` is skipped and the
report says so, so the run stays under 8 minutes):

1. ``stages``: the GCoT reasoning and grounding stages at batch 8/16/32: images/s, generated
   tokens/s, decode steps/s (stage time), peak memory.
2. ``decode``: pure decode steps/s per batch size next to the HBM-bandwidth limit.
3. ``max_batch_tokens``: the default limit from free memory, and a run over mixed large images
   with it: forward passes, the largest pass and its estimate, peak memory.
4. ``backoff``: out of memory on real memory (a ballast tensor leaves a few GiB free): the limit
   the engine learns, and the status of a 12.8 Mpx image that does not fit alone.
5. ``stages (static cache)``: section 1 with ``cache_implementation="static"`` (compiled decode;
   the warm-up column holds the compile time).

``--tiny`` runs the same code on the CPU with a tiny random model in seconds (the backoff
section then simulates the out-of-memory error): a smoke test of the script, not figures.
Without CUDA and without ``--tiny`` it says so and exits 0.

    python benchmarks/bench_gpu.py --out bench_gpu.md            # on a CUDA GPU, ~6 minutes
    python benchmarks/bench_gpu.py --tiny --out /tmp/tiny.md       # CPU smoke run
"""

from __future__ import annotations

import argparse
import functools
import logging
import sys
import time

from _common import keyword_rows, qa_rows, random_images
from _random_vlm import Passes, build_vlm
from _report import Report

# Peak HBM bandwidth by device name, bytes/s (datasheet figures); the first match wins.
HBM = [
    ("H100 PCIe", 2.0e12),
    ("H100 NVL", 3.9e12),
    ("H100", 3.35e12),
    ("H200", 4.8e12),
    ("A100", 2.0e12),
    ("L40S", 0.864e12),
]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="bench_gpu.md", help="report (Markdown; JSON beside it)")
    parser.add_argument("--tiny", action="store_true", help="CPU smoke run with a tiny model")
    parser.add_argument("--batch-sizes", default="8,16,32")
    parser.add_argument("--rows", type=int, default=32, help="images per stage run")
    parser.add_argument("--keywords", type=int, default=2, help="grounding requests per image")
    parser.add_argument("--image-side", type=int, default=448, help="stage images: side x side")
    parser.add_argument("--max-new-tokens", type=int, default=64, help="reasoning budget")
    parser.add_argument("--grounding-max-new-tokens", type=int, default=32)
    parser.add_argument("--budget-s", type=float, default=420.0, help="skip what would pass it")
    parser.add_argument("--no-static", action="store_true", help="skip the static-cache runs")
    args = parser.parse_args(argv)
    args.batch_sizes = [int(b) for b in str(args.batch_sizes).split(",") if b]
    if args.tiny:  # seconds on a CPU
        args.batch_sizes = [b for b in args.batch_sizes if b <= 4] or [2, 4]
        args.rows, args.keywords, args.image_side = min(args.rows, 4), 2, 56
        args.max_new_tokens, args.grounding_max_new_tokens = 4, 3
    return args


def cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def sync(reset_peak: bool = False) -> None:
    """Wait for the GPU (and start a new peak-memory window)."""
    import torch

    if cuda():
        torch.cuda.synchronize()
        if reset_peak:
            torch.cuda.reset_peak_memory_stats()


def peak_gib() -> float:
    import torch

    return torch.cuda.max_memory_allocated() / 2**30 if cuda() else float("nan")


def timed_stage(vlm, passes: Passes, stage, ds) -> tuple[dict, object]:
    """Run ``stage`` over ``ds`` as one map batch: the figures of that run, and its output."""
    from hfgcot.run.local import apply_stage

    vlm.generated_tokens, first = 0, len(passes.calls)
    sync(reset_peak=True)
    t0 = time.perf_counter()
    out = apply_stage(ds, stage, batch_size=len(ds))
    sync()
    seconds = time.perf_counter() - t0
    steps = sum(new for _, _, new in passes.calls[first:])
    return {
        "rows": len(ds),
        "images/s": len(ds) / seconds,
        "generated tokens/s": vlm.generated_tokens / seconds,
        "decode steps/s": steps / seconds,
        "peak GiB": peak_gib(),
        "seconds": seconds,
    }, out


def bench_stages(report: Report, vlm, passes: Passes, args, cache: str | None) -> None:
    """Section 1: the reasoning and grounding stages per batch size (uniform images)."""
    from hfgcot.pipelines.gcot import GCoTConfig, gcot_stages
    from hfgcot.run.local import undecoded

    section = "stages" + (" (static cache)" if cache else "")
    side = args.image_side
    images = random_images(args.rows, [(side, side)])
    qa, _ = undecoded(qa_rows(images).map(lambda r: {"question": "What is here?"}), "image")
    kw, _ = undecoded(keyword_rows(images, args.keywords), "image")
    need = 150 if cache else 30  # seconds a configuration may take (compilation included)
    for batch in args.batch_sizes:
        config = GCoTConfig(
            batch_size=batch,
            max_new_tokens=args.max_new_tokens,
            grounding_max_new_tokens=args.grounding_max_new_tokens,
            cache_implementation=cache,
        )
        reasoning, _, grounding, _ = gcot_stages(config, vlm.spec)
        for label, stage, ds in (("reasoning", reasoning, qa), ("grounding", grounding, kw)):
            if report.elapsed() > args.budget_s - need:
                report.note(section, f"{label}, batch {batch}: skipped (time budget)")
                continue
            try:
                t0 = time.perf_counter()
                timed_stage(vlm, passes, stage, ds.select(range(min(batch, len(ds)))))  # warm-up
                warm = time.perf_counter() - t0
                row, _ = timed_stage(vlm, passes, stage, ds)
            except Exception as exc:  # noqa: BLE001 - one failing configuration is a figure too
                report.add(section, {"stage": label, "batch": batch, "error": repr(exc)[:200]})
                continue
            report.add(section, {"stage": label, "batch": batch, **row, "warm-up s": warm})


def bench_decode(report: Report, vlm, args, params: int) -> None:
    """Section 2: decode steps/s (text-only prompts, 1+N minus 1 new tokens) vs the HBM limit."""
    import torch

    from hfgcot.model.vlm import GenerationSettings, Request

    name = torch.cuda.get_device_name() if cuda() else "cpu"
    bandwidth = next((bw for key, bw in HBM if key in name), None)
    weights = params * vlm.model.dtype.itemsize
    limit = bandwidth / weights if bandwidth else None
    n = args.max_new_tokens
    for batch in args.batch_sizes:
        if report.elapsed() > args.budget_s - 20:
            report.note("decode", f"batch {batch}: skipped (time budget)")
            continue
        requests = [Request(None, "Describe a picture of shapes. " * 4) for _ in range(batch)]
        seconds = {}
        for budget in (1, 1 + n, 1, 1 + n):  # twice each, the faster counts
            sync()
            t0 = time.perf_counter()
            vlm.generate(requests, GenerationSettings(max_new_tokens=budget), batch_size=batch)
            sync()
            seconds[budget] = min(seconds.get(budget, 1e9), time.perf_counter() - t0)
        decode = seconds[1 + n] - seconds[1]
        if decode < 1e-3 * n:  # under 1 ms a step: not measurable here (tiny model on a CPU)
            report.add("decode", {"batch": batch, "decode steps/s": "too fast to measure"})
            continue
        steps = n / decode
        row = {"batch": batch, "decode steps/s": steps, "tokens/s": steps * batch}
        if limit:
            row |= {"HBM limit steps/s": limit, "share of limit": steps / limit}
        report.add("decode", row)
    if limit:
        report.note(
            "decode",
            f"HBM limit: {bandwidth / 1e12:.2f} TB/s / {weights / 1e9:.1f} GB of weights read "
            "once per decode step (KV-cache reads not counted).",
        )


def mixed_images(tiny: bool, n: int) -> list:
    sides = [28, 56, 112, 224] if tiny else [448, 1024, 2048, 3584]
    return random_images(n, [(s, s) for s in sides])


def reasoning_stage(vlm, batch: int, max_batch_tokens: int | None, new_tokens: int):
    from hfgcot.pipelines.gcot import GCoTConfig, gcot_stages

    config = GCoTConfig(
        batch_size=batch, max_batch_tokens=max_batch_tokens, max_new_tokens=new_tokens
    )
    return gcot_stages(config, vlm.spec)[0]


def qa_of(images: list):
    from hfgcot.run.local import undecoded

    return undecoded(qa_rows(images), "image")[0]


def bench_token_limit(report: Report, vlm, passes: Passes, args) -> None:
    """Section 3: the default limit, and a run over mixed large images cut by it."""
    from hfgcot.model.memory import token_cost

    section, new = "max_batch_tokens", 8
    if report.elapsed() > args.budget_s - 60:
        report.note(section, "skipped (time budget)")
        return
    for batch in args.batch_sizes:
        limit = vlm.default_max_batch_tokens(batch, args.max_new_tokens)
        report.add(f"{section} default", {"batch": batch, "default max_batch_tokens": str(limit)})
    batch = max(args.batch_sizes)
    ds = qa_of(mixed_images(args.tiny, 8 if args.tiny else 16))
    # on the CPU there is no default: a limit that cuts the tiny images' batches instead
    limit = vlm.default_max_batch_tokens(batch, new) or 1000
    cost = token_cost(vlm.model.config, vlm.model.dtype.itemsize)
    first = len(passes.calls)
    row, _ = timed_stage(vlm, passes, reasoning_stage(vlm, batch, limit, new), ds)
    calls = passes.calls[first:]
    rows, positions, _ = max(calls, key=lambda c: c[0] * c[1])
    estimate = rows * positions * cost.per_prompt_token + rows * new * cost.kv
    weights = sum(p.numel() for p in vlm.model.parameters()) * vlm.model.dtype.itemsize
    report.add(
        section,
        {
            "images": len(ds),
            "sides": "448..3584" if not args.tiny else "28..224",
            "max_batch_tokens": limit,
            "forward passes": len(calls),
            "largest pass": f"{rows} x {positions} positions",
            "estimate of largest pass GiB": estimate / 2**30,
            "peak GiB": row["peak GiB"],
            "weights GiB": weights / 2**30,
            "seconds": row["seconds"],
        },
    )


class Ballast:
    """Leaves about ``free_gib`` of GPU memory free (CUDA), or simulates a memory limit (CPU):
    forward passes above ``rows`` sequences or ``positions`` tokens raise OutOfMemoryError."""

    def __init__(self, model, free_gib: float, rows: int, positions: int) -> None:
        self.model, self.free_gib, self.rows, self.positions = model, free_gib, rows, positions
        self.tensor = None

    def __enter__(self) -> Ballast:
        import torch

        if cuda():
            torch.cuda.empty_cache()
            free, _ = torch.cuda.mem_get_info()
            size = int(free - self.free_gib * 2**30)
            if size > 0:
                self.tensor = torch.empty(size, dtype=torch.uint8, device="cuda")
            return self
        forward = self.model.forward

        @functools.wraps(forward)  # generate checks its keyword arguments against the signature
        def limited(*args, **kwargs):
            ids = kwargs.get("input_ids")
            if ids is not None and ids.shape[1] > 1:
                if ids.shape[0] > self.rows or ids.numel() > self.positions:
                    raise torch.OutOfMemoryError("simulated out of memory")
            return forward(*args, **kwargs)

        self.model.forward = limited
        return self

    def __exit__(self, *exc) -> None:
        import torch

        self.tensor = None
        if cuda():
            torch.cuda.empty_cache()
        else:
            del self.model.forward  # the class's forward again


class Messages(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def bench_backoff(report: Report, vlm, passes: Passes, args) -> None:
    """Section 4: out of memory on purpose; what the engine learns, and a request too big."""
    from hfgcot.model.batching import is_out_of_memory

    section = "backoff" + (" (simulated on CPU)" if args.tiny else "")
    if report.elapsed() > args.budget_s - 60:
        report.note(section, "skipped (time budget)")
        return
    messages = Messages()
    logging.getLogger("hfgcot.model.batching").addHandler(messages)
    batch, side, big = max(args.batch_sizes), *((56, 224) if args.tiny else (1024, 3584))
    # (case, images, batch size, GiB left free; simulated on CPU: most rows, most positions)
    cases = [
        (
            f"{batch} images {side}x{side}",
            random_images(batch, [(side, side)]),
            batch,
            6.0,
            2,
            10**9,
        ),
        (f"one image {big}x{big}", mixed_images(args.tiny, 4)[3:], 1, 1.0, 10**9, 64),
    ]
    try:
        for case, images, size, free_gib, rows, positions in cases:
            vlm.reset_limits()
            ds = qa_of(images)
            stage = reasoning_stage(vlm, size, 10**9, 8)  # no token limit: memory decides
            with Ballast(vlm.model, free_gib, rows=rows, positions=positions):
                row, out = timed_stage(vlm, passes, stage, ds)
                default = vlm.default_max_batch_tokens(size, 8)
            statuses = out["gcot_status"]
            learned = vlm.backoff.learned.get(stage.name)
            report.add(
                section,
                {
                    "case": case,
                    "free GiB": "simulated" if args.tiny else free_gib,
                    "learned limit": learned.describe() if learned else "none needed",
                    "default estimate": str(default),
                    "rows in/out": f"{len(ds)}/{len(statuses)}",
                    "out_of_memory rows": sum(map(is_out_of_memory, statuses)),
                    "seconds": row["seconds"],
                },
            )
    finally:
        vlm.reset_limits()
        logging.getLogger("hfgcot.model.batching").removeHandler(messages)
    for line in messages.lines:
        report.note(section, f"log: {line}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch
    import transformers

    if not args.tiny and not cuda():
        print("bench_gpu needs a CUDA GPU; none found here, nothing measured (try --tiny).")
        return 0
    vlm, params = build_vlm(args.tiny)
    passes = Passes(vlm.model)
    name = torch.cuda.get_device_name() if cuda() and not args.tiny else "cpu"
    meta = {
        "device": name,
        "model": f"random weights, {vlm.spec.model}, {params / 1e9:.2f} B parameters",
        "dtype": vlm.spec.dtype,
        "attention": vlm.model.config._attn_implementation,
        "torch / transformers": f"{torch.__version__} / {transformers.__version__}",
        "command": "python benchmarks/bench_gpu.py "
        + " ".join(sys.argv[1:] if argv is None else argv),
        "date": time.strftime("%Y-%m-%d %H:%M"),
    }
    report = Report("bench_gpu" + (" (tiny CPU smoke run: not figures)" if args.tiny else ""), meta)
    sections = [
        lambda: bench_stages(report, vlm, passes, args, cache=None),
        lambda: bench_decode(report, vlm, args, params),
        lambda: bench_token_limit(report, vlm, passes, args),
        lambda: bench_backoff(report, vlm, passes, args),
    ]
    if not args.no_static:
        sections.append(lambda: bench_stages(report, vlm, passes, args, cache="static"))
    for section in sections:
        section()
        md, js = report.write(args.out)  # after each section: a cut-short run keeps its figures
    print(f"report: {md} and {js} ({report.elapsed():.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
