"""Pure geometry: model frames (``smart_resize``), the model families, boxes and their validator.

No torch, transformers, datasets or PIL here. Modules:

- :mod:`hfgcot.geometry.frames` - ``smart_resize``, :class:`Frame`.
- :mod:`hfgcot.geometry.families` - the Qwen-VL families: one row of facts each.
- :mod:`hfgcot.geometry.boxes` - what a coordinate is, box formats, the one validator of boxes
  given by users (:func:`check_box`), areas and IoU.
- :mod:`hfgcot.geometry.regions` - a row's boxes for region captions, skip descriptions.

    >>> from hfgcot.geometry import smart_resize, get_family, check_box
    >>> smart_resize(480, 640), get_family("qwen3_vl").factor
    ((476, 644), 32)
    >>> check_box([0, 0, 5, 5], "xyxy")
    ([0.0, 0.0, 5.0, 5.0], None)
"""

from hfgcot.geometry.boxes import *  # noqa: F403
from hfgcot.geometry.boxes import __all__ as _boxes_all
from hfgcot.geometry.families import *  # noqa: F403
from hfgcot.geometry.families import __all__ as _families_all
from hfgcot.geometry.frames import *  # noqa: F403
from hfgcot.geometry.frames import __all__ as _frames_all

__all__ = list(dict.fromkeys([*_frames_all, *_families_all, *_boxes_all]))
