"""The model side.

- :mod:`~hfgcot.model.spec`: what to load (``ModelSpec``), the per-process cache (``load_vlm``);
  :mod:`~hfgcot.model.revision`: which exact weights a name means.
- :mod:`~hfgcot.model.requests`: what an engine is asked and answers (``Request``,
  ``GenerationSettings``, ``Generation``, ``ContinuationScore``).
- :mod:`~hfgcot.model.vlm`: the in-process ``transformers`` engine; its pure helpers
  :mod:`~hfgcot.model.batching` (batches by count and tokens, out-of-memory backoff),
  :mod:`~hfgcot.model.memory` (the default token budget) and :mod:`~hfgcot.model.scoring`.
- :mod:`~hfgcot.model.endpoint` / :mod:`~hfgcot.model.endpoint_client`: the same interface over an
  OpenAI-compatible server.
"""
