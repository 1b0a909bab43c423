"""Pixel-level (localisation) metrics of one image: the field's conventions, written down once (notebook 07).

NumPy and OpenCV only: this module sits below every other layer, so anything (a forensic trace, a Keras training
metric's NumPy twin) may score a map against a mask with it.

The convention, against the two protocols the workbook's numbers are compared with:

* **A pixel is predicted tampered when its map value is above the threshold** (strictly: ``heatmap > t``), as in
  IMDL-BenCo's ``PixelF1`` and TruFor's ``computeMetrics_th``. The default threshold is 0.5.
* **Pixel F1, IoU and MCC at the threshold are computed per tampered image and then averaged** over the tampered
  images (a large image does not outweigh a small one). This is IMDL-BenCo's pixel F1 on a set of tampered
  images; TruFor's fixed-threshold F1 is the same per-image average but also forgives inverted polarity and
  ignores a band around the mask's boundary, which here is the separate *permuted* F1 below.
* **Empty truth.** ``F1 = 2TP / (2TP + FP + FN)`` is undefined when the mask is empty and nothing is predicted;
  :func:`f1_from_counts` returns NaN there (IMDL-BenCo's epsilon makes it 0, TruFor's ``max(., 1e-32)`` too).
  The protocol never needs it: pixel metrics are computed only for images whose mask marks at least one pixel,
  and images with an empty truth (authentic images, or tampered ones whose mask is empty) are excluded from
  every pixel average, as TruFor scores localisation on fake images only. Authentic images are scored instead
  by the false-alarm rate and the image-level metrics (:mod:`helpers.evaluation.image`), and by the fraction
  of their pixels a detector flags. (The Keras training metrics of :mod:`helpers.models.metrics` score an empty
  crop with an empty prediction as 1, because training crops are legitimately empty; they are not this
  protocol.)
* **Best-threshold F1** (an oracle: the threshold that suits each image, an upper bound) and **permuted F1**
  (``max(F1(map), F1(inverted map))`` at each threshold) are computed with a band of ``border`` pixels either
  side of the mask's boundary excluded, since hand-drawn masks are unsure at their edges: TruFor's and Huh et
  al.'s convention (TruFor erodes by 15 and dilates by 11 pixels; here one symmetric width).
* **Pixel AUC** per image (threshold-free), NaN when the mask is all one class.
* **The floor.** Predicting every pixel tampered scores ``F1 = 2p / (1 + p)`` on an image whose tampered fraction
  is ``p`` (:func:`all_tampered_f1`); every summary reports it beside the detectors, averaged over the same
  tampered images.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

__all__ = [
    "THRESHOLDS",
    "confusion_counts",
    "f1_from_counts",
    "iou_from_counts",
    "mcc_from_counts",
    "border_band",
    "pixel_auc",
    "best_threshold_f1",
    "all_tampered_f1",
    "pixel_metrics",
]

THRESHOLDS: np.ndarray = np.linspace(0.0, 1.0, 101)
"""Thresholds tried by :func:`best_threshold_f1` (0.00, 0.01, ..., 1.00)."""


def confusion_counts(
    prediction: np.ndarray, truth: np.ndarray, valid: np.ndarray | None = None
) -> tuple[int, int, int, int]:
    """``(TP, FP, FN, TN)`` of a bool ``prediction`` against a bool ``truth`` mask, over the ``valid`` pixels.

    The one confusion count of the workbook: threshold a map first (``heatmap > threshold``). Arrays of the same
    shape; anything non-zero counts as True.
    """
    pred = np.asarray(prediction).astype(bool, copy=False)
    mask = np.asarray(truth).astype(bool, copy=False)
    if pred.shape != mask.shape:
        raise ValueError(f"prediction of shape {pred.shape} and mask of shape {mask.shape} differ")
    if valid is not None:
        keep = np.asarray(valid, bool)
        if keep.shape != mask.shape:
            raise ValueError(f"valid pixels of shape {keep.shape} and mask of shape {mask.shape} differ")
        pred, mask = pred[keep], mask[keep]
    tp = int(np.count_nonzero(pred & mask))
    fp = int(np.count_nonzero(pred)) - tp
    fn = int(np.count_nonzero(mask)) - tp
    tn = int(pred.size) - tp - fp - fn
    return tp, fp, fn, tn


def f1_from_counts(tp: float, fp: float, fn: float) -> float:
    """``2TP / (2TP + FP + FN)``; NaN when the truth is empty and nothing is predicted (see the module docstring)."""
    denominator = 2 * tp + fp + fn
    return float(2 * tp / denominator) if denominator else float("nan")


def iou_from_counts(tp: float, fp: float, fn: float) -> float:
    """``TP / (TP + FP + FN)``; NaN when the truth is empty and nothing is predicted."""
    denominator = tp + fp + fn
    return float(tp / denominator) if denominator else float("nan")


def mcc_from_counts(tp: float, fp: float, fn: float, tn: float) -> float:
    """Matthews correlation coefficient; 0 when a row or column of the confusion matrix is empty."""
    denominator = np.sqrt(float(tp + fp) * float(tp + fn) * float(tn + fp) * float(tn + fn))
    return float((tp * tn - fp * fn) / denominator) if denominator else 0.0


def border_band(mask: np.ndarray, width: int) -> np.ndarray:
    """Pixels within ``width`` pixels of the mask's boundary, inside or outside (bool); none when width is 0."""
    truth = np.asarray(mask, bool)
    if width <= 0 or not truth.any() or truth.all():
        return np.zeros_like(truth)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * width + 1, 2 * width + 1))
    as_bytes = truth.astype(np.uint8)
    dilated = cv2.dilate(as_bytes, kernel) > 0
    eroded = cv2.erode(as_bytes, kernel, borderType=cv2.BORDER_REPLICATE) > 0
    return dilated & ~eroded


