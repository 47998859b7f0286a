"""Executors: :mod:`~hfgcot.run.local` (``Dataset.map``, ranks, progress, size order),
:mod:`~hfgcot.run.resume` (shards and markers) and :mod:`~hfgcot.run.ray` (Ray Data). They run
stages; they know no pipeline."""
