"""Pure, never-raising readers of model text.

- :mod:`hfgcot.parsing.grounding` - boxes in any Qwen-VL form, labels of joint answers.
- :mod:`hfgcot.parsing.replies` - yes/no and marked-region answers.
- :mod:`hfgcot.parsing.answers` - the final-answer rule and VQA answer normalisation.
- :mod:`hfgcot.parsing.gcot_text` - reasoning/keyword split, keyword merging, box injection.
- :mod:`hfgcot.parsing.captions` - sentences and object lists of dense captions.
- :mod:`hfgcot.parsing.phrases` - the phrase cleaner and the one comparison key.
- :mod:`hfgcot.parsing.guard` - the never-raise safety net and its strict mode for tests.

    >>> from hfgcot.parsing import parse_grounding
    >>> parse_grounding('{"bbox_2d": [1, 2, 30, 40], "label": "cat"}')[0].label
    'cat'
"""

from hfgcot.parsing.grounding import *  # noqa: F403
from hfgcot.parsing.grounding import __all__ as _grounding_all
from hfgcot.parsing.phrases import *  # noqa: F403
from hfgcot.parsing.phrases import __all__ as _phrases_all

__all__ = [*_grounding_all, *_phrases_all]
