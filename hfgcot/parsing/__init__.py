"""Pure, never-raising readers of model text.

- :mod:`hfgcot.parsing.grounding` - boxes in any Qwen-VL form, yes/no, region answers.
- :mod:`hfgcot.parsing.answers` - the final-answer rule and VQA answer normalisation.
- :mod:`hfgcot.parsing.gcot_text` - reasoning/keyword split, keyword merging, box injection.
- :mod:`hfgcot.parsing.captions` - sentences and object lists of dense captions.

    >>> from hfgcot.parsing import parse_grounding
    >>> parse_grounding('{"bbox_2d": [1, 2, 30, 40], "label": "cat"}')[0].label
    'cat'
"""

from hfgcot.parsing.grounding import *  # noqa: F403
from hfgcot.parsing.grounding import __all__ as _grounding_all

__all__ = list(_grounding_all)
