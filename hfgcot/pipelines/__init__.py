"""One module per pipeline (config + stages + ``add_*``) over :mod:`hfgcot.pipelines.base`.

GCoT (:mod:`~hfgcot.pipelines.gcot`), dense captions (:mod:`~hfgcot.pipelines.dense_captions`, its
visual self-check in :mod:`~hfgcot.pipelines.self_check`), region captions, grounding SFT rows and
grounding predictions."""
