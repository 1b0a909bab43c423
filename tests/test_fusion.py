"""The fused detector: features, fitting on a small embedded set, held-out quality, save and load."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from helpers.datasets.splits import group_split
from helpers.detectors import (
    Detector,
    FusionDetector,
    Prediction,
    fit_fusion,
    get_detector,
    list_detectors,
    load_fusion,
    normalise_map,
    register_detector,
)
from helpers.detectors import base, fusion
from helpers.detectors.decision import threshold_to_half
from helpers.forensics import ela, local_noise_map
from helpers.imageio import load_image, load_mask

# Interim maps for these tests only (the package's own ela/noise detectors may not be registered): the raw
# forensic traces, normalised per image.
ADAPTERS = ("fusion_test_ela", "fusion_test_noise")


class _ElaMap(Detector):
    def predict(self, image):  # noqa: ANN001, ANN201
        return Prediction.from_heatmap(normalise_map(ela(image.rgb, 90).mean(axis=2)), score=None)


class _NoiseMap(Detector):
    def predict(self, image):  # noqa: ANN001, ANN201
        heatmap = normalise_map(local_noise_map(image.rgb, 16))
        return Prediction.from_heatmap(heatmap, score=float(heatmap.mean()))


@pytest.fixture(scope="module", autouse=True)
def adapters() -> Iterator[None]:
    register_detector(ADAPTERS[0])(_ElaMap)
    register_detector(ADAPTERS[1])(_NoiseMap)
    yield
    for name in ADAPTERS:
        base._REGISTRY.pop(name, None)


@pytest.fixture(scope="module")
def split_set(synthetic_set: pd.DataFrame) -> pd.DataFrame:
    return group_split(synthetic_set, seed=0)


@pytest.fixture(scope="module")
def fitted(split_set: pd.DataFrame) -> FusionDetector:
    # A small fit: 48 training and 20 validation images, 600 pixels each, 80 trees.
    rows = pd.concat([split_set[split_set["split"] == "train"].head(48), split_set[split_set["split"] == "val"].head(20)])
    rows.attrs.update(split_set.attrs)
    return fit_fusion(rows, detectors=list(ADAPTERS), pixels_per_image=600, val_pixels_per_image=1500,
                      max_iter=80, seed=0, progress=False)


def _f1(predicted: np.ndarray, truth: np.ndarray) -> float:
    tp = np.count_nonzero(predicted & truth)
    return 2 * tp / max(1, 2 * tp + np.count_nonzero(predicted & ~truth) + np.count_nonzero(~predicted & truth))


def test_registered_as_trained_and_excluded_from_its_own_inputs() -> None:
    assert "fusion" in list_detectors(trained=True) and "fusion" not in list_detectors(trained=False)
    defaults = fusion.default_fusion_detectors()
    assert "copy_move" not in defaults and "fusion" not in defaults and set(ADAPTERS) <= set(defaults)
    assert "copy_move" in fusion.default_fusion_detectors(exclude=())


def test_features_have_their_names_and_bands_are_exact(monkeypatch: pytest.MonkeyPatch,
                                                      split_set: pd.DataFrame) -> None:
    image = load_image(split_set["image_path"].iloc[0])
    names = fusion.fusion_feature_names(ADAPTERS)
    whole = fusion.pixel_features(image, ADAPTERS)
    assert whole.shape == (*image.shape, len(names)) and whole.dtype == np.float32
    assert np.isfinite(whole).all()
    np.testing.assert_array_equal(whole[..., names.index("fusion_test_ela:map")], get_detector(ADAPTERS[0])(image).heatmap)
    # Bands of a few rows (with their halo) give exactly the features of the whole image at once.
    monkeypatch.setattr(fusion, "_BAND_PIXELS", image.shape[1] * 7)
    np.testing.assert_allclose(fusion.pixel_features(image, ADAPTERS), whole, rtol=0, atol=1e-5)


def test_calibration_puts_the_threshold_at_one_half() -> None:
    probability = np.array([0.0, 0.1, 0.3, 0.31, 0.7, 1.0], np.float32)
    mapped = threshold_to_half(probability, 0.3)
    np.testing.assert_allclose(mapped[[0, 2, 5]], [0.0, 0.5, 1.0], atol=1e-6)
    assert np.all(np.diff(mapped) > 0) and (mapped > 0.5).tolist() == (probability > 0.3).tolist()


@pytest.mark.slow
def test_fits_and_beats_the_floor_on_held_out_images(fitted: FusionDetector, split_set: pd.DataFrame) -> None:
    metrics = fitted.info["metrics"]
    assert metrics["val_f1"] > metrics["val_all_tampered_f1"] and metrics["val_pixel_auc"] > 0.6
    assert 0.0 < fitted.threshold < 1.0 and fitted.info["training"]["train_images"] == 48
    test = split_set[(split_set["split"] == "test") & (split_set["label"] == 1)].head(16)
    f1, floor, aucs = [], [], []
    for row in test.itertuples(index=False):
        image = load_image(row.image_path)
        truth = load_mask(row.mask_path)
        prediction = fitted(image)
        np.testing.assert_array_equal(prediction.mask, prediction.heatmap > 0.5)
        assert 0.0 <= prediction.score <= 1.0
        f1.append(_f1(prediction.heatmap >= 0.5, truth))
        floor.append(_f1(np.ones_like(truth), truth))
        aucs.append(roc_auc_score(truth.ravel(), prediction.heatmap.ravel()))
    # Held-out photos (other source groups): better than chance at ranking pixels, better than the floor at 0.5.
    assert np.mean(aucs) > 0.55, np.mean(aucs)
    assert np.mean(f1) > 1.2 * np.mean(floor), (np.mean(f1), np.mean(floor))


@pytest.mark.slow
def test_save_and_load_round_trip_exactly(fitted: FusionDetector, split_set: pd.DataFrame, tmp_path: Path) -> None:
    folder = fitted.save(tmp_path / "fusion")
    text = (folder / fusion.INFO_FILE).read_text()
    info = json.loads(text, parse_constant=lambda token: pytest.fail(f"JSON holds {token}"))
    assert info["detectors"] == list(ADAPTERS) and info["features"] == fusion.fusion_feature_names(ADAPTERS)
    assert info["training"]["seed"] == 0 and info["training"]["manifest"] == split_set.attrs["manifest"]
    image = load_image(split_set["image_path"].iloc[3])
    original = fitted(image)
    for loaded in (load_fusion(folder), get_detector("fusion", path=folder)):
        again = loaded(image)
        np.testing.assert_array_equal(again.heatmap, original.heatmap)
        np.testing.assert_array_equal(again.mask, original.mask)
        assert again.score == original.score and loaded.threshold == fitted.threshold
    # Loaded from files, a fusion has a digest of them (evaluate's cache keys its rows by it); in memory, none.
    assert fitted.artifact_digest is None
    digest = load_fusion(folder).artifact_digest
    assert digest is not None and get_detector("fusion", path=folder).artifact_digest == digest
    (folder / fusion.INFO_FILE).write_text(text.replace('"seed": 0', '"seed":  0'))  # other bytes, same content
    assert load_fusion(folder).artifact_digest != digest


@pytest.mark.slow
def test_bad_folders_and_arguments(fitted: FusionDetector, split_set: pd.DataFrame, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="path="):
        FusionDetector()
    with pytest.raises(FileNotFoundError, match="fusion.json"):
        load_fusion(tmp_path / "nothing")
    folder = fitted.save(tmp_path / "broken")
    (folder / fusion.MODEL_FILE).write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match="model.pkl"):
        load_fusion(folder)
    info = json.loads((folder / fusion.INFO_FILE).read_text())
    (folder / fusion.INFO_FILE).write_text(json.dumps({**info, "format": 99}))
    with pytest.raises(ValueError, match="format 99"):
        load_fusion(folder)
    with pytest.raises(ValueError, match="unknown detector"):
        fit_fusion(split_set, detectors=["no_such_detector"], progress=False)
    with pytest.raises(ValueError, match="image_path"):
        fit_fusion(pd.DataFrame({"label": [1]}), detectors=list(ADAPTERS), progress=False)


@pytest.mark.slow
def test_strided_prediction_matches_the_full_grid(fitted: FusionDetector, split_set: pd.DataFrame,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    image = load_image(split_set["image_path"].iloc[5])
    strided = fitted.probability(image)
    monkeypatch.setattr(fusion, "PREDICTION_STRIDE", 1)
    every_pixel = fitted.probability(image)
    assert strided.shape == every_pixel.shape == image.shape and strided.dtype == np.float32
    step = 2
    # The pixels the trees score are exact; the ones between are interpolated from their neighbours.
    np.testing.assert_allclose(strided[::step, ::step], every_pixel[::step, ::step], rtol=0, atol=1e-6)
    assert np.abs(strided - every_pixel).mean() < 0.03
    assert np.mean((strided > 0.5) != (every_pixel > 0.5)) < 0.05


def test_a_tiny_image_is_scored_at_every_pixel(fitted: FusionDetector) -> None:
    rgb = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    probability = fitted.probability(rgb)
    assert probability.shape == (5, 7) and np.isfinite(probability).all()


def test_each_fused_detector_is_built_once_per_process(monkeypatch: pytest.MonkeyPatch,
                                                       split_set: pd.DataFrame) -> None:
    built: list[str] = []

    def counting(name: str, **params: object) -> Detector:
        built.append(name)
        return get_detector(name, **params)

    monkeypatch.setattr(fusion, "get_detector", counting)
    monkeypatch.setattr(fusion, "_BUILT", {})
    for path in split_set["image_path"].head(3):
        fusion.pixel_features(load_image(path), ADAPTERS)
    assert sorted(built) == sorted(ADAPTERS)


@pytest.mark.slow
def test_an_evaluation_runs_each_fused_detector_once_per_image(monkeypatch: pytest.MonkeyPatch,
                                                                fitted: FusionDetector,
                                                                split_set: pd.DataFrame) -> None:
    from helpers.evaluation.protocol import evaluate

    calls: list[str] = []
    original = _ElaMap.predict

    def counting(self, image):  # noqa: ANN001, ANN202
        calls.append(str(image.path))
        return original(self, image)

    monkeypatch.setattr(_ElaMap, "predict", counting)
    rows = split_set[split_set["split"] == "test"].head(2)
    result = evaluate({"ela map": ADAPTERS[0], "fusion": fitted}, rows, progress=False)
    assert (result.rows["status"] == "ok").all() and len(result.rows) == 4
    assert sorted(calls) == sorted(str(Path(p)) for p in rows["image_path"])  # alone and fused: once each


@pytest.mark.slow
def test_a_mask_model_is_fused_with_the_traces(split_set: pd.DataFrame) -> None:
    # Stacking: the shipped forensic network's map is one more input of the per-pixel model.
    from helpers.models.artifact_files import shipped_model_path

    parts = split_set["split"]
    rows = pd.concat([split_set[parts == "train"].head(16), split_set[parts == "val"].head(8)])
    names = [ADAPTERS[0], "mask_model"]
    params = {"mask_model": {"path": str(shipped_model_path())}}
    stacked = fit_fusion(rows, detectors=names, detector_params=params, pixels_per_image=400,
                         val_pixels_per_image=800, max_iter=30, seed=0, progress=False)
    assert stacked.info["detector_params"] == params and "mask_model:map" in stacked.info["features"]
    image = load_image(split_set[split_set["split"] == "test"]["image_path"].iloc[0])
    prediction = stacked(image)
    assert prediction.heatmap.shape == image.shape and 0.0 <= prediction.score <= 1.0
    # The map enters the features as the mask model gives it.
    whole = fusion.pixel_features(image, names, params)
    direct = get_detector("mask_model", **params["mask_model"])(image).heatmap
    np.testing.assert_allclose(whole[..., stacked.info["features"].index("mask_model:map")], direct, atol=1e-6)
