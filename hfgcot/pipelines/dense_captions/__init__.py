"""Dense captions the ScaleCap way, as seven chained ``Dataset.map`` stages.

1. :class:`InitCaptionStage` - the VLM describes the image (``init_caption``).
2. :class:`SplitStage` - the caption cut into sentences (``sentences``, :mod:`hfgcot.parsing.captions`).
3. :class:`SentenceCheckStage` - a visual self-check keeps the sentences the image supports
   (``golden_sentences``, ``sentence_scores``): ``checker="yesno"`` asks the VLM,
   ``checker="contrastive"`` compares token log-probs with and without the image.
4. :class:`QuestionStage` - follow-up questions about the objects of the golden sentences, each
   paired with its "position of" variant (``raw_questions``, ``q_list``).
5. :class:`AnswerStage` - every question of every image of the batch in one batched generate
   (``raw_answers``).
6. :class:`DetailCheckStage` - the answers' sentences checked again (``final_details``).
7. :class:`FuseStage` - one fluent caption from the golden sentences and the details
   (``final_caption``; a text-only request).

Every row is kept; ``dense_caption_status`` says ``"ok"`` (or ``"ok: <note>"``) or why not.

Where each part lives: :mod:`~hfgcot.pipelines.dense_captions.pipeline` (the config, the stage
list and :func:`add_dense_captions`), :mod:`~hfgcot.pipelines.dense_captions.caption` (stages
1-3), :mod:`~hfgcot.pipelines.dense_captions.questions` (4-5),
:mod:`~hfgcot.pipelines.dense_captions.details` (6-7), :mod:`~hfgcot.pipelines.dense_captions.base`
(what the stages share) and the self-check itself in :mod:`hfgcot.pipelines.self_check`.

    >>> from hfgcot import add_dense_captions
    >>> ds = add_dense_captions(ds, model="Qwen/Qwen2.5-VL-3B-Instruct")   # doctest: +SKIP
    >>> ds[0]["final_caption"]                                              # doctest: +SKIP
"""

from hfgcot.pipelines.dense_captions.base import NO_GOLDEN, STATUS, STRINGS
from hfgcot.pipelines.dense_captions.caption import (
    InitCaptionStage,
    SentenceCheckStage,
    SplitStage,
)
from hfgcot.pipelines.dense_captions.details import DetailCheckStage, FuseStage
from hfgcot.pipelines.dense_captions.pipeline import (
    DenseCaptionConfig,
    add_dense_captions,
    dense_caption_stages,
)
from hfgcot.pipelines.dense_captions.questions import AnswerStage, QuestionStage
from hfgcot.pipelines.self_check import CheckJob, check_sentences, is_supported

__all__ = [
    "NO_GOLDEN",
    "STATUS",
    "STRINGS",
    "AnswerStage",
    "CheckJob",
    "DenseCaptionConfig",
    "DetailCheckStage",
    "FuseStage",
    "InitCaptionStage",
    "QuestionStage",
    "SentenceCheckStage",
    "SplitStage",
    "add_dense_captions",
    "check_sentences",
    "dense_caption_stages",
    "is_supported",
]
