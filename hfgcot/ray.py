"""Ray Data entry points: every model pipeline on a Ray cluster, and the Ray executor's functions.

:func:`add_gcot_ray`, :func:`add_dense_captions_ray`, :func:`add_region_captions_ray` and
:func:`add_grounding_predictions_ray` (from :mod:`hfgcot.pipelines.on_ray`), their options
:class:`~hfgcot.run.options.RayOptions`, and :mod:`hfgcot.run.ray`'s functions, re-exported here.

>>> from hfgcot.ray import add_gcot_ray  # doctest: +SKIP
"""

from hfgcot.pipelines.on_ray import (
    add_dense_captions_ray,
    add_gcot_ray,
    add_grounding_predictions_ray,
    add_region_captions_ray,
)
from hfgcot.run.options import RayOptions
from hfgcot.run.ray import *  # noqa: F403
from hfgcot.run.ray import __all__ as _ray_all

__all__ = [
    "RayOptions",
    "add_dense_captions_ray",
    "add_gcot_ray",
    "add_grounding_predictions_ray",
    "add_region_captions_ray",
    *_ray_all,
]
