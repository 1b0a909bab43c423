"""Saved mask models computed with NumPy agree with Keras, and ``analyze`` with the shipped model needs no Keras."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import skimage.data
import skimage.io

from helpers.analyze import learned_detector
from helpers.detectors import MaskModelDetector, PortableMaskDetector
from helpers.imageio import LoadedImage
from helpers.inference import predict_whole
from helpers.models.artifact import load_model_artifact, save_model_artifact
from helpers.models.forensic_net import forensic_net
from helpers.models.portable import PortableModel, UnsupportedModel, average_pool_same, conv2d
from helpers.models.segmentation import unet_scratch
from helpers.shipped import shipped_model_path
from helpers.streams import compute_streams

REPO = Path(__file__).resolve().parent.parent


def _photo(height: int, width: int) -> np.ndarray:
    photo = skimage.data.astronaut()
    return np.ascontiguousarray(photo[40 : 40 + height, 60 : 60 + width])


@pytest.mark.parametrize(("stride", "dilation", "channels"), [(1, 1, 2), (1, 1, 16), (2, 1, 16), (1, 4, 16)])
def test_convolution_matches_keras_same_padding(stride: int, dilation: int, channels: int) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1, 23, 30, channels)).astype(np.float32)
    layer = keras.layers.Conv2D(8, 3, strides=stride, dilation_rate=dilation, padding="same")
    expected = keras.ops.convert_to_numpy(layer(x))[0]
    kernel, bias = (keras.ops.convert_to_numpy(w) for w in layer.weights)
    assert np.allclose(conv2d(x[0], kernel, bias, stride=stride, dilation=dilation), expected, atol=1e-4)


@pytest.mark.parametrize("window", [4, 15])
def test_same_average_pooling_counts_only_pixels_inside(window: int) -> None:
    x = np.random.default_rng(1).normal(size=(1, 20, 27, 3)).astype(np.float32)
    expected = keras.ops.convert_to_numpy(keras.ops.average_pool(x, window, strides=1, padding="same"))[0]
    assert np.allclose(average_pool_same(x[0], window), expected, atol=1e-5)


def test_the_shipped_model_gives_the_keras_map() -> None:
    path = shipped_model_path()
    if path is None:
        pytest.skip("this installation ships no model")
    model, info = load_model_artifact(path)
    rgb = _photo(190, 250)  # not a multiple of 32: both pad the same way
    expected = predict_whole(model, rgb, info["streams"], flip_views=info.get("flip_views", 1))
    portable = PortableMaskDetector(path)
    assert np.abs(portable.working_heatmap(rgb) - expected).max() < 1e-4
    keras_detector = MaskModelDetector(path)
    image = LoadedImage(rgb)
    assert portable(image).score == pytest.approx(keras_detector(image).score, abs=1e-4)


def test_a_fresh_network_on_other_streams_gives_the_keras_map(tmp_path: Path) -> None:
    keras.utils.set_random_seed(3)
    streams = ("rgb", "noise", "dq")
    model = forensic_net(streams, width=16, dilations=(1, 3))
    # Non-trivial batch-norm statistics, so the inference arithmetic is exercised.
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, var = layer.get_weights()
            rng = np.random.default_rng(len(gamma))
            layer.set_weights([gamma * 1.3, beta + 0.1, rng.normal(size=mean.shape) * 0.1,
                               var + rng.uniform(0.1, 1.0, size=var.shape)])
    keras_path, _ = save_model_artifact(model, tmp_path, "net", {"task": "segment", "streams": list(streams),
                                                                 "tile": 0})
    rgb = _photo(96, 132)
    values = compute_streams(rgb, streams)
    expected = keras.ops.convert_to_numpy(model({k: v[None] for k, v in values.items()}, training=False))[0]
    assert np.abs(PortableModel.load(keras_path).predict(values) - expected).max() < 1e-4


def test_other_models_are_left_to_keras(tmp_path: Path) -> None:
    keras_path, _ = save_model_artifact(unet_scratch(("ela",), base_filters=4, depth=2), tmp_path, "unet",
                                        {"task": "segment", "streams": ["ela"], "tile": 0})
    with pytest.raises(UnsupportedModel, match="MaxPooling2D|Dropout|Conv2DTranspose"):
        PortableModel.load(keras_path)
    assert isinstance(learned_detector("mask_model", keras_path), MaskModelDetector)


def test_analyze_with_the_shipped_model_starts_no_keras(tmp_path: Path) -> None:
    if shipped_model_path() is None:
        pytest.skip("this installation ships no model")
    image = tmp_path / "photo.png"
    skimage.io.imsave(image, _photo(128, 160), check_contrast=False)
    script = ("import sys; from helpers.analyze import analyze; "
              f"result = analyze({str(image)!r}, detectors=['ela'], search_runs=False); "
              "assert result.detectors['mask_model']['error'] is None, result.detectors; "
              "print(sorted(m for m in ('keras', 'tensorflow', 'jax', 'torch') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stdout
