"""The field's evaluation protocols, so the workbook's numbers compare with published ones.

Localisation (per tampered image, then averaged over tampered images, never pooled over all pixels, so a
large image does not outweigh a small one):

* **pixel F1 at 0.5** (also IoU and MCC at 0.5): the convention of MVSS-Net and the IMDL-BenCo benchmark;
* **best-threshold F1**: the F1 at the threshold that suits each image best (an oracle, an upper bound), and
  **permuted F1**: ``max(F1(pred), F1(1 - pred))``, which forgives inverted polarity; both with a band of
  ground-truth border pixels excluded, the convention of TruFor (Guillaro et al., CVPR 2023) and of Huh et al.
  (ECCV 2018), since hand-drawn masks are unsure at their edges;
* **pixel AUC** per image (threshold-free).

Detection (per image): ROC-AUC of an image score, balanced accuracy and F1 at 0.5.

Every number needs its floor beside it: predicting *every* pixel as tampered scores an F1 of ``2p / (1 + p)``
on an image whose tampered fraction is ``p`` (:func:`all_tampered_f1`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import cv2
import numpy as np
import pandas as pd

__all__ = [
    "THRESHOLDS",
    "pixel_auc",
    "border_band",
    "confusion_counts",
    "f1_from_counts",
    "iou_from_counts",
    "mcc_from_counts",
    "pixel_metrics",
    "best_threshold_f1",
    "all_tampered_f1",
    "localisation_table",
    "summarise_localisation",
]

THRESHOLDS: np.ndarray = np.linspace(0.0, 1.0, 101)
"""Thresholds tried by :func:`best_threshold_f1` (0.00, 0.01, ..., 1.00)."""


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


def confusion_counts(prediction: np.ndarray, mask: np.ndarray, valid: np.ndarray | None = None) -> tuple[int, int, int, int]:
    """(TP, FP, FN, TN) of a bool ``prediction`` against a bool ``mask`` over the ``valid`` pixels."""
    pred = np.asarray(prediction, bool)
    truth = np.asarray(mask, bool)
    if pred.shape != truth.shape:
        raise ValueError(f"prediction of shape {pred.shape} and mask of shape {truth.shape} differ")
    if valid is not None:
        keep = np.asarray(valid, bool)
        pred, truth = pred[keep], truth[keep]
    tp = int(np.count_nonzero(pred & truth))
    fp = int(np.count_nonzero(pred & ~truth))
    fn = int(np.count_nonzero(~pred & truth))
    tn = int(pred.size - tp - fp - fn)
    return tp, fp, fn, tn


def f1_from_counts(tp: float, fp: float, fn: float) -> float:
    """F1 = 2TP / (2TP + FP + FN).

    With no tampered pixel and no prediction (TP = FP = FN = 0) the F1 is undefined and returned as NaN, so
    callers decide; the protocols here only score tampered images, where that cannot happen.
    """
    denominator = 2 * tp + fp + fn
    return float(2 * tp / denominator) if denominator else float("nan")


def iou_from_counts(tp: float, fp: float, fn: float) -> float:
    """Intersection over union TP / (TP + FP + FN); NaN when both are empty."""
    denominator = tp + fp + fn
    return float(tp / denominator) if denominator else float("nan")


def mcc_from_counts(tp: float, fp: float, fn: float, tn: float) -> float:
    """Matthews correlation coefficient; 0 when a row or column of the confusion matrix is empty."""
    denominator = np.sqrt(float(tp + fp) * float(tp + fn) * float(tn + fp) * float(tn + fn))
    return float((tp * tn - fp * fn) / denominator) if denominator else 0.0


def pixel_metrics(
    probability: np.ndarray, mask: np.ndarray, *, threshold: float = 0.5, border: int = 0,
) -> dict[str, float]:
    """Localisation metrics of one image: F1, IoU, MCC at ``threshold``, pixel AUC, best-threshold and
    permuted F1, and the all-tampered floor; pixels within ``border`` of the mask's boundary are ignored by the
    best-threshold and permuted F1 (the TruFor convention) but not by the fixed-threshold scores.
    """
    score = np.asarray(probability, np.float64)
    truth = np.asarray(mask, bool)
    tp, fp, fn, tn = confusion_counts(score >= threshold, truth)
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
        "all_tampered_f1": all_tampered_f1(truth),
    }


def best_threshold_f1(
    probability: np.ndarray, mask: np.ndarray, *, valid: np.ndarray | None = None,
    thresholds: Sequence[float] = THRESHOLDS,
) -> tuple[float, float]:
    """(best-threshold F1, best-threshold permuted F1) of one image over ``thresholds``.

    The permuted F1 also tries the inverted prediction at every threshold and keeps the better. Computed from
    a histogram of scores per class, so all thresholds cost one pass over the pixels.
    """
    score = np.asarray(probability, np.float64)
    truth = np.asarray(mask, bool)
    if valid is not None:
        keep = np.asarray(valid, bool)
        score, truth = score[keep], truth[keep]
    score, truth = score.ravel(), truth.ravel()
    edges = np.asarray(thresholds, np.float64)
    # For each threshold t: predicted positive <=> score >= t. Count positives/negatives at or above t.
    positives_sorted = np.sort(score[truth])
    negatives_sorted = np.sort(score[~truth])
    tp = positives_sorted.size - np.searchsorted(positives_sorted, edges, side="left")
    fp = negatives_sorted.size - np.searchsorted(negatives_sorted, edges, side="left")
    fn = positives_sorted.size - tp
    tn = negatives_sorted.size - fp
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(2 * tp + fp + fn > 0, 2 * tp / np.maximum(2 * tp + fp + fn, 1), np.nan)
        # Inverted prediction: positives become the pixels below t, so TP' = FN, FP' = TN, FN' = TP.
        f1_inverted = np.where(2 * fn + tn + tp > 0, 2 * fn / np.maximum(2 * fn + tn + tp, 1), np.nan)
    best = float(np.nanmax(f1)) if np.isfinite(f1).any() else float("nan")
    permuted = float(np.nanmax(np.fmax(f1, f1_inverted))) if np.isfinite(f1).any() else float("nan")
    return best, permuted


def all_tampered_f1(mask: np.ndarray) -> float:
    """F1 of predicting every pixel tampered: 2p / (1 + p) for a tampered fraction p (NaN without pixels)."""
    truth = np.asarray(mask, bool)
    if truth.size == 0:
        return float("nan")
    fraction = float(truth.mean())
    return 2 * fraction / (1 + fraction)


def localisation_table(
    items: Iterable[tuple[str, np.ndarray, np.ndarray]], *, threshold: float = 0.5, border: int = 0,
) -> pd.DataFrame:
    """:func:`pixel_metrics` for each ``(name, probability, mask)`` of a *tampered* image, one row each."""
    rows = []
    for name, probability, mask in items:
        truth = np.asarray(mask, bool)
        if probability.shape != truth.shape:
            raise ValueError(f"{name}: prediction {probability.shape} and mask {truth.shape} differ in shape")
        rows.append({"image": name, **pixel_metrics(probability, truth, threshold=threshold, border=border)})
    return pd.DataFrame(rows)


def summarise_localisation(table: pd.DataFrame) -> dict[str, float]:
    """Means over tampered images (NaN-aware) of every column of a :func:`localisation_table`, plus the count."""
    numeric = table.drop(columns=[c for c in ("image",) if c in table]).select_dtypes("number")
    summary = {column: float(numeric[column].mean(skipna=True)) for column in numeric}
    summary["images"] = int(len(table))
    return summary
