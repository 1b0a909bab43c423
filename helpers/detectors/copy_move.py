"""Keypoint copy-move detection with dense verification (notebooks 04 and 07).

A copy-move forgery duplicates a region of an image elsewhere in the *same* image (to hide or to multiply
something), often rotated or rescaled. Noise and compression traces then agree, since both copies come from one
camera, so trace-based methods see nothing; what gives the forgery away is that two places look the same. The
pipeline follows Amerini et al. ("A SIFT-based forensic method for copy-move attack detection and transformation
recovery", IEEE TIFS 2011) and adds the dense verification of later work (Christlein et al. 2012, Li et al. 2015):

1. **Keypoints**: SIFT (``cv2.SIFT_create``) on the grey image; SIFT is invariant to rotation and scale, so a
   rotated or rescaled copy still matches its source.
2. **Matching within the image**, generalised 2-nearest-neighbour test (g2NN): for each keypoint the nearest
   descriptors (other than itself) are taken in order while ``d_i / d_(i+1) < ratio``; this keeps several
   copies of one region, where Lowe's plain ratio test keeps at most one. Pairs closer than ``min_distance``
   pixels are dropped (neighbouring keypoints on one structure match trivially).
3. **Clustering**: the matched keypoints' positions are grouped by agglomerative clustering (average linkage,
   cut at a fraction of the image diagonal), and the pairs are grouped by the pair of clusters they join.
4. **Geometry**: for each pair of clusters with enough matches, an affine transform from one to the other is
   estimated with RANSAC (``cv2.estimateAffine2D``); a transform is kept when it has at least ``min_inliers``
   inliers, a plausible scale and a real displacement. The inliers of every kept transform are counted over all
   matches (in both directions), and transforms that explain the same matches are merged.
5. **Dense verification**: the image is warped by each transform (and by its inverse) and the zero-mean
   normalised cross-correlation between every pixel's neighbourhood and its mapped partner's is computed with
   box filters. Pixels whose correlation exceeds ``correlation`` (and which have texture enough for the
   correlation to mean something) are candidates; connected candidate regions that hold an inlier keypoint are
   kept, cleaned with morphology (opening, closing, holes filled). This turns a few dozen keypoints into a mask
   that follows the copied region's shape.

``mark="target"`` (the default) marks the copy only, as CASIA, COVERAGE and the workbook's embedded set do;
``mark="both"`` marks the source and the copy, as the MICC and GRIP benchmarks do. Which of the two regions is
the copy cannot be told from the geometry (the transform is equally valid both ways). Both regions hold the
same content, so a difference in their local noise residual is a difference in processing: the pasted copy
went through interpolation (rotation, rescaling, sub-pixel moves), which smooths it, so the *smoother* region
is taken as the copy. This fails for copies scaled down (they come out sharper) and is a coin toss for a pure
whole-pixel move; prefer ``"both"`` when that matters. On the embedded set (200 samples, seed 0) the copy is
picked right often enough that ``"target"`` scores a higher pixel F1 than ``"both"`` (0.23 against 0.21).

Image score: ``n / (n + 12)`` where ``n`` is the number of inliers of the kept transforms, so 12 agreeing
matches give 0.5; without a kept transform ``n`` is the largest RANSAC support seen, capped at
``min_inliers - 1`` (0 when nothing matched at all), so near misses rank above clean images. The heatmap equals ``0.5 + score / 2`` inside the mask and 0 outside: the method's evidence is the
geometry, which has no per-pixel grading.

Large images: SIFT's scale space starts at twice the image's size and holds about 230 bytes per pixel of what it
reads (a 12 MP photo would need 2.7 GB), so the method works on a copy of at most ``working_pixels`` (2 MP by
default, about 1630 x 1225), reduced by area averaging; the transforms, the dense verification and the mask are
computed there and the mask is scaled back (nearest neighbour). The method compares regions across the whole
image, so it is never cut into tiles (:mod:`helpers.detectors.tiled`); the price is resolution: a copied region
must span about 40 px *of the working copy* (about 100 px of a 12 MP photo, 280 px of a 100 MP one).

Limits: flat or repetitive content (sky, walls, brick, grass) has few distinctive keypoints or many false
ones; regions smaller than about 40 px across hold too few keypoints; mirrored copies are missed (SIFT is not
invariant to reflection); strong blur, noise or recompression of the copy weakens both matching and the dense
correlation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

from helpers.detectors.base import Detector, Prediction, register_detector
from helpers.forensics.noise import NOISE_KERNEL
from helpers.imageio import LoadedImage, as_loaded_image, check_rgb

__all__ = ["CopyMoveDetector", "CopyMoveMatch", "find_copy_moves", "DEFAULT_WORKING_PIXELS"]

Mark = Literal["both", "target"]
_HALF_SCORE_INLIERS = 12.0
"""Kept inliers at which the image score reaches 0.5."""
_MAX_PAIRS = 3000
"""Matched pairs kept for clustering (the most distinctive first): clustering is quadratic in the points."""
DEFAULT_WORKING_PIXELS = 2_000_000
"""Pixels of the working copy a larger image is reduced to (see the module docstring): about 0.45 GB for SIFT."""
_MIN_SCALE, _MAX_SCALE = 0.33, 3.0
"""Plausible scale range of a copy; beyond it a 'transform' is almost surely a degenerate RANSAC fit."""


@dataclass(frozen=True)
class CopyMoveMatch:
    """One detected duplication: an affine map from one region to the other, and its support."""

    transform: np.ndarray
    """``(2, 3)`` affine matrix mapping points of the first region (``source_points``) onto the second."""
    source_points: np.ndarray
    """``(N, 2)`` x, y of the inlier keypoints in the first region."""
    target_points: np.ndarray
    """``(N, 2)`` x, y of their partners in the second region."""

    @property
    def inliers(self) -> int:
        return int(len(self.source_points))

    @property
    def scale(self) -> float:
        return float(np.sqrt(abs(np.linalg.det(self.transform[:, :2]))))


# ----------------------------------------------------------------------------------------------------------------
# Keypoints, matching, clustering, RANSAC


def _grey(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


def _g2nn_pairs(descriptors: np.ndarray, ratio: float, neighbours: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Index pairs ``(i, j)`` passing the generalised 2-NN test, with each pair's distance ratio (lower: better)."""
    count = len(descriptors)
    k = min(neighbours + 1, count)
    if count < 3:
        return np.empty(0, int), np.empty(0, int), np.empty(0)
    if count <= 2000:
        matcher = cv2.BFMatcher(cv2.NORM_L2)
    else:
        # Approximate search (randomised kd-trees) keeps matching near-linear on 10^4-10^5 keypoints.
        matcher = cv2.FlannBasedMatcher({"algorithm": 1, "trees": 4}, {"checks": 32})
    found = matcher.knnMatch(descriptors, descriptors, k=k)
    width = k
    indices = np.full((count, width), -1, np.int64)
    distances = np.full((count, width), np.inf)
    for query, matches in enumerate(found):
        for slot, match in enumerate(matches[:width]):
            indices[query, slot] = match.trainIdx
            distances[query, slot] = match.distance
    # Drop the keypoint itself wherever it appears (identical descriptors may come before it).
    self_match = indices == np.arange(count)[:, None]
    order = np.argsort(np.where(self_match, np.inf, distances), axis=1, kind="stable")
    indices = np.take_along_axis(indices, order, axis=1)[:, : width - 1]
    distances = np.take_along_axis(np.where(self_match, np.inf, distances), order, axis=1)[:, : width - 1]
    # g2NN: accept neighbour i while d_i / d_(i+1) < ratio (a zero next distance: ambiguous, reject).
    following = distances[:, 1:]
    ratios = np.where(following > 0, distances[:, :-1] / np.where(following > 0, following, 1.0), 1.0)
    accepted = np.cumprod(ratios < ratio, axis=1).astype(bool)
    query_idx, slot_idx = np.nonzero(accepted)
    partners = indices[query_idx, slot_idx]
    keep = partners >= 0
    return query_idx[keep], partners[keep], ratios[query_idx, slot_idx][keep]


