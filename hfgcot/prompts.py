"""Default prompts of every pipeline and the rule for their placeholders (pure: no torch).

Every prompt a pipeline sends is a field of its config (e.g. ``GCoTConfig.reasoning_prompt``)
whose default is a template below; :data:`PLACEHOLDERS` says which ``{names}`` each template
needs and may use, and :func:`check_template` enforces it when the config is built. The text a
stage uses is part of that stage's fingerprint (and of no other stage's).

    >>> gcot_prompt("What colour is the ball?", "red").startswith("Question:")
    True
    >>> grounding_prompt("red ball")
    'Locate every "red ball" in the image. Output the bounding boxes in JSON format: [{"bbox_2d": [x1, y1, x2, y2], "label": "red ball"}].'
"""

from __future__ import annotations

GCOT_PROMPT = (
    "Question: {question}\n"
    "Answer: {answer}\n\n"
    "Look at the image and explain, in short numbered steps (Step 1:, Step 2:, ...), the reasoning "
    "that leads from the question to the given answer, mentioning the objects in the image you rely "
    "on. End the reasoning with a line 'Answer: <the answer>'. Then add one final line "
    "'Keywords: <k1>, <k2>, ...' listing the objects from your reasoning that are visible in the "
    "image, as short noun phrases exactly as they appear in your reasoning."
)

GROUNDING_PROMPT = (
    'Locate every "{phrase}" in the image. Output the bounding boxes in JSON format: '
    '[{{"bbox_2d": [x1, y1, x2, y2], "label": "{phrase}"}}].'
)

JOINT_GROUNDING_PROMPT = (
    "Locate each of these objects in the image: {phrases}. Output the bounding boxes in JSON "
    "format, one entry per box, labelled with the object's name exactly as listed: "
    '[{{"bbox_2d": [x1, y1, x2, y2], "label": "<name>"}}].'
)


def joint_grounding_prompt(phrases: list[str], template: str = JOINT_GROUNDING_PROMPT) -> str:
    """One request for all phrases of an image (``add_gcot(..., grounding="joint")``).

    >>> joint_grounding_prompt(["cat", "dog"], "Find {phrases}.")
    'Find "cat"; "dog".'
    """
    return template.format(
        phrases="; ".join(f'"{p.replace(chr(34), chr(39)).strip()}"' for p in phrases)
    )


GROUNDING_SFT_PROMPT = (
    "{question}\n"
    "Locate the region of the image that this refers to or that answers it, and output its "
    'bounding box in JSON format: {{"bbox_2d": [x1, y1, x2, y2]}}.'
)
"""User turn of grounding SFT rows (:func:`hfgcot.to_grounding_sft`); ``{question}`` is the
question or referring phrase."""


# Per-family defaults of the grounding prompts (the rows of hfgcot.geometry.families pick them;
# a prompt given in a config wins). The three above are Qwen2.5-VL's. Sources: docs/families.md.

QWEN2_GROUNDING_PROMPT = (
    "Find every <|object_ref_start|>{phrase}<|object_ref_end|> in the image and output its "
    "bounding box."
)
"""Qwen2-VL: the phrase between object-reference tokens; the model answers with box tokens."""

QWEN2_JOINT_GROUNDING_PROMPT = (
    "Find each of these objects in the image: {phrases}. For every one you find, write its name "
    "exactly as listed between <|object_ref_start|> and <|object_ref_end|>, then its bounding box."
)

QWEN2_GROUNDING_SFT_PROMPT = (
    "{question}\n"
    "Output the bounding box of the region of the image that this refers to or that answers it."
)
"""Qwen2-VL SFT rows: the answer is ``<|box_start|>(x1,y1),(x2,y2)<|box_end|>`` (0..1000)."""

QWEN3_GROUNDING_PROMPT = (
    'Locate every instance that belongs to the following category: "{phrase}". '
    "Report bbox coordinates in JSON format."
)
"""Qwen3-VL: the phrasing of Qwen3-VL's grounding examples; it answers ``bbox_2d`` in 0..1000."""

QWEN3_JOINT_GROUNDING_PROMPT = (
    "Locate every instance that belongs to the following categories: {phrases}. Report bbox "
    'coordinates in JSON format, with each "label" written exactly as its category is listed.'
)

QWEN3_GROUNDING_SFT_PROMPT = (
    "{question}\n"
    "Locate the region of the image that this refers to or that answers it, and output its bbox "
    "coordinates in JSON format."
)


# Dense captions (ScaleCap-style). Each is a ``str.format`` template.
DENSE_CAPTION_PROMPT = "Describe this image in detail."

