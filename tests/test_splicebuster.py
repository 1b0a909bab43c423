"""Splicebuster: features, the Gaussian-uniform EM, a splice it must find and a photo it must leave alone."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_sample_image

from helpers.detectors import Prediction, get_detector, list_detectors
from helpers.detectors.splicebuster import (
    FEATURES_PER_WINDOW,
    cooccurrence_classes,
    fit_gaussian_uniform,
    window_features,
)
from helpers.imageio import jpeg_roundtrip


def _f1(predicted: np.ndarray, truth: np.ndarray) -> float:
    tp = np.count_nonzero(predicted & truth)
    return 2 * tp / max(1, 2 * tp + np.count_nonzero(predicted & ~truth) + np.count_nonzero(~predicted & truth))


@pytest.fixture(scope="module")
def host() -> np.ndarray:
    """A real photo (427x640) with camera-like noise, saved as JPEG: every region carries the same noise."""
    rng = np.random.default_rng(1)
    photo = load_sample_image("flower.jpg").astype(np.float32)
    return jpeg_roundtrip(np.clip(photo + rng.normal(0, 2.0, photo.shape), 0, 255).astype(np.uint8), 95)


@pytest.fixture(scope="module")
def spliced(host: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A 142x142 region of another photo pasted in without the host's noise (another processing chain)."""
    donor = load_sample_image("china.jpg")
    height, width = host.shape[:2]
    size = min(height, width) // 3
    top, left = height // 3, width // 2
    image = host.copy()
    image[top : top + size, left : left + size] = donor[50 : 50 + size, 150 : 150 + size]
    mask = np.zeros((height, width), bool)
    mask[top : top + size, left : left + size] = True
    return jpeg_roundtrip(image, 95), mask


def test_registered_as_training_free() -> None:
    assert "splicebuster" in list_detectors(trained=False)


def test_cooccurrence_classes_merge_reversal_and_sign() -> None:
    classes = cooccurrence_classes()
    assert classes.shape == (81,) and set(classes.tolist()) == set(range(25))
    digits = (np.arange(81)[:, None] // 3 ** np.arange(4)) % 3
    code = lambda d: int((d * 3 ** np.arange(4)).sum())  # noqa: E731
    for d in digits:
        assert classes[code(d)] == classes[code(d[::-1])] == classes[code(2 - d)] == classes[code(2 - d[::-1])]
    # Different patterns stay apart: all zeros, an isolated +1 and a constant +1 run are three classes.
    assert len({classes[code(np.array(p))] for p in ([1, 1, 1, 1], [1, 2, 1, 1], [2, 2, 2, 2])}) == 3


def test_window_features_separate_noise_levels() -> None:
    rng = np.random.default_rng(0)
    image = np.clip(128 + rng.normal(0, 2, (256, 512, 1)), 0, 255).repeat(3, axis=2)
    image[:, 256:] = np.clip(128 + rng.normal(0, 12, (256, 256, 1)), 0, 255).repeat(3, axis=2)
    found = window_features(image.astype(np.uint8), window=64, stride=8)
    rows, cols = (256 - 6) // 8 - 8 + 1, (512 - 6) // 8 - 8 + 1
    assert found.features.shape == (rows, cols, FEATURES_PER_WINDOW) and found.valid.all()
    # Each half (across, along) is a frequency distribution before the square root.
    np.testing.assert_allclose((found.features[..., :25] ** 2).sum(axis=2), 1.0, atol=1e-9)
    quiet, loud = found.features[:, 2].mean(axis=0), found.features[:, -3].mean(axis=0)
    spread_within = found.features[:, 2].std(axis=0).max()
    assert np.abs(quiet - loud).max() > 10 * spread_within


def test_saturated_windows_are_left_out() -> None:
    rng = np.random.default_rng(0)
    image = np.clip(128 + rng.normal(0, 3, (200, 200, 3)), 0, 255).astype(np.uint8)
    image[:, :100] = 255
    found = window_features(image, window=64, stride=8)
    centres = found.offset + found.window // 2 + found.stride * np.arange(found.valid.shape[1])
    assert not found.valid[:, centres < 64].any() and found.valid[:, centres > 140].all()


def test_em_recovers_the_outlying_share() -> None:
    rng = np.random.default_rng(0)
    host = rng.normal(0, 1, (1800, 5))
    outliers = rng.uniform(-12, 12, (200, 5))
    outliers[:, 0] = rng.uniform(6, 12, 200)  # all far from the host cloud
    mixture = fit_gaussian_uniform(np.concatenate([host, outliers]))
    assert 0.07 < mixture.outlier_share < 0.13
    posterior = mixture.posterior(np.concatenate([host, outliers]))
    assert (posterior[:1800] > 0.5).mean() < 0.02 and (posterior[1800:] > 0.5).mean() > 0.9
    np.testing.assert_allclose(mixture.mean, 0.0, atol=0.15)
    assert mixture.evidence > 0.1
    clean = fit_gaussian_uniform(host)
    assert clean.outlier_share < 0.02 and clean.evidence < 0.02


def test_finds_a_splice_from_another_photo(spliced: tuple[np.ndarray, np.ndarray], host: np.ndarray) -> None:
    image, truth = spliced
    detector = get_detector("splicebuster")
    prediction = detector(image)
    assert isinstance(prediction, Prediction) and prediction.heatmap.shape == truth.shape
    assert _f1(prediction.mask, truth) > 0.6
    assert prediction.heatmap[truth].mean() > 0.7 and prediction.heatmap[~truth].mean() < 0.15
    assert prediction.score > 0.5
    assert prediction.score > detector(host).score + 0.3


def test_leaves_an_untouched_photo_alone(host: np.ndarray) -> None:
    prediction = get_detector("splicebuster")(host)
    assert prediction.mask.mean() < 0.05
    assert prediction.score < 0.2


def test_geometry_and_degenerate_images() -> None:
    detector = get_detector("splicebuster")
    assert detector.geometry(3000, 4000) == (128, 8)
    assert detector.geometry(427, 640) == (64, 4)  # too few disjoint 128 px windows on a small photo
    assert detector.geometry(200, 260) == (32, 2)
    assert detector.geometry(30, 30) is None and detector.geometry(101, 77) is None
    for side in (30, 101):
        small = detector(np.random.default_rng(0).integers(0, 256, (side, 77, 3), dtype=np.uint8))
        assert not small.mask.any() and small.heatmap.max() == 0 and small.score is None
    flat = get_detector("splicebuster")(np.full((300, 300, 3), 255, np.uint8))  # all saturated: nothing to fit
    assert not flat.mask.any() and flat.heatmap.max() == 0 and flat.score == 0.0


def test_rejects_bad_parameters() -> None:
    with pytest.raises(ValueError, match="multiple of stride"):
        get_detector("splicebuster", window=100, stride=8)
    with pytest.raises(ValueError, match="step > 0"):
        get_detector("splicebuster", step=0)
    with pytest.raises(ValueError, match="uint8"):
        window_features(np.zeros((200, 200, 3)))
