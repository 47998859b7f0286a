"""The model side: :mod:`~hfgcot.model.spec` (what to load, revision, the per-process cache) and
:mod:`~hfgcot.model.vlm` (requests, generation settings, the batched ``transformers`` engine)."""
