"""The toy model's training recipe: a one-million-parameter Qwen2.5-VL that knows shapes.

Not part of the library: :mod:`hfgcot` ships the trained checkpoint (``hfgcot/data/tiny-shapes``)
and the scenes it learned from (:mod:`hfgcot.testing.shapes`); this folder is how it was made.
Modules, by concern: ``options`` (arguments, task mix, schedules), ``rows`` (one chat per task),
``data`` (batches and dense targets), ``model`` (model, processor, number codes), ``losses``
(answers and auxiliary probes) and ``train`` (the loop). ``NOTES.md`` holds what was measured.
"""
