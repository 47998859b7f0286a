"""Pure geometry: model frames (``smart_resize``), boxes and the user-box validator.

No torch, transformers, datasets or PIL here. Modules:

- :mod:`hfgcot.geometry.frames` - ``smart_resize``, :class:`Frame`, box helpers, the families.
- :mod:`hfgcot.geometry.regions` - validation of boxes given by users.

    >>> from hfgcot.geometry import smart_resize
    >>> smart_resize(480, 640)
    (476, 644)
"""

from hfgcot.geometry.frames import *  # noqa: F403
from hfgcot.geometry.frames import __all__ as _frames_all

__all__ = list(_frames_all)
