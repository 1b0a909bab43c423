"""Whole-image mask prediction: any image size, exact blending, no seams, streams from the whole image."""

from __future__ import annotations

import json
import time
from pathlib import Path

import keras
import numpy as np
import pytest
from keras import ops
from PIL import Image

from helpers.forensics.ela import ela
from helpers.inference import (
    INFO_FILE,
    MODEL_FILE,
    blend_window,
    evaluate_masks,
    load_mask_model,
    model_streams,
    predict_mask,
    save_mask_model,
    tile_layout,
)


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
    expected = ela(rgb, 90).astype(np.float32).mean(axis=-1) / 255.0
    np.testing.assert_allclose(mask, expected, rtol=0, atol=1e-6)


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
        ({"tile": 0}, ValueError),
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
# Evaluation and the saved model
# -------------------------------------------------------------------------------------------------------------
def test_evaluate_masks_scores_whole_images(synthetic_set) -> None:
    rows = synthetic_set.groupby("label").head(3)
    model = tiny_two_stream_model()
    result = evaluate_masks(model, rows, tile=128, keep_predictions=True)
    assert len(result.table) == len(rows) and set(result.predictions) == set(rows["image_path"])
    summary = result.summary
    assert summary["images"] == len(rows) and summary["tampered_images"] == int((rows["label"] == 1).sum())
    for key in ("pixel_f1", "pixel_iou", "micro_f1", "micro_iou", "authentic_false_alarm"):
        assert 0.0 <= summary[key] <= 1.0, key
    # an all-ones model scores the all-tampered floor on tampered images
    ones = evaluate_masks(model_of(Constant(1.0)), rows, tile=128).summary
    assert ones["pixel_f1"] == pytest.approx(ones["all_tampered_f1"], abs=1e-4)
    assert ones["authentic_false_alarm"] == 1.0


def test_save_and_load_mask_model(tmp_path: Path) -> None:
    model = tiny_two_stream_model()
    model.compile(optimizer="adam", loss="binary_crossentropy")
    model.train_on_batch({"rgb": np.zeros((1, 32, 32, 3)), "ela": np.zeros((1, 32, 32, 3))}, np.ones((1, 32, 32, 1)))
    model_path, info_path = save_mask_model(model, tmp_path / "models", {"tile": 128, "backbone": "none"})
    assert model_path.name == MODEL_FILE and info_path.name == INFO_FILE
    info = json.loads(info_path.read_text())
    assert set(info["streams"]) == {"rgb", "ela"} and info["tile"] == 128 and info["threshold"] == 0.5
    reloaded, loaded_info = load_mask_model(tmp_path / "models")
    assert loaded_info == info
    assert getattr(reloaded, "optimizer", None) is None, "the saved mask model carries optimizer state it never uses"
    rgb = photo(100, 150)
    np.testing.assert_array_equal(predict_mask(model, rgb, tile=64), predict_mask(reloaded, rgb, tile=64))
