"""``hfgcot.prompts``: default templates and the placeholder rule of every prompt option."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hfgcot import prompts

PIECES = st.sampled_from(
    ["Find ", "{phrase}", "{question}", "{answer}", "{object}", "{{", "}}", "{", "}", " x ", "{0}"]
)


@given(st.sampled_from(sorted(prompts.PLACEHOLDERS)), st.lists(PIECES, max_size=8))
def test_a_template_is_accepted_exactly_when_its_placeholders_fit(option, pieces):
    template = "".join(pieces)
    required, allowed = prompts.PLACEHOLDERS[option]
    try:
        names = prompts.placeholders(template)
    except ValueError:
        with pytest.raises(ValueError, match=option):
            prompts.check_template(option, template)
        return
    if required <= names <= allowed:
        prompts.check_template(option, template)
        template.format(**dict.fromkeys(names, "v"))  # and it can be filled
    else:
        with pytest.raises(ValueError, match=option):
            prompts.check_template(option, template)


def test_every_default_template_fits_its_option():
    defaults = {
        "reasoning_prompt": prompts.GCOT_PROMPT,
        "grounding_prompt": prompts.GROUNDING_PROMPT,
        "joint_grounding_prompt": prompts.JOINT_GROUNDING_PROMPT,
        "grounding_sft_prompt": prompts.GROUNDING_SFT_PROMPT,
        "caption_prompt": prompts.DENSE_CAPTION_PROMPT,
        "check_prompt": prompts.SENTENCE_CHECK_PROMPT,
        "questions_prompt": prompts.OBJECT_QUESTIONS_PROMPT,
        "detail_question": prompts.DETAIL_QUESTION,
        "position_question": prompts.POSITION_QUESTION,
        "answer_prompt": prompts.DETAIL_ANSWER_PROMPT,
        "fuse_prompt": prompts.FUSE_CAPTION_PROMPT,
        "marked_prompt": prompts.REGION_MARKED_PROMPT,
        "crop_prompt": prompts.REGION_CROP_PROMPT,
    }
    assert set(defaults) == set(prompts.PLACEHOLDERS)
    for option, template in defaults.items():
        prompts.check_template(option, template)


def test_templates_are_filled_with_the_given_text():
    assert prompts.grounding_prompt('the "red" ball', "Find {phrase}.") == "Find the 'red' ball."
    assert prompts.gcot_prompt(" Why? ", " red ", "{question}|{answer}") == "Why?|red"
    assert prompts.region_marked_prompt(2, "{n} boxes") == "2 boxes"
    with pytest.raises(ValueError, match="must be a string"):
        prompts.check_template("crop_prompt", None)  # type: ignore[arg-type]
