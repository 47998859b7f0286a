"""One module or package per pipeline (config + stages + ``add_*``) over :mod:`hfgcot.pipelines.base`.

GCoT (:mod:`~hfgcot.pipelines.gcot`), dense captions (:mod:`~hfgcot.pipelines.dense_captions`, its
visual self-check in :mod:`~hfgcot.pipelines.self_check`), region captions, grounding SFT rows
(:mod:`~hfgcot.pipelines.grounding_sft`) and grounding predictions. A pipeline too big for one
module is a package of the same name: ``pipeline`` holds its config, stage list and entry point,
the other modules its stages, and the package re-exports them all."""