def _cluster_points(points: np.ndarray, cut: float) -> np.ndarray:
    """Cluster labels of ``points`` by average-linkage agglomerative clustering cut at distance ``cut``."""
    # scikit-learn takes seconds to import; only images with enough matches get this far.
    from sklearn.cluster import AgglomerativeClustering

    if len(points) < 2:
        return np.zeros(len(points), int)
    model = AgglomerativeClustering(n_clusters=None, distance_threshold=cut, linkage="average")
    return model.fit_predict(points)


def _ransac(source: np.ndarray, target: np.ndarray, threshold: float, seed: int) -> tuple[np.ndarray | None, np.ndarray]:
    if len(source) < 3:
        return None, np.zeros(len(source), bool)
    cv2.setRNGSeed(seed)  # RANSAC draws from OpenCV's global generator: seed it for repeatable masks
    matrix, inliers = cv2.estimateAffine2D(
        source.astype(np.float32), target.astype(np.float32), method=cv2.RANSAC,
        ransacReprojThreshold=threshold, maxIters=4000, confidence=0.995, refineIters=10,
    )
    if matrix is None or inliers is None:
        return None, np.zeros(len(source), bool)
    return matrix, inliers.ravel().astype(bool)


def _plausible(matrix: np.ndarray, source: np.ndarray, target: np.ndarray, min_distance: float) -> bool:
    determinant = float(np.linalg.det(matrix[:, :2]))
    if determinant <= 0:  # a reflection: SIFT cannot have matched it, so the fit is noise
        return False
    scale = np.sqrt(determinant)
    if not _MIN_SCALE <= scale <= _MAX_SCALE:
        return False
    return float(np.median(np.linalg.norm(target - source, axis=1))) >= min_distance


