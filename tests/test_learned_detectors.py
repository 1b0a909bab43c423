"""Learned models behind the detector contract: mask models and classifiers, saved or in memory."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
from keras import ops

from helpers.detectors import ClassifierDetector, MaskModelDetector, get_detector, list_detectors
from helpers.detectors.learned import image_score_from_map, learned_detectors
from helpers.imageio import LoadedImage
from helpers.models.artifact import ModelArtifactError, save_model_artifact


@keras.saving.register_keras_serializable(package="forgery_workbook_tests")
class RedShare(keras.layers.Layer):
    """Per pixel: the red channel of the rgb stream (0..1), a model whose every output is known."""

    def call(self, x):
        return x[..., :1]


@keras.saving.register_keras_serializable(package="forgery_workbook_tests")
class MeanRed(keras.layers.Layer):
    """Per tile: the mean red value, one sigmoid-like probability."""

    def call(self, x):
        return ops.mean(x[..., :1], axis=(1, 2))


def red_mask_model() -> keras.Model:
    rgb = keras.Input((None, None, 3), name="rgb")
    return keras.Model({"rgb": rgb}, RedShare()(rgb))


def red_classifier(size: int = 32) -> keras.Model:
    rgb = keras.Input((size, size, 3), name="rgb")
    return keras.Model({"rgb": rgb}, MeanRed()(rgb))


def red_square_image() -> LoadedImage:
    """96 x 128, black but for a red 32 x 32 square at rows 32-63, columns 64-95."""
    rgb = np.zeros((96, 128, 3), np.uint8)
    rgb[32:64, 64:96, 0] = 255
    return LoadedImage(rgb)


def test_learned_detectors_are_registered_as_trained() -> None:
    assert {"mask_model", "classifier"} <= set(list_detectors(trained=True))
    assert not {"mask_model", "classifier"} & set(list_detectors(trained=False))


def test_mask_model_detector_maps_masks_and_scores(tmp_path: Path) -> None:
    save_model_artifact(red_mask_model(), tmp_path, "mask_model", {"task": "segment", "tile": 64, "threshold": 0.5})
    detector = get_detector("mask_model", path=tmp_path)
    prediction = detector(red_square_image())
    assert prediction.heatmap.shape == (96, 128)
    expected = np.zeros((96, 128), bool)
    expected[32:64, 64:96] = True
    np.testing.assert_array_equal(prediction.mask, expected)
    # the default image score: the mean of the top 1 % of pixels (123 of 12288), all inside the square
    assert prediction.score == pytest.approx(1.0)
    assert image_score_from_map(prediction.heatmap, {"rule": "mean"}) == pytest.approx(1024 / 12288, abs=1e-6)


def test_a_recorded_image_score_rule_is_used(tmp_path: Path) -> None:
    rule = {"rule": "mean", "platt": [10.0, -1.0]}
    save_model_artifact(red_mask_model(), tmp_path, "mask_model", {"tile": 64, "image_score": rule})
    score = MaskModelDetector(tmp_path)(red_square_image()).score
    assert score == pytest.approx(1 / (1 + np.exp(-(10 * 1024 / 12288 - 1))), abs=1e-5)


def test_classifier_detector_paints_its_tiles(tmp_path: Path) -> None:
    save_model_artifact(red_classifier(32), tmp_path, "classifier", {"threshold": 0.5})
    prediction = ClassifierDetector(tmp_path)(red_square_image())
    assert prediction.score == pytest.approx(1.0)  # the tile holding the square
    assert prediction.heatmap[40, 70] == pytest.approx(1.0) and prediction.heatmap[10, 10] == pytest.approx(0.0)
    np.testing.assert_array_equal(prediction.mask, prediction.heatmap > 0.5)
    quiet = ClassifierDetector(model=red_classifier(32), threshold=0.5)(LoadedImage(np.zeros((40, 40, 3), np.uint8)))
    assert quiet.score == 0.0 and not quiet.mask.any(), "below the threshold the mask stays empty"


def test_in_memory_models_and_folders_of_models(tmp_path: Path) -> None:
    in_memory = MaskModelDetector(model=red_mask_model(), tile=64, threshold=0.9)
    assert in_memory.threshold == 0.9 and in_memory.info["streams"] == ["rgb"]
    save_model_artifact(red_mask_model(), tmp_path, "mask_model", {"tile": 64})
    save_model_artifact(red_classifier(), tmp_path, "classifier", {})
    found = learned_detectors(tmp_path)
    assert set(found) == {"mask_model", "classifier"}
    assert isinstance(found["mask_model"], MaskModelDetector) and isinstance(found["classifier"], ClassifierDetector)
    with pytest.raises(ValueError, match="not both or neither"):
        MaskModelDetector()
    with pytest.raises(ValueError, match="classify model cannot be used as a segment detector|not a segment model"):
        MaskModelDetector(tmp_path / "classifier.keras")
    with pytest.raises(ModelArtifactError, match="expected a folder holding NAME.keras and NAME.json"):
        MaskModelDetector(tmp_path / "nothing here")
