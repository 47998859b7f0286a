"""Stand-in VLMs whose answers are chosen by the test, seen through the real processor.

:class:`ScriptedVLM` wraps a loaded model: every request still goes through the model's own
processor, so the :class:`~hfgcot.geometry.frames.Frame` of each image is exactly the one the model
would see, but each answer's text comes from a function. :class:`GroundingScriptedVLM` answers
grounding requests the way the wrapped model's family writes boxes (:func:`native_answer`):
Qwen2-VL with box tokens in 0..1000, Qwen2.5-VL with ``bbox_2d`` in pixels of the resized image,
Qwen3-VL with ``bbox_2d`` in 0..1000. With ``decode=True`` each text is tokenized and decoded
again as :meth:`hfgcot.model.vlm.VLM.generate` does (special tokens dropped), so a Qwen2-VL answer
reaches the parser as ``label(x1,y1),(x2,y2)``, like a real one.

    >>> from hfgcot.geometry.frames import Frame
    >>> native_answer("qwen2_vl", Frame(200, 100, 196, 112), [("cat", [0, 0, 100, 50])])
    '<|object_ref_start|>cat<|object_ref_end|><|box_start|>(0,0),(500,500)<|box_end|>'
    >>> print(native_answer("qwen2_5_vl", Frame(200, 100, 196, 112), [("cat", [0, 0, 100, 50])]))
    ```json
    [
        {"bbox_2d": [0, 0, 98, 56], "label": "cat"}
    ]
    ```
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from hfgcot.geometry.families import box_text, get_family
from hfgcot.geometry.frames import Frame

__all__ = ["GroundingScriptedVLM", "Script", "ScriptedVLM", "native_answer"]

Script = Callable[[Any, str], str]
"""``script(request, prompt_text) -> answer text``."""

Objects = Callable[[Any, str], Sequence[tuple[str, Sequence[float]]]]
"""``objects(request, prompt_text) -> [(label, box in original pixels), ...]``."""


def native_answer(family: str, frame: Frame, objects: Sequence[tuple[str, Sequence[float]]]) -> str:
    """A grounding answer for ``objects`` (label, original-pixel box) as ``family`` writes it.

    Boxes go to the family's convention through ``frame`` and are rounded to integers; JSON
    families get the cookbooks' fenced list, Qwen2-VL one box-token group per object.
    """
    texts = [box_text(family, frame.box_to_model(box, family), label) for label, box in objects]
    if get_family(family).text_form == "box_tokens":
        return "".join(texts)
    return "```json\n[\n" + ",\n".join("    " + t for t in texts) + "\n]\n```"


class ScriptedVLM:
    """A VLM whose texts come from a function, with the real processor's frames.

    Wraps a loaded :class:`hfgcot.model.vlm.VLM` (its ``family``, limits and processor are the
    wrapped model's); the text of each answer is ``script(request, prompt_text)``. With
    ``decode=True`` the text goes through the model's tokenizer and back with special tokens
    skipped, as a real generation is decoded. With ``budget=True`` an answer is held to the
    call's ``max_new_tokens`` like a real engine's: a scripted text of that many tokens or more
    (real tokenizer) is cut there and reported ``truncated`` (no end-of-sequence token fitted).
    Every prompt is recorded in ``calls``.

    Example:
        >>> fake = ScriptedVLM(load_vlm(path), lambda req, text: '{"bbox_2d": [0, 0, 10, 10]}')  # doctest: +SKIP
    """

    def __init__(
        self, vlm: Any, script: Script, *, decode: bool = False, budget: bool = False
    ) -> None:
        self._vlm = vlm
        self.script = script
        self.decode = decode
        self.budget = budget
        self.calls: list[str] = []
        # A spec of its own: its outputs must never share a cache fingerprint with the real model.
        self.spec = replace(vlm.spec, model=f"{vlm.spec.model}#scripted-{uuid.uuid4().hex[:12]}")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._vlm, name)

    def answer(self, request: Any, prompt: str, frame: Frame | None) -> str:
        """The text of one answer (override to use the frame)."""
        return self.script(request, prompt)

    def decoded(self, text: str) -> str:
        """``text`` tokenized and decoded again with special tokens skipped (as generation is)."""
        ids = self._vlm.processor.tokenizer(text, add_special_tokens=False)["input_ids"]
        return self._vlm.processor.decode(ids, skip_special_tokens=True)

    def generate(self, requests: Sequence[Any], settings: Any = None, **kwargs: Any) -> list[Any]:
        from hfgcot.model.vlm import Generation

        frames = self._vlm.frames([r.image for r in requests])
        out = []
        for request, frame in zip(requests, frames, strict=True):
            prompt = request.prompt_text()
            self.calls.append(prompt)
            text = self.answer(request, prompt, frame)
            text, cut = self._within_budget(text, settings)
            text = self.decoded(text) if self.decode else text
            out.append(Generation(text=text, frame=frame, truncated=cut))
        return out

    def _within_budget(self, text: str, settings: Any) -> tuple[str, bool]:
        """``(text, truncated)``: cut at ``settings.max_new_tokens`` tokens when ``budget``."""
        if not self.budget or settings is None:
            return text, False
        tokenizer = self._vlm.processor.tokenizer
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        if len(ids) < settings.max_new_tokens:
            return text, False
        return tokenizer.decode(ids[: settings.max_new_tokens], skip_special_tokens=True), True


class GroundingScriptedVLM(ScriptedVLM):
    """A :class:`ScriptedVLM` that answers as the wrapped model's family writes boxes.

    ``objects(request, prompt)`` returns ``[(label, box in original pixels), ...]`` for a
    grounding request, or ``None`` for any other request, which ``script`` answers (default:
    an empty text). Answers are decoded like real generations (``decode=True``) unless told
    otherwise.

    Example:
        >>> objects = lambda request, text: [("cat", [10, 10, 50, 40])]
        >>> fake = GroundingScriptedVLM(vlm, objects)                # doctest: +SKIP
    """

    def __init__(
        self,
        vlm: Any,
        objects: Callable[[Any, str], Sequence[tuple[str, Sequence[float]]] | None],
        script: Script | None = None,
        *,
        decode: bool = True,
    ) -> None:
        super().__init__(vlm, script or (lambda request, prompt: ""), decode=decode)
        self.objects = objects

    def answer(self, request: Any, prompt: str, frame: Frame | None) -> str:
        found = self.objects(request, prompt)
        if found is None or frame is None:
            return self.script(request, prompt)
        return native_answer(self.family, frame, found)
