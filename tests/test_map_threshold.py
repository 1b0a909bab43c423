"""A mask model's map threshold: chosen on validation by the training recipe, saved with the model, and mapped to
0.5 by its detector (helpers.models.recipes.choose_map_threshold, helpers.detectors.mask_map)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers.detectors.decision import threshold_to_half
from helpers.detectors.mask_map import MaskMapDetector
from helpers.imageio import LoadedImage
from helpers.models import recipes
from helpers.models.artifact import ModelArtifactError, describe_model
from helpers.models.recipes import MAP_THRESHOLDS, MaskTraining, choose_map_threshold, validation_scores


def test_a_flat_curve_keeps_one_half() -> None:
    # the full network's validation curve: 0.370 at 0.5, 0.384 at its top (0.75), inside the margin
    curve = [0.20 + 0.01 * i for i in range(9)] + [0.370, 0.376, 0.380, 0.383, 0.384, 0.384, 0.384, 0.381, 0.37, 0.34]
    assert choose_map_threshold(curve) == 0.5


def test_a_clearly_better_threshold_is_taken() -> None:
    curve = np.full(len(MAP_THRESHOLDS), 0.1)
    curve[MAP_THRESHOLDS.index(0.15)] = 0.226
    curve[MAP_THRESHOLDS.index(0.5)] = 0.183
    assert choose_map_threshold(curve) == 0.15
    assert choose_map_threshold(curve, margin=0.05) == 0.5  # the margin decides


def test_ties_go_to_the_threshold_nearer_one_half() -> None:
    curve = np.zeros(len(MAP_THRESHOLDS))
    curve[MAP_THRESHOLDS.index(0.1)] = curve[MAP_THRESHOLDS.index(0.35)] = 0.3
    assert choose_map_threshold(curve) == 0.35


def test_a_curve_must_match_its_thresholds_and_hold_one_half() -> None:
    with pytest.raises(ValueError, match="one value per threshold"):
        choose_map_threshold([0.1, 0.2])
    with pytest.raises(ValueError, match="hold 0.5"):
        choose_map_threshold([0.1, 0.2], thresholds=[0.2, 0.4])


def test_validation_scores_read_f1_at_every_threshold(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import cv2

    rng = np.random.default_rng(0)
    rows, maps, truths = [], {}, {}
    for index in range(3):
        truth = np.zeros((24, 32), bool)
        truth[4 + index : 14 + index, 6:20] = True
        heatmap = np.clip(0.25 * truth + rng.uniform(0, 0.35, truth.shape), 0, 1).astype(np.float32)
        heatmap[0, 0] = 0.5  # a value on a threshold itself: "above" is strict, as the protocol's
        mask_path = tmp_path / f"m{index}.png"
        cv2.imwrite(str(mask_path), truth.astype(np.uint8) * 255)
        image_path = str(tmp_path / f"i{index}.png")
        maps[image_path], truths[image_path] = heatmap, truth
        rows.append({"image_path": image_path, "mask_path": str(mask_path), "label": 1})
    rows.append({"image_path": str(tmp_path / "authentic.png"), "mask_path": "", "label": 0})
    maps[rows[-1]["image_path"]] = np.full((24, 32), 0.1, np.float32)
    monkeypatch.setattr(recipes, "load_rgb", lambda path: path)
    monkeypatch.setattr(recipes, "forensic_heatmap", lambda model, path, streams, flip_views=1: maps[path])

    scored = validation_scores(None, pd.DataFrame(rows), ("ela",))  # type: ignore[arg-type]

    def f1(heatmap: np.ndarray, truth: np.ndarray, t: float) -> float:
        predicted = heatmap > t
        tp = np.count_nonzero(predicted & truth)
        return 2 * tp / max(1, 2 * tp + np.count_nonzero(predicted ^ truth))

    expected = [np.mean([f1(maps[p], truths[p], t) for p in truths]) for t in MAP_THRESHOLDS]
    np.testing.assert_allclose(scored["f1_by_threshold"], expected, atol=1e-12)
    assert scored["map_threshold"] == choose_map_threshold(expected)
    assert scored["map_threshold"] < 0.5  # the edits sit at 0.25-0.6, so 0.5 misses most of them
    assert scored["pixel_f1"] == pytest.approx(expected[MAP_THRESHOLDS.index(scored["map_threshold"])])
    assert scored["pixel_f1_at_half"] == pytest.approx(expected[MAP_THRESHOLDS.index(0.5)])
    assert scored["labels"] == [1, 1, 1, 0] and len(scored["scores"]) == 4


class _FixedMap(MaskMapDetector):
    def __init__(self, heatmap: np.ndarray, **info: object) -> None:
        super().__init__({"threshold": 0.5, **info}, matching=False)
        self.raw = heatmap

    def working_heatmap(self, rgb: np.ndarray) -> np.ndarray:
        return self.raw


def _image(shape: tuple[int, int]) -> LoadedImage:
    return LoadedImage(np.zeros((*shape, 3), np.uint8))


def test_the_detector_maps_its_threshold_to_one_half_and_scores_the_raw_map() -> None:
    raw = np.array([[0.1, 0.2, 0.3], [0.31, 0.6, 0.9]], np.float32)
    plain = _FixedMap(raw).predict(_image(raw.shape))
    moved = _FixedMap(raw, map_threshold=0.25).predict(_image(raw.shape))
    np.testing.assert_array_equal(plain.heatmap, raw)
    np.testing.assert_allclose(moved.heatmap, threshold_to_half(raw, 0.25))
    assert (moved.mask == (raw > 0.25)).all() and (plain.mask == (raw > 0.5)).all()
    assert moved.score == pytest.approx(plain.score)  # the image score's calibration was fitted on the raw map


@pytest.mark.parametrize("bad", [0.0, 1.0, -0.2, float("nan"), "high", True, None])
def test_a_map_threshold_outside_zero_one_is_refused(bad: object) -> None:
    with pytest.raises(ModelArtifactError, match="map_threshold"):
        _FixedMap(np.zeros((2, 2), np.float32), map_threshold=bad)


def test_a_saved_description_keeps_the_map_threshold() -> None:
    import keras

    model = keras.Sequential([keras.Input((None, None, 3)), keras.layers.Conv2D(1, 1, activation="sigmoid")])
    described = describe_model(model, {"task": "segment", "streams": ["rgb"], "map_threshold": 0.35})
    assert described["map_threshold"] == 0.35
    with pytest.raises(ModelArtifactError, match="map_threshold"):
        describe_model(model, {"task": "segment", "streams": ["rgb"], "map_threshold": 1.5})
    training = MaskTraining(model=model, streams=("rgb",), map_threshold=0.2)
    assert training.map_info == {"image_score": training.image_score_rule, "map_threshold": 0.2, "flip_views": 1}
    assert training.summary()["map_threshold"] == 0.2
