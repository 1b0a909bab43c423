"""Splicebuster: blind splicing localisation from local noise statistics (notebooks 04 and 07).

Cozzolino, Poggi and Verdoliva, "Splicebuster: a new blind image splicing detector", IEEE WIFS 2015. Every
camera and processing chain leaves its own high-frequency "texture" in the pixels; a region pasted from
another photo carries a different one. The method needs no training and no knowledge of the host camera:

1. **Residuals.** The grey image is filtered with the third-order derivative ``[1, -3, 3, -1]`` horizontally and
   vertically, which removes the smooth content and keeps noise and fine texture.
2. **Quantisation.** Each residual is divided by ``step`` grey levels, rounded and truncated to
   ``{-1, 0, 1}`` (truncation ``T = 1``): only the *pattern* of small residuals survives, not their size.
   The reference implementation's step is about 6 grey levels (``q = 2`` on a 0..1 scale times 3/256); the
   default here is 3, since small, recompressed images keep little residual energy and a coarser step turns
   most of it into zeros (on the embedded set, splice pixel F1 0.36 at step 3 against 0.33 at step 6).
3. **Co-occurrences.** Four consecutive quantised residuals, along the residual's direction and across it,
   form a code among ``3**4 = 81``; codes equal up to reversal and sign are merged (25 classes), and the two
   "along" and the two "across" co-occurrences are pooled: 50 features per pixel position.
4. **Histograms in sliding windows.** The codes are counted per ``stride`` x ``stride`` cell (one
   ``np.bincount``), then summed over ``window`` x ``window`` windows at stride ``stride`` with an integral
   image, so the cost is linear in the pixels whatever the window. Each window's two 25-bin halves are
   normalised to frequencies and square-rooted (the reference implementation's power normalisation).
   Windows with less than 85 % unsaturated pixels are left out (clipped areas have no noise).
5. **PCA** to at most ``pca_dim`` (25) whitened dimensions, fitted on the image's own windows. Overlapping
   windows are not independent samples: a 300 px image holds only a handful of disjoint 128 px windows, and a
   25-dimensional Gaussian fitted to them models noise. So the window shrinks on small images (until 20
   disjoint windows fit, down to 32 px) and PCA keeps one dimension per 4 disjoint windows' worth of data.
   Both choices were measured on the embedded set, where they lift splice pixel AUC from 0.44 to 0.80.
6. **Expectation-maximisation** of a two-component mixture: a Gaussian for the host's windows and a uniform
   density (over the box spanned by the features) for the windows that fit no Gaussian, the splice. The
   posterior probability of the uniform component is the heatmap (interpolated from window centres to
   pixels); the mask is the EM's own maximum-a-posteriori rule, posterior > 0.5.

Image score: the mixture's evidence that something does not belong, ``1 - exp(-g)`` where ``g`` is the gain
in mean log-likelihood per window of the fitted mixture over the single Gaussian fitted to all windows.
An untouched photo with homogeneous noise is well described by one Gaussian (gain near 0); a splice adds a
cloud of distant windows that the uniform component explains much better.

Where it fails (read the heatmap with these in mind):

* **small splices**: a region must fill a good part of a window (128 px by default, 64 or less on small
  images) to shift that window's histogram; regions under about a quarter of a window are diluted away;
  images under about 100 x 100 px get no decision at all (empty map, no score);
* **heavy compression**: JPEG at low quality (or strong resizing) removes the high frequencies, most quantised
  residuals become 0 and every window looks alike; donor and host saved through the same pipeline look alike;
* **large splices**: the uniform component models the *minority*; a splice covering most of the image is
  labelled host and the host splice;
* **content**: the features respond to texture as well as to noise. In photos whose own noise was lost to
  downscaling and compression (most web images, and the embedded set's sources), smooth areas (a blurred
  background, sky) and busy ones (fur, foliage) fall into different clouds and the smaller one is flagged:
  on untouched photos of the embedded set about 13 % of the pixels are flagged on average, and far more on
  photos made of two such areas. A splice that is itself textured noise looks like texture.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from threadpoolctl import threadpool_limits

from helpers.detectors.base import Detector, Prediction, register_detector
from helpers.imageio import LoadedImage, as_loaded_image, check_rgb

__all__ = [
    "FEATURES_PER_WINDOW",
    "cooccurrence_classes",
    "WindowFeatures",
    "window_features",
    "GaussianUniformMixture",
    "fit_gaussian_uniform",
    "SplicebusterDetector",
]

_ORDER = 4
"""Residuals per co-occurrence (the paper's fourth-order co-occurrences)."""
_TRUNCATION = 1
"""Quantised residuals are truncated to -T..T."""
_LEVELS = 2 * _TRUNCATION + 1
_CLASSES_PER_HALF = 25
"""3**4 = 81 codes fall into 25 classes up to reversal and sign change (Burnside: (81 + 9 + 1 + 9) / 4)."""
FEATURES_PER_WINDOW: int = 2 * _CLASSES_PER_HALF
"""Feature length before PCA: 25 classes of co-occurrences along the residual's direction, 25 across it."""

# Luminance weights (ITU-R BT.601): the method works on the grey image, as the reference implementation does.
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)
_SATURATED_LOW, _SATURATED_HIGH = 6, 252
"""Grey levels at or beyond which a pixel is clipped and carries no noise."""
_MIN_INDEPENDENT_WINDOWS = 20
"""Smaller images get a smaller window until they hold this many non-overlapping windows (see ``geometry``)."""
_FEWEST_WINDOWS = 8
"""Below this many disjoint 32 px windows (an image of about 100 x 100 px) there is no host to compare with."""
_WINDOWS_PER_DIMENSION = 4
"""PCA keeps at most one dimension per this many non-overlapping windows' worth of data."""
_MIN_VALID_SHARE = 0.85
"""Windows with less than this share of unsaturated pixels are left out of the fit and scored 0."""


