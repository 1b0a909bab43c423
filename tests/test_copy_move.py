"""Copy-move: a region copied elsewhere (moved, and rotated and rescaled) must be found; a photo left alone."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from sklearn.datasets import load_sample_image

from helpers.detectors import get_detector, list_detectors
from helpers.detectors.copy_move import find_copy_moves
from helpers.imageio import jpeg_roundtrip


def _f1(predicted: np.ndarray, truth: np.ndarray) -> float:
    tp = np.count_nonzero(predicted & truth)
    return 2 * tp / max(1, 2 * tp + np.count_nonzero(predicted & ~truth) + np.count_nonzero(~predicted & truth))


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return np.ascontiguousarray(load_sample_image("china.jpg"))  # 427x640, a real JPEG photograph


def _copy_move(photo: np.ndarray, angle: float, scale: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A disc of the photo copied (rotated by ``angle`` degrees, scaled) to another place; saved as JPEG 90."""
    height, width = photo.shape[:2]
    source_centre, target_centre = (width * 0.3, height * 0.35), (width * 0.7, height * 0.65)
    source = np.zeros((height, width), np.uint8)
    cv2.circle(source, (round(source_centre[0]), round(source_centre[1])), min(height, width) // 8, 1, -1)
    matrix = cv2.getRotationMatrix2D(source_centre, angle, scale)
    matrix[:, 2] += np.subtract(target_centre, source_centre)
    moved = cv2.warpAffine(photo, matrix, (width, height), flags=cv2.INTER_LINEAR)
    target = cv2.warpAffine(source, matrix, (width, height), flags=cv2.INTER_NEAREST) > 0
    image = photo.copy()
    image[target] = moved[target]
    return jpeg_roundtrip(image, 90), source > 0, target, matrix


def test_registered_as_training_free() -> None:
    assert "copy_move" in list_detectors(trained=False)


@pytest.mark.parametrize(("angle", "scale"), [(0.0, 1.0), (15.0, 1.1)])
def test_finds_a_copied_region(photo: np.ndarray, angle: float, scale: float) -> None:
    image, source, target, _ = _copy_move(photo, angle, scale)
    both = get_detector("copy_move", mark="both")(image)
    assert _f1(both.mask, source | target) > 0.8
    assert both.score > 0.6 and np.all(both.heatmap[both.mask] > 0.5) and np.all(both.heatmap[~both.mask] == 0)
    copy_only = get_detector("copy_move", mark="target")(image)
    # The pasted copy was interpolated, so it is the smoother twin: the target mask lands on it.
    assert _f1(copy_only.mask, target) > 0.8 and _f1(copy_only.mask, source) < 0.1


def test_recovers_the_transform(photo: np.ndarray) -> None:
    image, _, _, matrix = _copy_move(photo, 15.0, 1.1)
    matches, support = find_copy_moves(image)
    assert len(matches) == 1 and matches[0].inliers == support >= 8
    found = matches[0].transform
    if np.linalg.norm(found[:, 2] - matrix[:, 2]) > np.linalg.norm(cv2.invertAffineTransform(found)[:, 2] - matrix[:, 2]):
        found = cv2.invertAffineTransform(found)  # RANSAC may have fitted the map from copy to source
    np.testing.assert_allclose(found[:, :2], matrix[:, :2], atol=0.03)
    np.testing.assert_allclose(found[:, 2], matrix[:, 2], atol=6.0)
    assert abs(matches[0].scale - 1.1) < 0.03 or abs(matches[0].scale - 1 / 1.1) < 0.03


def test_leaves_an_untouched_photo_alone(photo: np.ndarray) -> None:
    prediction = get_detector("copy_move")(jpeg_roundtrip(photo, 90))
    assert not prediction.mask.any() and prediction.score < 0.2


def test_images_without_keypoints() -> None:
    flat = get_detector("copy_move")(np.full((120, 160, 3), 77, np.uint8))
    assert flat.heatmap.shape == (120, 160) and not flat.mask.any() and flat.score == 0.0
    tiny = get_detector("copy_move")(np.zeros((4, 4, 3), np.uint8))
    assert not tiny.mask.any() and tiny.score == 0.0


def test_repeatable(photo: np.ndarray) -> None:
    image, *_ = _copy_move(photo, 15.0, 1.1)
    first, second = get_detector("copy_move")(image), get_detector("copy_move")(image)
    np.testing.assert_array_equal(first.mask, second.mask)
    assert first.score == second.score


def test_rejects_bad_parameters() -> None:
    with pytest.raises(ValueError, match="mark"):
        get_detector("copy_move", mark="source")
    with pytest.raises(ValueError, match="ratio"):
        get_detector("copy_move", ratio=1.5)
    with pytest.raises(ValueError, match="min_inliers"):
        get_detector("copy_move", min_inliers=2)
    with pytest.raises(ValueError, match="shape"):
        find_copy_moves(np.zeros((50, 50), np.uint8))


def test_a_large_image_is_matched_on_a_working_copy_and_answered_at_full_size(photo: np.ndarray) -> None:
    image, source, target, _ = _copy_move(photo, 0.0, 1.0)
    detector = get_detector("copy_move", mark="both", working_pixels=427 * 640 // 4)
    assert detector.whole_image and detector.working_shape(427, 640) == (213, 320)
    working = detector.predict_working(image)
    assert working.mask.shape == (213, 320) and working.score >= 0.5
    full = detector(image)
    assert full.mask.shape == (427, 640) and full.score == working.score
    # the copy is found at half resolution, and its mask scaled back still covers both twins
    assert _f1(full.mask, source | target) > 0.7
    assert np.all(full.heatmap[full.mask] == working.heatmap.max()) and np.all(full.heatmap[~full.mask] == 0)
