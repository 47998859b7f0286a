"""Tests for hfgcot.images: every case is built on the fly with PIL / numpy."""

from __future__ import annotations

import io
import logging
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hfgcot.images import ImagePolicy, encode_image, image_size, load_image


def _png_bytes(img: Image.Image, **params: object) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, format="PNG", **params)
    return buffer.getvalue()


def _noise(width: int, height: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def _assert_ok(result: tuple[Image.Image | None, str], size: tuple[int, int]) -> Image.Image:
    img, status = result
    assert status == "ok"
    assert img is not None
    assert img.mode == "RGB"
    assert img.size == size
    return img


def _close(actual: tuple[int, ...], expected: tuple[int, ...], tol: int = 12) -> bool:
    return all(abs(a - e) <= tol for a, e in zip(actual, expected, strict=True))


# --------------------------------------------------------------------------------------------
# missing / unreadable values
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [None, "", {"bytes": None, "path": None}, {}])
def test_missing_image(value: object) -> None:
    assert load_image(value) == (None, "missing_image")
    assert image_size(value) is None


def test_zero_byte_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    assert load_image(path) == (None, "empty_file")
    assert load_image(str(path)) == (None, "empty_file")
    assert load_image(b"") == (None, "empty_file")
    assert load_image({"bytes": b"", "path": None}) == (None, "empty_file")


