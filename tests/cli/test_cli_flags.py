"""The CLI's options are generated from the library's dataclasses: every field is a flag, with its
help and default, and its value reaches the object the pipeline gets (no model loaded here)."""

from __future__ import annotations

import dataclasses
import json
import typing

import pytest

from hfgcot import prompts
from hfgcot.cli import build_parser, main
from hfgcot.cli.commands import PIPELINES
from hfgcot.cli.flags import Flag, dataclass_flags, doc_entries, parse_value
from hfgcot.cli.inputs import InputOptions
from hfgcot.cli.parser import command_flags
from hfgcot.cli.settings import build_config, build_model, build_ray, build_run, gather_values
from hfgcot.images import ImagePolicy
from hfgcot.model.endpoint import EndpointSpec
from hfgcot.model.spec import ModelSpec
from hfgcot.run.options import RayOptions, RunOptions

MODEL_COMMANDS = [c for c in PIPELINES.values() if c.uses_model]


def _subparser(name: str):
    return build_parser()._subparsers._group_actions[0].choices[name]


def _options(name: str) -> dict[str, object]:
    return {o: a for a in _subparser(name)._actions for o in a.option_strings}


def _field_names(cls: type) -> list[str]:
    """Every field of ``cls``, nested dataclass fields by their own names."""
    hints = typing.get_type_hints(cls)
    names = []
    for f in dataclasses.fields(cls):
        if dataclasses.is_dataclass(hints[f.name]):
            names += _field_names(hints[f.name])
        else:
            names.append(f.name)
    return names


@pytest.mark.parametrize("command", PIPELINES.values(), ids=lambda c: c.name)
def test_every_field_has_a_flag(command):
    options = _options(command.name)
    classes = [("", command.config_class()), ("", RunOptions), ("", InputOptions)]
    if command.uses_model:
        classes += [("", ModelSpec), ("", EndpointSpec), ("ray-", RayOptions)]
    for prefix, cls in classes:
        for name in _field_names(cls):
            flag = "--endpoint" if name == "base_url" else "--" + prefix + name.replace("_", "-")
            assert flag in options, f"{command.name}: {cls.__name__}.{name} has no flag {flag}"
    assert "--allow-urls" in options and "--no-allow-urls" in options  # nested, bool both ways


@pytest.mark.parametrize("command", MODEL_COMMANDS, ids=lambda c: c.name)
def test_every_model_pipeline_runs_on_ray(command):
    """``--ray-address`` runs the pipeline's own Ray entry point (``hfgcot.ray.<entry>_ray``)."""
    entry, on_ray = command.resolve(command.entry), command.resolve(command.ray)
    assert on_ray.__name__ == f"{entry.__name__}_ray"
    assert {"--ray-address", "--ray-num-actors", "--ray-output-dir"} <= set(_options(command.name))


@pytest.mark.parametrize("command", PIPELINES.values(), ids=lambda c: c.name)
def test_every_flag_has_help_and_default_and_choices(command):
    flags = command_flags(command).by_name()
    options = _options(command.name)
    for flag in flags.values():
        action = options[flag.option]
        assert flag.help.strip(), f"{flag.option} has no help text"
        assert "(default: " in action.help, flag.option
        choices = flag.shape()[1]
        if choices:
            assert all(str(c) in action.metavar for c in choices), flag.option
    helped = _subparser(command.name).format_help()
    assert "(default: " in helped and command.example.splitlines()[1].strip() in helped


def test_help_texts_are_the_library_ones():
    options = _options("gcot")
    assert options["--box-space"].help.startswith("How boxes are written into `gcot`")
    assert "(default: pixels)" in options["--box-space"].help
    policy_help = {f.name: f.metadata["help"] for f in dataclasses.fields(ImagePolicy)}
    assert options["--max-image-pixels"].help.startswith(
        policy_help["max_image_pixels"].rstrip(".")
    )
    assert options["--checkpoint-dir"].help.startswith("Folder for resumable shards")
    assert options["--dtype"].help.startswith('"auto"')
    assert options["--max-concurrency"].help.startswith("requests in flight")


def _other_value(cls: type, f: dataclasses.Field, default):
    """A valid value of field ``f`` that differs from its default."""
    base, choices, _ = next(x for x in dataclass_flags(cls) if x.name == f.name).shape()
    kind = f.metadata.get("prompt")
    if kind:
        name = kind if isinstance(kind, str) else f.name
        return " ".join("{" + p + "}" for p in sorted(prompts.PLACEHOLDERS[name][0])) + " Go!"
    if choices:
        return next(c for c in choices if c != default)
    if base is bool:
        return not default
    if base is int:
        return (default or 1) + 3
    if base is float:
        return (default or 1.0) + 0.5
    return "changed"


def _typed(name: str, value) -> list[str]:
    """The flag that sets field ``name`` to ``value`` (``--x`` / ``--no-x`` for a bool)."""
    flag = "--" + name.replace("_", "-")
    if isinstance(value, bool):
        return [flag if value else "--no-" + flag[2:]]
    return [flag, str(value)]


