"""Small inputs for the CLI tests: shape scenes (the toy model's world) as a .jsonl with files."""

from __future__ import annotations

import json
from pathlib import Path

from hfgcot.testing.shapes import make_scenes
from hfgcot.testing.toy import tiny_shapes_path, vqa_rows


def toy_model() -> str:
    """The shipped toy model's folder (the CLI tests run every model subcommand on it)."""
    path = tiny_shapes_path()
    assert path is not None, "the toy model hfgcot/data/tiny-shapes is not installed"
    return path


def scene_jsonl(folder: Path, n: int = 3, *, missing: bool = True, seed: int = 5) -> Path:
    """``folder/rows.jsonl``: ``n`` scenes (image file, question, answer, ``bbox`` of the first
    object in xyxy pixels), and a last row whose image file does not exist when ``missing``."""
    folder.mkdir(parents=True, exist_ok=True)
    scenes = make_scenes(n, seed=seed)
    columns = vqa_rows(scenes, seed=seed)
    rows = []
    for i, scene in enumerate(scenes):
        columns["image"][i].save(folder / f"scene{i}.png")
        rows.append(
            {
                "image": f"scene{i}.png",
                "question": columns["question"][i],
                "answer": columns["answer"][i],
                "bbox": list(scene.objects[0].bbox),
            }
        )
    if missing:
        rows.append({"image": "missing.png", "question": "What is it?", "answer": "x", "bbox": []})
    path = folder / "rows.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path
