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


class ShapeRecorder(keras.layers.Layer):
    """The red channel, remembering the spatial shapes it was called on (what the model was given to read)."""

    seen: list[tuple[int, int]] = []

    def call(self, x):
        if x.shape[1] is not None:  # not while the model is being built on symbolic inputs
            ShapeRecorder.seen.append((int(x.shape[1]), int(x.shape[2])))
        return x[..., :1]


def test_a_large_image_is_read_through_a_working_copy_and_mapped_back() -> None:
    rgb = keras.Input((None, None, 3), name="rgb")
    model = keras.Model({"rgb": rgb}, ShapeRecorder()(rgb))
    detector = MaskModelDetector(model=model, tile=0, threshold=0.5, working_pixels=65_536)
    assert detector.whole_image, "a model with a working copy is never cut into tiles by analyze"
    image = np.zeros((512, 768, 3), np.uint8)  # 393 216 pixels: six times the working copy
    image[128:384, 256:512, 0] = 255
    ShapeRecorder.seen.clear()
    working = detector.predict_working(LoadedImage(image))
    assert working.heatmap.shape == detector.working_shape(512, 768) == (209, 313)
    assert ShapeRecorder.seen and max(h for h, _ in ShapeRecorder.seen) < 256, ShapeRecorder.seen
    full = detector(LoadedImage(image))
    assert full.heatmap.shape == (512, 768) and full.score == pytest.approx(working.score)
    expected = np.zeros((512, 768), bool)
    expected[128:384, 256:512] = True
    assert (full.mask != expected).mean() < 0.005  # only the square's edge, a copy pixel wide, may differ
    # Up to working_pixels (and with None) the image is read as it is.
    ShapeRecorder.seen.clear()
    whole = MaskModelDetector(model=model, tile=0, working_pixels=None)
    assert not whole.whole_image and whole(LoadedImage(image)).heatmap.shape == (512, 768)
    assert max(ShapeRecorder.seen) >= (512, 768)
    assert detector.working_shape(200, 300) == (200, 300)
    with pytest.raises(ValueError, match="working_pixels must be at least 65536"):
        MaskModelDetector(model=model, working_pixels=100)
