"""Whole-image prediction: masks at any image size (exact blending, no seams, streams from the whole image) and a
classifier's scores on tiles of its crop."""

from __future__ import annotations

import time
from pathlib import Path

import keras
import numpy as np
import pytest
from keras import ops
from PIL import Image

from helpers.forensics.ela import ela
from helpers.inference import blend_window, classify_tiles, model_streams, predict_mask, tile_layout


# -------------------------------------------------------------------------------------------------------------
# Tiny models with known outputs
# -------------------------------------------------------------------------------------------------------------
@keras.saving.register_keras_serializable(package="forgery_workbook_tests")
class ChannelMean(keras.layers.Layer):
    """Per-pixel mean over the channels: a pointwise model, so tiling must not change its output at all."""

    def call(self, x):
        return ops.mean(x, axis=-1, keepdims=True)


class Constant(keras.layers.Layer):
    def __init__(self, constant: float, **kwargs) -> None:
        super().__init__(**kwargs)
        self.constant = constant

    def call(self, x):
        return ops.zeros_like(x[..., :1]) + self.constant


class TileMean(keras.layers.Layer):
    """Each tile's mean over all its pixels: the worst case for seams, as every tile predicts one value."""

    def call(self, x):
        return ops.zeros_like(x[..., :1]) + ops.mean(x, axis=(1, 2, 3), keepdims=True)


def model_of(layer: keras.layers.Layer, stream: str = "rgb", channels: int = 3) -> keras.Model:
    inputs = keras.Input((None, None, channels), name=stream)
    return keras.Model({stream: inputs}, layer(inputs))


def tiny_two_stream_model() -> keras.Model:
    rgb = keras.Input((None, None, 3), name="rgb")
    ela_in = keras.Input((None, None, 3), name="ela")
    x = keras.layers.Concatenate()([rgb, ela_in])
    out = keras.layers.Conv2D(1, 3, padding="same", activation="sigmoid", name="head")(x)
    return keras.Model({"rgb": rgb, "ela": ela_in}, out)


def photo(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A smooth image with texture: gradients plus noise, uint8."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([xx / max(width - 1, 1) * 200, yy / max(height - 1, 1) * 200, (xx + yy) % 97], axis=-1)
    return np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)


# -------------------------------------------------------------------------------------------------------------
# Any size
# -------------------------------------------------------------------------------------------------------------
def test_large_jpeg_4000_by_3000(tmp_path: Path) -> None:
    path = tmp_path / "large.jpg"
    Image.fromarray(photo(3000, 4000)).save(path, quality=90)
    model = tiny_two_stream_model()
    started = time.perf_counter()
    mask = predict_mask(model, path, tile=512, overlap=0.25, batch_size=8)
    seconds = time.perf_counter() - started
    assert mask.shape == (3000, 4000) and mask.dtype == np.float32
    assert np.isfinite(mask).all() and 0.0 <= mask.min() and mask.max() <= 1.0
    assert mask.std() > 0  # the model's output varies with the content: real predictions came back
    assert seconds < 60, f"a 12-megapixel image took {seconds:.0f} s with a one-layer model"


def test_small_png_300_by_200(tmp_path: Path) -> None:
    path = tmp_path / "small.png"
    Image.fromarray(photo(200, 300, seed=1)).save(path)
    mask = predict_mask(tiny_two_stream_model(), path, tile=256, overlap=64)
    assert mask.shape == (200, 300) and mask.dtype == np.float32
    assert 0.0 <= mask.min() and mask.max() <= 1.0


@pytest.mark.parametrize("shape", [(1, 1), (7, 300), (200, 300), (257, 511), (600, 400)])
@pytest.mark.parametrize("overlap", [0.0, 0.25, 0.5, 48])
def test_a_constant_model_gives_that_constant_everywhere(shape: tuple[int, int], overlap: float) -> None:
    """Blending weights are normalised at every pixel: edges, corners, overlaps, padded small images."""
    mask = predict_mask(model_of(Constant(0.3712)), photo(*shape), tile=128, overlap=overlap, batch_size=3)
    assert mask.shape == shape
    np.testing.assert_allclose(mask, np.float32(0.3712), rtol=0, atol=1e-6)