SENTENCE_CHECK_PROMPT = (
    "Here is a sentence about this image:\n"
    '"{sentence}"\n'
    "Is everything the sentence states directly supported by what is visible in the image? "
    "Answer with yes or no."
)

OBJECT_QUESTIONS_PROMPT = (
    "Here is a description of an image:\n{sentences}\n\n"
    "List the distinct concrete objects mentioned in the description, at most {max_questions}, "
    "most important first. For each object write one line of the form:\n"
    "Describe more details about the <object>.\n"
    "Write nothing else."
)

DETAIL_QUESTION = "Describe more details about the {object}."

POSITION_QUESTION = "Describe the position of the {object} in the image."

DETAIL_ANSWER_PROMPT = "{question} Answer in a few sentences, describing only what is visible."

FUSE_CAPTION_PROMPT = (
    "Below is a verified description of an image, followed by verified details about objects in "
    "it. Combine them into one fluent, detailed and accurate description of the image. Keep every "
    "fact, add nothing that is not stated below, and write only the description.\n\n"
    "Description:\n{sentences}\n\n"
    "Details:\n{details}"
)

# Region captions.
REGION_MARKED_PROMPT = (
    "The image shows {n} marked region(s), each outlined by a coloured box labelled with its "
    "number. Describe the content of each marked region, from <region1> to <region{n}>, one line "
    "per region in the form '<regionK>: description'."
)

REGION_CROP_PROMPT = "This image is a region cropped from a larger picture. Describe its content."


def gcot_prompt(question: str, answer: str, template: str = GCOT_PROMPT) -> str:
    """The reasoning prompt of GCoT stage 1 for one question and its given answer."""
    return template.format(question=question.strip(), answer=str(answer).strip())


def grounding_prompt(phrase: str, template: str = GROUNDING_PROMPT) -> str:
    """The grounding (``Detect``-style) prompt for one keyword or phrase."""
    return template.format(phrase=phrase.replace('"', "'").strip())


def grounding_sft_prompt(question: str, template: str = GROUNDING_SFT_PROMPT) -> str:
    """The user text of one grounding SFT row: ``template`` with ``{question}`` filled in.

    >>> grounding_sft_prompt("the red ball").splitlines()[0]
    'the red ball'
    """
    return template.format(question=question.strip())


def dense_caption_prompt(template: str = DENSE_CAPTION_PROMPT) -> str:
    """The initial-caption prompt of the dense-caption pipeline (no placeholders)."""
    return template.format()


def sentence_check_prompt(sentence: str, template: str = SENTENCE_CHECK_PROMPT) -> str:
    """The yes/no visual self-check prompt for one caption sentence.

    >>> sentence_check_prompt("A dog sits.").splitlines()[1]
    '"A dog sits."'
    """
    return template.format(sentence=" ".join(str(sentence).split()))


def object_questions_prompt(
    sentences: list[str], max_questions: int, template: str = OBJECT_QUESTIONS_PROMPT
) -> str:
    """The prompt asking for follow-up questions about the objects in the golden sentences."""
    text = "\n".join(" ".join(s.split()) for s in sentences)
    return template.format(sentences=text, max_questions=max_questions)


def detail_question(obj: str, template: str = DETAIL_QUESTION) -> str:
    """The "more details" follow-up question about one object.

    >>> detail_question("red car")
    'Describe more details about the red car.'
    """
    return template.format(object=obj)


def position_question(obj: str, template: str = POSITION_QUESTION) -> str:
    """The "position" follow-up question about one object.

    >>> position_question("red car")
    'Describe the position of the red car in the image.'
    """
    return template.format(object=obj)


def detail_answer_prompt(question: str, template: str = DETAIL_ANSWER_PROMPT) -> str:
    """The user prompt that asks the VLM one follow-up question about its image."""
    return template.format(question=question.strip())


def fuse_caption_prompt(
    sentences: list[str], details: list[str], template: str = FUSE_CAPTION_PROMPT
) -> str:
    """The text-only prompt that fuses golden sentences and checked details into one caption."""
    body = "\n".join(" ".join(s.split()) for s in sentences) or "(none)"
    extra = "\n".join("- " + " ".join(d.split()) for d in details) or "(none)"
    return template.format(sentences=body, details=extra)


def region_marked_prompt(n: int, template: str = REGION_MARKED_PROMPT) -> str:
    """The prompt for an image with ``n`` numbered regions drawn on it.

    >>> "<region1> to <region3>" in region_marked_prompt(3)
    True
    """
    return template.format(n=n)


