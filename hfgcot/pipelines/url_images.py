"""Image URLs are read once per pipeline run, and the dataset keeps what was read.

When a pipeline's image column holds ``http(s)`` URLs, :func:`read_urls_first` puts
:class:`FetchUrlImagesStage` before the pipeline's own stages: it fetches each URL once (under
the pipeline's :class:`~hfgcot.images.ImagePolicy`) and writes the body into the image column,
which becomes an ``Image()`` column. Every later stage, and whoever trains on or publishes the
result, reads those bytes: a server that answers differently on a second request cannot make
two stages of one row see two images. A URL that is refused or fails is stored as a refusal
(``hfgcot-refused:<status>``), so the first stage writes its status and nothing fetches it
again. Without URLs in the column, nothing is added and the column is left as it is.

    >>> stages = read_urls_first(ds, gcot_stages(config, spec), config)   # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
from datasets import Dataset, Features, Image

from hfgcot.images import ImagePolicy, stored_image
from hfgcot.pipelines.base import Stage
from hfgcot.pipelines.config import PipelineConfig

__all__ = ["FetchUrlImagesStage", "has_url_images", "read_urls_first"]

_URL = "(?i)^https?://"


@dataclass(frozen=True)
class FetchUrlImagesStage(Stage):
    """The image column as ``Image`` storage, each URL fetched once (:func:`stored_image`).

    Example:
        >>> stage = FetchUrlImagesStage(image_policy=ImagePolicy(allow_urls=False))
        >>> stage({"image": ["a.png", "http://x.org/b.png"]})["image"][1]["path"]
        'hfgcot-refused:url_not_allowed: urls disabled'
    """

    name = "fetch_url_images"
    version = "1"
    image_column: str = "image"
    image_policy: ImagePolicy = ImagePolicy()

    def features(self) -> Features:
        return Features({self.image_column: Image(decode=False)})

    def process(self, batch: dict[str, list], rank: int | None = None) -> dict[str, list]:
        values = batch[self.image_column]
        return {self.image_column: [stored_image(v, self.image_policy) for v in values]}


def _url_count(column: pa.Array | pa.ChunkedArray) -> int:
    """Rows of an Arrow column that are URLs: strings, or ``Image`` storage with no bytes."""
    kind = column.type
    if pa.types.is_struct(kind) and {"bytes", "path"} <= {f.name for f in kind}:
        # a field of nulls only has the null type: cast both to their real types first
        paths = pc.struct_field(column, "path").cast(pa.large_string())
        data = pc.struct_field(column, "bytes").cast(pa.large_binary())
        no_bytes = pc.fill_null(pc.equal(pc.binary_length(data), 0), True)
        urls = pc.and_kleene(pc.match_substring_regex(paths, _URL), no_bytes)
    elif pa.types.is_string(kind) or pa.types.is_large_string(kind):
        urls = pc.match_substring_regex(column, _URL)
    else:
        return 0
    return int(pc.sum(pc.fill_null(urls, False).cast(pa.int64())).as_py() or 0)


def has_url_images(dataset: Dataset, column: str) -> bool:
    """Whether any row of ``column`` is an ``http(s)`` URL (or ``Image`` storage holding one
    without its bytes). Reads the column as Arrow, in batches; no image is decoded.

    >>> has_url_images(Dataset.from_dict({"image": ["a.png", "HTTPS://x.org/b.png"]}), "image")
    True
    """
    if column not in dataset.column_names:
        return False
    batches = dataset.select_columns([column]).with_format("arrow").iter(batch_size=10_000)
    return any(_url_count(batch[column]) for batch in batches)


def read_urls_first(
    dataset: Dataset, stages: Sequence[Stage], config: PipelineConfig
) -> list[Stage]:
    """``stages``, after a :class:`FetchUrlImagesStage` when ``config.image_column`` of
    ``dataset`` holds URLs (call it after checking the columns the stages would overwrite)."""
    if not has_url_images(dataset, config.image_column):
        return list(stages)
    fetch = FetchUrlImagesStage(image_column=config.image_column, image_policy=config.image_policy)
    return [fetch, *stages]