def _field_cases():
    for command in PIPELINES.values():
        config = command.config_class()
        for f in dataclasses.fields(config):
            if f.name == "image_policy":
                for g in dataclasses.fields(ImagePolicy):
                    yield command.name, "image_policy", ImagePolicy, g
            else:
                yield command.name, None, config, f


@pytest.mark.parametrize(
    "command, parent, cls, field", list(_field_cases()), ids=lambda v: getattr(v, "name", v)
)
def test_a_flag_value_reaches_the_config(command, parent, cls, field):
    defaults = cls()
    value = _other_value(cls, field, getattr(defaults, field.name))
    argv = _typed(field.name, value)
    cmd = PIPELINES[command]
    flags = command_flags(cmd)
    args = build_parser().parse_args([command, *argv])
    config = build_config(flags, gather_values(args, cmd, flags))
    holder = getattr(config, parent) if parent else config
    assert getattr(holder, field.name) == value


@pytest.mark.parametrize("field", dataclasses.fields(ModelSpec), ids=lambda f: f.name)
def test_a_flag_value_reaches_the_model_spec(field, tmp_path):
    value = _other_value(ModelSpec, field, getattr(ModelSpec(), field.name))
    (tmp_path / "config.json").write_text("{}")  # a model folder: checked without the Hub
    if field.name == "model":
        value = str(tmp_path)
    argv = ["gcot", "--model", str(tmp_path)]
    argv += _typed(field.name, value)
    flags = command_flags(PIPELINES["gcot"])
    spec = build_model(
        flags, gather_values(build_parser().parse_args(argv), PIPELINES["gcot"], flags)
    )
    assert isinstance(spec, ModelSpec) and getattr(spec, field.name) == value


@pytest.mark.parametrize(
    "field",
    [f for f in dataclasses.fields(EndpointSpec) if f.name != "base_url"],
    ids=lambda f: f.name,
)
def test_a_flag_value_reaches_the_endpoint_spec(field):
    default = EndpointSpec("http://h/v1", "m")
    value = _other_value(EndpointSpec, field, getattr(default, field.name))
    known = ["--family", "qwen2_5_vl", "--min-pixels", "3", "--max-pixels", "1000000"]
    argv = ["gcot", "--endpoint", "http://h/v1", *known, *_typed(field.name, value)]
    flags = command_flags(PIPELINES["gcot"])
    spec = build_model(
        flags, gather_values(build_parser().parse_args(argv), PIPELINES["gcot"], flags)
    )
    assert spec.base_url == "http://h/v1" and getattr(spec, field.name) == value


@pytest.mark.parametrize("field", dataclasses.fields(RayOptions), ids=lambda f: f.name)
def test_a_ray_flag_value_reaches_the_ray_options(field):
    value = {"output_dir": "out/ray", "storage_options": {"anon": True}}.get(field.name)
    if value is None:
        value = _other_value(RayOptions, field, getattr(RayOptions("o"), field.name))
    argv = ["gcot", "--ray-address", "auto", *_typed("ray_" + field.name, value)]
    if isinstance(value, dict):
        argv[-1] = json.dumps(value)
    flags = command_flags(PIPELINES["gcot"])
    values = gather_values(build_parser().parse_args(argv), PIPELINES["gcot"], flags)
    address, options = build_ray(flags, values)
    ray = RayOptions(**{"output_dir": "o", **options})
    assert address == "auto" and getattr(ray, field.name) == value


def test_the_short_ray_flags_of_the_first_cli_still_work():
    argv = ["gcot", "--ray-address", "auto", "--ray-actors", "3", "--ray-gpus-per-actor", "0.5"]
    flags = command_flags(PIPELINES["gcot"])
    values = gather_values(build_parser().parse_args(argv), PIPELINES["gcot"], flags)
    assert build_ray(flags, values) == ("auto", {"num_actors": 3, "num_gpus_per_actor": 0.5})


def test_ray_options_in_a_config_file(tmp_path):
    text = "ray_address: auto\nray_num_actors: 3\nray_storage_options: {anon: true}\n"
    values, flags = _config_run(tmp_path, text)
    assert build_ray(flags, values) == (
        "auto",
        {"num_actors": 3, "storage_options": {"anon": True}},
    )


@pytest.mark.parametrize("field", dataclasses.fields(RunOptions), ids=lambda f: f.name)
def test_a_flag_value_reaches_the_run_options(field):
    value = _other_value(RunOptions, field, getattr(RunOptions(), field.name))
    argv = ["sft", *_typed(field.name, value)]
    flags = command_flags(PIPELINES["sft"])
    run = build_run(flags, gather_values(build_parser().parse_args(argv), PIPELINES["sft"], flags))
    assert getattr(run, field.name) == value