def region_crop_prompt(template: str = REGION_CROP_PROMPT) -> str:
    """The prompt for one cropped region (no placeholders)."""
    return template.format()


PLACEHOLDERS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "reasoning_prompt": (frozenset({"question", "answer"}), frozenset({"question", "answer"})),
    "grounding_prompt": (frozenset({"phrase"}), frozenset({"phrase"})),
    "joint_grounding_prompt": (frozenset({"phrases"}), frozenset({"phrases"})),
    "grounding_sft_prompt": (frozenset({"question"}), frozenset({"question"})),
    "caption_prompt": (frozenset(), frozenset()),
    "check_prompt": (frozenset({"sentence"}), frozenset({"sentence"})),
    "questions_prompt": (frozenset({"sentences"}), frozenset({"sentences", "max_questions"})),
    "detail_question": (frozenset({"object"}), frozenset({"object"})),
    "position_question": (frozenset({"object"}), frozenset({"object"})),
    "answer_prompt": (frozenset({"question"}), frozenset({"question"})),
    "fuse_prompt": (frozenset({"sentences", "details"}), frozenset({"sentences", "details"})),
    "marked_prompt": (frozenset({"n"}), frozenset({"n"})),
    "crop_prompt": (frozenset(), frozenset()),
}
"""For each prompt option: ``(required, allowed)`` placeholder names of its template."""

FAMILY_PROMPTS = frozenset({"grounding_prompt", "joint_grounding_prompt", "grounding_sft_prompt"})
"""Prompt options whose default depends on the model family: a config field of one of these
kinds left ``None`` takes the text of the model's row of :mod:`hfgcot.geometry.families`
(attribute of the same name) once the model, and so its family, is known."""


def placeholders(template: str) -> set[str]:
    """The ``{names}`` of a ``str.format`` template (``{{`` and ``}}`` are literal braces).

    >>> sorted(placeholders('Q: {question} A: {answer} {{"x": 1}}'))
    ['answer', 'question']
    """
    import string

    try:
        return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as err:
        raise ValueError(
            f"not a valid template ({err}); write literal braces as '{{{{' and '}}}}'"
        ) from None


def check_template(option: str, template: str) -> None:
    """Raise ``ValueError`` unless ``template`` fits the placeholders of prompt ``option``.

    >>> check_template("grounding_prompt", "Find the {phrase}.")
    >>> check_template("grounding_prompt", "Find the {object}.")
    Traceback (most recent call last):
    ...
    ValueError: grounding_prompt: unknown placeholder {object} (allowed: {phrase}); missing {phrase}
    """
    if not isinstance(template, str):
        raise ValueError(f"{option} must be a string, got {type(template).__name__}")
    required, allowed = PLACEHOLDERS[option]
    try:
        names = placeholders(template)
    except ValueError as err:
        raise ValueError(f"{option}: {err}") from None
    problems = []
    unknown = sorted(names - allowed)
    if unknown:
        shown = ", ".join("{" + n + "}" for n in sorted(allowed)) or "none"
        problems.append(
            f"unknown placeholder {', '.join('{' + n + '}' for n in unknown)} (allowed: {shown})"
        )
    missing = sorted(required - names)
    if missing:
        problems.append("missing " + ", ".join("{" + n + "}" for n in missing))
    if problems:
        raise ValueError(f"{option}: " + "; ".join(problems))


def default_prompts() -> dict[str, str]:
    """Every default template, by name (e.g. to build a tokenizer that knows them).

    >>> default_prompts()["region_crop"] == REGION_CROP_PROMPT
    True
    """
    return {
        "gcot": GCOT_PROMPT,
        "grounding": GROUNDING_PROMPT,
        "joint_grounding": JOINT_GROUNDING_PROMPT,
        "grounding_sft": GROUNDING_SFT_PROMPT,
        "dense_caption": DENSE_CAPTION_PROMPT,
        "sentence_check": SENTENCE_CHECK_PROMPT,
        "object_questions": OBJECT_QUESTIONS_PROMPT,
        "detail_question": DETAIL_QUESTION,
        "position_question": POSITION_QUESTION,
        "detail_answer": DETAIL_ANSWER_PROMPT,
        "fuse_caption": FUSE_CAPTION_PROMPT,
        "region_marked": REGION_MARKED_PROMPT,
        "region_crop": REGION_CROP_PROMPT,
    }


prompt_fingerprint_data = default_prompts
"""Former name of :func:`default_prompts` (kept for callers of the old API)."""