def pixel_auc(score_map: np.ndarray, mask: np.ndarray, valid: np.ndarray | None = None) -> float:
    """ROC-AUC of ``score_map`` against the bool ``mask``; NaN when the (valid) mask is all one class.

    Computed from ranks (Mann-Whitney U) with ties averaged, in O(n log n) without building a curve.
    ``valid`` (bool, same shape) restricts the pixels that count.
    """
    truth = np.asarray(mask, bool)
    scores = np.asarray(score_map, np.float64)
    if truth.shape != scores.shape:
        raise ValueError(f"map of shape {scores.shape} and mask of shape {truth.shape} differ")
    if valid is not None:
        keep = np.asarray(valid, bool)
        truth, scores = truth[keep], scores[keep]
    truth, scores = truth.ravel(), scores.ravel()
    positives = int(truth.sum())
    negatives = truth.size - positives
    if positives == 0 or negatives == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    boundaries = np.flatnonzero(np.diff(sorted_scores)) + 1
    starts = np.concatenate([[0], boundaries])
    ends = np.concatenate([boundaries, [scores.size]])
    ranks = np.empty(scores.size, np.float64)
    ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)  # 1-based mean rank of each tie run
    return float((ranks[truth].sum() - positives * (positives + 1) / 2.0) / (positives * negatives))


def best_threshold_f1(
    heatmap: np.ndarray, mask: np.ndarray, *, valid: np.ndarray | None = None,
    thresholds: Sequence[float] = THRESHOLDS,
) -> tuple[float, float]:
    """``(best-threshold F1, best-threshold permuted F1)`` of one image over ``thresholds``.

    At each threshold ``t`` the prediction is ``heatmap > t``; the permuted F1 also tries the inverted prediction
    and keeps the better. Sorted scores per class give every threshold's counts in one pass over the pixels.
    NaN when the (valid) mask has no tampered pixel.
    """
    score = np.asarray(heatmap, np.float64)
    truth = np.asarray(mask, bool)
    if score.shape != truth.shape:
        raise ValueError(f"map of shape {score.shape} and mask of shape {truth.shape} differ")
    if valid is not None:
        keep = np.asarray(valid, bool)
        score, truth = score[keep], truth[keep]
    score, truth = score.ravel(), truth.ravel()
    if not truth.any():
        return float("nan"), float("nan")
    edges = np.asarray(thresholds, np.float64)
    positives_sorted = np.sort(score[truth])
    negatives_sorted = np.sort(score[~truth])
    tp = positives_sorted.size - np.searchsorted(positives_sorted, edges, side="right")  # scores above t
    fp = negatives_sorted.size - np.searchsorted(negatives_sorted, edges, side="right")
    fn = positives_sorted.size - tp
    tn = negatives_sorted.size - fp
    f1 = 2 * tp / np.maximum(2 * tp + fp + fn, 1)  # 2TP + FN > 0: the mask has a tampered pixel
    # Inverted prediction: the pixels at or below t; TP' = FN, FP' = TN, FN' = TP.
    f1_inverted = 2 * fn / np.maximum(2 * fn + tn + tp, 1)
    return float(f1.max()), float(np.maximum(f1, f1_inverted).max())


def all_tampered_f1(mask: np.ndarray) -> float:
    """F1 of predicting every pixel tampered: ``2p / (1 + p)`` for a tampered fraction ``p`` (NaN without pixels)."""
    truth = np.asarray(mask, bool)
    if truth.size == 0:
        return float("nan")
    fraction = float(truth.mean())
    return 2 * fraction / (1 + fraction)


def pixel_metrics(
    heatmap: np.ndarray, mask: np.ndarray, *, threshold: float = 0.5, border: int = 0,
) -> dict[str, float]:
    """The localisation scores of one tampered image (see the module docstring for the conventions).

    ``f1``, ``iou``, ``mcc`` of ``heatmap > threshold`` over every pixel; ``auc``; ``best_f1`` and
    ``permuted_f1`` with the ``border`` band excluded; ``tampered_fraction`` and ``floor_f1`` (the all-tampered
    F1). An empty ``mask`` raises: pixel metrics are for tampered images only.
    """
    score = np.asarray(heatmap, np.float64)
    truth = np.asarray(mask, bool)
    if score.shape != truth.shape:
        raise ValueError(f"map of shape {score.shape} and mask of shape {truth.shape} differ")
    if not truth.any():
        raise ValueError("pixel metrics need a mask with at least one tampered pixel (authentic images are "
                         "scored by their false alarms)")
    tp, fp, fn, tn = confusion_counts(score > threshold, truth)
    valid = ~border_band(truth, border) if border > 0 else None
    best, permuted = best_threshold_f1(score, truth, valid=valid)
    return {
        "f1": f1_from_counts(tp, fp, fn),
        "iou": iou_from_counts(tp, fp, fn),
        "mcc": mcc_from_counts(tp, fp, fn, tn),
        "auc": pixel_auc(score, truth),
        "best_f1": best,
        "permuted_f1": permuted,
        "tampered_fraction": float(truth.mean()),
        "floor_f1": all_tampered_f1(truth),
    }
