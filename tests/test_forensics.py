"""Forensic feature functions: ELA, SRM, noise maps, JPEG tables and ghosts, EXIF summaries."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageChops, ImageEnhance
from skimage import data

from helpers.forensics import (
    ela,
    estimate_jpeg_quality,
    exif_summary,
    jpeg_ghosts,
    jpeg_quantization_tables,
    local_noise_map,
    median_residual,
    srm,
    srm_kernels,
)
from helpers.forensics.jpeg import scaled_table
from helpers.imageio import ImageLoadError, jpeg_roundtrip, save_jpeg, save_png


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    """A real photograph (cat), 256x384, cropped on the 8x8 grid."""
    return np.ascontiguousarray(data.chelsea()[:256, :384])


# ----------------------------------------------------------------------------------------------------------------
# ELA


def test_ela_shape_dtype_and_raw_values(photo: np.ndarray) -> None:
    out = ela(photo, 90)
    assert out.dtype == np.uint8 and out.shape == photo.shape
    expected = np.abs(photo.astype(np.int16) - jpeg_roundtrip(photo, 90).astype(np.int16)).astype(np.uint8)
    np.testing.assert_array_equal(out, expected)
    assert out.max() > 0


def test_ela_lowest_at_the_quality_the_image_was_saved_at(photo: np.ndarray) -> None:
    for saved_at in (60, 75, 90):
        image = jpeg_roundtrip(photo, saved_at)
        levels = {q: float(ela(image, q).mean()) for q in (50, 60, 70, 75, 80, 90, 95)}
        assert min(levels, key=levels.get) == saved_at, levels
        others = [v for q, v in levels.items() if q != saved_at]
        assert levels[saved_at] < 0.5 * min(others)


def test_ela_list_of_qualities_stacks_channels(photo: np.ndarray) -> None:
    stacked = ela(photo, [70, 90])
    assert stacked.shape == (*photo.shape[:2], 6) and stacked.dtype == np.uint8
    np.testing.assert_array_equal(stacked[..., :3], ela(photo, 70))
    np.testing.assert_array_equal(stacked[..., 3:], ela(photo, 90))
    assert ela(photo, [90]).shape == photo.shape


def test_ela_modes(photo: np.ndarray) -> None:
    raw = ela(photo, 90).astype(np.float64)
    stretched = ela(photo, 90, mode="max")
    assert stretched.max() == 255
    np.testing.assert_array_equal(stretched, np.clip(np.rint(raw * 255.0 / raw.max()), 0, 255).astype(np.uint8))
    gained = ela(photo, 90, mode="gain")
    np.testing.assert_array_equal(gained, np.minimum(raw * 15, 255).astype(np.uint8))
    np.testing.assert_array_equal(ela(photo, 90, mode="gain", gain=2), np.minimum(raw * 2, 255).astype(np.uint8))
    flat = np.full((16, 16, 3), 128, np.uint8)  # compresses losslessly: an all-zero map stays zero
    assert ela(flat, 90, mode="max").max() == 0


def test_ela_matches_the_seed_notebooks(photo: np.ndarray, tmp_path: Path) -> None:
    """Same numbers as the temporary-file pipelines the workbook replaced (ResNet50 and U-Net seeds)."""
    small = np.ascontiguousarray(photo[:64, :96])
    original = Image.fromarray(small)
    temp = tmp_path / "resaved.jpg"
    original.save(temp, "JPEG", quality=90)
    diff = ImageChops.difference(original, Image.open(temp))
    # U-Net seed: a per-pixel loop multiplying by an integer gain (Pillow clips to 255).
    looped = diff.copy()
    pixels = looped.load()
    for x in range(looped.width):
        for y in range(looped.height):
            pixels[x, y] = tuple(k * 15 for k in pixels[x, y])
    np.testing.assert_array_equal(ela(small, 90, mode="gain", gain=15), np.asarray(looped))
    # ResNet50 seed: brightness enhanced by 255 / max (Pillow truncates where we round: one level at most).
    peak = max(high for _, high in diff.getextrema())
    enhanced = np.asarray(ImageEnhance.Brightness(diff).enhance(255.0 / peak)).astype(int)
    assert np.abs(ela(small, 90, mode="max").astype(int) - enhanced).max() <= 1


def test_ela_rejects_bad_arguments(photo: np.ndarray) -> None:
    with pytest.raises(ValueError, match="quality"):
        ela(photo, 0)
    with pytest.raises(ValueError, match="quality"):
        ela(photo, [])
    with pytest.raises(ValueError, match="gain"):
        ela(photo, 90, mode="raw", gain=3)
    with pytest.raises(ValueError, match="mode"):
        ela(photo, 90, mode="loud")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="uint8"):
        ela(photo.astype(np.float32))


def test_ela_creates_no_temporary_files(photo: np.ndarray, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("ELA must not create temporary files")

    for name in ("mkstemp", "mkdtemp", "NamedTemporaryFile", "TemporaryFile", "TemporaryDirectory", "SpooledTemporaryFile"):
        monkeypatch.setattr(tempfile, name, forbidden)
    monkeypatch.chdir(tmp_path)
    ela(photo, [75, 90], mode="max")
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------------------------------------------
# SRM


def test_srm_kernels_are_high_pass_and_as_published() -> None:
    zhou = srm_kernels("zhou3")
    full = srm_kernels("full30")
    assert zhou.channels == 3 and full.channels == 30
    for bank in (zhou, full):
        np.testing.assert_array_equal(bank.kernels.sum(axis=(0, 1)), 0)  # zero sum: blind to flat content
        assert np.all(np.abs(bank.kernels).sum(axis=(0, 1)) > 0)
    kv = np.array([[-1, 2, -2, 2, -1], [2, -6, 8, -6, 2], [-2, 8, -12, 8, -2], [2, -6, 8, -6, 2], [-1, 2, -2, 2, -1]])
    square = np.zeros((5, 5))
    square[1:4, 1:4] = [[-1, 2, -1], [2, -4, 2], [-1, 2, -1]]
    line = np.zeros((5, 5))
    line[2, 1:4] = [1, -2, 1]
    for index, (kernel, q) in enumerate([(kv, 12), (square, 4), (line, 2)]):
        np.testing.assert_array_equal(zhou.kernels[:, :, index], kernel)
        assert zhou.divisors[index] == q
    flat = full.kernels.reshape(25, 30).T
    assert len({row.tobytes() for row in flat}) == 30  # 30 distinct filters
    assert sorted(set(full.divisors.tolist())) == [3.0, 6.0, 9.0, 12.0, 36.0]  # q = 1,2,3,4,12 times 3 (grey)


@pytest.mark.parametrize("bank,channels", [("zhou3", 3), ("full30", 30)])
def test_srm_shape_dtype_and_flat_input(photo: np.ndarray, bank: str, channels: int) -> None:
    out = srm(photo, bank)
    assert out.shape == (*photo.shape[:2], channels) and out.dtype == np.float32
    assert np.abs(out).max() > 0
    constant = np.full((20, 24, 3), 173, np.uint8)
    np.testing.assert_array_equal(srm(constant, bank, truncate=None), 0)  # borders included (reflect padding)


def test_srm_truncation_bounds(photo: np.ndarray) -> None:
    free = srm(photo, "zhou3", truncate=None)
    assert np.abs(free).max() > 10
    for bound in (3.0, 1.5):
        clipped = srm(photo, "zhou3", truncate=bound)
        assert np.abs(clipped).max() == pytest.approx(bound)
        np.testing.assert_array_equal(clipped, np.clip(free, -bound, bound))
    with pytest.raises(ValueError):
        srm(photo, truncate=0)
    with pytest.raises(ValueError):
        srm(photo, "srm99")  # type: ignore[arg-type]


def test_srm_impulse_response_gives_the_normalised_kernels() -> None:
    """An impulse shows the exact taps: correlation (the kernel mirrored around the impulse) divided by q."""
    impulse = np.zeros((11, 11, 3), np.uint8)
    impulse[5, 5] = 255
    for bank in ("zhou3", "full30"):
        kernels = srm_kernels(bank)
        out = srm(impulse, bank, truncate=None)[3:8, 3:8]
        mixed = 255.0 * 3  # R + G + B
        expected = kernels.kernels[::-1, ::-1, :] * mixed / kernels.divisors
        np.testing.assert_allclose(out, expected, rtol=1e-6)


def test_srm_zhou3_filters_the_sum_of_colour_channels(photo: np.ndarray) -> None:
    """RGB-N's kernel puts the same filter on every input channel: the colour order does not matter."""
    np.testing.assert_array_equal(srm(photo, truncate=None), srm(photo[..., ::-1].copy(), truncate=None))
    float_input = srm(photo.astype(np.float32), truncate=None)
    np.testing.assert_array_equal(float_input, srm(photo, truncate=None))


