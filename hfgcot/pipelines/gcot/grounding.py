"""Stages 3-4 of GCoT: the keywords grounded by the VLM, then their boxes written into the text."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from datasets import Features, List, Value

from hfgcot import prompts
from hfgcot.geometry.frames import Frame, box_area
from hfgcot.images import ImagePolicy, load_image
from hfgcot.model.batching import is_out_of_memory
from hfgcot.model.endpoint import error_status, is_endpoint_error
from hfgcot.model.vlm import Request
from hfgcot.parsing import gcot_text
from hfgcot.parsing import grounding as parsing
from hfgcot.parsing.phrases import dedupe
from hfgcot.pipelines.base import ModelStage, Stage
from hfgcot.pipelines.gcot.reasoning import STATUS
from hfgcot.status import OK, note_truncated, truncated_output, with_note

BoxSpace = Literal["pixels", "model", "normalized"]
GroundingMode = Literal["per_keyword", "joint"]

GROUNDING_FEATURE = List(
    {
        "phrase": Value("string"),
        "bbox": List(Value("float64")),
        "bbox_model": List(Value("float64")),
    }
)


def ground_boxes(
    text: str, frame: Frame, family: str
) -> list[tuple[str | None, list[float], list[float]]]:
    """Parse a grounding answer into ``(label, bbox in original pixels, bbox as written)``.

    Boxes are clipped to the image and ordered; boxes with no area left after clipping are dropped.
    """
    out = []
    for parsed in parsing.parse_grounding(text):
        model_box = [float(v) for v in parsed.box]
        pixels = frame.box_to_pixels(model_box, family)
        if box_area(pixels) > 0:
            out.append((parsed.label, pixels, model_box))
    return out


@dataclass(frozen=True)
class GroundingStage(ModelStage):
    """Stage 3: every distinct keyword of a row grounded once; ``groundings`` in original pixels.

    ``mode="per_keyword"`` asks one request per keyword (every box of the answer belongs to it);
    ``mode="joint"`` asks one request per image for all keywords as a labelled JSON list and maps
    each label back to a keyword (:func:`hfgcot.parsing.grounding.match_label`; unmatched boxes are dropped).
    """

    name = "gcot_grounding"
    version = "4"  # v2: phrase-key dedupe; v3: truncation in the status; v4: neutralised
    status_column = STATUS
    image_column: str = "image"
    keywords_column: str = "extracted_keywords"
    max_keywords: int = 16
    image_policy: ImagePolicy = ImagePolicy()
    mode: GroundingMode = "per_keyword"
    prompt: str | None = None  # None: the model family's default
    joint_prompt: str | None = None

    def _requests(
        self, image: Any, phrases: list[str], rank: int | None
    ) -> list[tuple[Request, str | None]]:
        if self.mode == "joint":
            template = self.family_prompt("joint_grounding_prompt", self.joint_prompt, rank)
            text = prompts.joint_grounding_prompt(phrases, template)
            return [(self.request(image, text), None)]
        template = self.family_prompt("grounding_prompt", self.prompt, rank)
        return [(self.request(image, prompts.grounding_prompt(p, template)), p) for p in phrases]

    def features(self) -> Features:
        return Features({"groundings": GROUNDING_FEATURE, STATUS: Value("string")})

    def process(self, batch: dict[str, list], rank: int | None = None) -> dict[str, list]:
        n = len(batch[self.image_column])
        statuses = list(batch[STATUS])
        requests, owners = [], []
        phrases_of: list[list[str]] = [[] for _ in range(n)]
        for i in range(n):
            if statuses[i] != OK:
                continue
            image, status = load_image(batch[self.image_column][i], self.image_policy)
            if status != OK:  # pragma: no cover - stage 1 already checked the image
                statuses[i] = status
                continue
            phrases_of[i] = dedupe(batch[self.keywords_column][i])[: self.max_keywords]
            for request, phrase in self._requests(image, phrases_of[i], rank):
                requests.append(request)
                owners.append((i, phrase))
        groundings: list[list[dict[str, Any]]] = [[] for _ in range(n)]
        cut = [False] * n
        if requests:
            vlm = self.vlm(rank)
            for (i, kw), out in zip(owners, self.generate(requests, rank), strict=True):
                if out.error and (is_endpoint_error(out.error) or is_out_of_memory(out.error)):
                    statuses[i] = error_status(out.error)
                cut[i] = cut[i] or out.truncated
                if out.frame is None:
                    continue
                for label, pixels, model_box in ground_boxes(out.text, out.frame, vlm.family):
                    phrase = kw if kw is not None else parsing.match_label(label, phrases_of[i])
                    if phrase is not None:
                        groundings[i].append(
                            {"phrase": phrase, "bbox": pixels, "bbox_model": model_box}
                        )
        for i in range(n):
            if statuses[i] != OK:
                continue
            total = len(batch[self.keywords_column][i])
            if not groundings[i]:  # boxes written before a cut are complete: kept
                statuses[i] = truncated_output(self.name) if cut[i] else "no_groundings"
                continue
            if total > len(phrases_of[i]):
                note = f"grounded the first {len(phrases_of[i])} of {total} keywords"
                statuses[i] = with_note(statuses[i], note)
            if cut[i]:
                statuses[i] = note_truncated(statuses[i], self.name)
        return {"groundings": groundings, STATUS: statuses}


def format_box(box: list[float], space: BoxSpace, frame_size: tuple[int, int] | None = None) -> str:
    """``[x1, y1, x2, y2]`` as written into the reasoning: integers, or 3 decimals when normalized."""
    if space == "normalized":
        if frame_size is None:
            raise ValueError("normalized boxes need the image size")
        w, h = frame_size
        vals = [box[0] / w, box[1] / h, box[2] / w, box[3] / h]
        return "[" + ", ".join(f"{v:.3f}" for v in vals) + "]"
    return "[" + ", ".join(str(round(v)) for v in box) + "]"


@dataclass(frozen=True)
class InjectStage(Stage):
    """Stage 4: ``gcot`` = ``cleaned_cot`` with each phrase's box(es) after its first mention.

    ``box_space="normalized"`` divides by the ``image_size`` stage 1 recorded (the image is not
    read again); a row with boxes but no recorded size gets ``missing_image_size`` and no boxes.
    """

    name = "gcot_inject"
    version = "4"  # v2: recorded size; v3: the final-answer rule; v4: CJK characters bound words
    status_column = STATUS
    box_space: BoxSpace = "pixels"

    def features(self) -> Features:
        return Features({"gcot": Value("string"), STATUS: Value("string")})

    def process(self, batch: dict[str, list], rank: int | None = None) -> dict[str, list]:
        out, statuses = [], list(batch[STATUS])
        sizes = batch.get("image_size") or [None] * len(statuses)
        for i, (cot, groundings) in enumerate(
            zip(batch["cleaned_cot"], batch["groundings"], strict=True)
        ):
            size = (
                tuple(sizes[i]) if sizes[i] and len(sizes[i]) == 2 and min(sizes[i]) > 0 else None
            )
            if self.box_space == "normalized" and groundings and size is None:
                statuses[i] = "missing_image_size" if statuses[i] == OK else statuses[i]
                groundings = []
            boxes: dict[str, list[str]] = {}
            for g in groundings:
                key = "bbox_model" if self.box_space == "model" else "bbox"
                boxes.setdefault(g["phrase"], []).append(format_box(g[key], self.box_space, size))
            annotations = [
                (phrase, strs[0] if len(strs) == 1 else "[" + ", ".join(strs) + "]")
                for phrase, strs in boxes.items()
            ]
            out.append(gcot_text.inject_groundings(cot or "", annotations))
        return {"gcot": out, STATUS: statuses}