def _project(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ matrix[:, :2].T + matrix[:, 2]


def find_copy_moves(
    rgb: np.ndarray, *, ratio: float = 0.5, min_distance: float | None = None, min_inliers: int = 8,
    ransac_threshold: float = 3.0, max_keypoints: int = 0, contrast_threshold: float = 0.02, max_transforms: int = 4,
    seed: int = 0,
) -> tuple[list[CopyMoveMatch], int]:
    """Detect duplicated regions by keypoints (steps 1-4 of the module doc).

    Returns the kept matches (largest support first) and the largest inlier count seen, kept or not (the
    image score of an image without a kept match). ``min_distance`` defaults to 2 % of the image diagonal
    (at least 10 px); ``max_keypoints`` > 0 caps SIFT's keypoints (the strongest are kept);
    ``contrast_threshold`` is SIFT's (OpenCV's default is 0.04; half of it finds keypoints in the low-contrast
    regions a forger likes to copy, such as foliage or fur in the shade).
    """
    rgb = check_rgb(rgb)
    height, width = rgb.shape[:2]
    diagonal = float(np.hypot(height, width))
    min_distance = max(10.0, 0.02 * diagonal) if min_distance is None else float(min_distance)
    sift = cv2.SIFT_create(nfeatures=max(0, int(max_keypoints)), contrastThreshold=contrast_threshold)
    keypoints, descriptors = sift.detectAndCompute(_grey(rgb), None)
    if descriptors is None or len(keypoints) < 3:
        return [], 0
    positions = np.array([kp.pt for kp in keypoints], np.float64)
    first, second, ratios = _g2nn_pairs(descriptors.astype(np.float32), ratio, neighbours=5)
    if len(first) == 0:
        return [], 0
    # One entry per unordered pair, far enough apart; the most distinctive (lowest ratio) first.
    low, high = np.minimum(first, second), np.maximum(first, second)
    _, unique = np.unique(low * len(keypoints) + high, return_index=True)
    low, high, ratios = low[unique], high[unique], ratios[unique]
    far = np.linalg.norm(positions[low] - positions[high], axis=1) >= min_distance
    low, high, ratios = low[far], high[far], ratios[far]
    order = np.argsort(ratios, kind="stable")[:_MAX_PAIRS]
    low, high = low[order], high[order]
    if len(low) < min_inliers:
        return [], int(len(low))

    a, b = positions[low], positions[high]
    labels = _cluster_points(np.concatenate([a, b]), cut=0.1 * diagonal)
    label_a, label_b = labels[: len(a)], labels[len(a):]
    candidates: list[tuple[np.ndarray, np.ndarray]] = []
    best_support = 0
    for cluster_a, cluster_b in {(min(p, q), max(p, q)) for p, q in zip(label_a, label_b)}:
        forward = (label_a == cluster_a) & (label_b == cluster_b)
        backward = (label_a == cluster_b) & (label_b == cluster_a)
        # Orient every pair from cluster_a to cluster_b; within one cluster, offer both orientations.
        source = np.concatenate([a[forward], b[backward]] + ([b[forward]] if cluster_a == cluster_b else []))
        target = np.concatenate([b[forward], a[backward]] + ([a[forward]] if cluster_a == cluster_b else []))
        if len(source) < min_inliers:
            continue
        matrix, inliers = _ransac(source, target, ransac_threshold, seed)
        if matrix is None:
            continue
        best_support = max(best_support, int(inliers.sum()))
        if inliers.sum() >= min_inliers and _plausible(matrix, source[inliers], target[inliers], min_distance):
            candidates.append((matrix, source[inliers]))

    matches = _gather(candidates, a, b, ransac_threshold, min_inliers)[:max_transforms]
    return matches, max(best_support, max((m.inliers for m in matches), default=0))


def _gather(candidates: list[tuple[np.ndarray, np.ndarray]], a: np.ndarray, b: np.ndarray,
            threshold: float, min_inliers: int) -> list[CopyMoveMatch]:
    """Re-count each transform's inliers over all pairs (both directions) and drop duplicate explanations."""
    explained = np.zeros(len(a), bool)
    results: list[CopyMoveMatch] = []
    scored = []
    for matrix, _ in candidates:
        forward = np.linalg.norm(_project(matrix, a) - b, axis=1) < threshold
        backward = np.linalg.norm(_project(matrix, b) - a, axis=1) < threshold
        scored.append((int((forward | backward).sum()), matrix, forward, backward))
    for _, matrix, forward, backward in sorted(scored, key=lambda item: -item[0]):
        fresh = (forward | backward) & ~explained
        if fresh.sum() < min_inliers:
            continue
        explained |= forward | backward
        source = np.concatenate([a[forward & fresh], b[backward & ~forward & fresh]])
        target = np.concatenate([b[forward & fresh], a[backward & ~forward & fresh]])
        results.append(CopyMoveMatch(transform=matrix, source_points=source, target_points=target))
    return results


# ----------------------------------------------------------------------------------------------------------------
# Dense verification


def _zncc(image: np.ndarray, other: np.ndarray, radius: int) -> tuple[np.ndarray, np.ndarray]:
    """Local zero-mean normalised cross-correlation and the smaller of the two local variances."""
    size = (2 * radius + 1, 2 * radius + 1)

    def mean(values: np.ndarray) -> np.ndarray:
        return cv2.boxFilter(values, cv2.CV_32F, size, borderType=cv2.BORDER_REFLECT_101)

    mean_i, mean_o = mean(image), mean(other)
    var_i = mean(image * image) - mean_i * mean_i
    var_o = mean(other * other) - mean_o * mean_o
    covariance = mean(image * other) - mean_i * mean_o
    denominator = np.sqrt(np.maximum(var_i, 0) * np.maximum(var_o, 0))
    correlation = np.where(denominator > 1e-6, covariance / np.maximum(denominator, 1e-6), 0.0)
    return correlation.astype(np.float32), np.minimum(var_i, var_o)


def _fill_holes(mask: np.ndarray) -> np.ndarray:
    padded = np.pad(mask.astype(np.uint8), 1)
    flood = padded.copy()
    cv2.floodFill(flood, None, (0, 0), 1)
    return mask | (flood[1:-1, 1:-1] == 0)


def _verified_region(grey: np.ndarray, matrix: np.ndarray, seeds: np.ndarray, radius: int, threshold: float,
                     min_variance: float) -> np.ndarray:
    """Pixels ``x`` whose neighbourhood correlates with that of ``matrix^-1 x``, grown from the ``seeds``.

    ``seeds`` are the inlier keypoints on this side (where ``matrix`` maps *to*).
    """
    height, width = grey.shape
    # warpAffine(src, M)(x) = src(M^-1 x): the partner of every pixel, sampled where the transform sends it from.
    partner = cv2.warpAffine(grey, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                             borderValue=0)
    inside = cv2.warpAffine(np.ones_like(grey), matrix, (width, height), flags=cv2.INTER_NEAREST,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=0) > 0
    correlation, variance = _zncc(grey, partner, radius)
    candidate = (correlation >= threshold) & (variance >= min_variance) & inside
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    # Close first so texture-less gaps inside the copy do not split it, then keep what touches a seed.
    candidate = cv2.morphologyEx(candidate.astype(np.uint8), cv2.MORPH_CLOSE, kernel) > 0
    count, labels = cv2.connectedComponents(candidate.astype(np.uint8), connectivity=8)
    if count <= 1:
        return np.zeros_like(candidate)
    xs = np.clip(np.rint(seeds[:, 0]).astype(int), 0, width - 1)
    ys = np.clip(np.rint(seeds[:, 1]).astype(int), 0, height - 1)
    # A seed may sit just outside its component (keypoints lie on edges); look in a small neighbourhood.
    near = np.zeros((height, width), np.uint8)
    near[ys, xs] = 1
    near = cv2.dilate(near, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))) > 0
    wanted = np.unique(labels[near & candidate])
    region = np.isin(labels, wanted[wanted > 0])
    region = cv2.morphologyEx(region.astype(np.uint8), cv2.MORPH_OPEN, kernel) > 0
    return _fill_holes(region)


