"""Pure geometry: model frames (``smart_resize``), boxes, the family table, the user-box validator.

No torch, transformers, datasets or PIL here. Modules:

- :mod:`hfgcot.geometry.frames` - ``smart_resize``, :class:`Frame`, box helpers.
- :mod:`hfgcot.geometry.families` - the Qwen-VL families: one row of facts each.
- :mod:`hfgcot.geometry.regions` - validation of boxes given by users.

    >>> from hfgcot.geometry import smart_resize, get_family
    >>> smart_resize(480, 640), get_family("qwen3_vl").factor
    ((476, 644), 32)
"""

from hfgcot.geometry.families import *  # noqa: F403
from hfgcot.geometry.families import __all__ as _families_all
from hfgcot.geometry.frames import *  # noqa: F403
from hfgcot.geometry.frames import __all__ as _frames_all

__all__ = list(dict.fromkeys([*_frames_all, *_families_all]))
