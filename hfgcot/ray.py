"""Ray Data entry points; they live in :mod:`hfgcot.run.ray` and are re-exported here.

>>> from hfgcot.ray import add_gcot_ray  # doctest: +SKIP
"""

from hfgcot.run.ray import *  # noqa: F403
from hfgcot.run.ray import __all__  # noqa: F401
