"""Pipeline configs: frozen dataclasses of options with help texts, one validation, and how an
entry point turns ``model``, ``config=`` and ``**options`` into a config, run options and a spec.

Every option of a pipeline is a field made with :func:`option` (or :func:`prompt_option` for a
prompt template); the CLI and config files are generated from these fields.

    >>> cfg, run, load = split_options(PipelineConfig, None, {"batch_size": 2, "num_proc": 3})
    >>> cfg.batch_size, run.num_proc, load
    (2, 3, {})
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Any, TypeVar

from hfgcot import prompts
from hfgcot.errors import validate_choices
from hfgcot.geometry.families import get_family
from hfgcot.images import ImagePolicy
from hfgcot.model.endpoint import EndpointSpec
from hfgcot.model.spec import ModelSpec, model_family, model_spec
from hfgcot.model.vlm import GenerationSettings
from hfgcot.run.options import RayOptions, RunOptions

_Config = TypeVar("_Config", bound="PipelineConfig")


def option(default: Any = dataclasses.MISSING, help: str = "", **meta: Any) -> Any:  # noqa: A002
    """A config field with its one-line help text (and optional checks) in its metadata.

    ``min=`` (number: the value, when not None, must be >= it) and ``prompt=True`` (the value
    is a template checked by :func:`hfgcot.prompts.check_template`) are checked by
    :meth:`PipelineConfig.__post_init__`. The CLI reads ``help`` from ``field.metadata``, and
    ``choices=`` (the valid values, or a function returning them) for a field whose type is not
    a ``Literal`` (the family names of the family table).

    >>> @dataclasses.dataclass(frozen=True)
    ... class C:
    ...     n: int = option(1, "How many.", min=1)
    >>> dataclasses.fields(C)[0].metadata["help"]
    'How many.'
    """
    return dataclasses.field(default=default, metadata={"help": help, **meta})


def prompt_option(default: str | None, help: str, kind: str | None = None) -> Any:  # noqa: A002
    """A prompt template field, checked against ``hfgcot.prompts.PLACEHOLDERS[kind]``.

    ``kind`` defaults to the field's own name (``"reasoning_prompt"``...). A kind in
    :data:`hfgcot.prompts.FAMILY_PROMPTS` may default to ``None``: the model family's text
    (:meth:`PipelineConfig.for_family`).
    """
    return option(default, help, prompt=kind or True)


def _prompt_kind(f: dataclasses.Field) -> str | None:
    kind = f.metadata.get("prompt")
    return (kind if isinstance(kind, str) else f.name) if kind else None


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
    """Fields every pipeline has, and the one validation of every config.

    Subclasses are frozen dataclasses whose fields are made with :func:`option`; building one
    checks ``Literal`` choices, minimums, finite floats and prompt placeholders, so a bad value
    is a ``ValueError`` before any image is read or model called.

    Example:
        >>> PipelineConfig(batch_size=0)
        Traceback (most recent call last):
        ...
        ValueError: batch_size must be >= 1, got 0
    """

    image_column: str = option(
        "image", "Input column with the images (Image() feature, path or bytes)."
    )
    batch_size: int = option(
        8,
        "Rows per map batch (and requests per generate call); "
        "at least max_concurrency for a served model.",
        min=1,
    )
    image_policy: ImagePolicy = option(
        ImagePolicy(),
        "Which images are accepted and how they are read (hfgcot.images.ImagePolicy).",
    )
    overwrite_columns: bool = option(
        False, "Allow output columns that already exist in the input to be replaced."
    )

    def __post_init__(self) -> None:
        validate_choices(self)
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            low = f.metadata.get("min")
            if low is not None and value is not None and value < low:
                raise ValueError(f"{f.name} must be >= {low}, got {value}")
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"{f.name} must be a finite number, got {value}")
            kind = _prompt_kind(f)
            if kind and not (value is None and kind in prompts.FAMILY_PROMPTS):
                prompts.check_template(kind, value)
        if not isinstance(self.image_policy, ImagePolicy):
            raise ValueError(f"image_policy must be an ImagePolicy, got {self.image_policy!r}")
        self.validate()

    def validate(self) -> None:
        """Checks of one pipeline beyond the field rules (override; raise ``ValueError``)."""

    def for_family(self: _Config, family: str) -> _Config:
        """This config with each family-default prompt left ``None`` set to ``family``'s text.

        >>> from hfgcot.pipelines.grounding_sft import GroundingSFTConfig
        >>> GroundingSFTConfig().for_family("qwen2_vl").prompt.endswith("or that answers it.")
        True
        """
        row = get_family(family)
        filled = {
            f.name: getattr(row, kind)
            for f in dataclasses.fields(self)
            if (kind := _prompt_kind(f)) in prompts.FAMILY_PROMPTS and getattr(self, f.name) is None
        }
        return dataclasses.replace(self, **filled) if filled else self

    def prompts(self) -> dict[str, str | None]:
        """The prompt templates of this config (and ``system_prompt``), by field name.

        >>> PipelineConfig().prompts()
        {}
        """
        names = [f.name for f in dataclasses.fields(self) if f.metadata.get("prompt")]
        if any(f.name == "system_prompt" for f in dataclasses.fields(self)):
            names.append("system_prompt")
        return {name: getattr(self, name) for name in names}


@dataclasses.dataclass(frozen=True)
class ModelPipelineConfig(PipelineConfig):
    """The fields of every pipeline that runs a model: generation settings and a system turn.

    Example:
        >>> ModelPipelineConfig(max_new_tokens=64).generation().max_new_tokens
        64
    """

    max_new_tokens: int = option(512, "Most new tokens per generated answer.", min=1)
    do_sample: bool = option(False, "Sample instead of greedy decoding.")
    temperature: float = option(0.7, "Sampling temperature (with do_sample).")
    top_p: float = option(0.9, "Nucleus sampling mass (with do_sample).")
    seed: int = option(0, "Seed of sampled generation (per request, reproducible).")
    cache_implementation: str | None = option(
        None, "transformers KV-cache implementation, e.g. 'static' (compiled decode on CUDA)."
    )
    max_batch_tokens: int | None = option(
        None,
        "Most prompt tokens (images included) per forward pass; default: what fits in GPU memory.",
        min=1,
    )
    system_prompt: str | None = option(
        None, "System turn of every request; default: the chat template's own."
    )

    def model_stage_fields(self, spec: Any) -> dict[str, Any]:
        """The :class:`ModelStage` fields every model stage of the pipeline takes from the config.

        >>> sorted(ModelPipelineConfig(max_batch_tokens=4096).model_stage_fields(None))
        ['batch_size', 'max_batch_tokens', 'model', 'system_prompt']
        """
        return {
            "model": spec,
            "batch_size": self.batch_size,
            "max_batch_tokens": self.max_batch_tokens,
            "system_prompt": self.system_prompt,
        }

    def generation(self, max_new_tokens: int | None = None) -> GenerationSettings:
        """The generation settings of the config (``max_new_tokens`` overrides its budget)."""
        return GenerationSettings(
            max_new_tokens=max_new_tokens or self.max_new_tokens,
            do_sample=self.do_sample,
            temperature=self.temperature,
            top_p=self.top_p,
            seed=self.seed,
            cache_implementation=self.cache_implementation,
        )


LOAD_OPTIONS = tuple(f.name for f in dataclasses.fields(ModelSpec) if f.name != "model")
"""Model loading options accepted by every model entry point (fields of ``ModelSpec``)."""


def resolve_model(model: Any, load: dict[str, Any]) -> ModelSpec:
    """A :class:`ModelSpec` for a Hub id, a folder, a ``ModelSpec`` or a loaded VLM.

    Loading options (``revision``, ``dtype``, ``trust_remote_code``...) build or update the spec;
    with an already loaded VLM, one that is not its default is a ``TypeError`` (the model is
    loaded: pass them to ``load_vlm``).

    >>> resolve_model("org/m", {"dtype": "bfloat16"}).dtype
    'bfloat16'
    >>> resolve_model(ModelSpec("org/m"), {"trust_remote_code": True}).trust_remote_code
    True
    """
    if isinstance(model, ModelSpec):
        return dataclasses.replace(model, **load)
    if isinstance(model, EndpointSpec):  # a served model: only what a client can honour
        return model.with_load_options(**load)  # type: ignore[return-value]
    defaults = {f.name: f.default for f in dataclasses.fields(ModelSpec)}
    changed = {k: v for k, v in load.items() if v != defaults[k]}
    if changed and not isinstance(model, str | os.PathLike):
        raise TypeError(
            f"loading options {sorted(changed)} cannot apply to an already loaded model; "
            "pass them to hfgcot.load_vlm, or give a Hub id, folder or ModelSpec"
        )
    return model_spec(model, **load)


def config_for_model(config: PipelineConfig, spec: Any) -> Any:
    """``config`` with its family-default prompts filled in for the family of model ``spec``.

    The family is read without loading the model (:func:`~hfgcot.model.spec.model_family`), so
    a model outside the known families is refused here, before any row is read. When its
    config cannot be read, the prompts stay ``None`` and the stages take the loaded model's.
    """
    family = model_family(spec)
    return config.for_family(family) if family is not None else config


def split_options(
    config_cls: type[PipelineConfig],
    config: PipelineConfig | None,
    options: dict[str, Any],
    *,
    extra: tuple[str, ...] = LOAD_OPTIONS,
    allow_ray: bool = True,
) -> tuple[Any, RunOptions | RayOptions, dict[str, Any]]:
    """``(config, run options, other options)`` of an entry point's ``config=`` and ``**options``.

    Config fields given as options are applied on top of ``config`` (or of the defaults) with
    ``dataclasses.replace``, and so are the fields of its ``image_policy`` (``allow_urls``,
    ``url_timeout``...); ``num_proc``, ``checkpoint_dir``, ``shard_size``, ``sort_window``
    (or ``run=RunOptions(...)``) make the run options; ``run=RayOptions(...)`` runs on Ray
    (unless ``allow_ray=False``), where the local run options are refused. Names in ``extra`` (the
    loading options by default) are returned as they are. Any other name is a ``TypeError``
    naming the valid ones.

    >>> cfg, run, load = split_options(PipelineConfig, None, {"batch_size": 2, "num_proc": 3})
    >>> cfg.batch_size, run.num_proc, load
    (2, 3, {})
    >>> split_options(PipelineConfig, None, {"allow_urls": False})[0].image_policy.allow_urls
    False
    >>> split_options(PipelineConfig, None, {"run": RayOptions("s3://b/x"), "num_proc": 2})
    Traceback (most recent call last):
    ...
    TypeError: num_proc: options of local runs (num_proc, checkpoint_dir, shard_size, sort_window); on Ray, num_actors and num_gpus_per_actor decide the work
    """
    if config is not None and not isinstance(config, config_cls):
        raise TypeError(f"config must be a {config_cls.__name__}, got {type(config).__name__}")
    fields = {f.name for f in dataclasses.fields(config_cls)}
    policy_fields = {f.name for f in dataclasses.fields(ImagePolicy)}
    run_fields = {f.name for f in dataclasses.fields(RunOptions)}
    known = fields | policy_fields | run_fields | set(extra) | {"run"}
    unknown = sorted(set(options) - known)
    if unknown:
        valid = ", ".join(sorted(known))
        raise TypeError(f"unknown option(s) {', '.join(unknown)}; valid options: {valid}")
    run = options.get("run") or RunOptions()
    executors = (RunOptions, RayOptions) if allow_ray else (RunOptions,)
    if not isinstance(run, executors):
        names = " or ".join(e.__name__ for e in executors)
        raise TypeError(f"run must be a {names}, got {type(run).__name__}")
    run_set = {k: v for k, v in options.items() if k in run_fields}
    if run_set and isinstance(run, RayOptions):
        raise TypeError(
            f"{', '.join(sorted(run_set))}: options of local runs (num_proc, checkpoint_dir, "
            "shard_size, sort_window); on Ray, num_actors and num_gpus_per_actor decide the work"
        )
    run = dataclasses.replace(run, **run_set) if run_set else run
    settings = {k: v for k, v in options.items() if k in fields}
    if config is None:
        config = config_cls(**settings)
    elif settings:
        config = dataclasses.replace(config, **settings)
    policy = {k: v for k, v in options.items() if k in policy_fields}
    if policy:
        policy_options = dataclasses.replace(config.image_policy, **policy)
        config = dataclasses.replace(config, image_policy=policy_options)
    return config, run, {k: v for k, v in options.items() if k in extra}
