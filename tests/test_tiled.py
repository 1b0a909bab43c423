"""Detectors on large images: tiles on the JPEG grid, stitched by cores, summarised without full-size maps."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from helpers import analyze as analyze_module
from helpers.analyze import analyze
from helpers.detectors import Detector, Prediction
from helpers.detectors.tiled import (
    TiledDetector,
    plan_tiles,
    predict_pieces,
    predict_tiled,
    preview_shape,
    stitch_pieces,
    summarise_pieces,
)
from helpers.imageio import LoadedImage, save_png


class Red(Detector):
    """A local method: the heatmap is the red channel, the mask red > 127, the score the tile's mean heatmap;
    records the tiles it sees."""

    def __init__(self) -> None:
        self.seen: list[LoadedImage] = []

    def predict(self, image: LoadedImage) -> Prediction:
        self.seen.append(image)
        heatmap = image.rgb[:, :, 0].astype(np.float32) / 255.0
        return Prediction(heatmap=heatmap, mask=image.rgb[:, :, 0] > 127, score=float(heatmap.mean()))


class Edges(Detector):
    """Flags a 16 px band along every edge of what it is given: pure border effect."""

    def predict(self, image: LoadedImage) -> Prediction:
        heatmap = np.zeros(image.shape, np.float32)
        heatmap[:16], heatmap[-16:], heatmap[:, :16], heatmap[:, -16:] = 1.0, 1.0, 1.0, 1.0
        return Prediction.from_heatmap(heatmap)


class Grid(Detector):
    """Flags the first row and column of every 8x8 block, counted from the top-left of what it is given."""

    def predict(self, image: LoadedImage) -> Prediction:
        rows, cols = np.indices(image.shape)
        return Prediction.from_heatmap(((rows % 8 == 0) | (cols % 8 == 0)).astype(np.float32))


class HalfSize(Detector):
    """A whole-image method on a half-size working copy: flags the working copy's left half."""

    whole_image = True

    def predict_working(self, image: LoadedImage) -> Prediction:
        height, width = image.shape
        heatmap = np.zeros((height // 2, width // 2), np.float32)
        heatmap[:, : width // 4] = 0.75
        return Prediction.from_heatmap(heatmap, score=0.4)

    def predict(self, image: LoadedImage) -> Prediction:
        raise AssertionError("a whole-image method is summarised from its working copy")


def _image(height: int, width: int, seed: int = 0) -> LoadedImage:
    rng = np.random.default_rng(seed)
    return LoadedImage(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def _smooth(height: int, width: int) -> LoadedImage:
    """Slow waves (periods of about 300 px): a reduction that misplaces a row or column barely shows."""
    rows, cols = np.indices((height, width))
    red = 127.5 + 127.5 * np.sin(rows / 47.0) * np.cos(cols / 53.0)
    return LoadedImage(np.repeat(np.rint(red).astype(np.uint8)[:, :, None], 3, axis=2))


@pytest.mark.parametrize(("height", "width"), [(300, 500), (513, 512), (1000, 700), (2049, 90), (4001, 3000)])
def test_cores_partition_the_image_and_tiles_keep_the_jpeg_grid(height: int, width: int) -> None:
    tile, margin = 512, 64
    tiles = plan_tiles(height, width, tile=tile, margin=margin)
    covered = np.zeros((height, width), np.int32)
    for part in tiles:
        covered[part.core] += 1
        assert part.bottom - part.top <= tile and part.right - part.left <= tile
        assert part.top % 8 == 0 and part.left % 8 == 0
        assert part.core_top % 8 == 0 and part.core_left % 8 == 0
        # the tile reaches `margin` beyond its core wherever the image goes on
        assert part.top == max(0, part.core_top - margin) and part.left == max(0, part.core_left - margin)
        assert part.bottom == min(height, part.core_bottom + margin)
        assert part.right == min(width, part.core_right + margin)
    assert np.all(covered == 1)
    assert (len(tiles) == 1) == (height <= tile and width <= tile)


def test_bad_tile_geometry_is_refused() -> None:
    for tile, margin in [(500, 64), (512, 60), (512, 200), (32, 0)]:
        with pytest.raises(ValueError, match="tile|margin"):
            plan_tiles(1000, 1000, tile=tile, margin=margin)


def test_a_local_method_tiled_equals_the_method_whole() -> None:
    image = _image(1100, 900)
    whole = Red()(image)
    detector = Red()
    tiled = predict_tiled(detector, image, tile=512, margin=64)
    np.testing.assert_array_equal(tiled.heatmap, whole.heatmap)
    np.testing.assert_array_equal(tiled.mask, whole.mask)
    assert len(detector.seen) == len(plan_tiles(1100, 900, tile=512, margin=64)) > 1
    assert all(seen.data is None and not seen.is_jpeg and max(seen.shape) <= 512 for seen in detector.seen)
    # the score is the highest tile's
    assert tiled.score == pytest.approx(max(float(seen.rgb[:, :, 0].mean()) / 255.0 for seen in detector.seen))


def test_the_margin_is_context_never_output() -> None:
    stitched = predict_tiled(Edges(), _image(1100, 900), tile=512, margin=64)
    expected = np.zeros((1100, 900), bool)
    expected[:16], expected[-16:], expected[:, :16], expected[:, -16:] = True, True, True, True
    # each tile's border band lies in its margin, except along the image's own border
    np.testing.assert_array_equal(stitched.mask, expected)


def test_tiles_keep_the_images_8x8_grid() -> None:
    stitched = predict_tiled(Grid(), _image(1100, 900), tile=512, margin=64)
    rows, cols = np.indices((1100, 900))
    np.testing.assert_array_equal(stitched.mask, (rows % 8 == 0) | (cols % 8 == 0))


def test_a_small_image_runs_whole_and_unchanged() -> None:
    image = _image(200, 300)
    detector = Red()
    prediction = TiledDetector(detector, tile=512, margin=64)(image)
    assert len(detector.seen) == 1 and detector.seen[0] is image
    np.testing.assert_array_equal(prediction.heatmap, image.rgb[:, :, 0] / np.float32(255.0))
    by_name = TiledDetector("noise")  # a registered method by name, for evaluate's tables under its own name
    assert (by_name.name, by_name.trained, by_name.tile, by_name.margin) == ("noise", False, 2048, 128)


def test_the_summary_matches_the_stitched_maps_without_building_them() -> None:
    image = _smooth(1100, 900)
    stitched = predict_tiled(Red(), image, tile=512, margin=64)
    preview = preview_shape(1100, 900, 220)
    assert preview == (220, 180)
    summary = summarise_pieces(predict_pieces(Red(), image, tile=512, margin=64), (1100, 900), preview)
    assert summary.pieces == len(plan_tiles(1100, 900, tile=512, margin=64))
    assert summary.score == stitched.score and summary.heatmap_max == float(stitched.heatmap.max())
    assert summary.mask_fraction == pytest.approx(float(stitched.mask.mean()), abs=1e-12)
    reduced = cv2.resize(stitched.heatmap, (180, 220), interpolation=cv2.INTER_AREA)
    assert summary.heatmap.shape == (220, 180) and summary.mask.shape == (220, 180)
    # pieces are reduced one by one: the same picture, up to the rows and columns where cores meet
    assert np.median(np.abs(summary.heatmap - reduced)) < 0.01 and np.abs(summary.heatmap - reduced).max() < 0.05
    assert summary.working_shape is None


def test_a_whole_image_method_is_summarised_from_its_working_copy() -> None:
    image = _image(400, 600)
    pieces = list(predict_pieces(HalfSize(), image, tile=256, margin=32))
    assert len(pieces) == 1 and pieces[0].reduced and pieces[0].heatmap.shape == (200, 300)
    summary = summarise_pieces(pieces, (400, 600), (100, 150))
    assert summary.working_shape == (200, 300) and summary.score == 0.4
    assert summary.mask_fraction == pytest.approx(0.5) and summary.heatmap_max == pytest.approx(0.75)
    assert summary.mask[:, :75].all() and not summary.mask[:, 75:].any()
    full = stitch_pieces(pieces, (400, 600))
    assert full.mask.shape == (400, 600) and full.mask[:, :300].all() and not full.mask[:, 300:].any()


def test_analyze_tiles_a_large_image_and_keeps_preview_maps(clean_registry, tmp_path, monkeypatch) -> None:
    clean_registry._REGISTRY.clear()
    clean_registry.register_detector("red")(Red)
    clean_registry.register_detector("half")(HalfSize)
    path = save_png(tmp_path / "large.png", _image(700, 1000).rgb)
    monkeypatch.setattr(analyze_module, "PREVIEW_SIDE", 250)
    monkeypatch.setattr(analyze_module, "shipped_model_path", lambda: None)  # the two detectors above only
    result = analyze(path, search_runs=False, tile=256, margin=32)
    assert result.tiles == len(plan_tiles(700, 1000, tile=256, margin=32)) > 1
    assert result.rgb.shape == (175, 250, 3)
    assert all(values.shape == (175, 250) for values in [*result.maps.values(), *result.masks.values()])
    whole = Red()(LoadedImage(_image(700, 1000).rgb))
    assert result.detectors["red"]["mask_fraction"] == pytest.approx(float(whole.mask.mean()))
    assert result.detectors["half"]["score"] == 0.4
    notes = " ".join(result.notes)
    assert "tiles of at most 256 px" in notes and "half read a 500 x 350 copy" in notes
    assert result.report()["tiles"] == result.tiles
