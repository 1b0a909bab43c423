"""Tests for helpers.imageio: every image here is generated in tmp_path, nothing is downloaded."""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from helpers.imageio import (
    DEFAULT_MAX_PIXELS,
    ImageLoadError,
    decode_image,
    encode_jpeg,
    image_size,
    jpeg_roundtrip,
    load_mask,
    load_rgb,
    save_jpeg,
    save_png,
)


# ----------------------------------------------------------------------------------------------------------------
# Helpers


def _noise(height: int, width: int, channels: int = 3, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = (height, width, channels) if channels else (height, width)
    return rng.integers(0, 256, size=shape, dtype=np.uint8)


def _assert_rgb(array: np.ndarray, height: int, width: int) -> None:
    assert isinstance(array, np.ndarray)
    assert array.dtype == np.uint8
    assert array.shape == (height, width, 3)
    assert array.flags.c_contiguous
    assert array.flags.writeable


def _expect_load_error(path: Path, *fragments: str, loader=load_rgb, **kwargs) -> ImageLoadError:
    with pytest.raises(ImageLoadError) as info:
        loader(path, **kwargs)
    err = info.value
    assert type(err) is ImageLoadError
    assert str(path) in str(err)
    assert err.path == path
    assert str(err) == f"{path}: {err.reason}"
    for fragment in fragments:
        assert fragment in err.reason, (fragment, err.reason)
    return err


def _stored(path: Path, attribute: str):
    """Read one attribute of the file as Pillow sees it (to prove the test file has the intended mode)."""
    with Image.open(path) as img:
        return getattr(img, attribute)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height (8-bit RGB) but whose pixel data is a few bytes long."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 16)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )


@pytest.fixture(autouse=True)
def _pillow_globals_untouched():
    """Loading must never change Pillow's process-wide settings or the warning filters."""
    max_pixels = Image.MAX_IMAGE_PIXELS
    truncated = ImageFile.LOAD_TRUNCATED_IMAGES
    filters = list(warnings.filters)
    yield
    assert Image.MAX_IMAGE_PIXELS == max_pixels
    assert ImageFile.LOAD_TRUNCATED_IMAGES == truncated
    assert list(warnings.filters) == filters


# ----------------------------------------------------------------------------------------------------------------
# Modes


def test_rgb_png_round_trip_is_exact(tmp_path: Path) -> None:
    rgb = _noise(7, 11)
    path = tmp_path / "rgb.png"
    Image.fromarray(rgb).save(path)
    out = load_rgb(path)
    _assert_rgb(out, 7, 11)
    np.testing.assert_array_equal(out, rgb)
    # str paths work too
    np.testing.assert_array_equal(load_rgb(str(path)), rgb)


def test_rgba_drops_alpha_and_keeps_stored_colour(tmp_path: Path) -> None:
    rgba = _noise(5, 6, channels=4, seed=1)
    rgba[0, :, 3] = 0  # fully transparent pixels still carry colour values that must survive
    rgba[1, :, 3] = 128
    path = tmp_path / "rgba.png"
    Image.fromarray(rgba).save(path)
    assert _stored(path, "mode") == "RGBA"
    out = load_rgb(path)
    _assert_rgb(out, 5, 6)
    np.testing.assert_array_equal(out, rgba[:, :, :3])


def test_la_drops_alpha_and_replicates_grey(tmp_path: Path) -> None:
    la = np.zeros((3, 4, 2), dtype=np.uint8)
    la[..., 0] = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    la[..., 1] = 0
    path = tmp_path / "la.png"
    Image.frombytes("LA", (4, 3), la.tobytes()).save(path)
    assert _stored(path, "mode") == "LA"
    out = load_rgb(path)
    _assert_rgb(out, 3, 4)
    for channel in range(3):
        np.testing.assert_array_equal(out[..., channel], la[..., 0])


def test_palette_with_transparency_uses_palette_colours(tmp_path: Path) -> None:
    palette = [10, 20, 30, 200, 100, 50, 0, 255, 0]
    indices = np.array([[0, 1, 2], [2, 1, 0]], dtype=np.uint8)
    img = Image.fromarray(indices)
    img = img.convert("P")
    img.putdata(indices.ravel().tolist())
    img.putpalette(palette + [0] * (768 - len(palette)))
    path = tmp_path / "palette.png"
    img.save(path, transparency=1)  # index 1 is fully transparent
    with Image.open(path) as check:
        assert check.mode == "P" and check.info.get("transparency") == 1
    out = load_rgb(path)
    _assert_rgb(out, 2, 3)
    colours = np.array(palette, dtype=np.uint8).reshape(3, 3)
    np.testing.assert_array_equal(out, colours[indices])  # the transparent colour is kept, not blackened


@pytest.mark.parametrize("fmt, suffix", [("JPEG", ".jpg"), ("TIFF", ".tif")])
def test_cmyk_converts_to_rgb(tmp_path: Path, fmt: str, suffix: str) -> None:
    cmyk = Image.new("CMYK", (8, 6), (0, 255, 255, 0))  # pure red in CMYK
    path = tmp_path / f"cmyk{suffix}"
    cmyk.save(path, fmt)
    assert _stored(path, "mode") == "CMYK"
    out = load_rgb(path)
    _assert_rgb(out, 6, 8)
    assert np.abs(out.astype(int) - np.array([255, 0, 0])).max() <= 8


def test_16_bit_png_is_scaled_with_rounding(tmp_path: Path) -> None:
    values = np.array([[65535, 257 * 100, 0], [128, 129, 257 * 200 + 100]], dtype=np.uint16)
    path = tmp_path / "sixteen.png"
    Image.fromarray(values).save(path)
    assert _stored(path, "mode").startswith("I;16")
    out = load_rgb(path)
    _assert_rgb(out, 2, 3)
    expected = np.array([[255, 100, 0], [0, 1, 200]], dtype=np.uint8)
    for channel in range(3):
        np.testing.assert_array_equal(out[..., channel], expected)


def test_mode_i_tiff_above_255_is_treated_as_16_bit(tmp_path: Path) -> None:
    values = np.array([[70000, -5, 300, 257 * 100]], dtype=np.int32)
    path = tmp_path / "int32.tif"
    Image.fromarray(values).save(path)
    assert _stored(path, "mode") == "I"
    out = load_rgb(path)
    _assert_rgb(out, 1, 4)
    np.testing.assert_array_equal(out[..., 1], [[255, 0, 1, 100]])


def test_mode_i_tiff_within_8_bits_is_kept(tmp_path: Path) -> None:
    values = np.array([[0, 7, 255, -3]], dtype=np.int32)
    path = tmp_path / "int8range.tif"
    Image.fromarray(values).save(path)
    out = load_rgb(path)
    np.testing.assert_array_equal(out[..., 0], [[0, 7, 255, 0]])


def test_mode_f_tiff_unit_range_is_scaled(tmp_path: Path) -> None:
    values = np.array([[0.0, 0.5, 1.0, 0.2]], dtype=np.float32)
    path = tmp_path / "float_unit.tif"
    Image.fromarray(values).save(path)
    assert _stored(path, "mode") == "F"
    out = load_rgb(path)
    _assert_rgb(out, 1, 4)
    np.testing.assert_array_equal(out[..., 2], [[0, 128, 255, 51]])


def test_mode_f_tiff_byte_range_is_clipped_and_rounded(tmp_path: Path) -> None:
    values = np.array([[-3.0, 100.4, 300.0, 254.6]], dtype=np.float32)
    path = tmp_path / "float_bytes.tif"
    Image.fromarray(values).save(path)
    out = load_rgb(path)
    np.testing.assert_array_equal(out[..., 0], [[0, 100, 255, 255]])


def test_grayscale_l_is_replicated(tmp_path: Path) -> None:
    gray = _noise(4, 5, channels=0, seed=2)
    path = tmp_path / "gray.png"
    Image.fromarray(gray).save(path)
    assert _stored(path, "mode") == "L"
    out = load_rgb(path)
    _assert_rgb(out, 4, 5)
    np.testing.assert_array_equal(out, np.stack([gray] * 3, axis=-1))


def test_bilevel_1_becomes_0_and_255(tmp_path: Path) -> None:
    bits = np.array([[True, False, True], [False, False, True]])
    path = tmp_path / "bits.png"
    Image.fromarray(bits).save(path)
    assert _stored(path, "mode") == "1"
    out = load_rgb(path)
    _assert_rgb(out, 2, 3)
    np.testing.assert_array_equal(out[..., 0], bits.astype(np.uint8) * 255)
    np.testing.assert_array_equal(out[..., 1], out[..., 2])


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    stored = np.zeros((20, 40, 3), dtype=np.uint8)  # 40 wide, 20 tall as stored
    stored[:10] = 255  # top half white
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    path = tmp_path / "sideways.jpg"
    Image.fromarray(stored).save(path, quality=95, exif=exif)
    plain = tmp_path / "plain.jpg"
    Image.fromarray(stored).save(plain, quality=95)

    out = load_rgb(path)
    _assert_rgb(out, 40, 20)  # upright: 20 wide, 40 tall
    # Turning clockwise brings the stored top edge to the right-hand side.
    assert out[:, 15:].mean() > 200
    assert out[:, :5].mean() < 50
    assert image_size(path) == (20, 40)

    assert load_rgb(plain).shape == (20, 40, 3)
    assert image_size(plain) == (40, 20)


def test_multi_frame_gif_gives_first_frame(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (6, 4), colour) for colour in [(255, 0, 0), (0, 0, 255), (0, 255, 0)]]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
    assert _stored(path, "n_frames") == 3
    out = load_rgb(path)
    _assert_rgb(out, 4, 6)
    assert (out == np.array([255, 0, 0], dtype=np.uint8)).all()


