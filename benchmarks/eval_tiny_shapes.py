"""End-to-end accuracy of the shipped toy model on held-out shape scenes, through ``add_gcot``.

Held-out scenes (``hfgcot.testing.shapes.make_scenes(n, seed)``; training uses other seeds) with one
question each go through the full GCoT pipeline (reasoning, parsing, grounding of every keyword,
injection). Every distinct keyword is matched to the scene object with that label and its first
box is scored against the true box in original pixels (Acc@0.5). Also reported: answer accuracy
(the ``Answer:`` line of the reasoning against the given answer), keywords that name no object,
the keywords that miss by colour or by shape, Acc@0.5 among the keywords that do name an object,
and the Acc@0.5 obtained when the model's numbers (``bbox_model``) are read as original-pixel
coordinates - the common coordinate bug, which this measure must catch. Last line:
``acc50: <x>``.

    python benchmarks/eval_tiny_shapes.py [--scenes 200] [--seed 2] [--model hfgcot/data/tiny-shapes]
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def evaluate(
    model: str | None = None,
    *,
    scenes: int = 200,
    seed: int = 2,
    batch_size: int = 16,
    max_new_tokens: int = 96,
    grounding_max_new_tokens: int = 32,
) -> dict:
    """Run GCoT on ``scenes`` held-out scenes and score it; returns the metrics."""
    from datasets import Dataset

    from hfgcot import add_gcot, load_vlm
    from hfgcot.evaluation import extract_answer, normalize_answer
    from hfgcot.testing.shapes import make_scenes
    from hfgcot.testing.toy import score_gcot, tiny_shapes_path, vqa_rows

    path = model or tiny_shapes_path()
    if path is None:
        raise SystemExit("no toy model: train one with python -m tools.tiny_shapes")
    vlm = load_vlm(path, dtype="float32", device="cpu")
    world = make_scenes(scenes, seed=seed)
    ds = Dataset.from_dict(vqa_rows(world, seed=seed))
    start = time.perf_counter()
    out = add_gcot(
        ds,
        vlm,
        batch_size=batch_size,
        max_new_tokens=max_new_tokens,
        grounding_max_new_tokens=grounding_max_new_tokens,
    )
    seconds = time.perf_counter() - start
    keywords, groundings = out["extracted_keywords"], out["groundings"]
    right = score_gcot(world, keywords, groundings)
    buggy = score_gcot(world, keywords, groundings, box_key="bbox_model")
    answers = [extract_answer(t) for t in out["cleaned_cot"]]
    answer_acc = sum(
        normalize_answer(a) == normalize_answer(b)
        for a, b in zip(answers, out["answer"], strict=True)
    ) / len(out)
    expected = [set(o.label for o in s.objects) for s in world]
    recall = sum(
        len({k.lower() for k in kws} & labels) / len(labels)
        for kws, labels in zip(keywords, expected, strict=True)
    ) / len(world)
    # why keywords miss: a colour that is not in the picture, or the wrong shape for its colour
    # (colours are distinct within a scene)
    wrong_colour = wrong_shape = 0
    for scene, kws in zip(world, keywords, strict=True):
        for kw in dict.fromkeys(" ".join(k.lower().split()) for k in kws):
            colour, _, shape = kw.partition(" ")
            same = [o for o in scene.objects if o.colour == colour]
            wrong_colour += not same
            wrong_shape += bool(same) and same[0].shape != shape
    matched = right["keywords"] - right["unmatched"]
    statuses: dict[str, int] = {}
    for s in out["gcot_status"]:
        statuses[s] = statuses.get(s, 0) + 1
    return {
        "model": path,
        "scenes": scenes,
        "seed": seed,
        "acc50": right["acc50"],
        "mean_iou": right["mean_iou"],
        "answer_acc": answer_acc,
        "buggy_pixels_acc50": buggy["acc50"],
        "keywords": right["keywords"],
        "unmatched_keywords": right["unmatched"],
        "keywords_wrong_colour": wrong_colour,
        "keywords_wrong_shape": wrong_shape,
        "acc50_of_matched_keywords": right["acc50"] * right["keywords"] / max(1, matched),
        "ungrounded_keywords": right["ungrounded"],
        "object_recall": recall,
        "status": statuses,
        "seconds": round(seconds, 1),
        "example": out[0]["gcot"],
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=None, help="default: the shipped hfgcot/data/tiny-shapes")
    p.add_argument("--scenes", type=int, default=200)
    p.add_argument("--seed", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--max-new-tokens", type=int, default=96)
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    metrics = evaluate(
        args.model,
        scenes=args.scenes,
        seed=args.seed,
        batch_size=args.batch_size,
        max_new_tokens=args.max_new_tokens,
    )
    print(json.dumps(metrics, indent=2))
    print(f"answer_acc: {metrics['answer_acc']:.3f}")
    print(f"buggy_pixels_acc50: {metrics['buggy_pixels_acc50']:.3f}")
    print(f"acc50: {metrics['acc50']:.3f}")


if __name__ == "__main__":
    main()
