"""Which rows a subcommand reads: the input checked before anything loads, and
:class:`InputOptions` (split, limit, image folder, embedded images).

The input options are flags and config-file keys like every other option (generated from the
dataclass, :mod:`hfgcot.cli.flags`), and those that choose or change the saved rows (``split``,
``limit``, ``embed_images``) are part of the run config a pipeline records, so a run repeated
from it reads the same rows. ``image_root`` is a folder of this machine: a key of a config file,
never recorded (as ``input`` and ``output``).

    >>> InputOptions(limit=3).record("rows.jsonl")
    {'split': None, 'limit': 3, 'embed_images': True}
    >>> InputOptions(split="test").check("rows.jsonl")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: --split is for a Hub dataset or a data folder; rows.jsonl is a .jsonl/.json file: ...
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from hfgcot.cli.outputs import is_jsonl

__all__ = ["InputOptions", "check_input"]


def check_input(source: str) -> None:
    """Cheap checks of an input before anything is loaded: a file or folder named as a path
    exists; every line of a ``.jsonl`` file is a JSON object (the error names file and line)."""
    from hfgcot.io import check_jsonl
    from hfgcot.model.spec import looks_like_path

    path = Path(source).expanduser()
    if is_jsonl(source) and not path.is_file():
        raise FileNotFoundError(f"input file not found: {source}")
    if looks_like_path(source) and not path.exists():
        raise FileNotFoundError(f"input not found: {source}")
    if path.suffix.lower() == ".jsonl":
        check_jsonl(path)


def _saved_folder(source: str) -> bool:
    return (Path(source).expanduser() / "dataset_info.json").is_file()


@dataclass(frozen=True)
class InputOptions:
    """The options of reading an input and saving its images (``--split``, ``--limit``...)."""

    split: str | None = field(
        default=None,
        metadata={
            "help": "Split of a Hub dataset or a data folder (default: train); not for a saved "
            "dataset or a .jsonl file."
        },
    )
    limit: int | None = field(default=None, metadata={"help": "Only the first N rows."})
    image_root: str | None = field(
        default=None,
        metadata={
            "help": "Folder the .jsonl image paths are read in and must stay inside (default: "
            "the .jsonl's folder)."
        },
    )
    embed_images: bool | None = field(
        default=None,
        metadata={
            "help": "Store the image files in the saved dataset, so the folder can be moved "
            "(default: on for a .jsonl input, whose images are paths)."
        },
    )

    RECORDED: ClassVar[tuple[str, ...]] = ("split", "limit", "embed_images")
    """The options a run config records (those that choose or change the saved rows)."""

    def __post_init__(self) -> None:
        if self.limit is not None and self.limit < 0:
            raise ValueError(f"limit must be >= 0, got {self.limit}")

    @classmethod
    def of(cls, values: dict[str, Any]) -> InputOptions:
        """The options among ``values`` (option name -> value; others ignored)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})

    def check(self, source: str) -> None:
        """An option that does not fit the input is an error; then :func:`check_input`."""
        if self.split is not None:
            kind = "a .jsonl/.json file" if is_jsonl(source) else None
            kind = kind or ("a saved dataset" if _saved_folder(source) else None)
            if kind:
                raise ValueError(
                    f"--split is for a Hub dataset or a data folder; {source} is {kind}: "
                    "drop --split"
                )
        check_input(source)

    def embed(self, source: str) -> bool:
        """Whether the images are stored in the saved dataset (default: for a ``.jsonl``)."""
        return self.embed_images if self.embed_images is not None else is_jsonl(source)

    def load(self, source: str, image_column: str = "image") -> Any:
        """The input's rows (:func:`hfgcot.io.load_input`)."""
        from hfgcot.io import load_input

        split = self.split if self.split is not None else "train"
        return load_input(
            source, image_column=image_column, split=split, limit=self.limit,
            image_root=self.image_root,
        )  # fmt: skip

    def record(self, source: str) -> dict[str, Any]:
        """What a run config records of them (:data:`RECORDED`, ``embed_images`` resolved)."""
        return {"split": self.split, "limit": self.limit, "embed_images": self.embed(source)}