def test_multi_frame_tiff_gives_first_frame(tmp_path: Path) -> None:
    first, second = _noise(5, 7, seed=3), _noise(5, 7, seed=4)
    path = tmp_path / "pages.tif"
    Image.fromarray(first).save(path, save_all=True, append_images=[Image.fromarray(second)])
    assert _stored(path, "n_frames") == 2
    np.testing.assert_array_equal(load_rgb(path), first)


def test_images_larger_than_a_strip_convert_to_the_same_pixels(tmp_path: Path) -> None:
    # 1100 x 1030 is over the strip size (1 MP): converted in strips, each mode must give what the rules say
    rgba = _noise(1030, 1100, channels=4, seed=11)
    cases = {
        "RGB": (Image.fromarray(rgba[:, :, :3]), rgba[:, :, :3]),
        "RGBA": (Image.fromarray(rgba, "RGBA"), rgba[:, :, :3]),
        "L": (Image.fromarray(rgba[:, :, 0]), np.repeat(rgba[:, :, :1], 3, axis=2)),
    }
    palette = Image.fromarray(rgba[:, :, :3]).quantize(colors=64)
    cases["P"] = (palette, np.asarray(palette.convert("RGB")))
    for mode, (image, expected) in cases.items():
        path = tmp_path / f"large_{mode}.png"
        image.save(path)
        loaded = load_rgb(path)
        assert loaded.flags.c_contiguous and loaded.flags.writeable, mode
        np.testing.assert_array_equal(loaded, expected, err_msg=mode)