# ----------------------------------------------------------------------------------------------------------------
# Noise


def test_median_residual(photo: np.ndarray) -> None:
    res = median_residual(photo)
    assert res.shape == photo.shape and res.dtype == np.float32
    flat = np.full((15, 15, 3), 90, np.uint8)
    flat[7, 7] = 250  # an impulse: removed by the median, so it is all residual
    out = median_residual(flat)
    assert out[7, 7, 0] == 160 and np.count_nonzero(out) == 3
    assert median_residual(photo, size=5).shape == photo.shape
    with pytest.raises(ValueError):
        median_residual(photo, size=4)


def test_local_noise_map_finds_the_noisier_region() -> None:
    rng = np.random.default_rng(0)
    height, width = 130, 200  # not multiples of the window: partial blocks at the edges
    base = np.full((height, width), 120.0)
    base += rng.normal(0, 2.0, size=base.shape)
    base[32:96, 64:160] += rng.normal(0, 10.0, size=(64, 96))
    image = np.repeat(np.clip(np.rint(base), 0, 255).astype(np.uint8)[..., None], 3, axis=2)
    levels = local_noise_map(image, window=16)
    assert levels.shape == (height, width) and levels.dtype == np.float32
    assert np.isfinite(levels).all()
    inside = float(np.median(levels[32:96, 64:160]))
    outside = float(np.median(levels[:16, :]))
    assert inside == pytest.approx(np.hypot(10, 2), rel=0.2)
    assert outside == pytest.approx(2.0, rel=0.25)
    assert inside > 3 * outside


