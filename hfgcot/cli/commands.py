"""The pipeline subcommands: one row per pipeline, everything else is generated from its config.

A new pipeline is one :class:`PipelineCommand` in :data:`PIPELINES`: its flags come from its
config dataclass, the model specs and ``RunOptions`` (:mod:`hfgcot.cli.parser`), and it runs
through :func:`hfgcot.cli.run.run_pipeline_command`.

    >>> PIPELINES["gcot"].record
    'gcot'
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

__all__ = ["PIPELINES", "PipelineCommand", "command_for_record"]

_INPUT = """  --input takes a folder written by Dataset.save_to_disk, a .jsonl file (one row per line, image
  paths relative to the file) or a Hub dataset id; --config FILE gives any option (YAML or JSON,
  the names of the flags); flags typed win over the file. The output folder loads back with
  datasets.load_from_disk(<output>)."""

GCOT_EXAMPLE = f"""example:
  hfgcot gcot --input data/questions.jsonl --output out/gcot \\
      --model Qwen/Qwen2.5-VL-3B-Instruct --batch-size 16 --max-pixels 1003520

{_INPUT} Add --push-to-hub me/my-gcot --version 1.0.0 to also
  publish it (see `hfgcot publish --help`); --ray-address auto runs it on a Ray cluster (so
  does every pipeline that runs a model).
"""

DENSE_EXAMPLE = f"""example:
  hfgcot dense-captions --input images.jsonl --output out/dense \\
      --model Qwen/Qwen2.5-VL-3B-Instruct --checker contrastive --threshold 0.2 \\
      --max-questions 5 --batch-size 8 --max-pixels 1003520

{_INPUT} Only the image column is needed; see the final_caption and
  dense_caption_status columns.
"""

REGION_EXAMPLE = f"""example:
  hfgcot region-captions --input regions.jsonl --output out/regions \\
      --model Qwen/Qwen2.5-VL-3B-Instruct --bbox-column bbox --bbox-format xywh \\
      --max-boxes 10 --mode marked

  Each row needs an image and a list of boxes ([x, y, w, h] pixels by default, or
  --bbox-format xyxy). --mode marked draws numbered boxes and asks once per image (answer: text);
  --mode crop asks once per region on its crop (answer: list). Skipped boxes are named in
  region_caption_status.
{_INPUT}
"""

SFT_EXAMPLE = f"""example:
  hfgcot sft --input data/textvqa_boxes --output out/sft --bbox-format xywh \\
      --model-family qwen2_5_vl --max-pixels 1003520

  Writes grounding SFT chat rows (messages, gt_bbox, gt_bbox_model, sft_frame, sft_status). No
  model runs. Pass the min/max pixels of the processor you will train with (or --processor
  <model id> to read them from it): Qwen2.5-VL boxes are pixels of the resized image. Train on
  the rows with sft_status == "ok" using hfgcot.GroundingCollator (examples/train_grounding.py).
{_INPUT}
"""

PREDICT_EXAMPLE = f"""example:
  hfgcot predict --input out/sft --output out/pred --model my-org/qwen-grounding
  hfgcot evaluate grounding out/pred --output metrics.json

  Asks the user turn of each `messages` row (from `hfgcot sft`) or `prompt` with the question,
  and writes pred_bbox (original pixels), pred_text and pred_status.
{_INPUT}
"""


@dataclass(frozen=True)
class PipelineCommand:
    """A pipeline as a subcommand: entry point and config by ``"module:name"``, its help texts.

    ``record`` is the pipeline's name in provenance records (``hfgcot config`` maps a record back
    to its subcommand); ``ray`` names the Ray entry point (every pipeline that runs a model has
    one: ``--ray-address``).
    """

    name: str
    record: str
    entry: str
    config: str
    summary: str
    description: str
    example: str
    uses_model: bool = True
    ray: str | None = None

    @staticmethod
    def resolve(target: str) -> Any:
        """The object named ``"module:name"``."""
        module, _, name = target.partition(":")
        return getattr(importlib.import_module(module), name)

    def config_class(self) -> type:
        return self.resolve(self.config)


PIPELINES: dict[str, PipelineCommand] = {
    c.name: c
    for c in (
        PipelineCommand(
            "gcot",
            "gcot",
            "hfgcot.pipelines.gcot:add_gcot",
            "hfgcot.pipelines.gcot:GCoTConfig",
            "add Grounded Chain-of-Thought columns",
            "Reasoning + keywords -> per-keyword boxes -> boxes injected into the reasoning.",
            GCOT_EXAMPLE,
            ray="hfgcot.ray:add_gcot_ray",
        ),
        PipelineCommand(
            "dense-captions",
            "dense_captions",
            "hfgcot.pipelines.dense_captions:add_dense_captions",
            "hfgcot.pipelines.dense_captions:DenseCaptionConfig",
            "add ScaleCap-style dense captions",
            "Caption -> sentences -> visual self-check -> object questions -> answers -> "
            "self-check -> one fused caption.",
            DENSE_EXAMPLE,
            ray="hfgcot.ray:add_dense_captions_ray",
        ),
        PipelineCommand(
            "region-captions",
            "region_captions",
            "hfgcot.pipelines.region_captions:add_region_captions",
            "hfgcot.pipelines.region_captions:RegionCaptionConfig",
            "caption given boxes of each image",
            "Validate boxes, draw them numbered on a copy of the image, describe each region.",
            REGION_EXAMPLE,
            ray="hfgcot.ray:add_region_captions_ray",
        ),
        PipelineCommand(
            "sft",
            "grounding_sft",
            "hfgcot.pipelines.grounding_sft:to_grounding_sft",
            "hfgcot.pipelines.grounding_sft:GroundingSFTConfig",
            "turn image + question + box rows into grounding SFT chat rows (no model)",
            "The assistant turn is the box in the coordinate convention of the model family to "
            "train; bad rows get a status.",
            SFT_EXAMPLE,
            uses_model=False,
        ),
        PipelineCommand(
            "predict",
            "grounding_predictions",
            "hfgcot.pipelines.grounding_predictions:add_grounding_predictions",
            "hfgcot.pipelines.grounding_predictions:GroundingPredictionConfig",
            "ground every row with a model (predicted boxes in original pixels)",
            "One grounding request per row; the first box of the answer, mapped to original "
            "pixels through the frame the processor produced.",
            PREDICT_EXAMPLE,
            ray="hfgcot.ray:add_grounding_predictions_ray",
        ),
    )
}
"""Every pipeline subcommand, by name."""


def command_for_record(record: str) -> PipelineCommand | None:
    """The subcommand of a provenance record's pipeline name (``"grounding_sft"`` -> ``sft``).

    >>> command_for_record("grounding_sft").name
    'sft'
    """
    return next((c for c in PIPELINES.values() if record in (c.record, c.name)), None)