@pytest.mark.parametrize("shape", [(200, 300), (333, 517)])
def test_a_pointwise_model_shows_no_seams(shape: tuple[int, int]) -> None:
    """Every pixel must land exactly where it came from: the tiled output equals the whole-image output."""
    rgb = photo(*shape, seed=2)
    mask = predict_mask(model_of(ChannelMean()), rgb, tile=64, overlap=0.25, batch_size=5)
    expected = rgb.astype(np.float32).mean(axis=-1) / 255.0
    np.testing.assert_allclose(mask, expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("shape", [(37, 53), (200, 300)])
def test_tile_zero_predicts_the_whole_image_at_once(shape: tuple[int, int]) -> None:
    """tile=0: one pass over the whole image, padded to a multiple of 32 and cropped back exactly."""
    rgb = photo(*shape, seed=4)
    mask = predict_mask(model_of(ChannelMean()), rgb, tile=0)
    expected = rgb.astype(np.float32).mean(axis=-1) / 255.0
    np.testing.assert_allclose(mask, expected, rtol=0, atol=1e-5)
    # A model that sees the whole image (its mean) gives one value everywhere, which tiles could not.
    whole = predict_mask(model_of(TileMean()), rgb, tile=0)
    assert np.ptp(whole) < 1e-5


def test_a_repeated_whole_image_shape_runs_the_compiled_graph(monkeypatch: pytest.MonkeyPatch) -> None:
    """The first image of a padded shape is called directly, later ones of that shape through predict_on_batch
    (compiled once); the maps are the same either way."""
    model = model_of(ChannelMean())
    compiled_calls = []
    predict_on_batch = model.predict_on_batch

    def counting(batch):
        compiled_calls.append(1)
        return predict_on_batch(batch)

    monkeypatch.setattr(model, "predict_on_batch", counting)
    first, second = photo(60, 90, seed=5), photo(50, 70, seed=6)  # both padded to 64 x 96
    maps = [predict_mask(model, first, tile=0)]
    assert not compiled_calls
    maps.append(predict_mask(model, second, tile=0))
    assert len(compiled_calls) == 1
    predict_mask(model, photo(100, 40, seed=7), tile=0)  # a new shape: called directly again
    assert len(compiled_calls) == 1
    for rgb, found in zip((first, second), maps):
        np.testing.assert_allclose(found, rgb.astype(np.float32).mean(axis=-1) / 255.0, rtol=0, atol=1e-5)


def test_overlap_blends_tile_boundaries_away() -> None:
    """A model predicting one value per tile makes steps at tile borders; overlapping tiles cross-fade them."""
    rgb = np.repeat(np.linspace(0, 255, 640, dtype=np.float32)[None, :, None], 64, axis=0)
    rgb = np.repeat(rgb, 3, axis=2).astype(np.uint8)
    model = model_of(TileMean())
    abutting = predict_mask(model, rgb, tile=128, overlap=0)
    blended = predict_mask(model, rgb, tile=128, overlap=0.5)
    step_abutting = np.abs(np.diff(abutting, axis=1)).max()
    step_blended = np.abs(np.diff(blended, axis=1)).max()
    assert step_abutting > 0.2  # one tile's mean to the next: a visible seam
    assert step_blended < step_abutting / 10


def test_ela_is_computed_on_the_whole_image_not_per_tile(tmp_path: Path) -> None:
    path = tmp_path / "photo.jpg"
    Image.fromarray(photo(250, 410, seed=3)).save(path, quality=85)
    from helpers.imageio import load_rgb

    rgb = load_rgb(path)
    mask = predict_mask(model_of(ChannelMean(), stream="ela"), rgb, tile=64, overlap=0.25)
    # the stream table scales ELA by 1/16 and clips it at 4 (helpers.streams)
    expected = np.minimum(ela(rgb, 90).astype(np.float32) / 16.0, 4.0).mean(axis=-1)
    np.testing.assert_allclose(mask, expected, rtol=0, atol=1e-5)


# -------------------------------------------------------------------------------------------------------------
# Layout and validation
# -------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "height,width,tile,overlap", [(3000, 4000, 256, 0.25), (200, 300, 256, 0.25), (97, 1000, 64, 0.5)]
)
def test_tiles_cover_the_image_on_the_jpeg_grid(height: int, width: int, tile: int, overlap: float) -> None:
    layout = tile_layout(height, width, tile, overlap)
    canvas_h, canvas_w = layout.canvas_shape
    assert canvas_h >= height + 2 * layout.margin and canvas_w >= width + 2 * layout.margin
    assert all((y - layout.margin) % 16 == 0 for y in layout.ys)
    assert all((x - layout.margin) % 16 == 0 for x in layout.xs)
    assert layout.stride % 16 == 0 and layout.overlap == tile - layout.stride
    assert blend_window(tile, layout.overlap).min() > 0


