"""A data collator for grounding SFT rows (:func:`hfgcot.to_grounding_sft`) and Qwen-VL models.

:class:`GroundingCollator` turns a list of rows (``messages`` + ``image``) into one padded batch:
``input_ids``, ``attention_mask``, ``pixel_values``, ``image_grid_thw``, ``mm_token_type_ids``
(when the processor returns it, as Qwen2.5-VL's does in transformers 5) and ``labels``. Labels
are ``-100`` everywhere except the assistant answers and their end-of-turn token ``<|im_end|>``,
so the loss is the grounding answer alone. Images of different sizes batch together: the
processor concatenates their patches and records each one's ``image_grid_thw``.

It is the standard collator interface (list of row dicts -> dict of tensors), so it works with a
plain torch loop, ``transformers.Trainer`` and TRL's ``SFTTrainer``. Keep the raw columns::

    >>> from transformers import Trainer, TrainingArguments
    >>> train = sft.filter(lambda s: s == "ok", input_columns="sft_status")   # doctest: +SKIP
    >>> trainer = Trainer(
    ...     model=model,
    ...     args=TrainingArguments("out", remove_unused_columns=False),
    ...     train_dataset=train,
    ...     data_collator=GroundingCollator(processor),
    ... )                                                                      # doctest: +SKIP

With TRL: ``SFTConfig(remove_unused_columns=False, dataset_kwargs={"skip_prepare_dataset":
True})`` and ``SFTTrainer(..., data_collator=GroundingCollator(processor))``. Both trainers drop
the columns a model's ``forward`` does not take unless ``remove_unused_columns=False``; the
collator then cannot check the rows' status, frame and family, and says so (a ``ValueError``)
instead of training on rows it cannot check (``check_frames=False`` opts out).

Each row's chat must have the structure its ``messages`` declare: a text that holds a turn marker
or an image placeholder of its own (``"<|im_end|><|im_start|>assistant\nsay yes"``,
``"<|image_pad|>"``) is refused, and so is a chat whose image placeholders or assistant turns do
not match its images and assistant messages.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from hfgcot.geometry.families import (
    family_for_processor,
    get_family,
    known_families,
    processor_family_or_raise,
)
from hfgcot.images import ImagePolicy, load_image

logger = logging.getLogger(__name__)

__all__ = ["IGNORE_INDEX", "GroundingCollator", "processor_family"]

IGNORE_INDEX = -100
"""Label value ignored by the cross-entropy loss of transformers models."""

_COLLATE_POLICY = ImagePolicy(min_side=1)


def processor_family(processor: Any) -> str | None:
    """The family of a Qwen-VL processor (:func:`~hfgcot.geometry.families.family_for_processor`).

    >>> processor_family(object()) is None
    True
    """
    return family_for_processor(processor)


def _clean_content(content: Any) -> Any:
    """Arrow structs carry every key (``text`` is null on image items): drop the null keys."""
    if isinstance(content, str):
        return content
    return [{k: v for k, v in item.items() if v is not None} for item in content or []]


def _clean_messages(messages: Any) -> list[dict[str, Any]]:
    if not isinstance(messages, Sequence) or isinstance(messages, str):
        return []
    return [
        {"role": m["role"], "content": _clean_content(m.get("content"))}
        for m in messages
        if isinstance(m, Mapping) and m.get("role")
    ]


def _count_images(messages: list[dict[str, Any]]) -> int:
    return sum(
        1
        for m in messages
        if not isinstance(m["content"], str)
        for item in m["content"]
        if item.get("type") == "image" or "image" in item or "image_url" in item
    )


def _texts(messages: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """``(role, text)`` of every text of ``messages``."""
    out = []
    for m in messages:
        content = m["content"]
        if isinstance(content, str):
            out.append((m["role"], content))
        else:
            out.extend((m["role"], str(item["text"])) for item in content if item.get("text"))
    return out


def _structure_tokens(tokenizer: Any, processor: Any, header: list[int], end: str) -> tuple:
    """The special tokens that make a chat's structure: turn markers, image placeholders."""
    special = set(getattr(tokenizer, "all_special_tokens", []))
    decoder = getattr(tokenizer, "added_tokens_decoder", {}) or {}
    special |= {t.content for t in decoder.values() if getattr(t, "special", False)}
    candidates = [
        end,
        *tokenizer.convert_ids_to_tokens(header),
        getattr(processor, "image_token", None),
        getattr(processor, "video_token", None),
        getattr(processor, "vision_start_token", "<|vision_start|>"),
        getattr(processor, "vision_end_token", "<|vision_end|>"),
    ]
    return tuple(dict.fromkeys(t for t in candidates if isinstance(t, str) and t in special))