def _high_frequency(rgb: np.ndarray) -> np.ndarray:
    """Per-pixel magnitude of the noise residual (Immerkaer's mask), the trace interpolation smooths away."""
    grey = rgb.astype(np.float32).mean(axis=2)
    return np.abs(cv2.filter2D(grey, cv2.CV_32F, NOISE_KERNEL, borderType=cv2.BORDER_REFLECT_101))


def _smoother(residual: np.ndarray, first: np.ndarray, second: np.ndarray) -> bool:
    """Whether ``second`` is the smoother of two copies of the same content (so, most likely, the pasted one)."""
    if not first.any():
        return True
    if not second.any():
        return False
    # Both regions hold the same content, so a difference of residual level is a difference of processing.
    return float(np.median(residual[second])) <= float(np.median(residual[first]))


# ----------------------------------------------------------------------------------------------------------------
# The detector


@register_detector("copy_move")
class CopyMoveDetector(Detector):
    """SIFT + g2NN + clustering + affine RANSAC copy-move detection with dense verification (see module doc).

    Parameters: ``mark`` (``"both"`` or ``"target"``), ``ratio`` (g2NN ratio), ``min_distance`` (pixels of the
    image; default 2 % of the diagonal, at least 10), ``min_inliers``, ``ransac_threshold`` (pixels),
    ``correlation`` (dense verification threshold on the local ZNCC), ``radius`` (half-side of the
    correlation window), ``max_keypoints`` (0: no cap), ``seed`` (RANSAC's random generator), ``working_pixels``
    (larger images are matched on a reduced copy of this many pixels; ``ransac_threshold`` and ``radius`` are
    pixels of that copy).
    """

    description = "copy-move: SIFT g2NN matching, clustering, affine RANSAC, dense ZNCC verification"
    whole_image = True

    def __init__(self, *, mark: Mark = "target", ratio: float = 0.5, min_distance: float | None = None,
                 min_inliers: int = 8, ransac_threshold: float = 3.0, correlation: float = 0.8, radius: int = 3,
                 max_keypoints: int = 0, contrast_threshold: float = 0.02, seed: int = 0,
                 working_pixels: int = DEFAULT_WORKING_PIXELS) -> None:
        if mark not in ("both", "target"):
            raise ValueError(f"mark must be 'both' or 'target', not {mark!r}")
        if not 0 < ratio < 1:
            raise ValueError(f"ratio must lie in (0, 1), not {ratio!r}")
        if min_inliers < 3:
            raise ValueError(f"min_inliers must be at least 3 (an affine transform has 6 unknowns), not {min_inliers}")
        if not -1 < correlation < 1 or radius < 1:
            raise ValueError(f"need -1 < correlation < 1 and radius >= 1; got {correlation}, {radius}")
        if int(working_pixels) < 10_000:
            raise ValueError(f"working_pixels must be at least 10000 (a 100 x 100 copy), not {working_pixels!r}")
        self.mark, self.ratio, self.min_distance = mark, float(ratio), min_distance
        self.min_inliers, self.ransac_threshold = int(min_inliers), float(ransac_threshold)
        self.correlation, self.radius = float(correlation), int(radius)
        self.max_keypoints, self.seed = int(max_keypoints), int(seed)
        self.contrast_threshold = float(contrast_threshold)
        self.working_pixels = int(working_pixels)

    def working_shape(self, height: int, width: int) -> tuple[int, int]:
        """``(height, width)`` of the copy the method reads for an image of this size (its own up to
        ``working_pixels``, else reduced keeping the aspect ratio)."""
        if height * width <= self.working_pixels:
            return height, width
        scale = float(np.sqrt(self.working_pixels / (height * width)))
        return max(1, int(height * scale)), max(1, int(width * scale))

    def regions(self, image: LoadedImage | np.ndarray) -> tuple[list[tuple[np.ndarray, np.ndarray, CopyMoveMatch]], int]:
        """``([(first region, second region, match), ...], support)``: both verified regions of every match, on
        the image as given (no working copy)."""
        return self._regions(as_loaded_image(image).rgb, self.min_distance)

    def _regions(self, rgb: np.ndarray, min_distance: float | None,
                 ) -> tuple[list[tuple[np.ndarray, np.ndarray, CopyMoveMatch]], int]:
        matches, support = find_copy_moves(
            rgb, ratio=self.ratio, min_distance=min_distance, min_inliers=self.min_inliers,
            ransac_threshold=self.ransac_threshold, max_keypoints=self.max_keypoints,
            contrast_threshold=self.contrast_threshold, seed=self.seed,
        )
        grey = _grey(rgb).astype(np.float32)
        found = []
        for match in matches:
            second = _verified_region(grey, match.transform, match.target_points, self.radius, self.correlation,
                                      min_variance=4.0)
            inverse = cv2.invertAffineTransform(match.transform)
            first = _verified_region(grey, inverse, match.source_points, self.radius, self.correlation,
                                     min_variance=4.0)
            if first.any() or second.any():
                found.append((first, second, match))
        return found, support

    def _working_regions(self, image: LoadedImage | np.ndarray,
                         ) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray, CopyMoveMatch]], int]:
        """``(working copy, its verified region pairs, support)``: :meth:`regions` read through the working copy."""
        image = as_loaded_image(image)
        height, width = image.shape
        shape = self.working_shape(height, width)
        rgb, min_distance = image.rgb, self.min_distance
        if shape != (height, width):
            rgb = cv2.resize(image.rgb, (shape[1], shape[0]), interpolation=cv2.INTER_AREA)
            if min_distance is not None:
                min_distance = float(min_distance) * shape[1] / width
        found, support = self._regions(rgb, min_distance)
        return rgb, found, support

    def region_pairs(self, image: LoadedImage | np.ndarray) -> tuple[list[tuple[np.ndarray, np.ndarray]], float]:
        """``([(one region, its copy's region), ...], score)``: both verified regions of every kept match, on the
        image's own grid (read through the working copy, so any size is safe), and the image score. Which of
        each pair is the copy is left to the caller: a mask model's matching branch
        (:class:`~helpers.detectors.mask_map.MaskMapDetector`) asks its network."""
        image = as_loaded_image(image)
        height, width = image.shape
        rgb, found, support = self._working_regions(image)
        inliers = sum(match.inliers for _, _, match in found)
        evidence = inliers if found else min(support, self.min_inliers - 1)
        pairs = [(first, second) for first, second, _ in found]
        if rgb.shape[:2] != (height, width):
            def full(mask: np.ndarray) -> np.ndarray:
                return cv2.resize(mask.view(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST).view(bool)
            pairs = [(full(first), full(second)) for first, second in pairs]
        return pairs, evidence / (evidence + _HALF_SCORE_INLIERS)

    def predict_working(self, image: LoadedImage | np.ndarray) -> Prediction:
        """The prediction on the working copy (the image itself up to ``working_pixels``)."""
        rgb, found, support = self._working_regions(image)
        shape = rgb.shape[:2]
        inliers = sum(match.inliers for _, _, match in found)
        mask = np.zeros(shape, bool)
        residual = _high_frequency(rgb) if found and self.mark == "target" else None
        for first, second, _ in found:
            if residual is None:
                mask |= first | second
            else:
                mask |= second if _smoother(residual, first, second) else first
        # Without a kept match the best rejected fit still counts, capped below what a kept one scores.
        evidence = inliers if found else min(support, self.min_inliers - 1)
        score = evidence / (evidence + _HALF_SCORE_INLIERS)
        return Prediction(heatmap=_inside_value(mask, score), mask=mask, score=score)

    def predict(self, image: LoadedImage) -> Prediction:
        working = self.predict_working(image)
        height, width = image.shape
        if working.mask.shape == (height, width):
            return working
        mask = cv2.resize(working.mask.view(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST).view(bool)
        return Prediction(heatmap=_inside_value(mask, working.score), mask=mask, score=working.score)


def _inside_value(mask: np.ndarray, score: float | None) -> np.ndarray:
    """The heatmap: ``0.5 + score / 2`` inside the mask, 0 outside (the evidence is the geometry, not per pixel)."""
    return np.where(mask, np.float32(0.5 + 0.5 * float(score or 0.0)), np.float32(0.0))