def cooccurrence_classes() -> np.ndarray:
    """Lookup table ``code (0..80) -> class (0..24)`` merging codes equal up to reversal and sign change.

    A code is ``sum(q[k] * 3**k)`` over four quantised residuals ``q`` in ``{0, 1, 2}`` (that is -1, 0, 1).
    Reversing the four (the same pattern seen from the other side) or negating them (the same structure with
    the opposite sign) gives statistically equivalent patterns; merging them makes the histograms less noisy
    (fewer, fuller bins) and symmetric, as in the paper.
    """
    powers = _LEVELS ** np.arange(_ORDER)
    digits = (np.arange(_LEVELS**_ORDER)[:, None] // powers) % _LEVELS
    variants = np.stack([
        digits, digits[:, ::-1], (_LEVELS - 1) - digits, (_LEVELS - 1) - digits[:, ::-1],
    ])
    canonical = (variants * powers).sum(axis=2).min(axis=0)
    _, classes = np.unique(canonical, return_inverse=True)
    assert classes.max() + 1 == _CLASSES_PER_HALF
    return classes.astype(np.int64)


_CLASS_OF_CODE = cooccurrence_classes()


# ----------------------------------------------------------------------------------------------------------------
# Features


@dataclass(frozen=True)
class WindowFeatures:
    """Square-rooted co-occurrence histograms of sliding windows, and where the windows are."""

    features: np.ndarray
    """``float64`` ``(rows, cols, 50)``: one histogram per window (zeros where ``valid`` is False)."""
    valid: np.ndarray
    """``bool`` ``(rows, cols)``: windows with enough unsaturated pixels to be trusted."""
    window: int
    """Window side in pixels."""
    stride: int
    """Distance between neighbouring windows in pixels."""
    offset: int
    """Image row/column of the first window's top-left pixel (the residuals' border)."""


def _grey(rgb: np.ndarray) -> np.ndarray:
    return (rgb.astype(np.float32) @ _LUMA).astype(np.float32)


def _quantise(residual: np.ndarray, step: float) -> np.ndarray:
    quantised = np.rint(residual * np.float32(1.0 / step))
    np.clip(quantised, -_TRUNCATION, _TRUNCATION, out=quantised)
    return (quantised + _TRUNCATION).astype(np.uint8)


def _codes(quantised: np.ndarray, axis: int) -> np.ndarray:
    """Co-occurrence codes of ``_ORDER`` consecutive values along ``axis`` (the map shrinks by ``_ORDER - 1``)."""
    length = quantised.shape[axis] - (_ORDER - 1)
    code = np.zeros(tuple(length if a == axis else s for a, s in enumerate(quantised.shape)), np.int16)
    for k in range(_ORDER):
        part = quantised[:, k : k + length] if axis == 1 else quantised[k : k + length]
        code += part.astype(np.int16) * np.int16(_LEVELS**k)
    return code


def _centre_crop(array: np.ndarray, height: int, width: int) -> np.ndarray:
    top = (array.shape[0] - height) // 2
    left = (array.shape[1] - width) // 2
    return array[top : top + height, left : left + width]


def _unsaturated(grey: np.ndarray) -> np.ndarray:
    """Pixels away from clipped areas: a pixel counts only if no clipped blob lies within 4 pixels.

    An opening first ignores isolated clipped pixels (a specular glint), then the clipped areas are grown by
    the reach of the residual filters and co-occurrences, as the reference implementation does. The grey
    image decides: a pixel with one clipped channel still has noise in the others.
    """
    clipped = ((grey <= _SATURATED_LOW) | (grey >= _SATURATED_HIGH)).astype(np.uint8)
    clipped = cv2.morphologyEx(clipped, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5)))
    clipped = cv2.dilate(clipped, np.ones((9, 9), np.uint8))
    return clipped == 0