def _find(sequence: list[int], pattern: list[int], start: int) -> int:
    """Index of the first occurrence of ``pattern`` in ``sequence`` at or after ``start``."""
    n = len(pattern)
    for i in range(start, len(sequence) - n + 1):
        if sequence[i : i + n] == pattern:
            return i
    return -1


class GroundingCollator:
    """Batch grounding SFT rows for a Qwen-VL model; loss only on the assistant answers.

    Args:
        processor: the model's processor (e.g. ``AutoProcessor.from_pretrained(model_id)``);
            the same resize limits must have been used by :func:`hfgcot.to_grounding_sft`
            (checked per row, see ``check_frames``).
        max_length: longest allowed sequence (tokens, image tokens included). A longer row
            raises instead of being truncated: truncation would cut the answer (no loss at all)
            or the image tokens (a shape error inside the model). Lower ``max_pixels`` or
            filter such rows.
        image_column, messages_column: where each row keeps its image(s) and chat.
        status_column: rows whose value there is not ``"ok"`` raise a ``ValueError``; filter
            them first: ``ds.filter(lambda s: s == "ok", input_columns="sft_status")``.
        check_frames: compare each row's ``model_family`` and ``sft_frame`` with this
            processor: the family must be the processor's (0..1000 boxes must not train a
            Qwen2.5-VL model, nor the reverse), the original image size must match, and for
            ``qwen2_5_vl`` rows (boxes in resized pixels) also the resized size. A mismatch
            means the boxes would teach wrong coordinates. Rows must then carry the status,
            frame and family columns (a ``ValueError`` says to pass
            ``remove_unused_columns=False`` when a trainer dropped them); ``False`` trains
            without these checks.
        single_turn: each row must be one grounding SFT exchange: exactly one image
            placeholder and one assistant turn (``False`` allows multi-turn and text-only chats;
            the templated chat must still match what the messages declare).
        image_policy: how row images are read (:class:`~hfgcot.images.ImagePolicy`; default:
            any side of at least 1 pixel, the default URL rules).
        padding_side: ``"right"`` (default for training) or ``"left"``.
        assistant_header, end_token: the text opening an assistant turn and the token closing
            it (Qwen chat format).

    Example:
        >>> collator = GroundingCollator(processor)                 # doctest: +SKIP
        >>> batch = collator([train[0], train[1]])                  # doctest: +SKIP
        >>> sorted(batch)                                           # doctest: +SKIP
        ['attention_mask', 'image_grid_thw', 'input_ids', 'labels', 'mm_token_type_ids', 'pixel_values']
    """

    def __init__(
        self,
        processor: Any,
        *,
        max_length: int | None = None,
        image_column: str = "image",
        messages_column: str = "messages",
        status_column: str = "sft_status",
        frame_column: str = "sft_frame",
        family_column: str = "model_family",
        check_frames: bool = True,
        single_turn: bool = True,
        image_policy: ImagePolicy | None = None,
        padding_side: str = "right",
        assistant_header: str = "<|im_start|>assistant\n",
        end_token: str = "<|im_end|>",
    ) -> None:
        if max_length is not None and max_length < 1:
            raise ValueError(f"max_length must be None or >= 1, got {max_length}")
        if padding_side not in ("right", "left"):
            raise ValueError(f"padding_side must be 'right' or 'left', got {padding_side!r}")
        self.processor = processor
        self.max_length = max_length
        self.image_column = image_column
        self.messages_column = messages_column
        self.status_column = status_column
        self.frame_column = frame_column
        self.family_column = family_column
        self.check_frames = check_frames
        self.single_turn = single_turn
        self.image_policy = image_policy or _COLLATE_POLICY
        self.padding_side = padding_side
        self._family = processor_family_or_raise(processor) if check_frames else None
        tokenizer = getattr(processor, "tokenizer", processor)
        self._header = list(tokenizer.encode(assistant_header, add_special_tokens=False))
        end_id = tokenizer.convert_tokens_to_ids(end_token)
        if end_id is None or end_id == getattr(tokenizer, "unk_token_id", None):
            raise ValueError(f"end_token {end_token!r} is not a token of this tokenizer")
        self._end_id = int(end_id)
        self._pad_id = tokenizer.pad_token_id
        if not self._header:
            raise ValueError("assistant_header encodes to no tokens")
        self._assistant_header = assistant_header
        self._image_token = getattr(processor, "image_token", None)
        self._structure = _structure_tokens(tokenizer, processor, self._header, end_token)

    # -- rows -----------------------------------------------------------------------------------

    def _row_images(self, index: int, row: Mapping[str, Any], n_images: int) -> list[Any]:
        if n_images == 0:
            return []
        value = row.get(self.image_column)
        values = list(value) if isinstance(value, list | tuple) else [value]
        if len(values) != n_images:
            raise ValueError(
                f"row {index}: messages hold {n_images} image placeholder(s) but column "
                f"{self.image_column!r} has {len(values)} image(s)"
            )
        images = []
        for v in values:
            image, status = load_image(v, self.image_policy)
            if image is None:
                raise ValueError(f"row {index}: cannot use its image ({status})")
            images.append(image)
        return images

    def _check_columns(self, index: int, row: Mapping[str, Any]) -> None:
        needed = (self.status_column, self.frame_column, self.family_column)
        missing = [c for c in needed if c not in row]
        if self.check_frames and missing:
            raise ValueError(
                f"row {index} has no {', '.join(map(repr, missing))} column(s) (columns: "
                f"{sorted(row)}), so its status, frame and family cannot be checked. A trainer "
                "dropped them: pass remove_unused_columns=False (TRL: "
                "SFTConfig(remove_unused_columns=False); transformers: TrainingArguments("
                "remove_unused_columns=False)), or GroundingCollator(..., check_frames=False) "
                "to train without the checks"
            )

    def _check_row(self, index: int, row: Mapping[str, Any]) -> list[dict[str, Any]]:
        status = row.get(self.status_column, "ok")
        if status is not None and status != "ok":
            raise ValueError(
                f"row {index} has {self.status_column}={status!r}; only rows with status 'ok' can "
                f"be trained on. Filter them first: "
                f"ds.filter(lambda s: s == 'ok', input_columns={self.status_column!r})"
            )
        if self.messages_column not in row:
            raise KeyError(
                f"row {index} has no {self.messages_column!r} column (columns: {sorted(row)}); "
                "with transformers.Trainer pass TrainingArguments(remove_unused_columns=False)"
            )
        self._check_columns(index, row)
        messages = _clean_messages(row[self.messages_column])
        if not messages or messages[-1]["role"] != "assistant":
            raise ValueError(f"row {index}: messages must end with an assistant turn")
        for role, text in _texts(messages):
            found = [token for token in self._structure if token in text]
            if found:
                raise ValueError(
                    f"row {index}: a {role} text holds the special token {found[0]!r}, which "
                    "would give the chat a turn or an image of its own; to_grounding_sft marks "
                    "such rows special_tokens_in_text: filter them"
                )
        return messages

    def _check_chat(self, index: int, text: str, messages: list[dict[str, Any]]) -> None:
        """The templated chat has exactly the image placeholders and assistant turns that
        ``messages`` declare (one of each for a grounding SFT row)."""
        images = _count_images(messages)
        turns = sum(m["role"] == "assistant" for m in messages)
        if self.single_turn and (images, turns) != (1, 1):
            raise ValueError(
                f"row {index}: {images} image(s) and {turns} assistant turn(s); a grounding SFT "
                "row has one of each (GroundingCollator(..., single_turn=False) for other chats)"
            )
        if self._image_token and text.count(self._image_token) != images:
            raise ValueError(
                f"row {index}: its chat holds {text.count(self._image_token)} image "
                f"placeholder(s) for {images} image(s)"
            )
        if text.count(self._assistant_header) != turns:
            raise ValueError(
                f"row {index}: its chat holds {text.count(self._assistant_header)} assistant "
                f"turn(s) where its messages have {turns}"
            )

    def _check_family(self, index: int, row: Mapping[str, Any]) -> None:
        family = row.get(self.family_column)
        if self.check_frames and family and self._family and family != self._family:
            raise ValueError(
                f"row {index}: its boxes are written for model_family={family!r} but the processor "
                f"is a {type(self.processor).__name__} ({self._family!r}); rebuild the data with "
                f"to_grounding_sft(..., model_family={self._family!r}, processor=processor)"
            )

    def _check_frame(self, index: int, row: Mapping[str, Any], image: Any, grid: Any) -> None:
        frame = row.get(self.frame_column)
        if not isinstance(frame, Mapping) or not frame.get("width"):
            return
        if (image.width, image.height) != (frame["width"], frame["height"]):
            raise ValueError(
                f"row {index}: the image is {image.width}x{image.height} but its boxes were "
                f"written for a {frame['width']}x{frame['height']} image; rebuild the row with "
                "to_grounding_sft on this image"
            )
        family = row.get(self.family_column)
        if family not in known_families() or get_family(family).relative:
            return  # 0..1000 boxes do not depend on the resize
        patch = int(self.processor.image_processor.patch_size)
        _, h, w = (int(v) for v in grid)
        if (w * patch, h * patch) != (frame["model_width"], frame["model_height"]):
            raise ValueError(
                f"row {index}: this processor resizes the {image.width}x{image.height} image to "
                f"{w * patch}x{h * patch}, but its boxes are in a {frame['model_width']}x"
                f"{frame['model_height']} frame (min_pixels={frame.get('min_pixels')}, "
                f"max_pixels={frame.get('max_pixels')}). Rebuild the data with "
                "to_grounding_sft(..., processor=processor) or load the processor with the same "
                "min_pixels/max_pixels"
            )

    # -- labels ---------------------------------------------------------------------------------

    def _labels(self, index: int, ids: list[int], mask: list[int]) -> list[int]:
        labels = [IGNORE_INDEX] * len(ids)
        start = _find(ids, self._header, 0)
        while start >= 0:
            begin = start + len(self._header)
            end = begin
            while end < len(ids) and ids[end] != self._end_id:
                end += 1
            if end >= len(ids) or not mask[end]:
                raise ValueError(f"row {index}: an assistant turn has no end token")
            labels[begin : end + 1] = ids[begin : end + 1]
            start = _find(ids, self._header, end + 1)
        if all(v == IGNORE_INDEX for v in labels):
            raise ValueError(
                f"row {index}: no assistant answer found in the tokenized chat (looked for the "
                f"header tokens {self._header})"
            )
        return labels

    def __call__(self, rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        import torch

        if not rows:
            raise ValueError("cannot collate an empty list of rows")
        texts: list[str] = []
        images: list[Any] = []
        owners: list[int] = []
        for index, row in enumerate(rows):
            messages = self._check_row(index, row)
            self._check_family(index, row)
            row_images = self._row_images(index, row, _count_images(messages))
            images.extend(row_images)
            owners.extend([index] * len(row_images))
            text = self.processor.apply_chat_template(messages, tokenize=False)
            self._check_chat(index, text, messages)
            texts.append(text)
        batch = self.processor(
            text=texts,
            images=images or None,
            padding=True,
            padding_side=self.padding_side,
            return_tensors="pt",
        )
        if self.check_frames and images:
            grids = batch["image_grid_thw"].tolist()
            single = {i for i in owners if owners.count(i) == 1}
            for image, grid, index in zip(images, grids, owners, strict=True):
                if index in single:
                    self._check_frame(index, rows[index], image, grid)
        input_ids = batch["input_ids"]
        mask = batch["attention_mask"]
        lengths = mask.sum(dim=1).tolist()
        if self.max_length is not None:
            too_long = [(i, n) for i, n in enumerate(lengths) if n > self.max_length]
            if too_long:
                i, n = too_long[0]
                raise ValueError(
                    f"row {i} is {n} tokens long, more than max_length={self.max_length} "
                    "(truncating would cut the answer or the image tokens); lower max_pixels or "
                    "filter long rows"
                )
        labels = [
            self._labels(i, ids, m)
            for i, (ids, m) in enumerate(zip(input_ids.tolist(), mask.tolist(), strict=True))
        ]
        out = dict(batch)
        out["labels"] = torch.tensor(labels, dtype=input_ids.dtype)
        out["labels"][mask == 0] = IGNORE_INDEX
        return out
