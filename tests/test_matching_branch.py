"""A mask model's copy-move matching branch: the geometry finds both twins, the network names the copy."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from sklearn.datasets import load_sample_image

from helpers.detectors.copy_move import CopyMoveDetector
from helpers.detectors.mask_map import MATCHING_BRANCH, MaskMapDetector
from helpers.imageio import jpeg_roundtrip


def _f1(predicted: np.ndarray, truth: np.ndarray) -> float:
    tp = np.count_nonzero(predicted & truth)
    return 2 * tp / max(1, 2 * tp + np.count_nonzero(predicted ^ truth))


@pytest.fixture(scope="module")
def forgery() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A disc of a real photo copied elsewhere (whole-pixel move, so smoothness cannot tell the twins apart)."""
    photo = np.ascontiguousarray(load_sample_image("china.jpg"))
    height, width = photo.shape[:2]
    source = np.zeros((height, width), np.uint8)
    cv2.circle(source, (int(width * 0.3), int(height * 0.35)), min(height, width) // 8, 1, -1)
    shift = (int(width * 0.4), int(height * 0.3))
    matrix = np.float32([[1, 0, shift[0]], [0, 1, shift[1]]])
    target = cv2.warpAffine(source, matrix, (width, height), flags=cv2.INTER_NEAREST) > 0
    image = photo.copy()
    image[target] = cv2.warpAffine(photo, matrix, (width, height))[target]
    return jpeg_roundtrip(image, 92), source > 0, target


class _Map(MaskMapDetector):
    """A stand-in network: a fixed map, whatever the image."""

    def __init__(self, heatmap: np.ndarray, **kwargs) -> None:
        super().__init__({"threshold": 0.5}, **kwargs)
        self.heatmap = heatmap

    def working_heatmap(self, rgb: np.ndarray) -> np.ndarray:
        return self.heatmap.copy()


def _leaning_on(region: np.ndarray) -> np.ndarray:
    """A weak map, a little warmer on ``region`` and with one hot spot far from both twins."""
    heatmap = np.full(region.shape, 0.2, np.float32)
    heatmap[region] = 0.35
    heatmap[:20, -20:] = 0.9
    return heatmap


@pytest.mark.parametrize("pick", ["source", "target"])
def test_the_network_names_the_copy_and_the_branch_draws_it(forgery, pick: str) -> None:
    image, source, target = forgery
    chosen, other = (source, target) if pick == "source" else (target, source)
    prediction = _Map(_leaning_on(chosen))(image)
    assert _f1(prediction.mask, chosen) > 0.8 and _f1(prediction.mask, other) < 0.1
    # Where the branch verified a copy, the rest of the network's map stays below the threshold ...
    assert not prediction.mask[:20, -20:].any() and prediction.heatmap[:20, -20:].max() == pytest.approx(0.5)
    # ... and the copy reads at least 0.5 + the branch's score / 2, which also lifts the image score.
    assert prediction.heatmap[prediction.mask].min() > 0.6 and prediction.score > 0.6


def test_without_the_branch_or_without_a_copy_the_map_is_the_networks(forgery) -> None:
    image, source, _ = forgery
    heatmap = _leaning_on(source)
    alone = _Map(heatmap, matching=False)(image)
    np.testing.assert_array_equal(alone.heatmap, heatmap)
    assert alone.mask.sum() == 400
    untouched = np.ascontiguousarray(load_sample_image("flower.jpg"))
    branched = _Map(heatmap[: untouched.shape[0], : untouched.shape[1]])(untouched)
    np.testing.assert_array_equal(branched.heatmap, heatmap[: untouched.shape[0], : untouched.shape[1]])


def test_region_pairs_answer_on_the_images_own_grid(forgery) -> None:
    image, source, target = forgery
    detector = CopyMoveDetector(**MATCHING_BRANCH)
    pairs, score = detector.region_pairs(image)
    assert len(pairs) == 1 and score > 0.5
    found = pairs[0][0] | pairs[0][1]
    assert _f1(found, source | target) > 0.8
    large = cv2.resize(image, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)
    small_copy = CopyMoveDetector(**{**MATCHING_BRANCH, "working_pixels": image.shape[0] * image.shape[1]})
    pairs, _ = small_copy.region_pairs(large)
    assert pairs and pairs[0][0].shape == large.shape[:2]


def test_a_matching_branch_must_be_a_copy_move_detector() -> None:
    with pytest.raises(TypeError, match="CopyMoveDetector"):
        _Map(np.zeros((8, 8), np.float32), matching="copy_move")
    custom = CopyMoveDetector(mark="both")
    assert _Map(np.zeros((8, 8), np.float32), matching=custom).matching is custom