@pytest.mark.parametrize(
    "kwargs,error",
    [
        ({"tile": 100}, ValueError),
        ({"tile": -32}, ValueError),
        ({"tile": True}, ValueError),
        ({"overlap": 1.0}, ValueError),
        ({"overlap": -0.1}, ValueError),
        ({"overlap": 256}, ValueError),
        ({"overlap": True}, TypeError),
        ({"overlap": "25%"}, TypeError),
        ({"batch_size": 0}, ValueError),
    ],
)
def test_invalid_tiling_is_refused(kwargs: dict, error: type[Exception]) -> None:
    with pytest.raises(error):
        predict_mask(model_of(Constant(0.5)), photo(64, 64), **{"tile": 256, **kwargs})


def test_images_must_be_uint8_rgb() -> None:
    with pytest.raises(ValueError, match="uint8"):
        predict_mask(model_of(Constant(0.5)), photo(64, 64).astype(np.float32), tile=64)


def test_streams_come_from_the_model_input_names() -> None:
    assert set(model_streams(tiny_two_stream_model())) == {"rgb", "ela"}
    inputs = keras.Input((None, None, 3), name="image")
    odd = keras.Model(inputs, ChannelMean()(inputs))
    with pytest.raises(ValueError, match="streams"):
        predict_mask(odd, photo(64, 64), tile=64)
    # ... unless they are given
    assert predict_mask(odd, photo(64, 64), tile=64, streams=["rgb"]).shape == (64, 64)


# -------------------------------------------------------------------------------------------------------------
# Classifiers on tiles
# -------------------------------------------------------------------------------------------------------------
def tiny_classifier(size: int = 32) -> keras.Model:
    """P(tampered) of a tile = the mean of its ELA stream, clipped: a classifier whose every answer is known."""
    inputs = keras.Input((size, size, 3), name="ela")
    pooled = keras.layers.GlobalAveragePooling2D()(ChannelMean()(inputs))
    return keras.Model({"ela": inputs}, pooled)


def test_classifier_scores_every_tile_and_the_image_by_its_maximum() -> None:
    rgb = photo(70, 100, seed=4)
    tiles = classify_tiles(tiny_classifier(32), rgb, size=32)
    assert tiles.scores.shape == (3, 4) and tiles.step == 1  # ceil(70 / 32) x ceil(100 / 32)
    level = np.minimum(ela(rgb, 90).astype(np.float32) / 16.0, 4.0).mean(axis=-1)  # the stream table's ELA
    assert tiles.scores[0, 0] == pytest.approx(float(level[:32, :32].mean()), abs=1e-5)
    assert tiles.image_score == pytest.approx(float(tiles.scores.max()))
    heatmap = tiles.upsample()
    assert heatmap.shape == (70, 100) and heatmap[40, 70] == pytest.approx(float(tiles.scores[1, 2]))


def test_large_images_are_sampled_on_a_coarser_grid() -> None:
    tiles = classify_tiles(tiny_classifier(32), photo(300, 330, seed=5), size=32, max_tiles=16)
    assert tiles.step == 3 and tiles.scores.shape == (4, 4)  # 10 x 11 tiles, every third one
    assert tiles.upsample().shape == (300, 330)