# ----------------------------------------------------------------------------------------------------------------
# Limits and broken files


def test_pixel_limit_rejects_large_image(tmp_path: Path) -> None:
    path = tmp_path / "ten_by_ten.png"
    Image.new("RGB", (10, 10)).save(path)
    err = _expect_load_error(path, "99", "10x10", max_pixels=99)
    assert "limit" in err.reason
    assert load_rgb(path, max_pixels=100).shape == (10, 10, 3)
    assert load_rgb(path, max_pixels=None).shape == (10, 10, 3)
    assert DEFAULT_MAX_PIXELS == 100_000_000


def test_pixel_limit_is_checked_before_decoding(tmp_path: Path) -> None:
    # The header claims 5000x5000 but the pixel data is missing: only a header check can give the limit error.
    path = tmp_path / "claims_big.png"
    path.write_bytes(_png_header_only(5000, 5000))
    _expect_load_error(path, "max_pixels=1000000", "5000x5000", max_pixels=1_000_000)
    # Without our limit the same file gets as far as decoding and fails there.
    _expect_load_error(path, "truncated or corrupt", max_pixels=None)


def test_without_a_limit_of_our_own_pillows_bomb_warning_becomes_an_error(tmp_path: Path) -> None:
    side = int((Image.MAX_IMAGE_PIXELS * 1.2) ** 0.5)  # over Pillow's warning level, under its error level
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_header_only(side, side))
    err = _expect_load_error(path, "decompression-bomb", max_pixels=None)
    assert isinstance(err.__cause__, Image.DecompressionBombWarning)
    with pytest.raises(ImageLoadError, match="decompression-bomb"):
        image_size(path, max_pixels=None)
    # the default limit (100 MP) is below this image's size, and it is the limit that speaks
    _expect_load_error(path, "over the limit of max_pixels=100000000")
    _expect_load_error(path, "over the limit of max_pixels=100000000", loader=image_size)