# ----------------------------------------------------------------------------------------------------------------
# JPEG: tables, quality, ghosts


def test_quantization_tables_and_quality_jpeg_vs_png(photo: np.ndarray, tmp_path: Path) -> None:
    jpeg = save_jpeg(tmp_path / "a.jpg", photo, 80)
    png = save_png(tmp_path / "a.png", photo)
    tables = jpeg_quantization_tables(jpeg)
    assert sorted(tables) == [0, 1] and tables[0].shape == (8, 8)
    np.testing.assert_array_equal(tables[0].ravel(), scaled_table(80))
    quality = estimate_jpeg_quality(jpeg)
    assert quality.quality == 80 and quality.exact and quality.is_jpeg
    assert jpeg_quantization_tables(png) == {}
    assert estimate_jpeg_quality(png).quality is None
    with pytest.raises(ImageLoadError):
        jpeg_quantization_tables(tmp_path / "missing.jpg")


def test_jpeg_ghost_shows_minimum_at_the_spliced_region_quality(photo: np.ndarray) -> None:
    q_region, q_final = 60, 90
    composite = jpeg_roundtrip(photo, q_final).copy()
    composite[64:192, 128:256] = jpeg_roundtrip(photo, q_region)[64:192, 128:256]
    final = jpeg_roundtrip(composite, q_final)
    qualities = list(range(50, 100, 5))
    ghosts = jpeg_ghosts(final, qualities)
    assert ghosts.shape == (len(qualities), *photo.shape[:2]) and ghosts.dtype == np.float32
    assert ghosts.min() >= 0 and ghosts.max() <= 1
    region = np.zeros(photo.shape[:2], bool)
    region[72:184, 136:248] = True  # away from the region's edge, where the window mixes both sides
    outside = np.ones_like(region)
    outside[56:200, 120:264] = False
    inside_means = [float(g[region].mean()) for g in ghosts]
    assert qualities[int(np.argmin(inside_means))] == q_region
    at_q = ghosts[qualities.index(q_region)]
    assert at_q[region].mean() < 0.25 * at_q[outside].mean()  # a dark ghost in that one map


def test_jpeg_ghosts_work_on_any_array() -> None:
    flat = np.full((24, 40, 3), 200, np.uint8)
    ghosts = jpeg_ghosts(flat, [70, 90], window=4)
    assert ghosts.shape == (2, 24, 40)
    np.testing.assert_array_equal(ghosts, 0)  # nothing changes: normalised maps stay zero, not NaN
    raw = jpeg_ghosts(data.astronaut()[:64, :64], [80], normalize=False)
    assert raw.max() > 1