def window_features(rgb: np.ndarray, *, window: int = 128, stride: int = 8, step: float = 3.0) -> WindowFeatures:
    """Co-occurrence histograms of every ``window`` x ``window`` window at stride ``stride`` (see module doc).

    ``window`` must be a multiple of ``stride``; the image must be at least ``window + 6`` pixels on each side
    (the residuals and co-occurrences eat 3 pixels at each border).
    """
    rgb = check_rgb(rgb)
    if window % stride:
        raise ValueError(f"window ({window}) must be a multiple of stride ({stride})")
    height, width = rgb.shape[:2]
    border = 2 * (_ORDER - 1)  # 3 for the residual filter, 3 for the co-occurrence
    if min(height, width) < window + border:
        raise ValueError(f"a {width}x{height} image is smaller than one {window}-pixel window")
    grey = _grey(rgb)
    # Third-order derivative [-1, 3, -3, 1] (the sign is irrelevant after merging by sign change).
    across_columns = grey[:, :-3] - 3 * grey[:, 1:-2] + 3 * grey[:, 2:-1] - grey[:, 3:]
    across_rows = grey[:-3] - 3 * grey[1:-2] + 3 * grey[2:-1] - grey[3:]
    horizontal, vertical = _quantise(across_columns, step), _quantise(across_rows, step)

    inner_h, inner_w = height - border, width - border
    cells_y, cells_x = inner_h // stride, inner_w // stride
    used_h, used_w = cells_y * stride, cells_x * stride
    # Along = co-occurrence in the residual's own direction, across = perpendicular to it.
    maps = {
        "along_h": _codes(horizontal, axis=1), "across_h": _codes(horizontal, axis=0),
        "along_v": _codes(vertical, axis=0), "across_v": _codes(vertical, axis=1),
    }
    cell_rows = (np.arange(used_h, dtype=np.int64) // stride) * cells_x
    cell_cols = np.arange(used_w, dtype=np.int64) // stride
    cell_index = cell_rows[:, None] + cell_cols[None, :]
    valid_pixels = _centre_crop(_unsaturated(grey), inner_h, inner_w)[:used_h, :used_w]
    dump = cells_y * cells_x * FEATURES_PER_WINDOW  # saturated pixels are counted here and dropped
    counts = np.zeros(dump + 1, np.int64)
    for name, code in maps.items():
        classes = _CLASS_OF_CODE[_centre_crop(code, inner_h, inner_w)[:used_h, :used_w]]
        if name.startswith("along"):
            classes = classes + _CLASSES_PER_HALF
        index = np.where(valid_pixels, cell_index * FEATURES_PER_WINDOW + classes, dump)
        counts += np.bincount(index.ravel(), minlength=dump + 1)
    cell_counts = counts[:dump].reshape(cells_y, cells_x, FEATURES_PER_WINDOW).astype(np.float64)
    cell_valid = np.bincount(cell_index[valid_pixels], minlength=cells_y * cells_x).reshape(cells_y, cells_x)

    span = window // stride
    window_counts = _box_sum(cell_counts, span)
    window_valid = _box_sum(cell_valid[..., None].astype(np.float64), span)[..., 0] / float(window * window)
    totals_across = window_counts[..., :_CLASSES_PER_HALF].sum(axis=2, keepdims=True)
    totals_along = window_counts[..., _CLASSES_PER_HALF:].sum(axis=2, keepdims=True)
    totals = np.concatenate([np.repeat(totals_across, _CLASSES_PER_HALF, 2),
                             np.repeat(totals_along, _CLASSES_PER_HALF, 2)], axis=2)
    valid = window_valid >= _MIN_VALID_SHARE
    features = np.sqrt(np.divide(window_counts, totals, out=np.zeros_like(window_counts), where=totals > 0))
    features[~valid] = 0.0
    return WindowFeatures(features=features, valid=valid, window=window, stride=stride, offset=border // 2)


def _box_sum(cells: np.ndarray, span: int) -> np.ndarray:
    """Sums over every ``span`` x ``span`` block of cells (stride one cell), through an integral image."""
    integral = np.zeros((cells.shape[0] + 1, cells.shape[1] + 1, cells.shape[2]), np.float64)
    np.cumsum(np.cumsum(cells, axis=0), axis=1, out=integral[1:, 1:])
    return integral[span:, span:] - integral[:-span, span:] - integral[span:, :-span] + integral[:-span, :-span]


# ----------------------------------------------------------------------------------------------------------------
# Gaussian + uniform mixture


@dataclass(frozen=True)
class GaussianUniformMixture:
    """A Gaussian (host) plus a uniform density over a box (outliers: the splice), fitted by EM."""

    mean: np.ndarray
    covariance: np.ndarray
    outlier_share: float
    """Mixture weight of the uniform component."""
    log_uniform_density: float
    """``-log(volume of the box)``: the uniform component's log density."""
    mean_log_likelihood: float
    """Mean log-likelihood per sample of the fitted mixture."""
    single_gaussian_log_likelihood: float
    """Mean log-likelihood per sample of one Gaussian fitted to all samples (the no-splice hypothesis)."""
    iterations: int

    def posterior(self, samples: np.ndarray) -> np.ndarray:
        """Posterior probability that each sample comes from the uniform (splice) component."""
        gaussian = np.log1p(-self.outlier_share) + _gaussian_log_density(samples, self.mean, self.covariance)
        uniform = np.log(self.outlier_share) + self.log_uniform_density
        return 1.0 / (1.0 + np.exp(np.clip(gaussian - uniform, -60.0, 60.0)))

    @property
    def evidence(self) -> float:
        """Gain in mean log-likelihood of the mixture over a single Gaussian (>= 0 up to EM's tolerance)."""
        return max(0.0, self.mean_log_likelihood - self.single_gaussian_log_likelihood)


def _gaussian_log_density(samples: np.ndarray, mean: np.ndarray, covariance: np.ndarray) -> np.ndarray:
    cholesky = np.linalg.cholesky(covariance)
    # (x - m) L^-T has the Mahalanobis distance as its squared norm; one small inverse, then one matmul.
    whitened = (samples - mean) @ np.linalg.inv(cholesky).T
    mahalanobis = np.einsum("ij,ij->i", whitened, whitened)
    log_determinant = 2.0 * np.log(np.diag(cholesky)).sum()
    return -0.5 * (mahalanobis + log_determinant + samples.shape[1] * np.log(2.0 * np.pi))


def _weighted_gaussian(samples: np.ndarray, weights: np.ndarray, ridge: float) -> tuple[np.ndarray, np.ndarray]:
    total = float(weights.sum())
    mean = weights @ samples / total
    centred = (samples - mean) * np.sqrt(weights)[:, None]
    covariance = centred.T @ centred / total + ridge * np.eye(samples.shape[1])
    return mean, covariance


def fit_gaussian_uniform(
    samples: np.ndarray, *, initial_outlier_share: float = 0.05, max_iterations: int = 100, tolerance: float = 1e-6,
    ridge: float = 1e-4,
) -> GaussianUniformMixture:
    """Fit the host Gaussian and the splice uniform to ``samples`` (``(N, D)``) by expectation-maximisation.

    The uniform density is fixed: one over the volume of the box spanned by the samples (it has no parameter
    to learn, so EM only moves the Gaussian and the two weights). EM starts twice, from the Gaussian of all
    samples and from the Gaussian of the inner half (the samples closest to it), and keeps the run with the
    higher likelihood: the first converges well when the splice is small, the second when a large splice has
    inflated the global covariance. ``ridge`` is added to the covariance's diagonal to keep it invertible.
    """
    samples = np.asarray(samples, np.float64)
    if samples.ndim != 2 or samples.shape[0] < samples.shape[1] + 2:
        raise ValueError(f"need (N, D) samples with N > D + 1, got shape {samples.shape}")
    extent = np.ptp(samples, axis=0)
    log_uniform = -float(np.log(np.maximum(extent, 1e-12)).sum())
    everyone = np.ones(len(samples))
    mean, covariance = _weighted_gaussian(samples, everyone, ridge)
    density = _gaussian_log_density(samples, mean, covariance)
    single = float(density.mean())
    distances = -density
    inner = (distances <= np.median(distances)).astype(np.float64)

    best: GaussianUniformMixture | None = None
    for start in (everyone, inner):
        fitted = _em(samples, start, initial_outlier_share, log_uniform, single, max_iterations, tolerance, ridge)
        if best is None or fitted.mean_log_likelihood > best.mean_log_likelihood:
            best = fitted
    assert best is not None
    return best


def _em(samples: np.ndarray, start: np.ndarray, share: float, log_uniform: float, single: float,
        max_iterations: int, tolerance: float, ridge: float) -> GaussianUniformMixture:
    mean, covariance = _weighted_gaussian(samples, start, ridge)
    previous = -np.inf
    log_likelihood = previous
    iteration = 0
    for iteration in range(1, max_iterations + 1):
        # E step: responsibilities of the Gaussian, in the log domain to survive 25-dimensional densities.
        gaussian = np.log1p(-share) + _gaussian_log_density(samples, mean, covariance)
        uniform = np.log(share) + log_uniform
        top = np.maximum(gaussian, uniform)
        evidence = top + np.log(np.exp(gaussian - top) + np.exp(uniform - top))
        host = np.exp(gaussian - evidence)
        log_likelihood = float(evidence.mean())
        if log_likelihood - previous < tolerance * max(1.0, abs(log_likelihood)):
            break
        previous = log_likelihood
        # M step; the share stays inside (0, 1) so neither component can vanish for good.
        share = float(np.clip(1.0 - host.mean(), 1e-4, 0.5))
        mean, covariance = _weighted_gaussian(samples, host, ridge)
    return GaussianUniformMixture(
        mean=mean, covariance=covariance, outlier_share=share, log_uniform_density=log_uniform,
        mean_log_likelihood=log_likelihood, single_gaussian_log_likelihood=single, iterations=iteration,
    )


def _whiten(features: np.ndarray, dimensions: int) -> np.ndarray:
    """Project onto the ``dimensions`` leading principal axes, scaled to unit variance (PCA whitening)."""
    centred = features - features.mean(axis=0)
    covariance = centred.T @ centred / len(features)
    values, vectors = np.linalg.eigh(covariance)
    order = np.argsort(values)[::-1]
    values, vectors = values[order], vectors[:, order]
    keep = int(min(dimensions, np.count_nonzero(values > values[0] * 1e-9)))
    return centred @ (vectors[:, :keep] / np.sqrt(values[:keep]))


# ----------------------------------------------------------------------------------------------------------------
# The detector


@register_detector("splicebuster")
class SplicebusterDetector(Detector):
    """Splicebuster (Cozzolino et al. 2015): outlying noise statistics in sliding windows, by EM.

    Parameters: ``window`` (pixels, a multiple of ``stride``; smaller images get a smaller window, at least
    32 px, and a finer stride so that every window still holds 16 x 16 cells), ``stride``, ``step`` (residual
    quantisation step in grey levels), ``pca_dim`` and ``max_fit_windows`` (EM is fitted on at most this many
    windows, an even subsample, and applied to all; it bounds the cost on large photos).
    """

    description = "Splicebuster: co-occurrences of noise residuals, Gaussian-uniform EM (Cozzolino et al. 2015)"

    def __init__(self, *, window: int = 128, stride: int = 8, step: float = 3.0, pca_dim: int = 25,
                 max_fit_windows: int = 10_000) -> None:
        if window < 32 or stride < 1 or window % stride:
            raise ValueError(f"need window >= 32 and a multiple of stride >= 1; got window={window}, stride={stride}")
        if not step > 0 or pca_dim < 1 or max_fit_windows < 100:
            raise ValueError(f"need step > 0, pca_dim >= 1, max_fit_windows >= 100; got {step}, {pca_dim}, "
                             f"{max_fit_windows}")
        self.window, self.stride, self.step = int(window), int(stride), float(step)
        self.pca_dim, self.max_fit_windows = int(pca_dim), int(max_fit_windows)

    def geometry(self, height: int, width: int) -> tuple[int, int] | None:
        """``(window, stride)`` used for an image of this size, or ``None`` when it is too small to judge.

        The window halves (down to 32 px) until the image holds at least :data:`_MIN_INDEPENDENT_WINDOWS`
        non-overlapping windows: the Gaussian is fitted to the windows, and heavily overlapping windows are
        not independent samples, so a 128 px window on a 300 px image would fit 25 dimensions to about six
        samples. The stride shrinks with the window so each window keeps the same number of cells. An image
        holding fewer than :data:`_FEWEST_WINDOWS` disjoint 32 px windows gets no decision (an empty map and
        no score).
        """
        usable_h, usable_w = height - 2 * (_ORDER - 1), width - 2 * (_ORDER - 1)
        window, stride = self.window, self.stride
        cells = window // stride
        while window > 32 and (usable_h // window) * (usable_w // window) < _MIN_INDEPENDENT_WINDOWS:
            window //= 2
        if (usable_h // window) * (usable_w // window) < _FEWEST_WINDOWS:
            return None
        stride = max(1, min(stride, window // cells))
        window -= window % stride
        return window, stride

    def analyse(self, image: LoadedImage | np.ndarray) -> dict[str, Any]:
        """Everything the method computes: window posteriors, the fitted mixture and the window geometry."""
        image = as_loaded_image(image)
        height, width = image.shape
        geometry = self.geometry(height, width)
        if geometry is None:
            return {"posterior": None, "mixture": None, "features": None}
        # The PCA and EM multiply tall, thin matrices (10 000 x 25) a few hundred times: a threaded BLAS spends
        # more on waking and synchronising its threads than on the arithmetic, and on a busy machine its spinning
        # threads made each image take four to six times longer (same results, one thread or many).
        with threadpool_limits(limits=1, user_api="blas"):
            return self._analyse(image, geometry)

    def _analyse(self, image: LoadedImage, geometry: tuple[int, int]) -> dict[str, Any]:
        window, stride = geometry
        found = window_features(image.rgb, window=window, stride=stride, step=self.step)
        flat = found.features.reshape(-1, FEATURES_PER_WINDOW)
        valid = found.valid.ravel()
        # One PCA dimension per few non-overlapping windows' worth of data (see _WINDOWS_PER_DIMENSION).
        independent = float(valid.sum()) * (stride / window) ** 2
        dimensions = int(min(self.pca_dim, max(2, round(independent / _WINDOWS_PER_DIMENSION))))
        if valid.sum() < dimensions + 10:
            return {"posterior": None, "mixture": None, "features": found}
        whitened = _whiten(flat[valid], dimensions)
        projected = np.zeros((len(flat), whitened.shape[1]))
        projected[valid] = whitened
        fit_rows = np.flatnonzero(valid)
        if len(fit_rows) > self.max_fit_windows:
            fit_rows = fit_rows[np.linspace(0, len(fit_rows) - 1, self.max_fit_windows).round().astype(int)]
        mixture = fit_gaussian_uniform(projected[fit_rows])
        posterior = np.zeros(len(flat))
        posterior[valid] = mixture.posterior(projected[valid])
        return {"posterior": posterior.reshape(found.valid.shape), "mixture": mixture, "features": found}

    def predict(self, image: LoadedImage) -> Prediction:
        height, width = image.shape
        result = self.analyse(image)
        if result["posterior"] is None:
            empty = np.zeros((height, width), np.float32)
            return Prediction(heatmap=empty, mask=empty > 0, score=0.0 if result["features"] is not None else None)
        found: WindowFeatures = result["features"]
        heatmap = _window_map_to_pixels(result["posterior"], found, height, width)
        mixture: GaussianUniformMixture = result["mixture"]
        score = 1.0 - float(np.exp(-mixture.evidence))
        return Prediction(heatmap=heatmap, mask=heatmap > 0.5, score=score)


def _window_map_to_pixels(values: np.ndarray, found: WindowFeatures, height: int, width: int) -> np.ndarray:
    """Per-window values at the windows' centres, linearly interpolated to pixels and extended to the borders."""
    stride = found.stride
    rows, cols = values.shape
    # Each window value becomes a stride x stride block centred on the window's centre.
    blocks = cv2.resize(values.astype(np.float32), (cols * stride, rows * stride), interpolation=cv2.INTER_LINEAR)
    first = found.offset + found.window // 2 - stride // 2
    top, left = first, first
    bottom = max(0, height - top - blocks.shape[0])
    right = max(0, width - left - blocks.shape[1])
    padded = cv2.copyMakeBorder(blocks, top, bottom, left, right, cv2.BORDER_REPLICATE)
    return np.ascontiguousarray(padded[:height, :width])
