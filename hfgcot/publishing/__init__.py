"""Versioned releases: :mod:`~hfgcot.publishing.hub` (the Hub backend and ``publish``),
:mod:`~hfgcot.publishing.local` (a local release folder), :mod:`~hfgcot.publishing.card` and
:mod:`~hfgcot.publishing.provenance`."""