def test_values_are_parsed_and_checked():
    optional = Flag("num_proc", int | None, None, "")
    assert parse_value(optional, "none") is None and parse_value(optional, "NONE") is None
    with pytest.raises(ValueError, match="expected an integer"):
        parse_value(Flag("seed", int, 0, ""), "1.5")
    with pytest.raises(ValueError, match="expected an integer"):
        parse_value(Flag("seed", int, 0, ""), True)  # from a file: a bool is no int
    with pytest.raises(ValueError, match="expected a value"):
        parse_value(Flag("seed", int, 0, ""), None)
    assert parse_value(Flag("top_p", float, 0.9, ""), 1) == 1.0
    choice = Flag("mode", typing.Literal["a", "b"], "a", "")
    with pytest.raises(ValueError, match="must be one of a, b"):
        parse_value(choice, "c")


def test_bad_flag_value_is_one_line_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["gcot", "--input", "x.jsonl", "--output", "o", "--batch-size", "many"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and len(err.strip().splitlines()) == 1
    assert "--batch-size: expected an integer, got 'many'" in err
    with pytest.raises(SystemExit) as exc:
        main(["gcot", "--box-space", "nowhere"])
    assert (
        exc.value.code == 2
        and "must be one of pixels, model, normalized" in capsys.readouterr().err
    )


def test_docstring_entries():
    def f(a, b, c):
        """Do.

        Args:
            a, b: shared text
                going on.
            c (int): uses :mod:`os`.

        Example:
            x: not an entry
        """

    assert doc_entries(f) == {
        "a": "shared text going on.",
        "b": "shared text going on.",
        "c": "uses os.",
    }


def _config_run(tmp_path, text: str, suffix: str = ".yaml", *argv: str):
    path = tmp_path / f"run{suffix}"
    path.write_text(text)
    cmd = PIPELINES["gcot"]
    flags = command_flags(cmd)
    args = build_parser().parse_args(["gcot", "--config", str(path), *argv])
    return gather_values(args, cmd, flags), flags


def test_config_file_names_types_and_precedence(tmp_path):
    prompt = tmp_path / "p.txt"
    prompt.write_text("Find {phrase} now.")
    text = (
        "pipeline: gcot\nbatch-size: 4\nmax_new_tokens: 9\nimage_policy: {allow_urls: false}\n"
        f"grounding_prompt: '@{prompt}'\ninput: in.jsonl\nnum_proc: none\n"
    )
    values, flags = _config_run(tmp_path, text, ".yaml", "--max-new-tokens", "5")
    config = build_config(flags, values)
    assert (config.batch_size, config.max_new_tokens) == (4, 5)  # the flag typed wins
    assert (
        config.image_policy.allow_urls is False and config.grounding_prompt == "Find {phrase} now."
    )
    assert values["input"] == "in.jsonl" and values["num_proc"] is None
    rows = "limit: 3\nsplit: test\nimage_root: imgs\nembed_images: false\n"
    row_values, _ = _config_run(tmp_path, rows, ".yaml", "--limit", "2")
    assert InputOptions.of(row_values) == InputOptions("test", 2, "imgs", False)  # a flag wins
    json_values, _ = _config_run(tmp_path, json.dumps({"min_side": 3, "seed": 2}), ".json")
    assert json_values == {"min_side": 3, "seed": 2}


@pytest.mark.parametrize(
    "text, message",
    [
        ("batch_sise: 2\n", "unknown option 'batch_sise' (did you mean 'batch_size'?)"),
        ("image_policy: {allow_url: false}\n", "image_policy: unknown option 'allow_url'"),
        ("image_policy: 3\n", "image_policy must be a mapping"),
        ("batch_size: many\n", "batch_size: expected an integer, got 'many'"),
        ("box_space: nowhere\n", "box_space: must be one of pixels, model, normalized"),
        (
            "pipeline: grounding_sft\n",
            "config of the 'grounding_sft' pipeline, not gcot: run `hfgcot sft",
        ),
        ("input: 3\n", "input must be a path"),
        ("- a\n- b\n", "expected a mapping of option names"),
        ("a: [\n", "not valid YAML"),
        ("reasoning_prompt: '@nowhere.txt'\n", "cannot read nowhere.txt"),
    ],
)
def test_config_file_errors(tmp_path, monkeypatch, text, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError) as exc:
        _config_run(tmp_path, text)
    assert message in str(exc.value)


def test_a_flag_name_used_twice_is_caught(monkeypatch):
    from hfgcot.cli import parser as cli_parser

    real = cli_parser.dataclass_flags

    def doubled(cls, **kwargs):
        flags = real(cls, **kwargs)
        return flags + flags[:1] if cls is RunOptions else flags

    monkeypatch.setattr(cli_parser, "dataclass_flags", doubled)
    with pytest.raises(RuntimeError, match="options named twice"):
        command_flags(PIPELINES["gcot"])


def test_family_choices_come_from_the_family_table(capsys):
    from hfgcot.geometry.families import known_families

    sft, gcot = _options("sft")["--model-family"], _options("gcot")["--family"]
    assert all(name in sft.metavar and name in gcot.metavar for name in known_families())
    with pytest.raises(SystemExit) as exc:
        main(["sft", "--model-family", "llava"])
    assert exc.value.code == 2 and "must be one of" in capsys.readouterr().err