def test_missing_path_reports_basename_only(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "nope.png"
    img, status = load_image(str(path))
    assert img is None
    assert status == "file_not_found: nope.png"
    assert str(tmp_path) not in status
    assert load_image({"bytes": None, "path": str(path)})[1] == "file_not_found: nope.png"


def test_directory_is_unreadable(tmp_path: Path) -> None:
    assert load_image(tmp_path)[1] == f"unreadable_file: {tmp_path.name}"


def test_text_file_named_png(tmp_path: Path) -> None:
    path = tmp_path / "fake.png"
    path.write_text("this is not an image\n")
    assert load_image(path) == (None, "undecodable_image")
    assert image_size(path) is None


def test_truncated_jpeg(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    _noise(64, 48).save(buffer, format="JPEG", quality=90)
    data = buffer.getvalue()
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: len(data) // 2])
    assert load_image(path) == (None, "truncated_image")
    assert load_image(data[: len(data) // 2]) == (None, "truncated_image")
    # the header is intact: the size is still known without decoding
    assert image_size(path) == (64, 48)


def test_truncated_png() -> None:
    data = _png_bytes(_noise(64, 64))
    assert load_image(data[: len(data) // 2]) == (None, "truncated_image")


@pytest.mark.parametrize("value", [12, 3.5, ["a.png"], np.zeros((4, 4), np.uint8)])
def test_unsupported_value(value: object) -> None:
    img, status = load_image(value)
    assert img is None
    assert status == f"unsupported_value: {type(value).__name__}"


def test_unsupported_url_scheme() -> None:
    assert load_image("s3://bucket/key.png") == (None, "unsupported_value: s3 url")


# --------------------------------------------------------------------------------------------
# value kinds
# --------------------------------------------------------------------------------------------


def test_storage_dict_bytes_path_and_raw_bytes(tmp_path: Path) -> None:
    src = Image.new("RGB", (40, 30), (10, 200, 30))
    data = _png_bytes(src)
    path = tmp_path / "a.png"
    path.write_bytes(data)

    from_bytes = _assert_ok(load_image({"bytes": data, "path": None}), (40, 30))
    assert from_bytes.getpixel((5, 5)) == (10, 200, 30)
    # bytes win over a path (even a missing one)
    _assert_ok(load_image({"bytes": data, "path": "missing/elsewhere.png"}), (40, 30))
    from_path = _assert_ok(load_image({"bytes": None, "path": str(path)}), (40, 30))
    assert from_path.getpixel((0, 0)) == (10, 200, 30)
    _assert_ok(load_image(data), (40, 30))
    _assert_ok(load_image(bytearray(data)), (40, 30))
    _assert_ok(load_image(memoryview(data)), (40, 30))
    _assert_ok(load_image(path), (40, 30))
    _assert_ok(load_image(path.as_uri()), (40, 30))
    assert image_size({"bytes": data, "path": None}) == (40, 30)
    assert image_size(str(path)) == (40, 30)


def test_pil_input_is_not_mutated() -> None:
    src = Image.new("RGBA", (30, 30), (255, 0, 0, 0))
    img = _assert_ok(load_image(src), (30, 30))
    assert img is not src
    assert src.mode == "RGBA"
    assert img.getpixel((0, 0)) == (255, 255, 255)

    rgb = Image.new("RGB", (30, 30), (1, 2, 3))
    out = _assert_ok(load_image(rgb), (30, 30))
    assert out is not rgb
    out.putpixel((0, 0), (9, 9, 9))
    assert rgb.getpixel((0, 0)) == (1, 2, 3)


def test_lazy_pil_file_input(tmp_path: Path) -> None:
    path = tmp_path / "lazy.png"
    Image.new("L", (32, 32), 77).save(path)
    with Image.open(path) as lazy:
        img = _assert_ok(load_image(lazy), (32, 32))
    assert img.getpixel((3, 3)) == (77, 77, 77)


# --------------------------------------------------------------------------------------------
# mode conversion
# --------------------------------------------------------------------------------------------


def test_16bit_png_scales_to_8bit(tmp_path: Path) -> None:
    ramp = np.linspace(0, 65535, 64).round().astype(np.uint16)
    gradient = np.tile(ramp, (32, 1))
    gradient[0, 1] = 128 * 257  # exactly mid-grey in 16-bit
    path = tmp_path / "deep.png"
    Image.fromarray(gradient).save(path)
    with Image.open(path) as reopened:
        assert reopened.mode.startswith("I;16")

    img = _assert_ok(load_image(path), (64, 32))
    arr = np.asarray(img)
    assert arr[5, 63].tolist() == [255, 255, 255]  # 65535 -> 255, not clipped
    assert arr[5, 0].tolist() == [0, 0, 0]
    assert arr[0, 1].tolist() == [128, 128, 128]
    row = arr[5, :, 0].astype(int)
    assert np.all(np.diff(row) >= 0)  # monotone gradient, no wrap-around
    assert len(np.unique(row)) > 50


def test_32bit_int_image_with_16bit_data() -> None:
    data = np.full((30, 30), 65535, dtype=np.int32)
    data[0, 0] = 257 * 10
    img = _assert_ok(load_image(Image.fromarray(data, mode="I")), (30, 30))
    assert img.getpixel((1, 1)) == (255, 255, 255)
    assert img.getpixel((0, 0)) == (10, 10, 10)

    eight_bit = np.full((30, 30), 200, dtype=np.int32)
    img = _assert_ok(load_image(Image.fromarray(eight_bit, mode="I")), (30, 30))
    assert img.getpixel((0, 0)) == (200, 200, 200)


def test_float_image() -> None:
    data = np.full((30, 30), 1.0, dtype=np.float32)
    data[0, 0] = 0.5
    data[0, 1] = np.nan
    img = _assert_ok(load_image(Image.fromarray(data, mode="F")), (30, 30))
    assert img.getpixel((1, 1)) == (255, 255, 255)
    assert img.getpixel((0, 0)) == (128, 128, 128)
    assert img.getpixel((1, 0)) == (0, 0, 0)


def test_cmyk_jpeg(tmp_path: Path) -> None:
    path = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (32, 32), (0, 255, 255, 0)).save(path, quality=95)
    with Image.open(path) as reopened:
        assert reopened.mode == "CMYK"
    img = _assert_ok(load_image(path), (32, 32))
    assert _close(img.getpixel((16, 16)), (255, 0, 0), tol=30)


def test_palette_png_with_transparency(tmp_path: Path) -> None:
    pal = Image.new("P", (30, 30), 1)
    pal.putpalette([0, 0, 0, 255, 0, 0, 0, 0, 255] + [0] * (256 * 3 - 9))
    pal.putpixel((0, 0), 0)  # transparent (black in the palette)
    pal.putpixel((1, 0), 2)  # blue
    path = tmp_path / "pal.png"
    pal.save(path, transparency=0)
    with Image.open(path) as reopened:
        assert reopened.mode == "P"
        assert "transparency" in reopened.info

    img = _assert_ok(load_image(path), (30, 30))
    assert img.getpixel((0, 0)) == (255, 255, 255)
    assert img.getpixel((1, 0)) == (0, 0, 255)
    assert img.getpixel((5, 5)) == (255, 0, 0)


def test_palette_without_transparency() -> None:
    pal = Image.new("P", (30, 30), 1)
    pal.putpalette([0, 0, 0, 0, 255, 0] + [0] * (256 * 3 - 6))
    img = _assert_ok(load_image(_png_bytes(pal)), (30, 30))
    assert img.getpixel((0, 0)) == (0, 255, 0)


def test_la_composited_on_white() -> None:
    la = Image.new("LA", (30, 30), (0, 255))
    la.putpixel((0, 0), (0, 0))
    la.putpixel((1, 0), (0, 128))
    img = _assert_ok(load_image(_png_bytes(la)), (30, 30))
    assert img.getpixel((0, 0)) == (255, 255, 255)
    assert img.getpixel((5, 5)) == (0, 0, 0)
    assert _close(img.getpixel((1, 0)), (127, 127, 127), tol=2)


def test_rgba_composited_on_white(tmp_path: Path) -> None:
    rgba = Image.new("RGBA", (30, 30), (0, 0, 255, 255))
    rgba.putpixel((0, 0), (255, 0, 0, 0))
    rgba.putpixel((1, 0), (0, 0, 0, 128))
    path = tmp_path / "rgba.png"
    rgba.save(path)
    img = _assert_ok(load_image(path), (30, 30))
    assert img.getpixel((0, 0)) == (255, 255, 255)
    assert img.getpixel((5, 5)) == (0, 0, 255)
    assert _close(img.getpixel((1, 0)), (127, 127, 127), tol=2)


def test_rgb_png_with_trns_key() -> None:
    rgb = Image.new("RGB", (30, 30), (10, 20, 30))
    rgb.putpixel((0, 0), (1, 2, 3))
    img = _assert_ok(load_image(_png_bytes(rgb, transparency=(1, 2, 3))), (30, 30))
    assert img.getpixel((0, 0)) == (255, 255, 255)
    assert img.getpixel((1, 1)) == (10, 20, 30)


@pytest.mark.parametrize(
    ("mode", "color", "expected"),
    [("L", 100, (100, 100, 100)), ("1", 1, (255, 255, 255)), ("RGB", (1, 2, 3), (1, 2, 3))],
)
def test_simple_modes(mode: str, color: object, expected: tuple[int, int, int]) -> None:
    img = _assert_ok(load_image(_png_bytes(Image.new(mode, (30, 28), color))), (30, 28))
    assert img.getpixel((3, 3)) == expected


def test_ycbcr_and_hsv() -> None:
    ycc = Image.new("RGB", (30, 30), (200, 50, 50)).convert("YCbCr")
    img = _assert_ok(load_image(ycc), (30, 30))
    assert _close(img.getpixel((0, 0)), (200, 50, 50), tol=3)
    hsv = Image.new("HSV", (30, 30), (0, 255, 255))
    img = _assert_ok(load_image(hsv), (30, 30))
    assert img.getpixel((0, 0)) == (255, 0, 0)


# --------------------------------------------------------------------------------------------
# EXIF orientation
# --------------------------------------------------------------------------------------------


def _rotated_jpeg(path: Path, orientation: int) -> None:
    """A 60x40 stored image, white with a red 10x10 marker in the stored top-left corner."""
    img = Image.new("RGB", (60, 40), (255, 255, 255))
    img.paste((255, 0, 0), (0, 0, 10, 10))
    exif = Image.Exif()
    exif[0x0112] = orientation
    img.save(path, format="JPEG", quality=95, exif=exif.tobytes())


@pytest.mark.parametrize(
    ("orientation", "marker", "elsewhere"),
    [
        (6, (34, 5), (5, 5)),  # rotate 90 clockwise: stored top-left -> top-right
        (8, (5, 54), (5, 5)),  # rotate 90 counter-clockwise: stored top-left -> bottom-left
    ],
)
def test_exif_rotated_jpeg(
    tmp_path: Path, orientation: int, marker: tuple[int, int], elsewhere: tuple[int, int]
) -> None:
    path = tmp_path / f"rot{orientation}.jpg"
    _rotated_jpeg(path, orientation)
    with Image.open(path) as raw:
        assert raw.size == (60, 40)

    img = _assert_ok(load_image(path), (40, 60))
    assert _close(img.getpixel(marker), (255, 0, 0), tol=40)
    assert _close(img.getpixel(elsewhere), (255, 255, 255))
    assert image_size(path) == (40, 60)
    assert image_size(path.read_bytes()) == (40, 60)
    # the result carries no stale orientation: encoding and reloading keeps the frame
    again = _assert_ok(load_image(encode_image(img)), (40, 60))
    assert _close(again.getpixel(marker), (255, 0, 0), tol=40)


def test_exif_rotated_size_in_policy_status(tmp_path: Path) -> None:
    path = tmp_path / "small.jpg"
    img = Image.new("RGB", (30, 20))
    exif = Image.Exif()
    exif[0x0112] = 6
    img.save(path, exif=exif.tobytes())
    assert load_image(path) == (None, "image_too_small: 20x30")


# --------------------------------------------------------------------------------------------
# policy
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("width", "height"), [(1, 300), (300, 1), (20, 20), (27, 500)])
def test_too_small(width: int, height: int) -> None:
    status = f"image_too_small: {width}x{height}"
    assert load_image(_png_bytes(Image.new("RGB", (width, height)))) == (None, status)


def test_min_side_boundary() -> None:
    _assert_ok(load_image(Image.new("RGB", (28, 28))), (28, 28))
    _assert_ok(load_image(Image.new("RGB", (20, 20)), ImagePolicy(min_side=1)), (20, 20))


def test_aspect_ratio() -> None:
    tall = _png_bytes(Image.new("RGB", (28, 5628)))
    assert load_image(tall) == (None, "aspect_ratio_too_large: 28x5628")
    wide = Image.new("RGB", (5628, 28))
    assert load_image(wide) == (None, "aspect_ratio_too_large: 5628x28")
    _assert_ok(load_image(Image.new("RGB", (28, 5600))), (28, 5600))  # exactly 200
    loose = ImagePolicy(max_aspect_ratio=300.0)
    _assert_ok(load_image(tall, loose), (28, 5628))


@pytest.mark.parametrize(
    "kwargs", [{"min_side": -1}, {"max_aspect_ratio": 0.5}, {"url_timeout": 0}]
)
def test_policy_validation(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        ImagePolicy(**kwargs)


# --------------------------------------------------------------------------------------------
# decompression bombs
# --------------------------------------------------------------------------------------------


def png_claiming(width: int, height: int) -> bytes:
    """A tiny valid-looking PNG whose IHDR claims ``width`` x ``height``."""
    data = bytearray(_png_bytes(Image.new("RGB", (1, 1))))
    ihdr = struct.pack(">II", width, height) + bytes(data[24:29])
    data[16:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return bytes(data)


def test_header_claims_huge_size() -> None:
    assert Image.MAX_IMAGE_PIXELS is not None  # PIL's default limit is kept
    bomb = png_claiming(100_000, 100_000)
    assert load_image(bomb) == (None, "decompression_bomb")
    assert image_size(bomb) is None


def test_bomb_above_twice_the_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "big.png"
    Image.new("RGB", (64, 64)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 4096 > 2 * 1000
    assert load_image(path) == (None, "decompression_bomb")
    assert load_image({"bytes": path.read_bytes(), "path": None}) == (None, "decompression_bomb")


def test_bomb_warning_range_is_the_policys_call(monkeypatch: pytest.MonkeyPatch) -> None:
    """Between PIL's limit and twice it PIL only warns: the policy's max_image_pixels decides."""
    data = _png_bytes(Image.new("RGB", (40, 40)))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 1600: between 1x and 2x the limit
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)  # no warning leaks
        _assert_ok(load_image(data), (40, 40))
    assert load_image(data, ImagePolicy(max_image_pixels=1000)) == (None, "decompression_bomb")
    assert image_size(data, ImagePolicy(max_image_pixels=1000)) is None  # one rule for both
    assert image_size(png_claiming(9500, 9500)) is None  # in PIL's warning range by default
    assert image_size(data) == (40, 40)


# --------------------------------------------------------------------------------------------
# privacy, image_size, encode_image
# --------------------------------------------------------------------------------------------


def test_no_full_path_in_status_or_logs(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    bad = tmp_path / "bad.png"
    bad.write_text("nope")
    cut = tmp_path / "cut.png"
    cut.write_bytes(_png_bytes(_noise(64, 64))[:300])
    with caplog.at_level(logging.DEBUG, logger="hfgcot.images"):
        statuses = [load_image(p)[1] for p in (bad, cut, tmp_path / "gone.png", tmp_path)]
    assert statuses[0] == "undecodable_image"
    assert statuses[1] == "truncated_image"
    assert statuses[2] == "file_not_found: gone.png"
    assert all(str(tmp_path) not in s for s in statuses)
    assert str(tmp_path) not in caplog.text


def test_image_size_header_only() -> None:
    assert image_size(_png_bytes(Image.new("RGB", (5000, 3)))) == (5000, 3)
    assert image_size(Image.new("RGB", (7, 9))) == (7, 9)
    assert image_size(b"garbage") is None
    assert image_size(42) is None


def test_encode_image_round_trip() -> None:
    src = Image.new("RGB", (33, 31), (1, 2, 3))
    cell = encode_image(src)
    assert cell["path"] is None
    assert cell["bytes"].startswith(b"\x89PNG")
    assert _assert_ok(load_image(cell), (33, 31)).getpixel((0, 0)) == (1, 2, 3)

    rgba = Image.new("RGBA", (32, 32), (0, 0, 0, 0))
    jpeg = encode_image(rgba, format="jpg")
    assert jpeg["bytes"].startswith(b"\xff\xd8")
    img = _assert_ok(load_image(jpeg), (32, 32))
    assert _close(img.getpixel((5, 5)), (255, 255, 255), tol=2)


def test_encode_image_is_a_datasets_image_cell() -> None:
    datasets = pytest.importorskip("datasets")
    features = datasets.Features({"image": datasets.Image()})
    cell = encode_image(Image.new("RGB", (30, 29), (4, 5, 6)))
    ds = datasets.Dataset.from_dict({"image": [cell]}, features=features)
    raw = ds.cast_column("image", datasets.Image(decode=False))[0]["image"]
    img = _assert_ok(load_image(raw), (30, 29))
    assert img.getpixel((0, 0)) == (4, 5, 6)
