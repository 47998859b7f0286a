"""Versioned releases. :mod:`~hfgcot.publishing.release` is the front door (``publish``,
``check_target``, ``load_release``); :mod:`~hfgcot.publishing.hub` and
:mod:`~hfgcot.publishing.local` are the two backends; :mod:`~hfgcot.publishing.targets` names
targets and versions; :mod:`~hfgcot.publishing.embedding` decides which image bytes a release
embeds; :mod:`~hfgcot.publishing.redact` keeps tokens out of logs, errors and cards;
:mod:`~hfgcot.publishing.card` (with :mod:`~hfgcot.publishing.card_records`) writes the dataset
card and :mod:`~hfgcot.publishing.provenance` the records it shows."""
