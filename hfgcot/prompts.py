"""Prompts of every pipeline (pure: no torch).

Prompts are data: each has a version in :data:`PROMPT_VERSION`, and the version plus the text are
part of every stage's fingerprint, so changing a prompt never reuses stale cached results.

    >>> gcot_prompt("What colour is the ball?", "red").startswith("Question:")
    True
    >>> grounding_prompt("red ball")
    'Locate every "red ball" in the image. Output the bounding boxes in JSON format: [{"bbox_2d": [x1, y1, x2, y2], "label": "red ball"}].'
"""

from __future__ import annotations

PROMPT_VERSION = "2026-12-03.1"  # GCoT parse/inject: one final-answer rule and phrase key

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


def joint_grounding_prompt(phrases: list[str]) -> str:
    """One request for all phrases of an image (``add_gcot(..., grounding="joint")``)."""
    return JOINT_GROUNDING_PROMPT.format(
        phrases="; ".join(f'"{p.replace(chr(34), chr(39)).strip()}"' for p in phrases)
    )


GROUNDING_SFT_PROMPT = (
    "{question}\n"
    "Locate the region of the image that this refers to or that answers it, and output its "
    'bounding box in JSON format: {{"bbox_2d": [x1, y1, x2, y2]}}.'
)
"""User turn of grounding SFT rows (:func:`hfgcot.to_grounding_sft`); ``{question}`` is the
question or referring phrase."""


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


def gcot_prompt(question: str, answer: str) -> str:
    """The reasoning prompt of GCoT stage 1 for one question and its given answer."""
    return GCOT_PROMPT.format(question=question.strip(), answer=str(answer).strip())


def grounding_prompt(phrase: str) -> str:
    """The grounding (``Detect``-style) prompt for one keyword or phrase."""
    return GROUNDING_PROMPT.format(phrase=phrase.replace('"', "'").strip())


def grounding_sft_prompt(question: str, template: str = GROUNDING_SFT_PROMPT) -> str:
    """The user text of one grounding SFT row: ``template`` with ``{question}`` filled in.

    >>> grounding_sft_prompt("the red ball").splitlines()[0]
    'the red ball'
    """
    return template.format(question=question.strip())


def dense_caption_prompt() -> str:
    """The initial-caption prompt of the dense-caption pipeline."""
    return DENSE_CAPTION_PROMPT


def sentence_check_prompt(sentence: str) -> str:
    """The yes/no visual self-check prompt for one caption sentence.

    >>> sentence_check_prompt("A dog sits.").splitlines()[1]
    '"A dog sits."'
    """
    return SENTENCE_CHECK_PROMPT.format(sentence=" ".join(str(sentence).split()))


def object_questions_prompt(sentences: list[str], max_questions: int) -> str:
    """The prompt asking for follow-up questions about the objects in the golden sentences."""
    text = "\n".join(" ".join(s.split()) for s in sentences)
    return OBJECT_QUESTIONS_PROMPT.format(sentences=text, max_questions=max_questions)


def detail_question(obj: str) -> str:
    """The "more details" follow-up question about one object.

    >>> detail_question("red car")
    'Describe more details about the red car.'
    """
    return DETAIL_QUESTION.format(object=obj)


def position_question(obj: str) -> str:
    """The "position" follow-up question about one object.

    >>> position_question("red car")
    'Describe the position of the red car in the image.'
    """
    return POSITION_QUESTION.format(object=obj)


def detail_answer_prompt(question: str) -> str:
    """The user prompt that asks the VLM one follow-up question about its image."""
    return DETAIL_ANSWER_PROMPT.format(question=question.strip())


def fuse_caption_prompt(sentences: list[str], details: list[str]) -> str:
    """The text-only prompt that fuses golden sentences and checked details into one caption."""
    body = "\n".join(" ".join(s.split()) for s in sentences) or "(none)"
    extra = "\n".join("- " + " ".join(d.split()) for d in details) or "(none)"
    return FUSE_CAPTION_PROMPT.format(sentences=body, details=extra)


def region_marked_prompt(n: int) -> str:
    """The prompt for an image with ``n`` numbered regions drawn on it.

    >>> "<region1> to <region3>" in region_marked_prompt(3)
    True
    """
    return REGION_MARKED_PROMPT.format(n=n)


def region_crop_prompt() -> str:
    """The prompt for one cropped region."""
    return REGION_CROP_PROMPT


def prompt_fingerprint_data() -> dict[str, str]:
    """Everything about the prompts that must enter a stage fingerprint."""
    return {
        "version": PROMPT_VERSION,
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
