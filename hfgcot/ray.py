"""Ray Data entry points: GCoT on Ray (:func:`add_gcot_ray`) and the Ray executor's functions.

They live in :mod:`hfgcot.pipelines.gcot_ray` and :mod:`hfgcot.run.ray`, re-exported here.

>>> from hfgcot.ray import add_gcot_ray  # doctest: +SKIP
"""

from hfgcot.pipelines.gcot_ray import add_gcot_ray
from hfgcot.run.ray import *  # noqa: F403
from hfgcot.run.ray import __all__ as _ray_all

__all__ = ["add_gcot_ray", *_ray_all]