def test_the_documented_limit_applies_above_pillows_own_warning_level(tmp_path: Path) -> None:
    assert Image.MAX_IMAGE_PIXELS < DEFAULT_MAX_PIXELS  # Pillow's default, about 89 MP
    side = int(((Image.MAX_IMAGE_PIXELS + DEFAULT_MAX_PIXELS) / 2) ** 0.5)  # about 95 MP: between the two
    path = tmp_path / "large.png"
    path.write_bytes(_png_header_only(side, side))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert image_size(path) == (side, side)
        # the header passes the size check; only the missing pixel data stops it (no limit error, no warning)
        _expect_load_error(path, "truncated or corrupt")
    assert not [w for w in caught if issubclass(w.category, Image.DecompressionBombWarning)]
    over = tmp_path / "over.png"
    over.write_bytes(_png_header_only(10_001, 10_000))
    _expect_load_error(over, "10001x10000", "over the limit")
    _expect_load_error(over, "over the limit", loader=image_size)


def test_truncated_jpeg(tmp_path: Path) -> None:
    data = encode_jpeg(_noise(64, 64, seed=5), 95)
    path = tmp_path / "truncated.jpg"
    path.write_bytes(data[: len(data) // 2])
    err = _expect_load_error(path, "truncated or corrupt")
    assert isinstance(err.__cause__, OSError)


def test_truncated_png(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    Image.fromarray(_noise(64, 64, seed=6)).save(buffer, "PNG")
    data = buffer.getvalue()
    path = tmp_path / "truncated.png"
    path.write_bytes(data[: len(data) // 2])
    err = _expect_load_error(path, "truncated or corrupt")
    assert err.__cause__ is not None


def test_corrupt_bytes_after_jpeg_header(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.jpg"
    path.write_bytes(b"\xff\xd8\xff\xe0" + bytes(np.random.default_rng(7).integers(0, 256, 2000, dtype=np.uint8)))
    err = _expect_load_error(path)
    assert err.__cause__ is not None
    assert "not an image" in err.reason or "corrupt" in err.reason


def test_text_file_named_jpg(tmp_path: Path) -> None:
    path = tmp_path / "notes.jpg"
    path.write_text("this is not a picture\n")
    err = _expect_load_error(path, "not an image Pillow can read")
    assert err.__cause__ is not None


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    _expect_load_error(path, "empty file")


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "missing.png"
    err = _expect_load_error(path, "file not found")
    assert isinstance(err.__cause__, FileNotFoundError)


def test_directory(tmp_path: Path) -> None:
    path = tmp_path / "folder.png"
    path.mkdir()
    _expect_load_error(path, "is a directory")


@pytest.mark.parametrize("loader", [load_mask, image_size])
def test_other_readers_raise_the_same_errors(tmp_path: Path, loader) -> None:
    text = tmp_path / "notes.png"
    text.write_text("hello")
    _expect_load_error(text, "not an image", loader=loader)
    _expect_load_error(tmp_path / "missing.png", "file not found", loader=loader)
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    _expect_load_error(empty, "empty file", loader=loader)


def test_image_load_error_format() -> None:
    err = ImageLoadError("some/dir/a.png", "empty file")
    assert err.path == Path("some/dir/a.png")
    assert err.reason == "empty file"
    assert str(err) == f"{Path('some/dir/a.png')}: empty file"
    assert isinstance(err, Exception)


# ----------------------------------------------------------------------------------------------------------------
# Masks


def test_load_mask_thresholds_at_127(tmp_path: Path) -> None:
    values = np.array([[0, 127, 128], [255, 200, 10]], dtype=np.uint8)
    path = tmp_path / "mask.png"
    Image.fromarray(values).save(path)
    mask = load_mask(path)
    assert mask.dtype == np.bool_
    assert mask.shape == (2, 3)
    np.testing.assert_array_equal(mask, [[False, False, True], [True, True, False]])
    np.testing.assert_array_equal(load_mask(path, size=(3, 2)), mask)


def test_load_mask_from_rgb_file(tmp_path: Path) -> None:
    rgb = np.zeros((2, 2, 3), dtype=np.uint8)
    rgb[0, 0] = 255
    rgb[1, 1] = (130, 130, 130)
    path = tmp_path / "mask_rgb.png"
    Image.fromarray(rgb).save(path)
    np.testing.assert_array_equal(load_mask(path), [[True, False], [False, True]])


def test_load_mask_size_mismatch(tmp_path: Path) -> None:
    path = tmp_path / "mask.png"
    Image.new("L", (4, 2)).save(path)
    _expect_load_error(path, "mask size 4x2 differs from expected 5x2", loader=load_mask, size=(5, 2))


# ----------------------------------------------------------------------------------------------------------------
# In-memory JPEG


def test_encode_jpeg_is_deterministic_and_decodes() -> None:
    rgb = _noise(16, 24, seed=8)
    first = encode_jpeg(rgb, 90)
    assert first == encode_jpeg(rgb.copy(), 90)
    assert first[:2] == b"\xff\xd8"
    # A non-contiguous view of the same pixels encodes the same.
    wide = np.zeros((16, 48, 3), dtype=np.uint8)
    wide[:, ::2] = rgb
    assert encode_jpeg(wide[:, ::2], 90) == first
    # Quality and subsampling actually reach the encoder.
    assert encode_jpeg(rgb, 50) != first
    assert encode_jpeg(rgb, 90, subsampling=0) != first
    assert encode_jpeg(rgb, 90, subsampling="4:4:4") == encode_jpeg(rgb, 90, subsampling=0)
    decoded = decode_image(first)
    _assert_rgb(decoded, 16, 24)


def test_jpeg_roundtrip_quality_matters() -> None:
    rgb = np.zeros((32, 32, 3), dtype=np.uint8)
    rgb[:, :, 0] = np.linspace(0, 255, 32, dtype=np.uint8)
    rgb[:, :, 1] = np.linspace(0, 255, 32, dtype=np.uint8)[:, None]
    rgb[:, :, 2] = 90
    high = jpeg_roundtrip(rgb, 98)
    low = jpeg_roundtrip(rgb, 5)
    _assert_rgb(high, 32, 32)
    high_error = np.abs(high.astype(int) - rgb).mean()
    low_error = np.abs(low.astype(int) - rgb).mean()
    assert high_error < 3
    assert low_error > high_error


@pytest.mark.parametrize(
    "array, quality, kwargs",
    [
        (np.zeros((4, 4, 3), dtype=np.float32), 90, {}),
        (np.zeros((4, 4, 3), dtype=np.uint16), 90, {}),
        (np.zeros((4, 4), dtype=np.uint8), 90, {}),
        (np.zeros((4, 4, 4), dtype=np.uint8), 90, {}),
        (np.zeros((0, 4, 3), dtype=np.uint8), 90, {}),
        (np.zeros((4, 4, 3), dtype=np.uint8), 0, {}),
        (np.zeros((4, 4, 3), dtype=np.uint8), 101, {}),
        (np.zeros((4, 4, 3), dtype=np.uint8), 90.5, {}),
        (np.zeros((4, 4, 3), dtype=np.uint8), True, {}),
        (np.zeros((4, 4, 3), dtype=np.uint8), 90, {"subsampling": 3}),
        (np.zeros((4, 4, 3), dtype=np.uint8), 90, {"subsampling": "4:1:1"}),
    ],
)
def test_encode_jpeg_validation(array: np.ndarray, quality, kwargs) -> None:
    with pytest.raises(ValueError):
        encode_jpeg(array, quality, **kwargs)


def test_encode_jpeg_accepts_quality_bounds() -> None:
    rgb = _noise(8, 8, seed=9)
    assert decode_image(encode_jpeg(rgb, 1)).shape == (8, 8, 3)
    assert decode_image(encode_jpeg(rgb, 100)).shape == (8, 8, 3)


def test_decode_image_rejects_garbage() -> None:
    with pytest.raises(ValueError, match="not an image"):
        decode_image(b"definitely not an image")
    with pytest.raises(ValueError):
        decode_image(b"")


# ----------------------------------------------------------------------------------------------------------------
# Writing


def test_save_png_rgb_round_trip_and_determinism(tmp_path: Path) -> None:
    rgb = _noise(9, 13, seed=10)
    path = tmp_path / "out" / "rgb.png"
    returned = save_png(path, rgb)
    assert returned == path
    with Image.open(path) as img:
        assert img.format == "PNG" and img.mode == "RGB"
    np.testing.assert_array_equal(load_rgb(path), rgb)
    first = path.read_bytes()
    save_png(path, rgb)
    assert path.read_bytes() == first
    assert sorted(p.name for p in path.parent.iterdir()) == ["rgb.png"]  # no temporary files left


def test_save_png_gray_uint8(tmp_path: Path) -> None:
    gray = _noise(6, 5, channels=0, seed=11)
    path = save_png(tmp_path / "gray.png", gray)
    with Image.open(path) as img:
        assert img.mode == "L"
        np.testing.assert_array_equal(np.asarray(img), gray)


def test_save_png_bool_mask_is_single_channel_0_255(tmp_path: Path) -> None:
    mask = np.zeros((5, 7), dtype=bool)
    mask[1:3, 2:6] = True
    path = save_png(tmp_path / "mask.png", mask)
    with Image.open(path) as img:
        assert img.mode == "L"
        stored = np.asarray(img)
    assert set(np.unique(stored).tolist()) == {0, 255}
    np.testing.assert_array_equal(stored == 255, mask)
    np.testing.assert_array_equal(load_mask(path, size=(7, 5)), mask)


@pytest.mark.parametrize(
    "array",
    [np.zeros((4, 4), dtype=np.float64), np.zeros((4, 4, 4), dtype=np.uint8), np.zeros((4, 4, 3), dtype=bool)],
)
def test_save_png_rejects_other_arrays(tmp_path: Path, array: np.ndarray) -> None:
    with pytest.raises(ValueError):
        save_png(tmp_path / "bad.png", array)
    assert not (tmp_path / "bad.png").exists()


def test_save_jpeg_round_trip(tmp_path: Path) -> None:
    rgb = np.full((12, 10, 3), (200, 40, 90), dtype=np.uint8)
    path = save_jpeg(tmp_path / "photo.jpg", rgb, 95)
    assert path == tmp_path / "photo.jpg"
    assert path.read_bytes() == encode_jpeg(rgb, 95)
    with Image.open(path) as img:
        assert img.format == "JPEG"
    out = load_rgb(path)
    _assert_rgb(out, 12, 10)
    assert np.abs(out.astype(int) - rgb).max() <= 4