# ----------------------------------------------------------------------------------------------------------------
# EXIF


def _jpeg_with_exif(path: Path, rgb: np.ndarray, **tags: str) -> Path:
    image = Image.fromarray(rgb)
    exif = Image.Exif()
    base_tags = {"Make": 0x010F, "Model": 0x0110, "Software": 0x0131, "DateTime": 0x0132}
    sub_tags = {"DateTimeOriginal": 0x9003, "DateTimeDigitized": 0x9004}
    for name, value in tags.items():
        if name in base_tags:
            exif[base_tags[name]] = value
    sub = exif.get_ifd(0x8769)
    for name, value in tags.items():
        if name in sub_tags:
            sub[sub_tags[name]] = value
    image.save(path, "JPEG", quality=90, exif=exif)
    return path


def test_exif_summary_flags_an_editor(photo: np.ndarray, tmp_path: Path) -> None:
    path = _jpeg_with_exif(
        tmp_path / "edited.jpg",
        photo,
        Make="Canon",
        Model="Canon EOS 5D Mark IV",
        Software="Adobe Photoshop 25.0",
        DateTime="2024:05:01 12:00:00",
        DateTimeOriginal="2024:04:01 10:00:00",
        DateTimeDigitized="2024:04:01 10:00:00",
    )
    summary = exif_summary(path)
    assert summary["make"] == "Canon" and summary["model"] == "Canon EOS 5D Mark IV"
    assert summary["software"] == "Adobe Photoshop 25.0"
    assert summary["datetime_original"] == "2024:04:01 10:00:00"
    assert summary["datetime_modified"] == "2024:05:01 12:00:00"
    assert (summary["width"], summary["height"]) == (photo.shape[1], photo.shape[0])
    assert summary["format"] == "JPEG"
    assert summary["edited_by_software"] is True
    assert summary["dates_disagree"] is True
    assert summary["missing_camera_model"] is False
    assert summary["no_exif"] is False


def test_exif_summary_camera_original(photo: np.ndarray, tmp_path: Path) -> None:
    path = _jpeg_with_exif(
        tmp_path / "camera.jpg",
        photo,
        Make="NIKON CORPORATION",
        Model="NIKON D750",
        Software="Ver.1.10",
        DateTime="2023:07:14 09:30:05",
        DateTimeOriginal="2023:07:14 09:30:05",
    )
    summary = exif_summary(path)
    assert summary["edited_by_software"] is False
    assert summary["dates_disagree"] is False
    assert summary["missing_camera_model"] is False


def test_exif_summary_without_exif(photo: np.ndarray, tmp_path: Path) -> None:
    for path in (save_png(tmp_path / "a.png", photo), save_jpeg(tmp_path / "bare.jpg", photo, 90)):
        summary = exif_summary(path)
        assert summary["no_exif"] is True
        assert summary["missing_camera_model"] is True
        assert summary["edited_by_software"] is False
        assert summary["make"] is None and summary["software"] is None
        assert summary["width"] == photo.shape[1]
    assert exif_summary(tmp_path / "a.png")["format"] == "PNG"
    (tmp_path / "text.jpg").write_text("not an image")
    with pytest.raises(ImageLoadError, match="text.jpg"):
        exif_summary(tmp_path / "text.jpg")


def test_exif_summary_reads_xmp_creator_tool(photo: np.ndarray, tmp_path: Path) -> None:
    xmp = (
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        b'<rdf:Description xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmp:CreatorTool="GIMP 2.10"/>'
        b"</rdf:RDF></x:xmpmeta>"
    )
    path = tmp_path / "gimp.jpg"
    Image.fromarray(photo).save(path, "JPEG", quality=90, xmp=xmp)
    if not Image.open(path).info.get("xmp"):
        pytest.skip("this Pillow does not write XMP into JPEG files")
    summary = exif_summary(path)
    assert summary["software"] == "GIMP 2.10"
    assert summary["edited_by_software"] is True


def test_forensics_package_does_not_import_keras() -> None:
    import subprocess
    import sys

    code = "import sys, helpers.forensics; print('keras' in sys.modules, 'tensorflow' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert result.stdout.split() == ["False", "False"]

